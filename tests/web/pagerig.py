"""A real ``omealert watch --listen`` against the simulator: what the page tests look at.

The watcher runs as its own process (stopped by its pid), polls an in-process simulator
every ``interval``, and serves the page, the API and /metrics on a free loopback port that
its log names.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from omealert.simulator import Simulator
from tests.helpers import bare_env, wait_until

TOKEN = "page-TOKEN-s3cr3t-4411"
HOOK_SECRET = "PAGE-HOOK-SECRET-90ab"

RULES = """\
rules:
  - name: ingest-stalled
    when: lastRecvTime stale > 1s
    severity: critical
    summary: "{{ target }} gets no input"
  - name: viewers-high
    when: publishers.viewers > 100
    severity: warning
"""


def config_text(
    sim: Simulator, interval: str, extra: str = "", rules_extra: str = "", stale: str = "1s"
) -> str:
    return f"""\
servers:
  - name: origin
    url: {sim.url}
    access_token: {TOKEN}
    timeout: 2s
interval: {interval}
health:
  stale_after: {stale}
channels:
  hook:
    urls: ["json://127.0.0.1:9/hooks/{HOOK_SECRET}"]
defaults:
  channels: [hook]
{extra}{RULES}{rules_extra}"""


class PageWatcher:
    """``omealert watch --listen 127.0.0.1:0`` with its stderr in a file."""

    def __init__(
        self,
        workdir: Path,
        sim: Simulator,
        *,
        interval: str = "500ms",
        extra: str = "",
        rules_extra: str = "",
        stale_after: str = "1s",
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.config = workdir / "omealert.yaml"
        self.config.write_text(config_text(sim, interval, extra, rules_extra, stale_after))
        self.err_path = workdir / "watch.stderr"
        cmd = [sys.executable, "-m", "omealert", "watch", "-c", str(self.config)]
        self.state = workdir / "state.db"
        cmd += ["--state", str(self.state), "--listen", "127.0.0.1:0", *args]
        with self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                cmd,
                env=bare_env(workdir, **(env or {})),
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
            )
        found = wait_until(lambda: "status page: " in self.stderr() or self.exited(), 30)
        m = re.search(r"status page: (http://127\.0\.0\.1:\d+/)", self.stderr())
        assert found and m is not None, self.stderr()
        self.url = m.group(1)

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def get(
        self, path: str, *, method: str = "GET", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One request; an HTTP error status is returned, not raised."""
        req = urllib.request.Request(self.url + path.lstrip("/"), method=method)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=10) as reply:
                return reply.status, dict(reply.headers), reply.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def json(self, path: str, **kw: Any) -> Any:
        status, _, body = self.get(path, **kw)
        assert status == 200, (status, body)
        return json.loads(body)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
