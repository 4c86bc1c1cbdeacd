"""A storm of OME events over real HTTP, thousands of signed POSTs naming as many streams,
while the watcher's loop runs on the real clock: every one is taken, what they cost stays
bounded, and no scheduled tick is skipped."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from omealert.clock import SystemClock
from omealert.metrics import Metrics
from omealert.ome.alert import sign
from omealert.ome.events import MAX_SOURCES, EventBook, Heard, stream_of
from omealert.rules import ServerSpec
from omealert.runner import Runner
from omealert.runner.early import MAX_PENDING
from omealert.simulator import Simulator
from omealert.web.listener import Listener
from omealert.web.ome_alert import AlertReceiver
from tests.helpers import rule, settings

KEY = b"storm-key"
EVENTS = 2000


def body(i: int) -> bytes:
    """OME's compact, key-sorted INGRESS body for stream ``s<i>`` (most of them invented)."""
    doc = {
        "messages": [{"code": "INGRESS_BITRATE_LOW", "description": "low"}],
        "sourceUri": f"#default#live/s{i}",
        "type": "INGRESS",
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def test_an_event_storm_is_taken_whole_stays_bounded_and_skips_no_tick() -> None:
    """2,000 events as fast as 16 connections send them: all accepted, folded into early
    polls of the whole server, and the 1 s schedule keeps every slot."""

    async def run() -> None:
        with Simulator() as sim:
            for i in range(10):
                sim.add_stream("default", "live", f"s{i}")
            metrics = Metrics()
            book = EventBook()
            server = ServerSpec("origin", sim.url, access_token=sim.access_token)
            rules = (
                rule("stalled", "lastRecvTime stale > 30s"),
                rule("gone", "absent", match="default/live/s1"),
            )
            runner = Runner(
                settings(*rules, servers=(server,), interval_s=1.0),
                clock=SystemClock(),
                events=book,
                metrics=metrics,
            )
            most_pending = 0

            def heard(h: Heard) -> None:
                nonlocal most_pending
                book.record(h)
                runner.look(h.server, stream_of(h))
                pending = sum(map(len, runner.early.streams.values()))
                most_pending = max(most_pending, pending)

            listener = Listener(metrics)
            AlertReceiver({"origin": KEY}, heard, metrics).install(listener.app)
            await listener.start()
            stop = asyncio.Event()
            watch = asyncio.create_task(runner.watch(stop))
            url = f"http://127.0.0.1:{listener.port}/ome/alert"
            try:
                while metrics.ticks < 1:
                    await asyncio.sleep(0.01)
                connector = aiohttp.TCPConnector(limit=16)
                async with aiohttp.ClientSession(connector=connector) as session:

                    async def post(i: int) -> int:
                        raw = body(i)
                        headers = {"X-OME-Signature": sign(KEY, raw)}
                        async with session.post(url, data=raw, headers=headers) as answer:
                            return answer.status

                    statuses = await asyncio.gather(*(post(i) for i in range(EVENTS)))
                await asyncio.sleep(1.5)  # one more slot after the storm
                assert set(statuses) == {200}
                accepted = metrics.value(
                    "omealert_ome_events_total", server="origin", type="INGRESS"
                )
                assert accepted == EVENTS
                assert runner.missed_slots == 0
                assert metrics.value("omealert_slow_ticks_total") == 0
                assert metrics.ticks >= 2
                assert metrics.value("omealert_event_polls_folded_total", server="origin")
                assert metrics.value("omealert_event_polls_total", server="origin", kind="server")
                assert most_pending <= MAX_PENDING
                assert book.sources("origin") <= MAX_SOURCES
            finally:
                stop.set()
                await watch
                await listener.stop()

    asyncio.run(asyncio.wait_for(run(), 60))
