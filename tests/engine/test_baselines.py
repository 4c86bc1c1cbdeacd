"""Baselines over a target's history: median, quantile, stddev, changes, resets and offset,
exact up to 10 minutes and from per-minute buckets beyond, with no value until enough is seen."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omealert.engine.buckets import BUCKET_S, Buckets, minute_of
from omealert.engine.history import History
from omealert.engine.stats import SKETCH_K
from omealert.model import Sample, Target, Value

S1 = Target("origin", "default", "app", "s1")
RATE = "video.bitrateLatest"
BYTES = "providers.totalBytesIn"
BORN = 1_767_225_600.0


def history(*uses: tuple[str, str, float, float | None]) -> History:
    return History.for_uses(uses)


def feed(h: History, points: list[tuple[float, Value]], path: str = RATE, **extra: Value) -> None:
    for at, value in points:
        fields: dict[str, Value] = {"createdTime": datetime.fromtimestamp(BORN, UTC)}
        fields.update(extra)
        fields[path] = value
        h.record(Sample(S1, fields, at, at))


def test_exact_windows_match_the_statistics_module() -> None:
    """Up to 10 minutes, median, quantiles and stddev are those of every point in the window."""
    values = [float((i * 37) % 101) for i in range(31)]
    h = history(("median_over", RATE, 300.0, None), ("stddev_over", RATE, 300.0, None))
    feed(h, [(i * 10.0, v) for i, v in enumerate(values)])
    view = h.view(S1, 300.0)
    assert view.median_over(RATE, 300.0) == statistics.median(values)
    assert view.stddev_over(RATE, 300.0) == pytest.approx(statistics.pstdev(values))
    assert view.quantile_over(0.9, RATE, 300.0) == pytest.approx(
        statistics.quantiles(values, n=10, method="inclusive")[-1]
    )
    assert view.quantile_over(0.0, RATE, 300.0) == min(values)
    assert view.quantile_over(1.0, RATE, 300.0) == max(values)


@pytest.mark.parametrize("window", [300.0, 3600.0])
def test_no_value_until_half_the_window_is_seen(window: float) -> None:
    """Right after start a baseline has no value (never 0): for 5 minutes and for 1 hour."""
    h = history(("median_over", RATE, window, None), ("stddev_over", RATE, window, None))
    now = 0.0
    while now < window * 0.5 - (2 * BUCKET_S if window > 600 else 10):
        feed(h, [(now, 5e6)])
        assert h.view(S1, now).median_over(RATE, window) is None
        assert h.view(S1, now).stddev_over(RATE, window) is None
        now += 10.0
    while now < window * 0.5 + 2 * BUCKET_S:
        feed(h, [(now, 5e6)])
        now += 10.0
    assert h.view(S1, now - 10.0).median_over(RATE, window) == 5e6
    assert h.view(S1, now - 10.0).stddev_over(RATE, window) == 0.0


def test_changes_counts_reconnects_once_the_whole_window_is_seen() -> None:
    """changes(createdTime, 5m) counts each new createdTime; no value before 5 minutes."""
    h = history(("changes", "createdTime", 300.0, None))
    born = [BORN] * 20 + [BORN + 200] * 5 + [BORN + 250] * 5 + [BORN + 300] * 10
    for i, created in enumerate(born):
        at = i * 10.0
        h.record(Sample(S1, {"createdTime": datetime.fromtimestamp(created, UTC)}, at, at))
        if at < 300:
            assert h.view(S1, at).changes("createdTime", 300.0) is None
    assert h.view(S1, 390.0).changes("createdTime", 300.0) == 3


def test_a_missing_reading_is_not_a_change() -> None:
    """A poll without the field is skipped: the same value before and after is no change."""
    h = history(("changes", RATE, 60.0, None))
    feed(h, [(0.0, 1.0), (10.0, 1.0), (20.0, None), (30.0, 1.0), (40.0, 2.0), (70.0, 2.0)])
    assert h.view(S1, 70.0).changes(RATE, 60.0) == 1


@pytest.mark.parametrize("window", [120.0, 3600.0])
def test_changes_and_resets_over_short_and_long_windows(window: float) -> None:
    """resets() counts a counter's drops and new createdTimes, changes() every new value;
    an event before the window is not counted."""
    h = history(("resets", BYTES, window, None), ("changes", BYTES, window, None))
    span = 2 * window
    step = window / 4
    events = {  # time: (value, createdTime)
        span - window - step: (10.0, BORN),  # before the window: a drop, not counted
        span - 3 * step: (0.0, BORN),  # a drop: a reset and a change
        span - 2 * step: (5.0, BORN + 1),  # a reconnect: a reset and a change
        span - step: (7.0, BORN + 1),  # growth: a change only
    }
    value, created = 1000.0, BORN
    for i in range(int(span / 10) + 1):
        at = i * 10.0
        value, created = events.get(at, (value, created))
        fields: dict[str, Value] = {"createdTime": datetime.fromtimestamp(created, UTC)}
        fields[BYTES] = value
        h.record(Sample(S1, fields, at, at))
    view = h.view(S1, span)
    assert view.resets(BYTES, window) == 2
    assert view.changes(BYTES, window) == 3


@pytest.mark.parametrize("window", [300.0, 7200.0])
def test_offset_is_the_value_a_window_ago(window: float) -> None:
    """`x offset w` reads the last point at or before now - w; none until history goes back."""
    h = history(("offset", RATE, window, None))
    feed(h, [(t, t) for t in range(0, int(window * 1.2), 10)])
    now = window * 1.2 - 10
    to_the = 10 if window <= 600 else BUCKET_S + 10  # beyond 10 minutes: to the minute
    assert h.view(S1, now).offset(RATE, window) == pytest.approx(now - window, abs=to_the)
    assert h.view(S1, window - 20).offset(RATE, window) is None


def test_offset_after_a_gap_longer_than_half_the_window_has_no_value() -> None:
    """A value from long before now - w (the stream was gone) is not passed off as then."""
    h = history(("offset", RATE, 300.0, None))
    feed(h, [(0.0, 1.0), (10.0, 1.0), (600.0, 2.0), (610.0, 2.0)])
    assert h.view(S1, 610.0).offset(RATE, 300.0) is None


def test_a_replayed_poll_is_not_counted_twice_in_a_minute() -> None:
    """The same poll recorded twice keeps the newest, in the minutes as in the points."""
    h = history(("avg_over", RATE, 1200.0, None))
    points = [(t * 10.0, 1.0) for t in range(200)]
    for at, value in points:
        feed(h, [(at, value)])
        feed(h, [(at, 100.0 if at == 500.0 else value)])  # recorded again, replacing it
        feed(h, [(at, value)])
    assert h.view(S1, 1990.0).avg_over(RATE, 1200.0) == 1.0


def test_long_windows_do_not_cost_memory_per_point() -> None:
    """Two hours at a 1 s interval keep at most a window of minutes, each a bounded sketch."""
    h = history(("median_over", RATE, 3600.0, None), ("stddev_over", RATE, 3600.0, None))
    feed(h, [(float(t), float(t % 97)) for t in range(7200)])
    (buckets,) = h._tracks[S1].buckets.values()
    assert len(buckets.idx) <= 3600 / BUCKET_S + 3
    assert len(buckets.vals) <= len(buckets.idx) * SKETCH_K
    assert len(h._tracks[S1].times) <= 2
    assert h.view(S1, 7199.0).median_over(RATE, 3600.0) is not None


def _minutes_points(
    points: list[tuple[float, float]], b: Buckets, now: float, window: float
) -> list[float]:
    """The points of the window's whole minutes, as the buckets should see them."""
    first = math.ceil((now - window - b.phase) / BUCKET_S)
    current = math.floor((now - b.phase) / BUCKET_S)
    return [v for t, v in points if first <= math.floor((t - b.phase) / BUCKET_S) < current]


@settings(max_examples=40, deadline=None)
@given(
    interval=st.sampled_from([1.0, 2.0, 5.0, 10.0, 15.0]),
    phase=st.integers(0, 59),
    q=st.sampled_from([0.0, 0.1, 0.5, 0.9, 0.99, 1.0]),
    seed=st.integers(0, 2**16),
    spread=st.sampled_from([3, 1000, 10**6]),
)
def test_minutes_answer_within_the_documented_bound(
    interval: float, phase: int, q: float, seed: int, spread: int
) -> None:
    """Against the exact answer over the same points: avg, min, max and stddev agree, and a
    quantile's true rank is within 1/(2·SKETCH_K) of q (exact at intervals of 4 s or more)."""
    window = 1800.0
    b = Buckets(float(phase), window, frozenset({"moments", "sketch", "extremes"}))
    points: list[tuple[float, float]] = []
    t, x = 0.0, seed
    while t < 2400:
        x = (x * 1103515245 + 12345) % 2**31
        points.append((t, float(1000 + x % spread)))  # integers: exact in float32
        b.feed(minute_of(t, b.phase), t, points[-1][1], 0.0, 0.0, False)
        t += interval
    now = points[-1][0]
    exact = sorted(_minutes_points(points, b, now, window))
    n = len(exact)
    assert b.aggregate("avg_over", now, window, q) == pytest.approx(statistics.fmean(exact))
    assert b.aggregate("min_over", now, window, q) == exact[0]
    assert b.aggregate("max_over", now, window, q) == exact[-1]
    assert b.aggregate("stddev_over", now, window, q) == pytest.approx(
        statistics.pstdev(exact), rel=1e-6, abs=1e-6
    )
    got = b.quantile(q, now, window)
    assert got is not None
    if interval * SKETCH_K >= BUCKET_S:
        from omealert.engine.stats import quantile

        assert got == pytest.approx(quantile(exact, q))
        return
    eps = 1 / (2 * SKETCH_K)
    at_or_below = sum(1 for v in exact if v <= got)
    below = sum(1 for v in exact if v < got)
    assert at_or_below >= (q - eps) * n - 1e-9
    assert below <= (q + eps) * n + 1e-9


def test_a_baseline_reads_whole_minutes_and_changes_once_a_minute() -> None:
    """A long window's value leaves out the unfinished minute: the anomaly stays out of it."""
    h = history(("median_over", RATE, 1800.0, None))
    feed(h, [(t * 10.0, 5e6) for t in range(300)])
    feed(h, [(3000.0, 1e5), (3010.0, 1e5)])
    phase = h._tracks[S1].buckets[RATE].phase
    assert h.view(S1, 3010.0).median_over(RATE, 1800.0) == 5e6
    assert phase == h._tracks[S1].buckets[RATE].phase  # fixed per target: every run alike


def test_rate_without_a_window_keeps_two_points_not_all() -> None:
    """`rate(x)` reads the last two polls: the history keeps two points, not every poll."""
    h = History.for_uses([("rate", BYTES, None, None)])
    feed(h, [(t * 10.0, t * 1000.0) for t in range(500)], path=BYTES)
    assert len(h._tracks[S1].times) == 2
    assert h.view(S1, 4990.0).rate(BYTES, None) == pytest.approx(100.0)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), gap=st.integers(0, 900), phase=st.integers(0, 59))
def test_the_sorted_window_slides_to_the_exact_answer_at_every_tick(
    seed: int, gap: int, phase: int
) -> None:
    """Moved along a minute at a time, even across a gap in the stream, the kept window
    gives the exact quantile of its whole minutes at every tick."""
    from omealert.engine.stats import quantile

    window = 1200.0
    b = Buckets(float(phase), window, frozenset({"sketch"}))
    points: list[tuple[float, float]] = []
    x, t = seed, 0.0
    while t < 3000:
        if 1500 <= t < 1500 + gap:  # the stream was gone for a while
            t += 10.0
            continue
        x = (x * 1103515245 + 12345) % 2**31
        points.append((t, float(x % 5000)))
        b.feed(minute_of(t, b.phase), t, points[-1][1], 0.0, 0.0, False)
        exact = sorted(_minutes_points(points, b, t, window))
        got = b.quantile(0.9, t, window)
        if got is not None:
            assert got == pytest.approx(quantile(exact, 0.9))
        t += 10.0
    if gap < 300:  # else the last 20 minutes hold under 10 whole minutes of points
        assert b.quantile(0.9, points[-1][0], window) is not None


def test_a_count_needs_the_window_watched_from_its_start_not_just_its_minute() -> None:
    """A first point 55 s into its minute: at 170 s a 2-minute count has no value yet."""
    b = Buckets(0.0, 120.0, frozenset({"counts"}))
    for t in range(55, 240, 10):
        b.feed(minute_of(t, 0.0), float(t), 1.0, 0.0, 0.0, False)
        if t < 175:
            assert b.count_since("changes", float(t), 120.0) is None
    assert b.count_since("changes", 235.0, 120.0) == 0


def test_a_reload_keeps_baselines_it_covers_and_refills_longer_ones() -> None:
    """Same rules: the hour seen so far stays; a longer window starts over with no value."""
    from omealert.engine.engine import Engine
    from omealert.model import PollResult

    from ..helpers import rule, settings

    text = "video.bitrateLatest < 50% * median_over(video.bitrateLatest, 1h)"
    engine = Engine(settings(rule("low", text)))
    fired = []
    for i in range(400):
        poll = PollResult("origin", i * 10.0, i * 10.0)
        poll.samples[S1] = Sample(S1, {RATE: 5e6 if i < 390 else 1e6}, i * 10.0, i * 10.0)
        poll.listed.add(S1)
        fired += [(i, t.to_state.value) for t in engine.step([poll], i * 10.0)]
    assert fired == [(390, "firing")]
    kept = engine.history
    engine.reload(settings(rule("low", text)), 3990.0)
    assert engine.history is kept
    engine.reload(settings(rule("low", text.replace("1h", "2h"))), 3990.0)
    assert engine.history is not kept
    assert engine.history.view(S1, 3990.0).median_over(RATE, 7200.0) is None


def test_check_reads_its_two_polls_as_the_whole_window() -> None:
    """`omealert check` (lenient) samples two polls 5 s apart: baselines read just those."""
    uses = [
        ("median_over", RATE, 3600.0, None),
        ("changes", RATE, 3600.0, None),
        ("offset", RATE, 86400.0, None),
    ]
    h = History.for_uses(uses, lenient=True)
    feed(h, [(0.0, 4.0), (5.0, 6.0)])
    view = h.view(S1, 5.0)
    assert view.median_over(RATE, 3600.0) == 5.0
    assert view.changes(RATE, 3600.0) == 1
    assert view.offset(RATE, 86400.0) == 4.0
