"""Per-target history of the fields that rate(), delta() and *_over() read.

Only fields some rule uses inside a history function are kept, only in the form that
function needs, and only for as long as the longest window any rule uses, so memory grows
with what the rules need, not with the size of OME's answers.

Points are stored column-wise in ``array('d')``: one array of times per target, and per
field either its values (for ``delta()`` and ``*_over()``) or the running sum of its
counter's increases (for ``rate()``), or both. A tuple per point cost ~137 bytes of RSS; a
column costs 8 bytes per point and field. ``rate()`` over a window is then two bisections
and a subtraction, whatever the window's length.
"""

from __future__ import annotations

import math
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime

from ..model import Sample, Target
from .buckets import BUCKET_S, EXACT_LIMIT, Buckets, minute_of
from .needs import Needs, Use, needs_of, offset_slack
from .running import Counter, Steps
from .stats import pstddev, quantile

_NAN = math.nan


class _Track:
    """One target's points, column by column; a missing or non-numeric value is NaN."""

    __slots__ = (
        "buckets", "changes", "counters", "has_gaps", "increases", "last_seen", "phase",
        "restarts", "steps", "times", "values",
    )  # fmt: skip

    def __init__(self, needs: Needs, phase: float) -> None:
        self.times = array("d")
        self.values = {path: array("d") for path in needs.value_paths}
        self.increases = {path: array("d") for path in needs.rate_paths}
        self.counters = {path: Counter() for path in self.increases}
        self.steps = {path: Steps() for path in needs.step_paths}
        self.changes = {path: array("d") for path in needs.step_paths}
        self.restarts = {path: array("d") for path in needs.step_paths}
        keep = needs.long_window
        self.phase = phase
        self.buckets = {
            path: Buckets(phase, keep, kinds) for path, kinds in needs.long_paths.items()
        }
        #: set once a value column holds a NaN; its windows then filter, others just slice
        self.has_gaps = False
        self.last_seen = 0.0

    def columns(self) -> Iterable[array[float]]:
        yield self.times
        yield from self.values.values()
        yield from self.increases.values()
        yield from self.changes.values()
        yield from self.restarts.values()

    def drop_newest(self) -> None:
        for column in self.columns():
            column.pop()
        for counter in self.counters.values():
            counter.revert()  # every record() set each counter's undo
        for steps in self.steps.values():
            steps.revert()

    def drop_oldest(self, count: int) -> None:
        for column in self.columns():
            del column[:count]


def _number(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return _NAN


def _step(value: object) -> float:
    """What changes() compares: a number, a timestamp's epoch, or a flag as 0/1."""
    if isinstance(value, int | float):
        return float(value)
    return value.timestamp() if isinstance(value, datetime) else _NAN


class History:
    """Rolling windows of numbers per (target, field)."""

    def __init__(
        self,
        fields: Iterable[str],
        max_window: float,
        *,
        lenient: bool = False,
        rate_fields: Iterable[str] | None = None,
        value_fields: Iterable[str] | None = None,
    ) -> None:
        """``fields`` kept for every history function, unless ``rate_fields`` (read by
        ``rate()``) and ``value_fields`` (read by the others) say which needs what.
        ``History.for_uses`` derives all of it from what the conditions read."""
        fields = frozenset(fields)
        self.needs = Needs(
            rate_paths=fields if rate_fields is None else frozenset(rate_fields),
            value_paths=fields if value_fields is None else frozenset(value_fields),
            exact_window=max_window,
        )
        #: ``check`` without state samples a short window: any two points then make a value.
        self.lenient = lenient
        self._setup()

    @classmethod
    def for_uses(cls, uses: Iterable[Use], *, lenient: bool = False) -> History:
        """The history a set of conditions' (function, field, window, quantile) needs."""
        self = cls.__new__(cls)
        self.needs = needs_of(uses, lenient=lenient)
        self.lenient = lenient
        self._setup()
        return self

    def _setup(self) -> None:
        needs = self.needs
        self.fields = needs.fields
        self.rate_fields = needs.rate_paths
        self.value_fields = needs.value_paths
        self.max_window = max(needs.exact_window, needs.long_window)
        self._exact_window = needs.exact_window
        self._tracks: dict[Target, _Track] = {}

    def record(self, sample: Sample) -> None:
        if not self.fields:
            return
        fields = sample.fields
        track = self._tracks.get(sample.target)
        if track is None:
            phase = zlib.crc32(repr(sample.target).encode()) % int(BUCKET_S)
            track = self._tracks[sample.target] = _Track(self.needs, float(phase))
        at = sample.at
        times = track.times
        replace = bool(times) and times[-1] >= at
        if replace:
            track.drop_newest()  # same poll recorded twice: keep the newest
        times.append(at)
        for path, column in track.values.items():
            value = _number(fields.get(path))
            if value != value:
                track.has_gaps = True
            column.append(value)
        created_epoch = 0.0
        if track.increases or track.steps:
            created = fields.get("createdTime")
            created_epoch = created.timestamp() if isinstance(created, datetime) else 0.0
            for path, running in track.increases.items():
                value = _number(fields.get(path))
                counter = track.counters[path]
                if value != value:  # NaN: no reading
                    counter.skip()
                    running.append(_NAN)
                else:
                    running.append(counter.add(value, created_epoch))
        for path, steps in track.steps.items():
            steps.add(_step(fields.get(path)), created_epoch)
            track.changes[path].append(steps.changes)
            track.restarts[path].append(steps.restarts)
        if track.buckets:
            minute = minute_of(at, track.phase)
            counted = track.steps
            for path, buckets in track.buckets.items():
                raw = fields.get(path)
                kind = type(raw)  # not isinstance: a bool is no number here
                value = float(raw) if kind is float or kind is int else _NAN  # type: ignore[arg-type]
                counts = counted.get(path) if counted else None
                if counts is None:
                    buckets.feed(minute, at, value, 0.0, 0.0, replace)
                else:
                    buckets.feed(minute, at, value, counts.changes, counts.restarts, replace)
        track.last_seen = at
        # Keep the longest exact window, starting at its last point at or before the
        # window's start, and at least two points for rate() without a window.
        stale = min(bisect_right(times, at - self._exact_window) - 1, len(times) - 2)
        if stale > 0:
            track.drop_oldest(stale)

    def prune(self, now: float, servers: Collection[str] | None = None) -> None:
        """Forget targets not seen for longer than the longest window (the stream ended);
        only of ``servers`` (None: all), those whose every target a poll just looked for."""
        horizon = now - max(self.max_window, 1.0)
        gone = [
            t
            for t, track in self._tracks.items()
            if track.last_seen < horizon and (servers is None or t.server in servers)
        ]
        for target in gone:
            del self._tracks[target]

    def view(self, target: Target, now: float) -> TargetHistory:
        return TargetHistory(self._tracks.get(target), now, self.lenient)

    def points(self) -> int:
        """Stored points over all targets and columns, times excluded (for benchmarks);
        a closed minute of a long window counts as one."""
        return sum(
            len(t.times) * (len(t.values) + len(t.increases) + 2 * len(t.steps))
            + sum(len(b.idx) for b in t.buckets.values())
            for t in self._tracks.values()
        )

    def series(self) -> int:
        """Number of (target, field) columns kept."""
        return sum(
            len(t.values) + len(t.increases) + 2 * len(t.steps) + len(t.buckets)
            for t in self._tracks.values()
        )

    def __len__(self) -> int:
        return len(self._tracks)


class TargetHistory:
    """The ``HistoryView`` the condition language calls, for one target at one time."""

    __slots__ = ("_lenient", "_limit", "_now", "_track")

    def __init__(self, track: _Track | None, now: float, lenient: bool) -> None:
        self._track = track
        self._now = now
        self._lenient = lenient
        #: windows longer than this are read from minutes (``engine.buckets``)
        self._limit = math.inf if lenient else EXACT_LIMIT

    def _bounds(self, track: _Track, window: float) -> tuple[int, int]:
        times = track.times
        lo = bisect_left(times, self._now - window)
        return lo, bisect_right(times, self._now, lo)

    def _observed(self, first: float, last: float, window: float) -> bool:
        """Enough of the window seen to tell: else "no value", never 0."""
        return self._lenient or last - first >= window * 0.5

    def rate(self, path: str, window: float | None) -> float | None:
        track = self._track
        if track is None:
            return None
        running = track.increases.get(path)
        if running is None:
            return None
        times = track.times
        if window is None:  # the last two readings
            last = _reading_at_or_before(running, len(times) - 1, 0)
            first = _reading_at_or_before(running, last - 1, 0)
            if first < 0:
                return None
        else:  # the window's first and last readings
            # inlined rather than _bounds()/_observed(): this runs for every stream per tick
            now = self._now
            lo = bisect_left(times, now - window)
            first = lo
            last = bisect_right(times, now, lo) - 1
            if last >= lo and running[last] != running[last]:  # NaN: no reading there
                last = _reading_at_or_before(running, last, lo)
            if first < last and running[first] != running[first]:
                first = _reading_at_or_after(running, first, last)
            if first >= last:
                return None
            if not self._lenient and times[last] - times[first] < window * 0.5:
                return None  # not enough of the window observed yet: "no value", never 0
        elapsed = times[last] - times[first]
        if elapsed <= 0:
            return None
        return (running[last] - running[first]) / elapsed

    def _values(self, path: str, window: float) -> Sequence[float] | None:
        track = self._track
        if track is None:
            return None
        column = track.values.get(path)
        if column is None:
            return None
        lo, hi = self._bounds(track, window)
        if hi - lo < 2:
            return None
        times: Sequence[float] = track.times[lo:hi]
        values: Sequence[float] = column[lo:hi]
        if track.has_gaps:
            keep = [i for i, v in enumerate(values) if v == v]  # NaN != NaN
            if len(keep) < len(values):
                times = [times[i] for i in keep]
                values = [values[i] for i in keep]
        if len(values) < 2 or not self._observed(times[0], times[-1], window):
            return None
        return values

    def delta(self, path: str, window: float) -> float | None:
        got = self._values(path, window)
        return None if got is None else got[-1] - got[0]

    def avg_over(self, path: str, window: float) -> float | None:
        if window > self._limit:
            return self._long("avg_over", path, window)
        got = self._values(path, window)
        return None if got is None else sum(got) / len(got)

    def min_over(self, path: str, window: float) -> float | None:
        if window > self._limit:
            return self._long("min_over", path, window)
        got = self._values(path, window)
        return None if got is None else min(got)

    def max_over(self, path: str, window: float) -> float | None:
        if window > self._limit:
            return self._long("max_over", path, window)
        got = self._values(path, window)
        return None if got is None else max(got)

    # -- baselines: exact up to EXACT_LIMIT, from minutes (engine.buckets) beyond

    def _long(self, func: str, path: str, window: float, q: float = 0.5) -> float | None:
        track = self._track
        buckets = None if track is None else track.buckets.get(path)
        return None if buckets is None else buckets.aggregate(func, self._now, window, q)

    def median_over(self, path: str, window: float) -> float | None:
        if window > self._limit:  # as quantile_over, one call less: it runs per stream per tick
            track = self._track
            buckets = None if track is None else track.buckets.get(path)
            return None if buckets is None else buckets.quantile(0.5, self._now, window)
        return self.quantile_over(0.5, path, window)

    def quantile_over(self, q: float, path: str, window: float) -> float | None:
        if window > self._limit:
            track = self._track
            buckets = None if track is None else track.buckets.get(path)
            return None if buckets is None else buckets.quantile(q, self._now, window)
        got = self._values(path, window)
        return None if got is None else quantile(sorted(got), q)

    def stddev_over(self, path: str, window: float) -> float | None:
        if window > self._limit:
            return self._long("stddev_over", path, window)
        got = self._values(path, window)
        return None if got is None else pstddev(got)

    def changes(self, path: str, window: float) -> float | None:
        return self._count("changes", path, window)

    def resets(self, path: str, window: float) -> float | None:
        return self._count("resets", path, window)

    def _count(self, which: str, path: str, window: float) -> float | None:
        """Changes (restarts) whose later point lies in the window; no value unless the
        target was watched since before the window began (a part would undercount, and
        ``changes(x, 1h) == 0`` would hold falsely right after a start)."""
        track = self._track
        if track is None:
            return None
        if window > self._limit:
            buckets = track.buckets.get(path)
            return None if buckets is None else buckets.count_since(which, self._now, window)
        column = (track.changes if which == "changes" else track.restarts).get(path)
        times = track.times
        if column is None or not times:
            return None
        if not self._lenient and times[0] > self._now - window:
            return None
        lo, hi = self._bounds(track, window)
        if hi < 1 or (self._lenient and hi - lo < 2):
            return None
        return column[hi - 1] - column[max(lo - 1, 0)]

    def offset(self, path: str, window: float) -> float | None:
        """The last reading at or before ``now - window``, no more than ``offset_slack`` older."""
        track = self._track
        if track is None:
            return None
        if window > self._limit:
            buckets = track.buckets.get(path)
            if buckets is None:
                return None
            return buckets.value_at(self._now, window, offset_slack(window))
        column = track.values.get(path)
        if column is None:
            return None
        then = self._now - window
        times = track.times
        last = _reading_at_or_before(column, bisect_right(times, then) - 1, 0)
        if last < 0 and self._lenient:  # `check`: the oldest of its two polls
            last = _reading_at_or_after(column, 0, len(times) - 1)
        elif last < 0 or times[last] < then - offset_slack(window):
            return None
        return column[last]


def _reading_at_or_before(column: array[float], index: int, floor: int) -> int:
    """The last index from ``index`` down to ``floor`` that holds a reading (not NaN)."""
    while index >= floor and column[index] != column[index]:
        index -= 1
    return index


def _reading_at_or_after(column: array[float], index: int, ceiling: int) -> int:
    """The first index from ``index`` up to ``ceiling`` that holds a reading (not NaN)."""
    while index < ceiling and column[index] != column[index]:
        index += 1
    return index
