"""``omealert silence add`` refuses a regex RE2 cannot run, saying why, and stores nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from omealert.state.store import StateStore
from tests.helpers import bare_env


def silence(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omealert", "silence", *args, "--state", "state.db"],
        cwd=tmp_path,
        env=bare_env(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_lookaround_matcher_is_refused_clearly(tmp_path: Path) -> None:
    """A lookahead is a usage error naming the matcher and RE2's limits; no silence is added."""
    added = silence(tmp_path, "add", "--matcher", "stream=~(?!test).*", "--for", "1h")
    assert added.returncode == 2, added
    assert added.stderr == (
        "omealert silence add: invalid regex in matcher 'stream=~(?!test).*': "
        "invalid perl operator: (?! (RE2 syntax: no backreferences, lookahead or lookbehind)\n"
    )
    assert added.stdout == ""
    assert not (tmp_path / "state.db").exists()


def test_nested_quantifier_silence_is_stored(tmp_path: Path) -> None:
    """``(a+)+`` is valid RE2 (it cannot backtrack there) and is added as written."""
    added = silence(tmp_path, "add", "--matcher", "stream=~(cam+)+", "--for", "1h")
    assert added.returncode == 0, added
    assert added.stdout.startswith("silenced stream=~(cam+)+ until ")


def test_status_reports_a_stored_silence_re2_cannot_read(tmp_path: Path) -> None:
    """A silence stored before RE2 (with a lookahead) makes ``status`` warn, not crash."""
    with StateStore(tmp_path / "state.db") as store:
        now = time.time()
        store.add_silence(["stream=~(?!test).*"], now, now + 3600, "me", "old", now)
    run = subprocess.run(
        [sys.executable, "-m", "omealert", "status", "--state", "state.db"],
        cwd=tmp_path,
        env=bare_env(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run
    assert "Traceback" not in run.stderr
    assert "matches nothing: invalid regex in matcher 'stream=~(?!test).*'" in run.stderr
