"""What OME printed but has not measured is no value: garbage, a young stream's first windows,
the window after an input gap (issue 21, defect 1)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omealert.clock import FakeClock
from omealert.lang.fields import FIELDS
from omealert.model import PollResult, Target, Value
from omealert.ome.client import OmeClient
from omealert.ome.plan import plan_polls
from omealert.ome.unmeasured import (
    IMPLAUSIBLE,
    PARTIAL_WINDOW,
    SETTLE_S,
    WARMING_UP,
    Unmeasured,
    drop_unmeasured,
)
from omealert.rules import ServerSpec
from omealert.simulator import Simulator

from ..helpers import rule

START = 1_767_225_600.0
TOKEN = "ome-access-token"
STREAM = Target("origin", "default", "app", "s1")
CREATED = datetime.fromisoformat("2026-12-04T02:35:36.174+00:00")


def test_unmeasured_values_are_left_out_with_a_reason() -> None:
    """OME 0.18's first second: garbage and zeros are no value; old streams keep theirs."""
    young = {"createdTime": CREATED, "video.bitrateLatest": -1977517884,
             "audio.bitrateLatest": 426313986, "video.width": 640,
             "providers.avgThroughputIn": 0, "providers.totalBytesIn": 18366}  # fmt: skip
    dropped = drop_unmeasured(young, CREATED.timestamp() + 0.3)
    assert sorted(dropped) == [
        ("audio.bitrateLatest", WARMING_UP),  # positive garbage: only the age tells
        ("providers.avgThroughputIn", WARMING_UP),
        ("video.bitrateLatest", IMPLAUSIBLE),
    ]
    assert young == {"createdTime": CREATED, "video.width": 640, "providers.totalBytesIn": 18366}
    old = {"createdTime": CREATED, "providers.avgThroughputIn": 873841335088853936,
           "providers.lastThroughputIn": 26208 // 8, "providers.totalBytesIn": 10**9}  # fmt: skip
    assert drop_unmeasured(old, CREATED.timestamp() + 60, after_gap=True) == [
        ("providers.avgThroughputIn", IMPLAUSIBLE),
        ("providers.lastThroughputIn", PARTIAL_WINDOW),
    ]
    assert old["providers.totalBytesIn"] == 10**9  # a lifetime counter is not a window


def test_counts_are_never_dropped() -> None:
    """Negative viewer counts (OME's bookkeeping bug) and keyframe-less zeros pass as they are."""
    fields: dict[str, Value] = {"publishers.connections.webrtc": -1, "publishers.viewers": -1}
    assert drop_unmeasured(fields, CREATED.timestamp() + 60) == []
    assert fields["publishers.viewers"] == -1


RANGED = [p for p, s in FIELDS.items() if s.plausible is not None]
HEALTHY: dict[str, Value] = dict.fromkeys(RANGED, 1000)
NUMBERS = st.one_of(
    st.integers(-(2**63), 2**63),
    st.sampled_from([0, 1, -1, 65_536, 65_537, 10_000, 10_001, 125 * 10**9, 10**12, 10**12 + 1]),
    st.floats(-1e13, 1e13, allow_nan=False),
)


@given(
    st.dictionaries(st.sampled_from(RANGED), NUMBERS),
    st.one_of(st.floats(-1, 5), st.sampled_from([1.999, 2.0, 2.0005, 60.0])),
)
def test_the_fast_path_drops_exactly_what_the_exact_check_drops(
    values: dict[str, Value], age: float
) -> None:
    """Whatever the values and the stream's age, ``Unmeasured`` (range screens in C, a
    datetime comparison for the age) leaves out the same as the field-by-field
    ``drop_unmeasured``: the fast path never lets a bad value through."""
    fields = {"createdTime": CREATED, **HEALTHY, **values}  # complete, so screens decide
    exact = dict(fields)
    expected = drop_unmeasured(exact, CREATED.timestamp() + age)
    fast = dict(fields)
    got = Unmeasured().drop({STREAM: fast}, lambda t: (True, True), CREATED.timestamp() + age)
    assert fast == exact
    assert got == {key: expected.count(key) for key in expected}


def test_info_ranges_are_checked_only_for_stream_info() -> None:
    """A stats-only sample is screened against the stats ranges alone."""
    fields: dict[str, Value] = {"createdTime": CREATED, "providers.avgThroughputIn": -5}
    got = Unmeasured().drop({STREAM: fields}, lambda t: (False, True), CREATED.timestamp() + 60)
    assert got == {} and fields["providers.avgThroughputIn"] == -5


def _recv(seconds: float) -> dict[str, Value]:
    return {
        "createdTime": CREATED,
        "providers.lastRecvTime": CREATED + timedelta(seconds=seconds),
        "providers.avgThroughputIn": 26208,
        "providers.totalBytesIn": 10**6,
    }


def test_the_first_poll_after_a_stale_input_leaves_out_the_window() -> None:
    """Input stale at one poll and moving at the next: that poll's window is partial; the
    one after is read again, and a stream that was never stale loses nothing."""
    unmeasured = Unmeasured()
    at = CREATED.timestamp()
    src = lambda t: (True, False)  # noqa: E731
    other = Target("origin", "default", "app", "s2")
    assert unmeasured.drop({STREAM: _recv(100), other: _recv(109)}, src, at + 110) == {}
    resumed, steady = _recv(119.5), _recv(119)
    dropped = unmeasured.drop({STREAM: resumed, other: steady}, src, at + 120)
    assert dropped == {("providers.avgThroughputIn", PARTIAL_WINDOW): 1}
    assert "providers.avgThroughputIn" not in resumed and "providers.avgThroughputIn" in steady
    assert unmeasured.drop({STREAM: _recv(129.5)}, src, at + 130) == {}


def test_the_window_stays_no_value_for_settle_s_after_the_resume() -> None:
    """OME serves the partial window until a second after the input resumes: every poll
    within ``SETTLE_S`` of the first one that saw it move leaves it out, the next reads."""
    unmeasured = Unmeasured()
    at = CREATED.timestamp()
    src = lambda t: (True, False)  # noqa: E731
    assert unmeasured.drop({STREAM: _recv(100)}, src, at + 110) == {}
    for offset in (0.0, 0.5, 1.0, SETTLE_S - 0.01):
        resumed = _recv(119.5 + offset)
        assert unmeasured.drop({STREAM: resumed}, src, at + 119.5 + offset) == {
            ("providers.avgThroughputIn", PARTIAL_WINDOW): 1
        }, offset
    assert unmeasured.drop({STREAM: _recv(119.5 + SETTLE_S)}, src, at + 119.5 + SETTLE_S) == {}


def test_the_first_answer_after_a_failed_poll_leaves_out_every_window() -> None:
    """A failed poll (OME frozen: no poll saw a stale input) makes every target's windows
    no value for ``SETTLE_S`` from the next answer; a poll later than that reads them."""
    unmeasured = Unmeasured()
    at = CREATED.timestamp()
    src = lambda t: (True, False)  # noqa: E731
    app = Target("origin", "default", "app")
    assert unmeasured.drop({STREAM: _recv(100), app: _recv(100)}, src, at + 100, at) == {}
    unmeasured.failed()
    answer = {STREAM: _recv(110), app: _recv(110)}
    dropped = unmeasured.drop(answer, src, at + 110, at + 10)
    assert dropped == {("providers.avgThroughputIn", PARTIAL_WINDOW): 2}
    assert unmeasured.drop({STREAM: _recv(111)}, src, at + 111, at + 11) == {
        ("providers.avgThroughputIn", PARTIAL_WINDOW): 1
    }
    assert unmeasured.drop({STREAM: _recv(112)}, src, at + 112, at + 12) == {}


def test_a_server_clock_that_leapt_ahead_is_a_gap() -> None:
    """An answer whose server clock moved over ``INPUT_GAP_S`` further than the watcher's
    since the last answer (a request that hung while OME was frozen) straddles a gap;
    clocks moving together, however far apart the polls, do not."""
    unmeasured = Unmeasured()
    at = CREATED.timestamp()
    src = lambda t: (True, False)  # noqa: E731
    assert unmeasured.drop({STREAM: _recv(100)}, src, at + 100, at) == {}
    assert unmeasured.drop({STREAM: _recv(130)}, src, at + 130, at + 30) == {}  # 30 s apart
    assert unmeasured.drop({STREAM: _recv(141)}, src, at + 141, at + 32) == {
        ("providers.avgThroughputIn", PARTIAL_WINDOW): 1
    }


# -- over the wire, with the simulator's OME 0.18 quirks ---------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[Simulator]:
    with Simulator(clock=clock.now, quirks=["first_second", "partial_window"]) as s:
        s.add_stream("default", "app", "s1", bitrate=2_500_000)
        yield s


READS = [
    rule("in", "avgThroughputIn < 100kbps"),
    rule("peak", "maxThroughputIn > 100Mbps"),
    rule("video", "video.bitrateLatest < 100kbps"),
    rule("audio", "audio.bitrateLatest > 1Mbps"),
    rule("fps", "video.framerateLatest < 20"),
]


def _polls(sim: Simulator, clock: FakeClock, steps: list[float]) -> list[PollResult]:
    """Poll once, then once after each of ``steps`` seconds, through one client."""

    async def go() -> list[PollResult]:
        plan = plan_polls(READS, "origin")
        server = ServerSpec(name="origin", url=sim.url, access_token=TOKEN)
        async with OmeClient(server, clock=clock) as client:
            out = [await client.poll(plan)]
            for step in steps:
                clock.advance(step)
                out.append(await client.poll(plan))
            return out

    return asyncio.run(go())


def test_a_new_streams_first_seconds_are_no_value(sim: Simulator, clock: FakeClock) -> None:
    """The simulator's first-second garbage is left out and counted; from 2 s on the
    measurements are read, except the peak that kept the garbage window."""
    first, second, later = _polls(sim, clock, [1.0, 1.0])
    fields = [p.samples[STREAM].fields for p in (first, second, later)]
    for gone in ("video.bitrateLatest", "audio.bitrateLatest", "video.framerateLatest",
                 "providers.avgThroughputIn"):  # fmt: skip
        assert gone not in fields[0]
    assert first.dropped[("video.bitrateLatest", IMPLAUSIBLE)] == 1
    assert first.dropped[("audio.bitrateLatest", IMPLAUSIBLE)] == 1
    assert first.dropped[("providers.avgThroughputIn", WARMING_UP)] == 1
    assert second.dropped[("providers.avgThroughputIn", IMPLAUSIBLE)] == 1  # 8.7e17
    assert fields[2]["providers.avgThroughputIn"] == 2_500_000
    assert fields[2]["video.bitrateLatest"] == 2_500_000
    assert "providers.maxThroughputIn" not in fields[2]
    assert later.dropped == {("providers.maxThroughputIn", IMPLAUSIBLE): 1}
    assert fields[2]["providers.totalBytesIn"] > 0 and "createdTime" in fields[2]


def test_the_window_after_a_stall_is_no_value(sim: Simulator, clock: FakeClock) -> None:
    """Stalled for 20 s, resumed: the partial window (125 kbps) is left out, also half a
    second later when OME still serves it; the catch-up spike 1.5 s after is read."""
    clock.advance(10)
    sim.stall("default", "app", "s1")
    clock.advance(20)

    async def go() -> list[PollResult]:
        plan = plan_polls(READS, "origin")
        server = ServerSpec(name="origin", url=sim.url, access_token=TOKEN)
        async with OmeClient(server, clock=clock) as client:
            stale = await client.poll(plan)
            sim.resume("default", "app", "s1")
            resumed = await client.poll(plan)
            clock.advance(0.5)
            still = await client.poll(plan)
            clock.advance(1)
            return [stale, resumed, still, await client.poll(plan)]

    stale, resumed, still, spike = asyncio.run(go())
    assert stale.samples[STREAM].fields["providers.avgThroughputIn"] == 2_500_000  # frozen
    for partial in (resumed, still):
        assert "providers.avgThroughputIn" not in partial.samples[STREAM].fields
        assert partial.dropped[("providers.avgThroughputIn", PARTIAL_WINDOW)] == 1
    assert spike.samples[STREAM].fields["providers.avgThroughputIn"] == 5_000_000
