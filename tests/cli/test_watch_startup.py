"""Signals that reach ``omealert watch`` while it starts: none may kill it or be lost.

A real ``python -m omealert watch`` process runs against the simulator, with the helpers of
``tests/test_watch.py`` (which kill every process by its pid and audit its output for
tracebacks and secrets). A signal is sent only once ``/proc/PID/status`` shows that the
process catches SIGHUP, the last of the start-up handlers installed, and the test checks
that start-up (its "watching ..." line) had not finished when it was sent.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from omealert.simulator import Simulator
from tests.cli import test_watch
from tests.cli.test_watch import StartWatcher, Watcher, config_text, write
from tests.helpers import wait_until
from tests.receivers import HttpReceiver, SmtpSink

# test_watch's fixtures, under the names the tests below ask for
sim, http, smtp, start, cfg_path = (
    test_watch.sim,
    test_watch.http,
    test_watch.smtp,
    test_watch.start,
    test_watch.cfg_path,
)

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="needs /proc to see a process's handlers"
)

#: What ``watch`` logs once start-up is over, just before its first tick.
STARTED = " server(s) with "


def catches(pid: int, sig: signal.Signals) -> bool:
    """Whether process ``pid`` has a handler for ``sig`` (the SigCgt mask of /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


def launch_and_wait_for_handlers(start: StartWatcher, config: Path) -> Watcher:
    w = start(config, ready=False)
    ok = wait_until(lambda: catches(w.proc.pid, signal.SIGHUP) or w.proc.poll() is not None)
    assert ok and w.proc.poll() is None, w.stderr()
    return w


def test_sighups_all_through_start_up_neither_kill_nor_stop_the_watcher(
    start: StartWatcher, sim: Simulator, http: HttpReceiver, smtp: SmtpSink, cfg_path: Path
) -> None:
    """SIGHUP sent again and again from the first handler until start-up is done: the
    watcher starts, polls, and still exits 0 on SIGTERM."""
    w = launch_and_wait_for_handlers(start, write(cfg_path, config_text(sim, http, smtp)))
    sent_early: list[bool] = []

    def hang_up_until_started() -> bool:
        if w.proc.poll() is not None:
            return True
        sent_early.append(STARTED not in w.stderr())
        w.signal(signal.SIGHUP)
        return STARTED in w.stderr()

    assert wait_until(hang_up_until_started, timeout=30)
    assert w.proc.poll() is None, f"exit {w.proc.poll()}:\n{w.stderr()}"
    assert sent_early[0], "start-up was over before the first SIGHUP"
    w.wait_ready()
    w.wait_ticks(2)
    assert w.proc.poll() is None
    assert sim.request_count() > 0
    w.signal(signal.SIGTERM)
    assert w.wait_exit() == 0
    assert w.count(" ERROR ") == 0
    assert w.stderr().rstrip().endswith("stopped")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_stop_during_start_up_exits_0_after_start_up_without_polling(
    start: StartWatcher,
    sim: Simulator,
    http: HttpReceiver,
    smtp: SmtpSink,
    cfg_path: Path,
    sig: signal.Signals,
) -> None:
    """SIGTERM or SIGINT before start-up is done: start-up completes, nothing is polled,
    and the process exits 0 saying why."""
    w = launch_and_wait_for_handlers(start, write(cfg_path, config_text(sim, http, smtp)))
    assert STARTED not in w.stderr()
    w.signal(sig)
    assert w.wait_exit() == 0, w.stderr()
    assert w.count("stop requested during start-up") == 1
    assert w.count(STARTED) == 1
    assert w.stderr().rstrip().endswith("stopped")
    assert sim.request_count() == 0
    assert http.requests == []
