"""History: the windows rate(), delta() and *_over() read, and what the history keeps."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omealert.engine.history import History
from omealert.model import Sample, Target, Value

S1 = Target("origin", "default", "app", "s1")
BORN = datetime(2026, 11, 1, tzinfo=UTC)
REBORN = datetime(2026, 11, 2, tzinfo=UTC)


def sample(at: float, target: Target = S1, created: datetime = BORN, **fields: Value) -> Sample:
    values: dict[str, Value] = {"createdTime": created}
    values.update({k.replace("__", "."): v for k, v in fields.items()})
    return Sample(target, values, at, at)


def bytes_in(history: History, points: list[tuple[float, float]], **kw: datetime) -> None:
    for at, value in points:
        history.record(sample(at, providers__totalBytesIn=value, **kw))


PATH = "providers.totalBytesIn"


def test_rate_is_the_increase_over_the_window_per_second() -> None:
    """Six points 10 s apart rising 1,000 each: 100 B/s over a 50 s window."""
    history = History([PATH], 60.0)
    bytes_in(history, [(t, t * 100.0) for t in range(0, 60, 10)])
    assert history.view(S1, 50.0).rate(PATH, 60.0) == pytest.approx(100.0)


def test_a_counter_drop_is_a_restart_not_negative_traffic() -> None:
    """After a drop the new value is the increase since the restart."""
    history = History([PATH], 60.0)
    bytes_in(history, [(0, 1000.0), (10, 2000.0), (20, 300.0), (30, 800.0)])
    # 1000 before the restart, 300 since it, then 500: 1800 over 30 s
    assert history.view(S1, 30.0).rate(PATH, 60.0) == pytest.approx(60.0)


def test_a_new_created_time_is_a_restart_even_when_the_counter_grew() -> None:
    """OME restarted between polls and its counter already passed the old value."""
    history = History([PATH], 60.0)
    bytes_in(history, [(0, 1000.0), (10, 2000.0)])
    bytes_in(history, [(20, 5000.0)], created=REBORN)
    assert history.view(S1, 20.0).rate(PATH, 40.0) == pytest.approx((1000.0 + 5000.0) / 20)


def test_a_window_observed_for_less_than_half_its_length_has_no_value() -> None:
    """Two points 10 s apart are not enough for a 1 minute window: no value, never 0."""
    history = History([PATH], 60.0)
    bytes_in(history, [(0, 0.0), (10, 1000.0)])
    view = history.view(S1, 10.0)
    assert view.rate(PATH, 60.0) is None
    assert view.delta(PATH, 60.0) is None
    assert view.rate(PATH, None) == pytest.approx(100.0)  # last two points, no window


def test_lenient_history_takes_any_two_points() -> None:
    """``check`` without state polls twice, seconds apart; that is enough there."""
    history = History([PATH], 600.0, lenient=True)
    bytes_in(history, [(0, 0.0), (2, 1000.0)])
    assert history.view(S1, 2.0).rate(PATH, 600.0) == pytest.approx(500.0)


def test_over_functions_skip_points_where_the_field_was_missing() -> None:
    """A sample without the field leaves a gap, not a zero, in avg/min/max and delta."""
    path = "video.framerateLatest"
    history = History([path], 60.0)
    for at, fps in [(0, 30.0), (10, None), (20, 20.0), (30, 25.0), (40, None)]:
        fields = {"video__framerateLatest": fps} if fps is not None else {}
        history.record(sample(at, **fields))
    view = history.view(S1, 40.0)
    assert view.avg_over(path, 60.0) == pytest.approx(25.0)
    assert view.min_over(path, 60.0) == 20.0
    assert view.max_over(path, 60.0) == 30.0
    assert view.delta(path, 60.0) == -5.0


def test_booleans_and_strings_are_not_numbers() -> None:
    """A field of the wrong type is a gap; with fewer than two numbers there is no value."""
    path = "video.hasBframes"
    history = History([path], 60.0)
    history.record(sample(0, video__hasBframes=True))
    history.record(sample(30, video__hasBframes="yes"))
    history.record(sample(60, video__hasBframes=1))
    assert history.view(S1, 60.0).avg_over(path, 60.0) is None


def test_the_same_poll_recorded_twice_keeps_the_newest() -> None:
    """A repeated timestamp replaces the point instead of adding a zero-length step."""
    history = History([PATH], 60.0, rate_fields=[PATH], value_fields=[])
    bytes_in(history, [(0, 0.0), (30, 3000.0), (30, 6000.0)])
    assert history.points() == 2
    assert history.view(S1, 30.0).rate(PATH, 60.0) == pytest.approx(200.0)


def test_a_replaced_point_takes_back_its_increase() -> None:
    """A lower reading replacing the newest one is not a counter restart."""
    history = History([PATH], 60.0, rate_fields=[PATH], value_fields=[])
    bytes_in(history, [(0, 0.0), (30, 3000.0), (30, 1500.0)])
    assert history.view(S1, 30.0).rate(PATH, 60.0) == pytest.approx(50.0)


def test_only_the_longest_window_is_kept() -> None:
    """Memory is bounded by the longest window whatever the run time."""
    avg = "providers.avgThroughputIn"
    history = History([PATH, avg], 60.0, rate_fields=[PATH], value_fields=[avg])
    for at in range(0, 3600, 10):
        history.record(sample(at, providers__totalBytesIn=at, providers__avgThroughputIn=1.0))
    # 3590 - 60 = 3530 is the window's first point: 3530, 3540, …, 3590 are kept
    assert history.series() == 2
    assert history.points() == 2 * 7
    assert history.view(S1, 3590.0).rate(PATH, 60.0) == pytest.approx(1.0)
    assert history.view(S1, 3590.0).avg_over(avg, 60.0) == 1.0
    assert history.view(S1, 3590.0).avg_over(PATH, 60.0) is None  # no values kept for rate()


def test_a_target_not_seen_for_longer_than_the_window_is_forgotten() -> None:
    """A stream that ended leaves nothing behind once its window has passed."""
    history = History([PATH], 60.0)
    other = Target("origin", "default", "app", "s2")
    bytes_in(history, [(0, 0.0), (10, 10.0)])
    history.record(sample(100, other, providers__totalBytesIn=1.0))
    history.prune(65.0)
    assert len(history) == 2
    history.prune(71.0)
    assert len(history) == 1
    assert history.view(S1, 71.0).rate(PATH, None) is None


def test_pruning_after_polling_some_servers_forgets_only_their_targets() -> None:
    """An early poll of one server says nothing of another's streams: they stay."""
    history = History([PATH], 0.0)
    edge = Target("edge", "default", "app", "s1")
    bytes_in(history, [(0, 0.0), (10, 10.0)])
    history.record(sample(0, edge, providers__totalBytesIn=1.0))
    history.prune(30.0, {"edge"})
    assert len(history) == 1 and history.view(S1, 30.0).rate(PATH, None) == 1.0


def test_points_after_now_are_not_in_the_window() -> None:
    """Evaluating at an earlier time (a replay) sees only what had happened by then."""
    history = History([PATH], 60.0)
    bytes_in(history, [(t, t * 10.0) for t in range(0, 70, 10)])
    assert history.view(S1, 40.0).delta(PATH, 60.0) == 400.0


def reference_rate(
    points: list[tuple[float, float, float]], now: float, window: float
) -> float | None:
    """rate() as the README defines it, written the plain way for comparison."""
    inside = [p for p in points if now - window <= p[0] <= now]
    if len(inside) < 2 or inside[-1][0] - inside[0][0] < window * 0.5:
        return None
    total = 0.0
    for (_, before, life_before), (_, value, life) in itertools.pairwise(inside):
        total += value if value < before or life != life_before else value - before
    return total / (inside[-1][0] - inside[0][0])


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=30),  # seconds since the previous poll
            st.integers(min_value=-5_000, max_value=50_000),  # counter change; < 0 drops
            st.booleans(),  # OME restarted (a new createdTime)
        ),
        min_size=1,
        max_size=60,
    ),
    window=st.sampled_from([30.0, 60.0, 300.0]),
    gap_at=st.one_of(st.none(), st.integers(min_value=0, max_value=59)),
)
def test_rate_equals_the_plain_definition(
    steps: list[tuple[int, int, bool]], window: float, gap_at: int | None
) -> None:
    """Running sums (and the walk used once a field had a gap) agree with the definition."""
    history = History([PATH], 300.0)
    points: list[tuple[float, float, float]] = []
    at, value, life = 0.0, 1_000, 0
    for i, (step, change, restarted) in enumerate(steps):
        at += step
        life += restarted
        value = max(0, value + change) if not restarted else max(0, change)
        created = datetime.fromtimestamp(1_700_000_000 + life, UTC)
        if i == gap_at:
            history.record(sample(at, created=created))  # the field is missing this poll
            continue
        history.record(sample(at, created=created, providers__totalBytesIn=value))
        points.append((at, float(value), created.timestamp()))
    expected = reference_rate(points, at, window)
    got = history.view(S1, at).rate(PATH, window)
    assert got == pytest.approx(expected) if expected is not None else got is None
