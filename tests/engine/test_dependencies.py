"""Server dependencies on simulated time: one simulator per server, a runner, a webhook.

An origin's outage (its ``ome-api-down``, or a stream stalled on it) holds the same
stream's alerts on the edges that depend on it: the origin's message counts them, they
send nothing of their own unless they still fire ``dependency_grace`` after the origin
recovered, and a resolve owed for one that was notified before the hold is still sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from omealert.cli.check import format_json, verdict
from omealert.cli.main import main
from omealert.clock import FakeClock
from omealert.config.load import load_config_text
from omealert.engine.dependencies import ancestors
from omealert.rules import Settings
from omealert.runner import TickReport
from omealert.simulator import Simulator

from ..helpers import run_async
from ..receivers import HttpReceiver
from ..rig import RunnerRig

LIVE = ("default", "live")
SERVERS = ("origin-1", "edge-1", "edge-2")
CONFIG = """\
servers:
  - {{name: origin-1, url: "{origin-1}", access_token: ome-access-token}}
  - {{name: edge-1, url: "{edge-1}", access_token: ome-access-token, depends_on: [origin-1]}}
  - {{name: edge-2, url: "{edge-2}", access_token: ome-access-token, depends_on: [origin-1]}}
interval: 10s
dependency_grace: 2m
ome_api_down:
  for: 40s
defaults:
  channels: [hook]
  repeat_interval: 1h
channels:
  hook:
    urls: ["json://127.0.0.1:{hook}/omealert"]
    format: text
rules:
  - name: stalled
    when: lastRecvTime stale > 30s
"""


class Rig(RunnerRig):
    """The shared rig with one simulator per server (``sims``); ``sim`` is the origin."""

    sims: dict[str, Simulator]

    def settings(self) -> Settings:
        urls = {name: sim.url for name, sim in self.sims.items()}
        return load_config_text(CONFIG.format(hook=self.hook.port, **urls), "rig.yaml", env={})

    def bodies(self) -> list[tuple[str, str]]:
        return [(str(b["title"]), str(b["message"])) for b in self.hook.json_bodies()]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    clock = FakeClock()
    sims = {name: Simulator(clock=clock.now) for name in SERVERS}
    hook = HttpReceiver()
    hook.start()
    for sim in sims.values():
        sim.start()
        sim.add_stream(*LIVE, "cam1", viewers={"webrtc": 5})
        sim.add_stream(*LIVE, "cam2", viewers={"webrtc": 5})
    r = Rig(tmp_path, clock, sims["origin-1"], hook)
    r.sims = sims
    try:
        yield r
    finally:
        hook.stop()
        for sim in sims.values():
            sim.stop()


async def _ticks(rig: Rig, n: int) -> list[str]:
    before = len(rig.titles())
    for _ in range(n):
        await rig.tick()
    return rig.titles()[before:]


def _status(rig: Rig, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    capsys.readouterr()
    assert main(["status", "--state", str(rig.tmp / "state.db"), "--format", "json"]) == 0
    return {f"{r['rule']} {r['target']}": r for r in json.loads(capsys.readouterr().out)}


def test_ancestors_are_transitive() -> None:
    """An edge behind a mid-tier behind an origin depends on both."""
    found = ancestors({"origin": (), "mid": ("origin",), "edge": ("mid",)})
    assert found == {"origin": frozenset(), "mid": {"origin"}, "edge": {"mid", "origin"}}


@run_async
async def test_origin_down_holds_edge_alerts_and_releases_them_after_grace(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    """The origin's API fails and both edges' cam1 stalls: one origin message counting the
    two held alerts; edge-2 recovers inside the grace and never pages, edge-1 is still
    stalled 2m after the origin recovered and pages then, once."""
    rig.start_with(rig.settings())
    try:
        assert await _ticks(rig, 1) == []
        rig.sims["origin-1"].set_fault("500")
        for edge in ("edge-1", "edge-2"):
            rig.sims[edge].stall(*LIVE, "cam1")
        titles = await _ticks(rig, 6)
        assert titles == ["[FIRING] ome-api-down on origin-1"]
        body = rig.bodies()[-1][1]
        assert "also affects edge-1, edge-2: 2 alerts held" in body
        rows = _status(rig, capsys)
        held = rows["stalled edge-1/default/live/cam1"]["held"]
        assert held == {"by": [{"rule": "ome-api-down", "target": "origin-1"}], "until": None}
        holds = rows["ome-api-down origin-1"]["holds"]
        assert holds == {"held": 2, "servers": ["edge-1", "edge-2"], "ended_at": None}
        assert main(["status", "--state", str(rig.tmp / "state.db")]) == 0
        table = capsys.readouterr().out
        assert "(held by origin-1 ome-api-down)" in table
        assert "(holds 2 alert(s) on edge-1, edge-2)" in table
        assert rig.runner is not None
        report = TickReport(rig.clock.now(), [], [])  # check's verdict on this engine
        doc = json.loads(format_json(verdict(rig.runner, report, include_pending=False)))
        alerts = {a["labels"]["server"]: a for a in doc["alerts"]}
        assert set(alerts) == {"edge-1", "edge-2"}  # check lists ome-api-down as an error
        assert alerts["edge-2"]["held"] == held and alerts["edge-2"]["flapping"] is None

        rig.sims["origin-1"].clear_faults()
        titles = await _ticks(rig, 1)
        assert titles == ["[RESOLVED] ome-api-down on origin-1"]
        assert "also affected edge-1, edge-2: 2 alerts held" in rig.bodies()[-1][1]
        recovered_at = rig.clock.now() - 10.0
        rows = _status(rig, capsys)
        assert rows["stalled edge-2/default/live/cam1"]["held"]["until"] == recovered_at + 120.0

        rig.sims["edge-2"].resume(*LIVE, "cam1")
        titles = await _ticks(rig, 11)  # the grace: 2m after the recovery is tick 12
        assert titles == []
        titles = await _ticks(rig, 1)
        assert titles == ["[FIRING] stalled on edge-1/default/live/cam1"]
        rig.sims["edge-1"].resume(*LIVE, "cam1")
        titles = await _ticks(rig, 2)
        assert titles == ["[RESOLVED] stalled on edge-1/default/live/cam1"]
    finally:
        await rig.stop()


@run_async
async def test_a_stalled_stream_on_the_origin_holds_only_that_stream_on_edges(rig: Rig) -> None:
    """cam1 stalls everywhere and cam2 only on edge-1: the origin's cam1 page counts the
    edges' cam1 alerts; edge-1's cam2 has no cause upstream and pages on its own."""
    rig.start_with(rig.settings())
    try:
        await _ticks(rig, 1)
        for sim in rig.sims.values():
            sim.stall(*LIVE, "cam1")
        rig.sims["edge-1"].stall(*LIVE, "cam2")
        titles = await _ticks(rig, 5)
        assert titles == ["[FIRING:2] stalled (2 targets)"]  # one rule, one tick: one message
        body = rig.bodies()[-1][1]
        lines = [ln for ln in body.splitlines() if ln.startswith("- ")]
        assert len(lines) == 2
        origin = next(ln for ln in lines if "origin-1/default/live/cam1" in ln)
        assert "also affects edge-1, edge-2: 2 alerts held" in origin
        edge = next(ln for ln in lines if "edge-1/default/live/cam2" in ln)
        assert "also affects" not in edge
    finally:
        await rig.stop()


@run_async
async def test_a_resolve_owed_before_the_hold_is_still_sent(rig: Rig) -> None:
    """edge-1's cam1 paged before its origin failed; held meanwhile, its resolve still goes."""
    rig.start_with(rig.settings())
    try:
        await _ticks(rig, 1)
        rig.sims["edge-1"].stall(*LIVE, "cam1")
        assert await _ticks(rig, 5) == ["[FIRING] stalled on edge-1/default/live/cam1"]
        rig.sims["origin-1"].set_fault("500")
        assert await _ticks(rig, 6) == ["[FIRING] ome-api-down on origin-1"]
        assert "also affects edge-1: 1 alert held" in rig.bodies()[-1][1]
        rig.sims["edge-1"].resume(*LIVE, "cam1")
        assert await _ticks(rig, 2) == ["[RESOLVED] stalled on edge-1/default/live/cam1"]
    finally:
        await rig.stop()


@run_async
async def test_holds_survive_a_restart_inside_the_grace(rig: Rig) -> None:
    """A watcher restarted 30s after the origin recovered keeps edge-1 held until the grace
    ends, rather than paging it at once."""
    settings = rig.settings()
    rig.start_with(settings)
    await _ticks(rig, 1)
    rig.sims["origin-1"].set_fault("500")
    rig.sims["edge-1"].stall(*LIVE, "cam1")
    await _ticks(rig, 6)
    rig.sims["origin-1"].clear_faults()
    await _ticks(rig, 3)
    await rig.stop()
    rig.start_with(settings)
    try:
        assert await _ticks(rig, 9) == []
        assert await _ticks(rig, 1) == ["[FIRING] stalled on edge-1/default/live/cam1"]
    finally:
        await rig.stop()
