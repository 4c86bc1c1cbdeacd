"""History: the windows rate(), delta() and *_over() read, and what the history keeps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from omealert.history import History
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
    history = History([PATH], 60.0)
    bytes_in(history, [(0, 0.0), (30, 3000.0), (30, 6000.0)])
    assert history.points() == 2
    assert history.view(S1, 30.0).rate(PATH, 60.0) == pytest.approx(200.0)


def test_only_the_longest_window_is_kept() -> None:
    """Memory is bounded by the longest window whatever the run time."""
    history = History([PATH, "providers.avgThroughputIn"], 60.0)
    for at in range(0, 3600, 10):
        history.record(sample(at, providers__totalBytesIn=at, providers__avgThroughputIn=1.0))
    # 3590 - 60 = 3530 is the window's first point: 3530, 3540, …, 3590 are kept
    assert history.series() == 2
    assert history.points() == 2 * 7
    assert history.view(S1, 3590.0).rate(PATH, 60.0) == pytest.approx(1.0)


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


def test_points_after_now_are_not_in_the_window() -> None:
    """Evaluating at an earlier time (a replay) sees only what had happened by then."""
    history = History([PATH], 60.0)
    bytes_in(history, [(t, t * 10.0) for t in range(0, 70, 10)])
    assert history.view(S1, 40.0).delta(PATH, 60.0) == 400.0
