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
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime

from ..model import Sample, Target

_NAN = math.nan


class _Counter:
    """Where a counter's running increase stands: its last value, that value's life, the sum.

    ``undo`` is the state before the newest point, for when that point is replaced.
    """

    __slots__ = ("created", "total", "undo", "value")

    def __init__(self) -> None:
        self.value: float | None = None
        self.created = 0.0
        self.total = 0.0
        self.undo: tuple[float | None, float, float] = (None, 0.0, 0.0)

    def add(self, value: float, created: float) -> float:
        """Account for a new reading; a drop or a new ``createdTime`` is a restart.

        After a restart the counter starts again from 0, so the new value itself is the
        increase since the restart, never a negative amount of traffic.
        """
        self.undo = (self.value, self.created, self.total)
        before = self.value
        if before is not None:
            same_life = created == self.created and value >= before
            self.total += value - before if same_life else value
        self.value, self.created = value, created
        return self.total

    def skip(self) -> None:
        """No reading this poll: the sum stands still, and replacing the point changes nothing."""
        self.undo = (self.value, self.created, self.total)

    def revert(self) -> None:
        self.value, self.created, self.total = self.undo


class _Track:
    """One target's points, column by column; a missing or non-numeric value is NaN."""

    __slots__ = ("counters", "has_gaps", "increases", "last_seen", "times", "values")

    def __init__(self, value_paths: Iterable[str], rate_paths: Iterable[str]) -> None:
        self.times = array("d")
        self.values = {path: array("d") for path in value_paths}
        self.increases = {path: array("d") for path in rate_paths}
        self.counters = {path: _Counter() for path in self.increases}
        #: set once a value column holds a NaN; its windows then filter, others just slice
        self.has_gaps = False
        self.last_seen = 0.0

    def columns(self) -> Iterable[array[float]]:
        yield self.times
        yield from self.values.values()
        yield from self.increases.values()

    def drop_newest(self) -> None:
        for column in self.columns():
            column.pop()
        for counter in self.counters.values():
            counter.revert()  # every record() set each counter's undo

    def drop_oldest(self, count: int) -> None:
        for column in self.columns():
            del column[:count]


def _number(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return _NAN


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
        ``rate()``) and ``value_fields`` (read by the others) say which needs what."""
        self.fields = frozenset(fields)
        self.rate_fields = self.fields if rate_fields is None else frozenset(rate_fields)
        self.value_fields = self.fields if value_fields is None else frozenset(value_fields)
        self.max_window = max_window
        #: ``check`` without state samples a short window: any two points then make a value.
        self.lenient = lenient
        self._value_paths = tuple(sorted(self.value_fields))
        self._rate_paths = tuple(sorted(self.rate_fields))
        self._tracks: dict[Target, _Track] = {}

    def record(self, sample: Sample) -> None:
        if not self.fields:
            return
        fields = sample.fields
        track = self._tracks.get(sample.target)
        if track is None:
            track = self._tracks[sample.target] = _Track(self._value_paths, self._rate_paths)
        at = sample.at
        times = track.times
        if times and times[-1] >= at:
            track.drop_newest()  # same poll recorded twice: keep the newest
        times.append(at)
        for path, column in track.values.items():
            value = _number(fields.get(path))
            if value != value:
                track.has_gaps = True
            column.append(value)
        if track.increases:
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
        track.last_seen = at
        # Keep the longest window, starting at its last point at or before the window's
        # start, and at least two points for rate() without a window.
        stale = bisect_right(times, at - self.max_window) - 1
        if stale > 0 and len(times) - stale >= 2:
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
        """Stored numbers over all targets and columns, times excluded (for benchmarks)."""
        return sum(len(t.times) * (len(t.values) + len(t.increases)) for t in self._tracks.values())

    def series(self) -> int:
        """Number of (target, field) columns kept."""
        return sum(len(t.values) + len(t.increases) for t in self._tracks.values())

    def __len__(self) -> int:
        return len(self._tracks)


class TargetHistory:
    """The ``HistoryView`` the condition language calls, for one target at one time."""

    __slots__ = ("_lenient", "_now", "_track")

    def __init__(self, track: _Track | None, now: float, lenient: bool) -> None:
        self._track = track
        self._now = now
        self._lenient = lenient

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
        got = self._values(path, window)
        return None if got is None else sum(got) / len(got)

    def min_over(self, path: str, window: float) -> float | None:
        got = self._values(path, window)
        return None if got is None else min(got)

    def max_over(self, path: str, window: float) -> float | None:
        got = self._values(path, window)
        return None if got is None else max(got)


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
