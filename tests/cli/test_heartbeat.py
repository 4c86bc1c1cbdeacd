"""The dead man's switch: a ping URL requested per tick, and the watchdog alert in Alertmanager.

Real ``omealert watch`` processes against the simulator; the ping service is an
``HttpReceiver``, the Alertmanager is Debian's binary on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from omealert.simulator import Simulator
from tests.alertmanager import AlertmanagerProc, binary
from tests.cli.test_watch import Watcher, write
from tests.helpers import wait_until
from tests.receivers import HttpReceiver

PING_SECRET = "ping-uuid-5b0d6a1e"


def config(sim: Simulator, heartbeat: str, extra: str = "") -> str:
    return f"""\
servers:
  - name: origin
    url: {sim.url}
    access_token: {sim.access_token}
    timeout: 1s
interval: 200ms
resend_delay: 500ms
ome_api_down:
  enabled: false
heartbeat:
{heartbeat}{extra}rules:
  - name: stalled
    when: lastRecvTime stale > 1s
"""


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as server:
        server.add_stream("default", "live", "cam1")
        yield server


@pytest.fixture
def pings() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def watchers() -> Iterator[list[Watcher]]:
    started: list[Watcher] = []
    yield started
    for w in started:
        w.kill()
        assert PING_SECRET not in w.stdout() + w.stderr()
        assert "Traceback" not in w.stderr(), w.stderr()


def start(tmp_path: Path, text: str, started: list[Watcher]) -> Watcher:
    path = write(tmp_path / "omealert.yaml", text)
    w = Watcher(tmp_path, path, tmp_path / "state.db", "watch", [])
    started.append(w)
    return w.wait_ready()


def paths(receiver: HttpReceiver) -> list[str]:
    return [path for _, path, _, _ in receiver.requests]


def test_every_tick_pings_and_a_tick_that_reads_no_server_pings_fail(
    tmp_path: Path, sim: Simulator, pings: HttpReceiver, watchers: list[Watcher]
) -> None:
    """Completed ticks GET the URL; while every server fails they GET ``url/fail`` instead."""
    url = f"{pings.url}/ping/{PING_SECRET}"
    w = start(tmp_path, config(sim, f"  url: {url}\n"), watchers)
    assert wait_until(lambda: len(pings.requests) >= 3), w.stderr()
    assert set(paths(pings)) == {f"/ping/{PING_SECRET}"}
    assert {method for method, _, _, _ in pings.requests} == {"GET"}
    sim.set_fault("500")
    assert wait_until(lambda: f"/ping/{PING_SECRET}/fail" in paths(pings)), w.stderr()
    sim.clear_faults()
    n = len(pings.requests)
    assert wait_until(lambda: paths(pings)[n:].count(f"/ping/{PING_SECRET}") >= 2), w.stderr()


def test_a_ping_service_that_hangs_never_delays_a_tick(
    tmp_path: Path, sim: Simulator, pings: HttpReceiver, watchers: list[Watcher]
) -> None:
    """While one ping hangs, ticks go on and their pings are skipped, not queued; it is
    logged once, without the URL."""
    pings.set_delay(30)
    text = config(sim, f"  url: {pings.url}/ping/{PING_SECRET}\n  method: POST\n  timeout: 4s\n")
    w = start(tmp_path, text, watchers)
    w.wait_ticks(5)  # 5 ticks of 200 ms while the first ping is held for 4 s
    assert len(pings.requests) == 1
    assert pings.requests[0][0] == "POST"
    assert (w.metric("omealert_heartbeat_pings_total", result="skipped") or 0) >= 3
    w.wait_log("heartbeat ping failed: timed out")
    pings.release()
    assert wait_until(
        lambda: (w.metric("omealert_heartbeat_pings_total", result="sent") or 0) >= 1
    ), w.stderr()
    w.wait_log("heartbeat URL answers again")
    assert w.count("heartbeat ping failed") == 1


def test_the_watchdog_fires_in_alertmanager_and_resolves_when_the_watcher_dies(
    tmp_path: Path, sim: Simulator, pings: HttpReceiver, watchers: list[Watcher]
) -> None:
    """``omealert-watchdog`` stays firing while the watcher runs; SIGKILL it and
    Alertmanager resolves it by itself once its ``endsAt`` passes."""
    binary()
    am = AlertmanagerProc(tmp_path, "am", pings.url + "/am")
    try:
        am.wait_ready()
        extra = f"alertmanagers:\n  - url: {am.url}\n"
        w = start(tmp_path, config(sim, "  watchdog: true\n", extra), watchers)
        assert pings.wait_for(1, 15), w.stderr()
        (body,) = pings.json_bodies()
        assert body["status"] == "firing"
        assert [a["labels"]["alertname"] for a in body["alerts"]] == ["omealert-watchdog"]
        w.kill()
        assert pings.wait_for(2, 15), am.log()
        assert pings.json_bodies()[1]["status"] == "resolved"
    finally:
        am.stop()
