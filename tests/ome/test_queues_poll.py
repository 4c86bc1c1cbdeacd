"""Polling internals/queues through the real client: once per poll, and failures kept apart."""

from __future__ import annotations

import asyncio

from omealert.clock import FakeClock
from omealert.model import PollResult, Scope
from omealert.ome.client import OmeClient
from omealert.ome.plan import plan_polls
from omealert.rules import Rule, ServerSpec
from omealert.simulator import Simulator

from ..helpers import rule

TOKEN = "t"
QUEUES = "/v1/stats/current/internals/queues"


def polls(sim: Simulator, clock: FakeClock, rules: list[Rule], n: int) -> list[PollResult]:
    spec = ServerSpec(name="o", url=sim.url, access_token=TOKEN)
    plan = plan_polls(rules, "o")

    async def go() -> list[PollResult]:
        out = []
        async with OmeClient(spec, clock=clock) as client:
            for _ in range(n):
                out.append(await client.poll(plan))
                clock.advance(1)
        return out

    return asyncio.run(go())


def test_queues_are_read_once_per_poll_and_only_for_queue_rules() -> None:
    """A queue rule costs one internals/queues GET per poll; a stream rule none."""
    clock = FakeClock()
    with Simulator(clock=clock.now, access_token=TOKEN) as sim:
        sim.add_stream("default", "app", "s1")
        polls(sim, clock, [rule("s", "totalBytesIn > 0")], 2)
        assert sim.request_count(QUEUES) == 0
        [first, _] = polls(sim, clock, [rule("q", "size > 0", scope=Scope.QUEUE)], 2)
        assert sim.request_count(QUEUES) == 2
    queues = [t for t in first.samples if t.scope is Scope.QUEUE]
    assert len(queues) == 6 and all(t in first.listed for t in queues)


def test_a_failing_queue_list_keeps_the_last_queues_as_errors() -> None:
    """A 500 on internals/queues fails no other target and keeps the queues seen last."""
    clock = FakeClock()
    with Simulator(clock=clock.now, access_token=TOKEN) as sim:
        sim.add_stream("default", "app", "s1")
        rules = [rule("q", "size > 0", scope=Scope.QUEUE), rule("s", "totalBytesIn >= 0")]
        spec = ServerSpec(name="o", url=sim.url, access_token=TOKEN)
        plan = plan_polls(rules, "o")

        async def go() -> tuple[PollResult, PollResult]:
            async with OmeClient(spec, clock=clock) as client:
                good = await client.poll(plan)
                sim.set_fault("500", path="internals/queues")
                bad = await client.poll(plan)
            return good, bad

        good, bad = asyncio.run(go())
    seen = {t for t in good.samples if t.scope is Scope.QUEUE}
    assert bad.error is None
    assert set(bad.target_errors) == seen and seen <= bad.listed
    assert [t.stream for t in bad.samples] == ["s1"]  # the stream rule still reads its stats
