"""``omealert demo`` shows its status page, and ``--hold`` keeps it open after the story."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.helpers import bare_env, wait_until


def test_demo_prints_the_page_and_holds_it_open(tmp_path: Path) -> None:
    """The page's URL is printed first; after the story, ``--hold`` keeps serving until SIGINT."""
    out_path = tmp_path / "demo.out"
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "omealert", "demo", "--speed", "200", "--hold"],
            env=bare_env(tmp_path), cwd=tmp_path, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        assert wait_until(lambda: "holding:" in out_path.read_text() or proc.poll() is not None, 60)
        text = out_path.read_text()
        m = re.search(r"status page +(http://127\.0\.0\.1:\d+/)", text)
        assert m is not None and "holding:" in text, text
        assert text.index("status page") < text.index("story:")
        with urllib.request.urlopen(m.group(1) + "api/v1/streams", timeout=10) as reply:
            streams = json.loads(reply.read())["streams"]
        assert {"studio-a", "studio-b", "cam-1", "cam-2"} <= {s["stream"] for s in streams}
        with urllib.request.urlopen(m.group(1), timeout=10) as reply:
            assert b"studio-b" in reply.read()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
        assert "Traceback" not in out_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
