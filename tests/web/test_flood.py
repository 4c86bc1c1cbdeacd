"""A real ``omealert watch --listen`` flooded with idle connections while it polls OME.

The watcher runs as its own process with a hard open-file limit of ``NOFILE``: ~12
descriptors of its own, room for the 32 connections the listener admits and its accept
backlog, far less than the flood's 200. Before the listener was bounded, every flooding
connection held a descriptor for 5 s, the limit was hit, and a poll that needed a new
connection to OME failed as ``unreachable`` (and the log filled with accept errors).
"""

from __future__ import annotations

import os
import re
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from omealert.simulator import Simulator
from tests.helpers import wait_until

REPO = Path(__file__).resolve().parents[2]
TOKEN = "flood-token"
NOFILE = 96
FLOOD = 200


class WatchProcess:
    """``omealert watch`` with a given RLIMIT_NOFILE, its stderr in a file, stopped by pid."""

    def __init__(
        self,
        workdir: Path,
        sim: Simulator,
        nofile: tuple[int, int],
        *,
        extra: str = "",
        interval: str = "200ms",
    ) -> None:
        config = workdir / "omealert.yaml"
        config.write_text(
            f"servers:\n  - name: origin\n    url: {sim.url}\n    access_token: {TOKEN}\n"
            f"    timeout: 2s\ninterval: {interval}\nrules:\n  - name: stalled\n"
            "    when: lastRecvTime stale > 30s\n" + extra
        )
        self.err_path = workdir / "watch.stderr"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)}
        args = [sys.executable, "-m", "omealert", "watch", "-c", str(config)]
        args += ["--state", str(workdir / "state.db"), "--listen", "127.0.0.1:0"]

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

        with self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                args, env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                preexec_fn=limit,
            )  # fmt: skip
        found = wait_until(lambda: "serving /metrics" in self.stderr() or self.exited(), 30)
        m = re.search(
            r"serving /metrics and /healthz(?: and /ome/alert)? on [0-9.]+:(\d+)", self.stderr()
        )
        assert found and m is not None, self.stderr()
        self.port = int(m.group(1))

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            return str(reply.read().decode())

    def polls(self, text: str) -> float:
        """``omealert_polls_total`` of the one server (0 before its first poll)."""
        m = re.search(r'^omealert_polls_total\{server="origin"\} (\S+)$', text, re.MULTILINE)
        return 0.0 if m is None else float(m.group(1))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(access_token=TOKEN) as server:
        server.add_stream("default", "live", "cam1")
        yield server


@pytest.fixture
def watching(tmp_path: Path, sim: Simulator) -> Iterator[WatchProcess]:
    w = WatchProcess(tmp_path, sim, (NOFILE, NOFILE))
    try:
        yield w
    finally:
        w.stop()


def open_idle(port: int, n: int) -> list[socket.socket]:
    """``n`` connections to ``port`` that never send a byte (non-blocking connects)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    return socks


def answered(w: WatchProcess) -> bool:
    try:
        w.metrics()
    except OSError:
        return False
    return True


def test_an_idle_connection_flood_never_fails_a_poll(
    watching: WatchProcess, sim: Simulator
) -> None:
    """200 idle clients on the listener while the watcher polls: no poll fails, even one that
    must reconnect to OME, nothing is logged, and /metrics answers once the flood is cut."""
    w = watching
    assert wait_until(lambda: w.polls(w.metrics()) >= 1, 10), w.stderr()
    before = w.polls(w.metrics())
    flood = open_idle(w.port, FLOOD)
    try:
        time.sleep(0.5)
        sim.set_fault("drop", times=1)  # OME closes the pooled connection: the poll reconnects
        time.sleep(3.0)  # past the 2 s head deadline: the first 32 are cut, more get in
        assert not w.exited(), w.stderr()
    finally:
        for s in flood:
            s.close()
    assert wait_until(lambda: answered(w), 10), w.stderr()
    text = w.metrics()
    assert w.polls(text) >= before + 10
    assert "omealert_poll_errors_total{" not in text, text
    # a tick slowed by a busy machine may be logged; nothing else but INFO may be
    problems = [
        line
        for line in w.stderr().splitlines()
        if " INFO " not in line and "longer than the 0.20s interval" not in line
    ]
    assert problems == [], "\n".join(problems)
    assert "cannot be read" not in w.stderr()


def test_watch_raises_its_soft_open_file_limit_to_the_hard_one(
    tmp_path: Path, sim: Simulator
) -> None:
    """Started with a soft limit of 64 under a hard one of 512, the watcher runs with 512."""
    w = WatchProcess(tmp_path, sim, (64, 512))
    try:
        limits = Path(f"/proc/{w.proc.pid}/limits").read_text()
        row = next(line for line in limits.splitlines() if line.startswith("Max open files"))
        assert row.split()[3:5] == ["512", "512"], row
    finally:
        w.stop()
