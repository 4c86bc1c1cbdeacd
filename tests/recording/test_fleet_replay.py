"""A recording of a fleet with pushes, records, queues and an edge replays the alerts a live
watcher raised over the same answers: same rules, same targets, same times."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path

from omealert.clock import FakeClock
from omealert.config.load import load_config_text
from omealert.engine.engine import Engine
from omealert.model import AlertState
from omealert.recording.record import record
from omealert.recording.replay import replay_polls
from omealert.runner import Runner
from omealert.simulator import Simulator

TOKEN = "ome-access-token"
START = 1_780_000_000.0
KEY, URL_KEY = "yt-KEY-rec-s3cr3t", "cdn-KEY-rec-s3cr3t"
APP = ("default", "app")
RULES = """\
rules:
  - name: push-not-pushing
    scope: push
    when: state != "pushing" and stream_live
    for: 10s
  - name: record-error
    scope: record
    when: state == "error"
  - name: queue-congested
    scope: queue
    when: threshold > 0 and size > threshold and inputPerSecond > 0
  - name: old-release
    scope: server
    when: version < "0.19.0"
  - name: relay-broken
    when: lastRecvTime stale > 5s and not origin.lastRecvTime stale > 5s
"""

Story = list[tuple[str, str, str, float]]


def config(origin: str, edge: str) -> str:
    return (
        f"servers:\n  - name: origin-1\n    url: {origin}\n    access_token: {TOKEN}\n"
        f"    role: origin\n  - name: edge-1\n    url: {edge}\n    access_token: {TOKEN}\n"
        f"    role: edge\n    origin: origin-1\ninterval: 5s\ndefaults:\n  channels: []\n{RULES}"
    )


def script(origin: Simulator, edge: Simulator, offset: float) -> None:
    """The same story for the live run and the recorded one, by offset from the start."""
    if offset == 0:
        origin.add_stream(*APP, "cam1")
        edge.relay_from(origin, *APP, "cam1")
        origin.start_push(*APP, "yt", "cam1", "rtmp://a.rtmp.youtube.com/live2",
                          stream_key=KEY, destination="refused")  # fmt: skip
        origin.start_push(*APP, "cdn", "cam1", f"rtmp://cdn.example.com/live/{URL_KEY}",
                          destination="refused")  # fmt: skip
        origin.start_record(*APP, "rec1", "cam1")
    if offset == 10:
        origin.fail_record(*APP, "rec1")
        origin.congest_queue(*APP, "cam1", items_per_s=400)
        edge.break_relay(*APP, "cam1")
    if offset == 25:
        origin.set_push_destination(*APP, "yt", "ok")
        origin.relieve_queue(*APP, "cam1")
        edge.remove_stream(*APP, "cam1")  # the edge gave up on it, as a real 0.18 does


def transitions_of(engine_steps: Story) -> Story:
    return sorted(engine_steps)


def live_run() -> Story:
    clock = FakeClock(START)
    seen: Story = []
    with (
        Simulator(clock=clock.now, access_token=TOKEN) as origin,
        Simulator(clock=clock.now, access_token=TOKEN) as edge,
    ):
        settings = load_config_text(config(origin.url, edge.url), "fleet.yaml", env={})

        async def run() -> None:
            runner = Runner(settings, clock=clock, notify=False)
            try:
                for _ in range(8):  # 0 … 35 s, as the recording's rounds
                    script(origin, edge, clock.now() - START)
                    report = await runner.tick()
                    for tr in report.transitions:
                        if tr.to_state is not AlertState.INACTIVE:
                            seen.append((tr.instance.rule, tr.instance.target.key,
                                         tr.to_state.value, report.at - START))  # fmt: skip
                    clock.advance(5)
            finally:
                await runner.aclose()

        asyncio.run(run())
    return seen


def recorded_run(out: Path) -> Story:
    clock = FakeClock(START)
    with (
        Simulator(clock=clock.now, access_token=TOKEN) as origin,
        Simulator(clock=clock.now, access_token=TOKEN) as edge,
    ):
        settings = load_config_text(config(origin.url, edge.url), "fleet.yaml", env={})
        asyncio.run(
            record(settings, out, clock=clock, duration_s=35,
                   before_poll=lambda now: script(origin, edge, now - START))
        )  # fmt: skip
    engine = Engine(settings)
    seen: Story = []

    def on_tick(at: float, polls: list, now: float) -> None:  # type: ignore[type-arg]
        for tr in engine.step(polls, now):
            if tr.to_state is not AlertState.INACTIVE:
                seen.append((tr.instance.rule, tr.instance.target.key, tr.to_state.value,
                             now - START))  # fmt: skip

    asyncio.run(replay_polls(settings, out, on_tick))
    return seen


def test_a_recorded_fleet_replays_the_alerts_the_live_watcher_raised(tmp_path: Path) -> None:
    """Pushes (a key in streamKey, one inside the url), a failing record, a congested queue,
    the release and a broken relay: the replay raises the live run's transitions, on the
    same target keys (a push's key digest survives the scrubbing) at the same offsets, and
    the recording holds no stream key."""
    out = tmp_path / "fleet.jsonl.gz"
    live, replayed = live_run(), recorded_run(out)
    rules = {rule for rule, *_ in live}
    assert rules == {"push-not-pushing", "record-error", "queue-congested", "old-release",
                     "relay-broken"}  # fmt: skip
    pushes = {key for rule, key, *_ in live if rule == "push-not-pushing"}
    assert len(pushes) == 2
    assert sorted(replayed) == sorted(live)
    text = gzip.decompress(out.read_bytes()).decode()
    assert KEY not in text and URL_KEY not in text
    paths = {json.loads(line).get("path") for line in text.splitlines()}
    assert {"/v1/version", "/v1/stats/current/internals/queues"} <= paths
