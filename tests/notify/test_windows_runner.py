"""A nightly mute window across midnight and the spring DST change, end to end on a fake
clock: the runner polls the simulator and delivers to a loopback webhook."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from omealert.clock import FakeClock
from omealert.config.load import load_config_text
from omealert.simulator import Simulator
from tests.helpers import run_async
from tests.receivers import HttpReceiver
from tests.rig import RunnerRig

LIVE = ("default", "live")
CONFIG = """\
servers:
  - name: origin
    url: {sim}
    access_token: ome-access-token
interval: 5m
channels:
  hook:
    urls: ["json://127.0.0.1:{hook}/hook"]
    format: text
    title: "[{{{{ status | upper }}}}] {{{{ rule }}}} on {{{{ target }}}}"
    mute_time_intervals: [nightly]
time_intervals:
  - name: nightly   # 23:00 to 03:30 Berlin time: across midnight, so two intervals
    time_intervals:
      - times: [{{start_time: "23:00", end_time: "24:00"}}]
        location: Europe/Berlin
      - times: [{{start_time: "00:00", end_time: "03:30"}}]
        location: Europe/Berlin
rules:
  - name: stalled
    when: lastRecvTime stale > 30s
    repeat_interval: 1h
    channels: [hook]
"""


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def hhmm(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M")


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[RunnerRig]:
    # 2026-03-28 21:00Z is 22:00 CET; Berlin moves to CEST at 02:00 local on the 29th, so
    # the window runs 22:00Z to 01:30Z: three and a half real hours instead of four and a half
    clock = FakeClock(utc("2026-03-28T21:00:00"))
    with Simulator(clock=clock.now) as sim, HttpReceiver() as hook:
        for name in ("cam1", "cam2", "cam3"):
            sim.add_stream(*LIVE, name)
        yield RunnerRig(tmp_path, clock, sim, hook)


@run_async
async def test_nightly_window_across_midnight_and_dst(rig: RunnerRig) -> None:
    """Told before the window: no repeat at its end, the next on schedule; a resolve inside
    is sent and says why; an alert begun inside is told once, when the window ends."""
    settings = load_config_text(
        CONFIG.format(sim=rig.sim.url, hook=rig.hook.port), "night.yaml", env={}
    )
    rig.start_with(settings)
    script = {
        "21:10": lambda: rig.sim.stall(*LIVE, "cam1"),
        "21:20": lambda: rig.sim.stall(*LIVE, "cam3"),
        "23:00": lambda: rig.sim.stall(*LIVE, "cam2"),  # midnight in Berlin, inside
        "23:40": lambda: rig.sim.resume(*LIVE, "cam3"),
    }
    seen: list[tuple[str, str]] = []
    while rig.clock.now() <= utc("2026-03-29T02:20:00"):
        action = script.get(hhmm(rig.clock.now()))
        if action is not None:
            action()
        now = rig.clock.now()
        before = len(rig.hook.json_bodies())
        await rig.tick(300)
        seen += [(hhmm(now), str(b["title"])) for b in rig.hook.json_bodies()[before:]]
    await rig.stop()
    cam = "stalled on origin/default/live/"
    assert seen == [
        ("21:15", f"[FIRING] {cam}cam1"),
        ("21:25", f"[FIRING] {cam}cam3"),
        ("23:40", f"[RESOLVED] {cam}cam3"),
        ("01:30", f"[FIRING] {cam}cam2"),  # 03:30 CEST: the window's end, once
        ("02:15", f"[FIRING] {cam}cam1"),  # its own schedule: 21:15 + 5h; not 01:30
    ]
    resolve = rig.hook.json_bodies()[2]["message"]
    assert "inside mute time interval 'nightly'" in resolve
