"""``ome_alert("CODE")`` in rules, end to end: the simulator as OME (API and Alert module),
omealert's receiver over real HTTP, and a runner on a fake clock ticking against both."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from omealert.clock import FakeClock, SystemClock
from omealert.config.load import load_config_text
from omealert.errors import ConfigError
from omealert.metrics import Metrics
from omealert.model import AlertState, Target
from omealert.ome.events import EventBook, Heard, stream_of
from omealert.rules import ServerSpec
from omealert.runner import Runner
from omealert.runner.early import MAX_STREAMS
from omealert.simulator import Simulator
from omealert.web.listener import Listener
from omealert.web.ome_alert import AlertReceiver
from tests.helpers import rule, settings

KEY = "rules-key"


@contextlib.asynccontextmanager
async def watching(sim: Simulator, when: str) -> AsyncIterator[tuple[Runner, EventBook]]:
    """A runner for one rule on ``sim``, and the receiver its Alert module posts to."""
    book = EventBook()
    listener = Listener(Metrics())
    AlertReceiver({"origin": KEY.encode()}, book.record, listener.metrics).install(listener.app)
    await listener.start()
    sim.set_alert_module(f"http://127.0.0.1:{listener.port}/ome/alert", KEY, min_bitrate=1_000_000)
    server = ServerSpec("origin", sim.url, access_token=sim.access_token)
    runner = Runner(
        settings(rule("ome-low", when), servers=(server,)), clock=FakeClock(), events=book
    )
    try:
        yield runner, book
    finally:
        await runner.aclose()
        sim.alert_module_off()
        await listener.stop()


async def states(runner: Runner, sim: Simulator) -> dict[str, str]:
    """One tick after every queued event was delivered: the rule's instances by stream."""
    assert await asyncio.to_thread(sim.alert_flush, 10.0)
    await runner.tick()
    assert isinstance(runner.clock, FakeClock)
    runner.clock.advance(10.0)
    return {
        str(i.target.stream): i.state.value
        for i in runner.engine.instances()
        if i.state in (AlertState.PENDING, AlertState.FIRING)
    }


def test_ome_alert_is_set_by_omes_event_and_cleared_by_its_ok() -> None:
    """The rule fires on the tick after BITRATE_LOW arrives, and resolves after OME's OK."""

    async def body() -> None:
        with Simulator() as sim:
            sim.add_stream("default", "live", "cam1", bitrate=3_000_000)
            sim.add_stream("default", "live", "cam2", bitrate=3_000_000)
            async with watching(sim, 'ome_alert("INGRESS_BITRATE_LOW")') as (runner, _):
                assert await states(runner, sim) == {}
                sim.set_bitrate("default", "live", "cam1", 300_000)
                assert await states(runner, sim) == {"cam1": "firing"}
                sim.set_bitrate("default", "live", "cam1", 3_000_000)
                assert await states(runner, sim) == {}

    asyncio.run(asyncio.wait_for(body(), 30))


def test_a_stream_that_ends_in_alarm_expires_without_omes_ok() -> None:
    """OME sends no OK for a deleted stream; once the listing drops it, its codes are gone,
    and the same name coming back starts clean."""

    async def body() -> None:
        with Simulator() as sim:
            async with watching(sim, 'ome_alert("INGRESS_BITRATE_LOW")') as (runner, book):
                sim.add_stream("default", "live", "cam1", bitrate=300_000)
                assert await states(runner, sim) == {"cam1": "firing"}
                sim.remove_stream("default", "live", "cam1")
                assert await states(runner, sim) == {}
                assert book.sources("origin") == 0
                sim.alert_module_off()  # the stream comes back and OME has nothing to say
                sim.add_stream("default", "live", "cam1", bitrate=3_000_000)
                assert await states(runner, sim) == {}

    asyncio.run(asyncio.wait_for(body(), 30))


def test_an_unknown_code_in_a_rule_is_a_load_error_with_a_suggestion() -> None:
    """A misspelt code is refused at FILE:LINE:COL with the code it was probably meant as."""
    text = (
        "servers:\n  - name: origin\n    url: http://127.0.0.1:1\nrules:\n"
        '  - name: low\n    when: ome_alert("INGRESS_BITRATE_LOWW")\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "t.yaml", {})
    (issue,) = info.value.issues
    assert str(issue).startswith("t.yaml:6:")
    assert "no code 'INGRESS_BITRATE_LOWW'; did you mean 'INGRESS_BITRATE_LOW'?" in str(issue)


def test_an_event_makes_the_watcher_poll_now_and_polling_judges() -> None:
    """With a 60 s interval, OME's STREAM_DELETED makes a targeted poll whose own listing fires
    an ``absent`` rule long before the next tick; a storm naming a thousand streams folds into
    one early poll of the whole server."""

    async def body() -> None:
        with Simulator() as sim:
            sim.add_stream("default", "live", "cam1", bitrate=3_000_000)
            book = EventBook()
            metrics = Metrics()
            server = ServerSpec("origin", sim.url, access_token=sim.access_token)
            runner = Runner(
                settings(
                    rule("gone", "absent", match="default/live/cam1"),
                    servers=(server,),
                    interval_s=60.0,
                ),
                clock=SystemClock(),
                events=book,
                metrics=metrics,
            )

            def heard(h: Heard) -> None:
                book.record(h)
                runner.look(h.server, stream_of(h))

            def polls(kind: str) -> float | None:
                return metrics.value("omealert_event_polls_total", server="origin", kind=kind)

            listener = Listener(metrics)
            AlertReceiver({"origin": KEY.encode()}, heard, metrics).install(listener.app)
            await listener.start()
            stop = asyncio.Event()
            watch = asyncio.create_task(runner.watch(stop))
            try:
                url = f"http://127.0.0.1:{listener.port}/ome/alert"
                sim.set_alert_module(url, KEY, stream_status=True)
                while metrics.ticks < 1:
                    await asyncio.sleep(0.01)
                sim.remove_stream("default", "live", "cam1")
                async with asyncio.timeout(10):  # far less than the 60 s to the next tick
                    while not any(i.state is AlertState.FIRING for i in runner.engine.instances()):
                        await asyncio.sleep(0.01)
                assert polls("stream") == 1 and polls("server") is None
                assert metrics.ticks == 1  # a targeted poll is not a tick
                for i in range(1000):
                    runner.look("origin", Target("origin", "default", "live", f"s{i}"))
                async with asyncio.timeout(10):
                    while polls("server") != 1:
                        await asyncio.sleep(0.01)
                assert polls("stream") == 1
                folded = metrics.value("omealert_event_polls_folded_total", server="origin")
                assert folded == MAX_STREAMS + 1  # the ones pending, and the one past the cap
                assert metrics.ticks == 2  # the scheduled one and the early poll of the server
            finally:
                stop.set()
                await watch
                sim.alert_module_off()
                await listener.stop()

    asyncio.run(asyncio.wait_for(body(), 30))
