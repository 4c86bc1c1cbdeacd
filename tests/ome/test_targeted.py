"""Targeted polls over real HTTP: the simulator as OME, a runner on a fake clock asking for
the streams an event would name, and what the poll may and may not judge."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from omealert.clock import FakeClock
from omealert.metrics import Metrics
from omealert.model import AlertState, Target
from omealert.rules import ServerSpec
from omealert.runner import Runner
from omealert.simulator import Simulator
from tests.helpers import rule, settings

CAM1 = Target("origin", "default", "live", "cam1")


@contextlib.asynccontextmanager
async def running(sim: Simulator, clock: FakeClock) -> AsyncIterator[Runner]:
    """A runner with a stream rule (with ``for``), an app rule, and an ``absent`` rule over
    two apps, and one reading history, on ``sim``."""
    server = ServerSpec("origin", sim.url, access_token=sim.access_token)
    rules = (
        rule("stalled", "lastRecvTime stale > 30s", for_s=30.0, match="default/*/*"),
        rule("quiet", "rate(totalBytesIn) < 0", match="default/*/*"),
        rule("few", "streams < 2", scope="app", match="default/live"),
        rule("gone", "absent", match=("default/live/cam2", "default/other/cam3")),
    )
    runner = Runner(settings(*rules, servers=(server,)), clock=clock, metrics=Metrics())
    try:
        yield runner
    finally:
        await runner.aclose()


def states(runner: Runner) -> dict[tuple[str, str], str]:
    return {(i.rule, i.target.key): i.state.value for i in runner.engine.instances()}


async def targeted(runner: Runner, *streams: Target) -> None:
    await runner.tick(only=frozenset(), streams={"origin": streams})


def test_a_targeted_poll_reads_and_judges_only_its_stream_and_app() -> None:
    """Only the app's listing and the stream's stats are requested; a stream of another app,
    stalled or deleted just the same, keeps its state until the tick; ``for`` counts from
    the targeted poll that started it."""

    async def body() -> None:
        clock = FakeClock()
        with Simulator(clock=clock.now) as sim:
            for app, name in (("live", "cam1"), ("live", "cam2"), ("other", "cam3")):
                sim.add_stream("default", app, name)
            async with running(sim, clock) as runner:
                await runner.tick()
                assert states(runner) == {}
                sim.stall("default", "live", "cam1")
                sim.stall("default", "other", "cam3")
                clock.advance(40)
                sim.reset_requests()
                await targeted(runner, CAM1)
                paths = sorted(p for _, p in sim.requests)
                assert paths == [
                    "/v1/stats/current/vhosts/default/apps/live/streams/cam1",
                    "/v1/vhosts/default/apps/live/streams",
                ]
                assert states(runner) == {("stalled", "origin/default/live/cam1"): "pending"}
                assert runner.metrics is not None and runner.metrics.ticks == 1
                sim.remove_stream("default", "live", "cam2")
                sim.remove_stream("default", "other", "cam3")
                clock.advance(10)
                await targeted(runner, CAM1)
                assert states(runner) == {
                    ("stalled", "origin/default/live/cam1"): "pending",
                    ("gone", "origin/default/live/cam2"): "firing",
                    ("few", "origin/default/live"): "firing",
                }
                clock.advance(25)  # 35 s after the targeted poll that saw the stall
                await runner.tick()
                assert states(runner) == {
                    ("stalled", "origin/default/live/cam1"): "firing",
                    ("gone", "origin/default/live/cam2"): "firing",
                    ("gone", "origin/default/other/cam3"): "firing",
                    ("few", "origin/default/live"): "firing",
                }

    asyncio.run(asyncio.wait_for(body(), 30))


def test_a_deleted_stream_resolves_on_the_targeted_poll_and_a_stranger_costs_nothing() -> None:
    """A firing stream that the app's fresh listing no longer shows resolves (the listing, not
    the event, says so); a stream in an app no rule reads is not even requested."""

    async def body() -> None:
        clock = FakeClock()
        with Simulator(clock=clock.now) as sim:
            sim.add_stream("default", "live", "cam1")
            sim.add_stream("default", "live", "cam2")
            sim.add_stream("scratch", "app", "x")
            async with running(sim, clock) as runner:
                await runner.tick()
                sim.stall("default", "live", "cam1")
                clock.advance(40)
                await runner.tick()
                clock.advance(40)
                await runner.tick()
                assert states(runner)[("stalled", CAM1.key)] == "firing"
                sim.remove_stream("default", "live", "cam1")
                clock.advance(1)
                sim.reset_requests()
                await targeted(runner, Target("origin", "scratch", "app", "x"))
                assert sim.requests == []
                report = await runner.tick(only=frozenset(), streams={"origin": (CAM1,)})
                assert {(t.instance.rule, t.to_state) for t in report.transitions} == {
                    ("stalled", AlertState.RESOLVED),
                    ("few", AlertState.FIRING),  # one stream left in default/live
                }

    asyncio.run(asyncio.wait_for(body(), 30))


def test_a_failed_targeted_poll_changes_nothing_not_even_api_down() -> None:
    """OME not answering a targeted poll is for the tick to judge: no ome-api-down, no
    resolve; the next tick fires ome-api-down as usual."""

    async def body() -> None:
        clock = FakeClock()
        sim = Simulator(clock=clock.now)
        sim.start()
        sim.add_stream("default", "live", "cam1")
        async with running(sim, clock) as runner:
            await runner.tick()
            sim.stall("default", "live", "cam1")
            clock.advance(40)
            await runner.tick()
            before = states(runner)
            sim.stop()
            clock.advance(40)
            report = await runner.tick(only=frozenset(), streams={"origin": (CAM1,)})
            assert report.polls[0].error is not None and report.transitions == []
            assert states(runner) == before
            metrics = runner.metrics
            assert metrics is not None
            assert metrics.value("omealert_event_polls_total", server="origin", kind="stream") == 1
            assert metrics.value("omealert_poll_errors_total", server="origin", kind="unreachable")
            await runner.tick()
            assert states(runner)[("ome-api-down", "origin")] == "firing"

    asyncio.run(asyncio.wait_for(body(), 30))


def test_a_targeted_poll_leaves_every_history_as_the_ticks_made_it() -> None:
    """rate(x) keeps reading the ticks' readings: a targeted poll a moment after a tick adds
    none (it would make the rate span milliseconds) and prunes none, of its stream or others."""

    async def body() -> None:
        clock = FakeClock()
        with Simulator(clock=clock.now) as sim:
            sim.add_stream("default", "live", "cam1", bitrate=2_000_000)
            sim.add_stream("default", "other", "cam3", bitrate=2_000_000)
            async with running(sim, clock) as runner:
                for _ in range(2):
                    await runner.tick()
                    clock.advance(10)
                history = runner.engine.history

                def rates() -> list[float | None]:
                    now = clock.now()
                    return [
                        history.view(t, now).rate("providers.totalBytesIn", None)
                        for t in (CAM1, Target("origin", "default", "other", "cam3"))
                    ]

                before = rates()
                assert None not in before
                clock.advance(0.05)
                await targeted(runner, CAM1)
                assert rates() == before

    asyncio.run(asyncio.wait_for(body(), 30))
