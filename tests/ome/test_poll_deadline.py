"""A hanging OME API bounds the poll: the breaker (``max_in_flight`` requests in a row without
an answer) and the overall ``poll_timeout`` both fail the server, never its streams.

The simulator's ``slow`` and ``drop`` faults stand in for a hanging API over real sockets;
where the order or pace of answers has to be exact, an ``httpx.MockTransport`` with an async
handler decides it. Per-request timeouts are a fraction of a second; nothing asserts how
long anything took, only what the poll reported and what the server was asked.
"""

from __future__ import annotations

import asyncio
import gc
import re
import warnings
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from omealert.clock import FakeClock
from omealert.config.load import load_config_text
from omealert.errors import ConfigError, SourceErrorKind
from omealert.model import AlertState, PollResult, Target
from omealert.ome.client import OmeClient
from omealert.ome.plan import plan_polls
from omealert.rules import ServerSpec
from omealert.runner import Runner
from omealert.simulator import Simulator

from ..helpers import poll_once, rule, settings

T = TypeVar("T")
TOKEN = "ome-access-token"
START = 1_767_225_600.0
STATS = rule("bytes", "totalBytesIn < 1")
#: three listings (vhosts, apps, streams) come before any stats request
LISTINGS = 3


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[Simulator]:
    with Simulator(clock=clock.now, access_token=TOKEN) as s:
        s.add_streams("default", "app", [f"s{i:02d}" for i in range(40)])
        yield s


def spec(url: str, **kw: Any) -> ServerSpec:
    return ServerSpec(name="origin", url=url, access_token=TOKEN, **kw)


def stats_requests(sim: Simulator) -> int:
    return sim.request_count("/v1/stats/")


def listing(path: str, streams: int) -> list[str] | None:
    """The names a mock OME lists at ``path``: one vhost, one app, ``streams`` streams."""
    return {
        "/v1/vhosts": ["default"],
        "/v1/vhosts/default/apps": ["app"],
        "/v1/vhosts/default/apps/app/streams": [f"s{i:03d}" for i in range(streams)],
    }.get(path)


def ok(response: object) -> httpx.Response:
    return httpx.Response(200, json={"message": "OK", "statusCode": 200, "response": response})


def mock(streams: int, stats: Callable[[int], Awaitable[None]]) -> httpx.MockTransport:
    """A mock OME whose listings answer at once; the n-th stats request (from 0) first
    awaits ``stats(n)``, then answers."""
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        names = listing(request.url.path, streams)
        if names is not None:
            return ok(names)
        n, calls = calls, calls + 1
        await stats(n)
        return ok({"createdTime": "2026-01-01T00:00:00.000+00:00", "totalBytesIn": 1})

    return httpx.MockTransport(handler)


async def hang() -> None:
    await asyncio.Event().wait()  # never set: only a timeout or cancellation ends it


# -- the breaker ------------------------------------------------------------------------------


def test_a_hanging_api_stops_the_poll_after_max_in_flight_timeouts(
    sim: Simulator, clock: FakeClock
) -> None:
    """Listings answer but every stats request hangs: after max_in_flight timeouts in a row
    the server fails as a timeout, long before each of the 40 streams was tried."""
    sim.set_fault("slow", path="/stats/", delay=30.0)
    result = poll_once(spec(sim.url, timeout_s=0.2, max_in_flight=4), clock, [STATS])
    assert result.error is not None
    assert result.error.kind is SourceErrorKind.TIMEOUT
    assert result.error.reason == "4 requests in a row timed out after 0.2s; OME's API is hanging"
    assert result.error.path.startswith("/v1/stats/current/vhosts/default/apps/app/streams/s")
    assert result.samples == {} and result.target_errors == {}
    # the four that tripped it, plus at most one more started by each of three workers
    assert 4 <= stats_requests(sim) <= 7
    assert TOKEN not in str(result.error)


def test_connections_closed_without_answers_stop_the_poll_too(
    sim: Simulator, clock: FakeClock
) -> None:
    """Every stats connection dropped unanswered: the server is unreachable, not 40 streams."""
    sim.set_fault("drop", path="/stats/")
    result = poll_once(spec(sim.url, timeout_s=0.2, max_in_flight=4), clock, [STATS])
    assert result.error is not None
    assert result.error.kind is SourceErrorKind.UNREACHABLE
    assert result.error.reason == (
        "4 requests in a row closed without an answer; OME's API is not answering"
    )
    assert result.samples == {} and result.target_errors == {}
    assert stats_requests(sim) < 40


@pytest.mark.parametrize("max_in_flight", [1, 16])
def test_one_slow_stream_is_only_its_own_error(
    sim: Simulator, clock: FakeClock, max_in_flight: int
) -> None:
    """A single stream whose stats hang is that stream's timeout; the 39 others are sampled."""
    sim.set_fault("slow", path="/streams/s07", delay=30.0)
    result = poll_once(spec(sim.url, timeout_s=0.2, max_in_flight=max_in_flight), clock, [STATS])
    assert result.error is None
    slow = Target("origin", "default", "app", "s07")
    assert set(result.target_errors) == {slow}
    assert result.target_errors[slow].kind is SourceErrorKind.TIMEOUT
    assert "within 0.2s" in result.target_errors[slow].reason
    assert len(result.samples) == 39 and slow not in result.samples


def test_an_answer_between_two_timeouts_starts_the_count_again(clock: FakeClock) -> None:
    """With one request in flight, timeouts that an answer separates stay the streams' own
    errors, and two in a row (the least the breaker counts to) fail the server."""

    async def first_and_third(n: int) -> None:
        if n in (0, 2):
            await hang()

    async def first_two(n: int) -> None:
        if n in (0, 1):
            await hang()

    server = spec("http://ome.invalid", timeout_s=0.2, max_in_flight=1)
    apart = poll_once(server, clock, [STATS], transport=mock(5, first_and_third))
    assert apart.error is None
    assert len(apart.target_errors) == 2 and len(apart.samples) == 3
    assert all(e.kind is SourceErrorKind.TIMEOUT for e in apart.target_errors.values())

    together = poll_once(server, clock, [STATS], transport=mock(5, first_two))
    assert together.error is not None and together.error.kind is SourceErrorKind.TIMEOUT
    assert together.error.reason.startswith("2 requests in a row timed out after 0.2s")
    assert together.requests == LISTINGS + 2


# -- the deadline -----------------------------------------------------------------------------


def fetched_of(reason: str) -> tuple[int, int]:
    m = re.search(r"with (\d+) of (\d+) targets fetched", reason)
    assert m is not None, reason
    return int(m.group(1)), int(m.group(2))


def test_a_poll_longer_than_poll_timeout_is_abandoned_with_a_count(clock: FakeClock) -> None:
    """Each answer comes in time, but 500 of them one after another take 5 s: the poll is
    abandoned at poll_timeout (raised to the request timeout) and says how far it got."""

    async def pace(n: int) -> None:
        await asyncio.sleep(0.01)

    server = spec("http://ome.invalid", timeout_s=0.2, poll_timeout_s=0.05, max_in_flight=1)
    result = poll_once(server, clock, [STATS], transport=mock(500, pace))
    assert result.error is not None and result.error.kind is SourceErrorKind.TIMEOUT
    assert result.error.reason.startswith(
        "the poll took longer than poll_timeout (0.2s) and was abandoned with "
    )
    done, total = fetched_of(result.error.reason)
    assert total == 500 and done < 500
    assert result.requests in (LISTINGS + done, LISTINGS + done + 1)
    assert result.samples == {} and result.target_errors == {}


def test_a_poll_still_listing_at_the_deadline_says_so(clock: FakeClock) -> None:
    """Listings of 200 apps, each in time, outlast poll_timeout: no target count is given."""
    apps = [f"a{i:03d}" for i in range(200)]

    async def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/vhosts":
            return ok(["default"])
        if path == "/v1/vhosts/default/apps":
            return ok(apps)
        await asyncio.sleep(0.01)
        return ok(["s"])

    server = spec("http://ome.invalid", timeout_s=0.2, poll_timeout_s=0.2, max_in_flight=1)
    result = poll_once(server, clock, [STATS], transport=httpx.MockTransport(handler))
    assert result.error is not None and result.error.kind is SourceErrorKind.TIMEOUT
    assert result.error.reason.endswith(
        "was abandoned while still listing vhosts, apps and streams"
    )
    assert result.error.path.startswith("/v1/vhosts/default/apps/a")


def test_an_abandoned_poll_closes_its_connections_and_the_next_poll_works(
    sim: Simulator, clock: FakeClock
) -> None:
    """Over real sockets: the requests cut off by the deadline leave no warning behind and
    no connection slot taken, so the same client's next poll samples every stream."""
    sim.set_fault("slow", path="/stats/", delay=0.05)  # 40 streams / 2 at a time: 1 s
    server = spec(sim.url, timeout_s=0.2, poll_timeout_s=0.2, max_in_flight=2)

    async def go() -> tuple[PollResult, PollResult]:
        async with OmeClient(server, clock=clock) as client:
            plan = plan_polls([STATS], server.name)
            first = await client.poll(plan)
            sim.clear_faults()
            return first, await client.poll(plan)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second = asyncio.run(go())
        gc.collect()
    assert [w.message for w in caught] == []
    assert first.error is not None and first.error.kind is SourceErrorKind.TIMEOUT
    done, total = fetched_of(first.error.reason)
    assert total == 40 and done < 40
    assert second.error is None and len(second.samples) == 40


# -- what the engine makes of it --------------------------------------------------------------


def test_a_tripped_breaker_fires_api_down_and_changes_no_stream_alert(
    sim: Simulator, clock: FakeClock
) -> None:
    """A firing stream alert stays firing while its server hangs; ome-api-down fires."""
    stalled = rule("stalled", "lastRecvTime stale > 30s")
    server = spec(sim.url, timeout_s=0.2, max_in_flight=4)

    def states(runner: Runner) -> dict[tuple[str, str], AlertState]:
        return {(i.rule, i.target.key): i.state for i in runner.engine.instances()}

    async def go() -> tuple[dict[tuple[str, str], AlertState], str]:
        runner = Runner(settings(stalled, servers=(server,)), clock=clock, notify=False)
        try:
            sim.stall("default", "app", "s03")
            for _ in range(5):
                await runner.tick()
                clock.advance(10)
            assert states(runner)[("stalled", "origin/default/app/s03")] is AlertState.FIRING
            sim.resume("default", "app", "s03")  # the recovery must not be seen while hung
            sim.set_fault("slow", path="/stats/", delay=30.0)
            report = await runner.tick()
            error = report.polls[0].error
            assert error is not None
            return states(runner), error.reason
        finally:
            await runner.aclose()

    after, reason = asyncio.run(go())
    assert reason.endswith("OME's API is hanging")
    assert after[("stalled", "origin/default/app/s03")] is AlertState.FIRING
    assert after[("ome-api-down", "origin")] is AlertState.FIRING


# -- configuration ----------------------------------------------------------------------------

CONFIG = """\
servers:
  - name: origin
    url: http://127.0.0.1:8081
    timeout: {timeout}
{extra}rules:
  - name: r
    when: totalBytesIn < 1
"""


def server_of(timeout: str = "5s", extra: str = "") -> ServerSpec:
    text = CONFIG.format(timeout=timeout, extra=extra)
    (server,) = load_config_text(text, "deadline.yaml", env={}, base_dir=Path(".")).servers
    return server


def test_poll_timeout_defaults_to_a_minute_or_the_request_timeout() -> None:
    """Unset, poll_timeout is 60 s, or the request timeout where that is longer."""
    assert server_of().poll_timeout_s == 60.0
    assert server_of("90s").poll_timeout_s == 90.0
    assert server_of(extra="    poll_timeout: 2m\n").poll_timeout_s == 120.0
    assert ServerSpec("x", "http://127.0.0.1:1").poll_timeout_s == 60.0


def test_poll_timeout_shorter_than_timeout_is_a_located_error() -> None:
    """poll_timeout below timeout is reported at its own value's FILE:LINE:COL."""
    with pytest.raises(ConfigError) as caught:
        server_of("10s", "    poll_timeout: 5s\n")
    (issue,) = caught.value.issues
    assert (issue.file, issue.line, issue.col) == ("deadline.yaml", 5, 19)
    assert issue.message.startswith("poll_timeout must not be shorter than timeout (10s)")


@pytest.mark.parametrize(
    ("value", "words"), [("0s", "longer than 0s"), ("60", "has no unit"), ("soon", "")]
)
def test_poll_timeout_is_a_positive_duration(value: str, words: str) -> None:
    """poll_timeout takes a duration with a unit, longer than zero."""
    with pytest.raises(ConfigError) as caught:
        server_of(extra=f"    poll_timeout: {value}\n")
    (issue,) = caught.value.issues
    assert issue.line == 5
    assert words in issue.message
