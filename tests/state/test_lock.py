"""One evaluating process per state file: the second one is refused with a clear message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from omealert.errors import StateError
from omealert.state.lock import RunLock


def test_second_holder_is_refused_until_the_first_releases(tmp_path: Path) -> None:
    """A second lock on the same state file fails while the first is held, then works."""
    state = tmp_path / "state.db"
    first = RunLock(state)
    first.acquire()
    with pytest.raises(StateError, match="another omealert process"):
        RunLock(state).acquire()
    first.release()
    with RunLock(state):
        pass


def test_check_refuses_a_state_file_another_process_holds(tmp_path: Path) -> None:
    """`check --state` exits UNKNOWN when another process evaluates with that state file."""
    state = tmp_path / "state.db"
    config = tmp_path / "c.yaml"
    config.write_text(
        "servers: [{name: s, url: 'http://127.0.0.1:9'}]\n"
        "rules: [{name: r, when: webrtc publishers > 1}]\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from omealert.state.lock import RunLock; "
         f"l = RunLock({str(state)!r}); l.acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        done = subprocess.run(
            [sys.executable, "-m", "omealert", "check", "-c", str(config), "--state", str(state)],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    assert done.returncode == 3
    assert done.stdout.startswith("OMEALERT UNKNOWN - state database unusable:")
    assert "another omealert process" in done.stdout
