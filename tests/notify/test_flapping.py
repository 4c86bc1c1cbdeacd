"""Flapping end to end on simulated time: simulator → runner → outbox → a real webhook.

An alert toggled every tick pages a few times, then says ``[FLAPPING]`` once and nothing
more until its weighted share of changes falls under the low threshold, when one
``[FLAPPING ENDED]`` says how it stands (and a normal firing message follows if it
fires). The ticks at which that happens are checked against Icinga's formula written
out in the test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from omealert.cli.main import main
from omealert.clock import FakeClock
from omealert.config.load import load_config_text
from omealert.rules import Settings
from omealert.simulator import Simulator

from ..helpers import run_async
from ..receivers import HttpReceiver
from ..rig import RunnerRig

LIVE = ("default", "live")
CONFIG = """\
servers:
  - name: origin
    url: {sim}
    access_token: ome-access-token
interval: 10s
defaults:
  channels: [hook]
  repeat_interval: 1h
channels:
  hook:
    urls: ["json://127.0.0.1:{hook}/omealert"]
    format: text
rules:
  - name: no-viewers
    when: webrtc publishers < 1
"""
FIRING = "[FIRING] no-viewers on origin/default/live/cam1"
RESOLVED = "[RESOLVED] no-viewers on origin/default/live/cam1"
FLAPPING = "[FLAPPING] no-viewers on origin/default/live/cam1"
ENDED = "[FLAPPING ENDED] no-viewers on origin/default/live/cam1"


def icinga_share(changes: list[bool]) -> float:
    """Icinga 2's flapping percentage over the last 20 evaluations (oldest weighs 0.8)."""
    last = changes[-20:]
    last = [False] * (20 - len(last)) + last
    return sum(0.8 + 0.02 * i for i, c in enumerate(last) if c) / 20


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[RunnerRig]:
    clock = FakeClock()
    sim = Simulator(clock=clock.now)
    sim.start()
    hook = HttpReceiver()
    hook.start()
    sim.add_stream(*LIVE, "cam1", viewers={"webrtc": 5})
    try:
        yield RunnerRig(tmp_path, clock, sim, hook)
    finally:
        hook.stop()
        sim.stop()


def _settings(rig: RunnerRig, extra: str = "") -> Settings:
    text = CONFIG.format(sim=rig.sim.url, hook=rig.hook.port) + extra
    return load_config_text(text, "rig.yaml", env={})


async def _run(rig: RunnerRig, viewers: list[int]) -> list[list[str]]:
    """One tick per entry (viewers on cam1 during it); the titles each tick delivered."""
    per_tick = []
    for count in viewers:
        rig.sim.set_viewers(*LIVE, "cam1", "webrtc", count)
        before = len(rig.titles())
        await rig.tick()
        per_tick.append(rig.titles()[before:])
    return per_tick


def _expected(viewers: list[int]) -> tuple[int, int]:
    """Ticks at which Icinga's measure enters (> 30%) and then leaves (< 25%) flapping."""
    changes, firing, flapping = [], False, False
    start = end = -1
    for i, count in enumerate(viewers):
        now_firing = count < 1
        changes.append(now_firing != firing)
        firing = now_firing
        share = icinga_share(changes)
        if not flapping and share > 0.30:
            flapping, start = True, i
        elif flapping and share < 0.25:
            flapping, end = False, i
            break
    return start, end


@run_async
async def test_an_alert_toggling_every_tick_flaps_once_then_settles(rig: RunnerRig) -> None:
    """40 ticks: fire/resolve pages until the share passes 30%, one [FLAPPING], silence,
    then one [FLAPPING ENDED] (firing now) followed by a normal [FIRING]."""
    viewers = [0, 5] * 8 + [0] * 24  # toggles for 16 ticks, then stays firing
    rig.start_with(_settings(rig))
    try:
        per_tick = await _run(rig, viewers)
    finally:
        await rig.stop()
    start, end = _expected(viewers)
    assert 0 < start < 16 < end < 40
    flat = [t for tick in per_tick for t in tick]
    before = [t for tick in per_tick[:start] for t in tick]
    assert before == [FIRING, RESOLVED] * (start // 2) + [FIRING] * (start % 2)
    assert per_tick[start] == [FLAPPING]
    assert all(tick == [] for tick in per_tick[start + 1 : end])
    assert per_tick[end] == [ENDED, FIRING]
    assert all(tick == [] for tick in per_tick[end + 1 :])  # firing, no repeat due yet
    assert flat.count(FLAPPING) == flat.count(ENDED) == 1
    ended = rig.hook.json_bodies()[len(flat) - 2]
    assert "firing now" in str(ended["message"])


@run_async
async def test_flapping_that_ends_resolved_says_so_and_sends_no_resolve(rig: RunnerRig) -> None:
    """Toggling that stops with the alert quiet: [FLAPPING ENDED] says not firing, nothing else."""
    viewers = [0, 5] * 8 + [5] * 24
    rig.start_with(_settings(rig))
    try:
        per_tick = await _run(rig, viewers)
    finally:
        await rig.stop()
    start, end = _expected(viewers)
    assert per_tick[start] == [FLAPPING]
    assert per_tick[end] == [ENDED]
    assert all(t not in (FIRING, RESOLVED) for tick in per_tick[start:] for t in tick)
    body = str(rig.hook.json_bodies()[-1]["message"])
    assert "not firing now" in body


@run_async
async def test_flapping_off_keeps_every_page(rig: RunnerRig) -> None:
    """`flapping: false` on the rule: every fire and resolve is sent, no flap notice."""
    viewers = [0, 5] * 8
    text = CONFIG.format(sim=rig.sim.url, hook=rig.hook.port) + "    flapping: false\n"
    rig.start_with(load_config_text(text, "rig.yaml", env={}))
    try:
        per_tick = await _run(rig, viewers)
    finally:
        await rig.stop()
    assert [t for tick in per_tick for t in tick] == [FIRING, RESOLVED] * 8


@run_async
async def test_reconnects_alone_make_a_firing_alert_flap(rig: RunnerRig) -> None:
    """A stream that reconnects every tick (new createdTime) while its alert keeps firing
    flaps: one [FLAPPING]; once it stops reconnecting, [FLAPPING ENDED] and [FIRING]."""
    rig.sim.set_viewers(*LIVE, "cam1", "webrtc", 0)
    rig.start_with(_settings(rig))
    titles: list[list[str]] = []
    try:
        for i in range(40):
            if 1 <= i <= 12:  # the encoder reconnects between polls
                rig.sim.remove_stream(*LIVE, "cam1")
                rig.sim.add_stream(*LIVE, "cam1", viewers={"webrtc": 0})
            before = len(rig.titles())
            await rig.tick()
            titles.append(rig.titles()[before:])
    finally:
        await rig.stop()
    changes = [i <= 12 for i in range(40)]  # the first firing, then 12 reconnects
    start = next(i for i in range(40) if icinga_share(changes[: i + 1]) > 0.30)
    assert titles[0] == [FIRING]
    assert titles[start] == [FLAPPING]
    end = next(i for i in range(start, 40) if icinga_share(changes[: i + 1]) < 0.25)
    assert titles[end] == [ENDED, FIRING]
    others = [t for i, tick in enumerate(titles) if i not in (0, start, end) for t in tick]
    assert others == []


@run_async
async def test_flapping_survives_a_restart_and_status_shows_it(
    rig: RunnerRig, capsys: pytest.CaptureFixture[str]
) -> None:
    """A watcher restarted while an alert flaps keeps it flapping (no second [FLAPPING])
    and ends it on schedule; `status --format json` shows the share meanwhile."""
    viewers = [0, 5] * 8 + [0] * 24
    start, end = _expected(viewers)
    settings = _settings(rig)
    rig.start_with(settings)
    per_tick = await _run(rig, viewers[: start + 2])
    await rig.stop()
    assert main(["status", "--state", str(rig.tmp / "state.db"), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    flap = next(r["flapping"] for r in rows if r["target"] == "origin/default/live/cam1")
    assert flap["flapping"] is True and flap["share"] > 0.30 and flap["window"] == 20
    rig.start_with(settings)
    try:
        per_tick += await _run(rig, viewers[start + 2 :])
    finally:
        await rig.stop()
    flat = [t for tick in per_tick for t in tick]
    assert flat.count(FLAPPING) == 1
    assert per_tick[end] == [ENDED, FIRING]


@run_async
async def test_a_silenced_alert_flaps_without_a_word(rig: RunnerRig) -> None:
    """Under a silence neither [FLAPPING] nor [FLAPPING ENDED] is sent; once it settles
    firing after the silence ended, the normal [FIRING] goes out."""
    viewers = [0, 5] * 8 + [0] * 24
    start, end = _expected(viewers)
    rig.start_with(_settings(rig))
    assert rig.store is not None
    now = rig.clock.now()
    rig.store.add_silence(["stream=cam1"], now, now + 10 * (start + 3), "t", "swap", now)
    try:
        per_tick = await _run(rig, viewers)
    finally:
        await rig.stop()
    flat = [t for tick in per_tick for t in tick]
    assert FLAPPING not in flat and ENDED not in flat
    assert flat == [FIRING] and per_tick[end] == [FIRING]
