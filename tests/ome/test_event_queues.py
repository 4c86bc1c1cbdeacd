"""``event.*`` in ``scope: queue`` rules: a queue as OME's last congestion event sent it, over
real HTTP from the simulator acting as OME 0.18, and the memory's rules and bounds."""

from __future__ import annotations

import asyncio
import json

import pytest

from omealert.clock import FakeClock
from omealert.metrics import Metrics
from omealert.model import PollResult, Sample, Target
from omealert.ome.alert import AlertEvent, PayloadError, Source, parse_event
from omealert.ome.events import MAX_EVENT_QUEUES, EventBook, Heard
from omealert.rules import ServerSpec
from omealert.runner import Runner
from omealert.simulator import Simulator
from omealert.web.listener import Listener
from omealert.web.ome_alert import AlertReceiver
from tests.helpers import rule, settings

KEY = "queue-key"


def firing(runner: Runner) -> list[str]:
    return sorted(i.target.key for i in runner.engine.instances() if i.state.value == "firing")


def test_a_rule_on_event_size_fires_on_the_congestion_event_and_clears_on_its_ok() -> None:
    """Only the queue the event shows backed up fires; OME's OK clears ``event.size`` to 0 (the
    rule resolves although the poll still shows the backlog); before any event it reads 0."""

    async def body() -> None:
        clock = FakeClock()
        with Simulator(clock=clock.now) as sim:
            sim.add_stream("default", "live", "cam1")
            sim.add_stream("default", "live", "cam2")
            book = EventBook()
            listener = Listener(Metrics())
            receiver = AlertReceiver({"origin": KEY.encode()}, book.record, listener.metrics)
            receiver.install(listener.app)
            await listener.start()
            sim.set_alert_module(f"http://127.0.0.1:{listener.port}/ome/alert", KEY)
            server = ServerSpec("origin", sim.url, access_token=sim.access_token)
            jam = rule("jam", "event.size > 1000", scope="queue")
            runner = Runner(settings(jam, servers=(server,)), clock=clock, events=book)
            try:
                await runner.tick()
                assert firing(runner) == [] and "jam" not in runner.engine.no_value
                sim.congest_queue("default", "live", "cam1", 600)
                clock.advance(5)
                sim.set_congested(True)
                assert await asyncio.to_thread(sim.alert_flush, 10.0)
                await runner.tick()
                (key,) = firing(runner)
                assert key.startswith("origin/default/live/cam1/:queue/trs/filter_video#")
                sim.set_congested(False)
                assert await asyncio.to_thread(sim.alert_flush, 10.0)
                clock.advance(10)
                await runner.tick()
                assert firing(runner) == []
            finally:
                await runner.aclose()
                sim.alert_module_off()
                await listener.stop()

    asyncio.run(asyncio.wait_for(body(), 30))


def queue_sample(qid: int, urn: str) -> Sample:
    target = Target("origin", output="queue", leaf=f"omr/aw_0#{qid}")
    return Sample(target, {"urn": urn, "size": 0}, 0.0, 0.0)


def congested(source: Source | None, *queues: tuple[int, str, int], ok: bool = False) -> Heard:
    codes = ("OK",) if ok else ("INTERNAL_QUEUE_CONGESTION",)
    readings = tuple((qid, urn, {"size": size}) for qid, urn, size in queues)
    event = AlertEvent("INTERNAL_QUEUE", codes, source, len(readings), readings)
    return Heard(0.0, "origin", event)


def polled(*samples: Sample) -> PollResult:
    poll = PollResult("origin", 0.0, 0.0, samples={s.target: s for s in samples})
    poll.listed = {Target("origin"), *poll.samples}
    return poll


def test_per_source_events_match_by_id_and_urn_clear_by_ok_and_expire_with_the_queue() -> None:
    """0.20.5+ key queue events per source: each source's OK clears its own; a queue whose id
    came back under another urn (OME restarted) gets nothing; one no longer polled is gone."""
    book = EventBook()
    app, stream = Source("default", "live"), Source("default", "live", "cam1")
    book.record(congested(app, (100, "urn:a", 700)))
    book.record(congested(stream, (105, "urn:s", 900)))
    a, s, other = queue_sample(100, "urn:a"), queue_sample(105, "urn:s"), queue_sample(105, "x")
    poll = polled(a, s)
    book.apply([poll])
    assert (a.fields["event.size"], s.fields["event.size"]) == (700, 900)
    book.record(congested(app, (100, "urn:a", 0), ok=True))
    again = polled(queue_sample(100, "urn:a"), queue_sample(105, "urn:s"))
    book.apply([again])
    assert [("event.size" in x.fields) for x in again.samples.values()] == [False, True]
    book.apply([polled(other)])  # the stream's queue is no longer listed: forgotten
    back = queue_sample(105, "urn:s")
    book.apply([polled(back)])
    assert "event.size" not in back.fields and "event.size" not in other.fields


def test_queues_remembered_from_events_are_bounded() -> None:
    """Endless sources with big queue lists keep at most MAX_EVENT_QUEUES queues a server: the
    sources heard from longest ago are forgotten, the newest kept."""
    book = EventBook()
    for i in range(100):
        queues = [(i * 1000 + q, f"urn{q}", 1) for q in range(300)]
        book.record(congested(Source("v", f"a{i}"), *queues))
    probes = [queue_sample(i * 1000, "urn0") for i in range(100)]  # one queue of each source
    book.apply([polled(*probes)])
    kept = [i for i, p in enumerate(probes) if "event.size" in p.fields]
    assert kept == list(range(100 - MAX_EVENT_QUEUES // 300, 100))


def test_an_event_whose_internal_queues_are_not_omes_is_refused_with_the_reason() -> None:
    """A signed body with a queue missing its id is a 400 naming the queue, not a crash."""
    body = {"type": "INTERNAL_QUEUE", "messages": [{"code": "INTERNAL_QUEUE_CONGESTION"}]}
    body["internalQueues"] = [{"urn": "mngq:v=#d#a", "size": 1}]  # type: ignore[list-item]
    with pytest.raises(PayloadError, match=r"'internalQueues' .*internals/queues\[0\]"):
        parse_event(json.dumps(body).encode())
