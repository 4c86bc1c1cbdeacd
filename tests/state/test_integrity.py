"""The full integrity check runs once, when a watcher starts, and only the process holding the
run lock ever moves a damaged state file aside."""

from __future__ import annotations

import io
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from omealert.cli.main import main
from omealert.simulator import Simulator
from omealert.state.lock import RunLock
from omealert.state.store import StateStore
from tests.helpers import bare_env, wait_until

GARBAGE = b"this is not a database\n" * 400


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every SQL statement any state connection opened in this test runs, in order."""
    seen: list[str] = []
    connect: Callable[..., sqlite3.Connection] = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(seen.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    yield seen


def quick_checks(statements: list[str]) -> int:
    return sum("quick_check" in s.lower() for s in statements)


def cli(*argv: str) -> str:
    out = io.StringIO()
    assert main(list(argv), out=out) == 0, out.getvalue()
    return out.getvalue()


def test_quick_check_runs_at_a_watchers_start_and_never_for_a_cli_command(
    tmp_path: Path, statements: list[str]
) -> None:
    """status, history and every silence command skip the full-file check; the lock holder
    runs it exactly once when it opens the file."""
    db = str(tmp_path / "state.db")
    StateStore(db).close()
    statements.clear()
    cli("status", "--state", db)
    cli("history", "--state", db)
    sid = cli("silence", "add", "--state", db, "-m", "stream=cam1", "--for", "1h").split()[-1]
    cli("silence", "list", "--state", db)
    cli("silence", "expire", "--state", db, sid)
    assert statements and quick_checks(statements) == 0
    with RunLock(db) as lock, StateStore(db, run_lock=lock) as store:
        store.save_tick(meta={"k": "v"})
        store.load_alerts()
    assert quick_checks(statements) == 1


def test_without_the_lock_a_garbage_file_is_still_moved_aside(tmp_path: Path) -> None:
    """With no watcher running, a CLI command that finds garbage takes the lock, moves the file
    aside and starts fresh, as before."""
    db = tmp_path / "state.db"
    db.write_bytes(GARBAGE)
    with StateStore(db) as store:
        assert store.moved_aside is not None and store.moved_aside.read_bytes() == GARBAGE
        assert store.load_alerts() == []
    with RunLock(db):  # and it let go of the lock again
        pass


def watch_config(tmp: Path, sim: Simulator) -> Path:
    path = tmp / "omealert.yaml"
    path.write_text(
        f"servers:\n  - name: origin\n    url: {sim.url}\ninterval: 200ms\n"
        "rules:\n  - name: r\n    when: webrtc publishers > 100\n"
    )
    return path


def run(tmp: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omealert", *argv],
        capture_output=True, text=True, timeout=60, cwd=tmp, env=bare_env(tmp),
    )  # fmt: skip


def test_a_cli_command_never_moves_aside_a_file_a_running_watcher_has_open(
    tmp_path: Path,
) -> None:
    """A real watcher holds the file and a table vanishes from it: status and silence refuse
    with a clear error and leave the watcher's file in place; once it is gone, it is moved."""
    db = tmp_path / "state.db"
    err = tmp_path / "watch.stderr"
    with Simulator() as sim, err.open("wb") as err_file:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "omealert", "watch", "-c", str(watch_config(tmp_path, sim)),
             "--state", str(db)],
            cwd=tmp_path, env=bare_env(tmp_path), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=err_file,
        )  # fmt: skip
        try:
            assert wait_until(lambda: "server(s) with" in err.read_text(), 30), err.read_text()
            with closing(sqlite3.connect(db, timeout=10, isolation_level=None)) as conn:
                conn.execute("DROP TABLE silences")  # damaged under the watcher
            before = db.stat().st_ino
            for argv in (["status"], ["silence", "add", "-m", "stream=cam1", "--for", "1h"]):
                done = run(tmp_path, *argv, "--state", str(db))
                assert done.returncode == 1, done
                assert done.stderr.startswith(
                    f"omealert: state database {db} is unreadable (table silences lacks id, "
                ), done.stderr
                assert f"(pid {watcher.pid}) has it open: not moving it aside" in done.stderr
                assert "Traceback" not in done.stderr
                assert db.stat().st_ino == before
                assert not list(tmp_path.glob("state.db.corrupt-*"))
        finally:
            watcher.send_signal(signal.SIGTERM)
            try:
                watcher.wait(15)
            finally:
                if watcher.poll() is None:
                    watcher.kill()
                    watcher.wait(10)
    done = run(tmp_path, "status", "--state", str(db))
    assert done.returncode == 0, done
    (moved,) = tmp_path.glob("state.db.corrupt-*")
    assert moved.stat().st_ino == before
