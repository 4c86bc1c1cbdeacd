"""Per-target history of the fields that rate(), delta() and *_over() read.

Only fields some rule uses inside a history function are kept, and only for as long as
the longest window any rule uses, so memory grows with
what the rules need, not with the size of OME's answers.

Points are stored column-wise in ``array('d')``: one array of times and one of
``createdTime`` shared by all fields of a target, and one array of values per field. A
tuple per point cost ~137 bytes of RSS; a column costs 8 bytes per point and field, which
is what lets a watcher keep 10 minutes of two counters for 10,000 streams in ~20 MB.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from datetime import datetime

from .model import Sample, Target

_NAN = math.nan


class _Track:
    """One target's points, column by column; a missing or non-numeric value is NaN.

    ``increases`` holds, per field, the running sum of the counter's increases (restarts
    counted as such), so ``rate()`` over any window is one subtraction instead of a walk
    over the window's points. It grows without bound over a target's life; a double keeps
    whole bytes exact up to 2**53 (~9 PB), far beyond any one stream.
    """

    __slots__ = ("created", "has_gaps", "increases", "last_seen", "times", "values")

    def __init__(self, paths: Iterable[str]) -> None:
        self.times = array("d")
        self.created = array("d")
        self.values = {path: array("d") for path in paths}
        self.increases = {path: array("d") for path in paths}
        #: set once a NaN is stored; windows then filter, otherwise they slice straight away
        self.has_gaps = False
        self.last_seen = 0.0

    def drop_newest(self) -> None:
        self.times.pop()
        self.created.pop()
        for column in self.values.values():
            column.pop()
        for column in self.increases.values():
            column.pop()

    def drop_oldest(self, count: int) -> None:
        del self.times[:count]
        del self.created[:count]
        for column in self.values.values():
            del column[:count]
        for column in self.increases.values():
            del column[:count]


class History:
    """Rolling windows of numbers per (target, field)."""

    def __init__(self, fields: Iterable[str], max_window: float, *, lenient: bool = False) -> None:
        self.fields = frozenset(fields)
        self.max_window = max_window
        #: ``check`` without state samples a short window: any two points then make a value.
        self.lenient = lenient
        self._paths = tuple(sorted(self.fields))
        self._tracks: dict[Target, _Track] = {}

    def record(self, sample: Sample) -> None:
        if not self._paths:
            return
        fields = sample.fields
        created = fields.get("createdTime")
        created_epoch = created.timestamp() if isinstance(created, datetime) else 0.0
        track = self._tracks.get(sample.target)
        if track is None:
            track = self._tracks[sample.target] = _Track(self._paths)
        at = sample.at
        times = track.times
        if times and times[-1] >= at:
            track.drop_newest()  # same poll recorded twice: keep the newest
        same_life = bool(times) and track.created[-1] == created_epoch
        times.append(at)
        track.created.append(created_epoch)
        increases = track.increases
        for path, column in track.values.items():
            value = fields.get(path)
            if not isinstance(value, int | float) or isinstance(value, bool):
                value = _NAN
                track.has_gaps = True
            running = increases[path]
            if not running:
                running.append(0.0)
            elif same_life and value >= column[-1]:
                running.append(running[-1] + (value - column[-1]))
            else:  # a restart: the counter's new value is all the increase since
                running.append(running[-1] + value)
            column.append(value)
        track.last_seen = at
        # Keep the longest window, starting at its last point at or before the window's
        # start, and at least two points for rate() without a window.
        stale = bisect_right(times, at - self.max_window) - 1
        if stale > 0 and len(times) - stale >= 2:
            track.drop_oldest(stale)

    def prune(self, now: float) -> None:
        """Forget targets not seen for longer than the longest window (the stream ended)."""
        horizon = now - max(self.max_window, 1.0)
        gone = [t for t, track in self._tracks.items() if track.last_seen < horizon]
        for target in gone:
            del self._tracks[target]

    def view(self, target: Target, now: float) -> TargetHistory:
        return TargetHistory(self._tracks.get(target), now, self.lenient)

    def points(self) -> int:
        """Stored values over all targets and fields (for benchmarks and status)."""
        return sum(len(t.times) * len(t.values) for t in self._tracks.values())

    def series(self) -> int:
        """Number of (target, field) series kept."""
        return sum(len(t.values) for t in self._tracks.values())

    def __len__(self) -> int:
        return len(self._tracks)


#: The points of one field inside a window, gap-free: (times, values, createdTime).
_Points = tuple[Sequence[float], Sequence[float], Sequence[float]]


class TargetHistory:
    """The ``HistoryView`` the condition language calls, for one target at one time."""

    __slots__ = ("_lenient", "_now", "_track")

    def __init__(self, track: _Track | None, now: float, lenient: bool) -> None:
        self._track = track
        self._now = now
        self._lenient = lenient

    def _points(self, track: _Track, path: str, lo: int, hi: int) -> _Points | None:
        column = track.values.get(path)
        if column is None:
            return None
        times: Sequence[float] = track.times[lo:hi]
        values: Sequence[float] = column[lo:hi]
        created: Sequence[float] = track.created[lo:hi]
        if track.has_gaps:
            keep = [i for i, v in enumerate(values) if v == v]  # NaN != NaN
            if len(keep) < len(values):
                times = [times[i] for i in keep]
                values = [values[i] for i in keep]
                created = [created[i] for i in keep]
        if len(values) < 2:
            return None
        return times, values, created

    def _window(self, path: str, window: float) -> _Points | None:
        track = self._track
        if track is None:
            return None
        times = track.times
        now = self._now
        lo = bisect_left(times, now - window)
        hi = bisect_right(times, now, lo)
        if hi - lo < 2:
            return None
        got = self._points(track, path, lo, hi)
        if got is None:
            return None
        if not self._lenient and got[0][-1] - got[0][0] < window * 0.5:
            return None  # not enough of the window observed yet: "no value", never 0
        return got

    def rate(self, path: str, window: float | None) -> float | None:
        track = self._track
        if track is not None and not track.has_gaps:
            return self._fast_rate(track, path, window)
        if window is None:
            track = self._track
            if track is None:
                return None
            got = self._points(track, path, 0, len(track.times))
            if got is not None and len(got[1]) > 2:
                got = got[0][-2:], got[1][-2:], got[2][-2:]
        else:
            got = self._window(path, window)
        if got is None:
            return None
        times, values, created = got
        elapsed = times[-1] - times[0]
        if elapsed <= 0:
            return None
        return _increase(values, created) / elapsed

    def _fast_rate(self, track: _Track, path: str, window: float | None) -> float | None:
        """``rate()`` from the running increases, for a track without gaps."""
        running = track.increases.get(path)
        if running is None:
            return None
        times = track.times
        if window is None:
            lo, hi = len(times) - 2, len(times)
            if lo < 0:
                return None
        else:
            now = self._now
            lo = bisect_left(times, now - window)
            hi = bisect_right(times, now, lo)
            if hi - lo < 2:
                return None
            if not self._lenient and times[hi - 1] - times[lo] < window * 0.5:
                return None  # not enough of the window observed yet: "no value", never 0
        elapsed = times[hi - 1] - times[lo]
        if elapsed <= 0:
            return None
        return (running[hi - 1] - running[lo]) / elapsed

    def delta(self, path: str, window: float) -> float | None:
        got = self._window(path, window)
        return None if got is None else got[1][-1] - got[1][0]

    def avg_over(self, path: str, window: float) -> float | None:
        got = self._window(path, window)
        return None if got is None else sum(got[1]) / len(got[1])

    def min_over(self, path: str, window: float) -> float | None:
        got = self._window(path, window)
        return None if got is None else min(got[1])

    def max_over(self, path: str, window: float) -> float | None:
        got = self._window(path, window)
        return None if got is None else max(got[1])


def _increase(values: Sequence[float], created: Sequence[float]) -> float:
    """Counter increase over a window, treating a drop or a new createdTime as a restart.

    After a restart the counter starts again from 0, so the new value itself is the
    increase since the restart, never a negative amount of traffic.
    """
    # The usual case, no restart, checked at C speed: createdTime only ever moves forward,
    # so the same first and last stamp means one life of the counter throughout.
    ordered = list(values)
    if created[0] == created[-1] and ordered == sorted(ordered):
        return ordered[-1] - ordered[0]
    total = 0.0
    prev_value, prev_created = values[0], created[0]
    for value, stamp in zip(values[1:], created[1:], strict=True):
        if value < prev_value or stamp != prev_created:
            total += value
        else:
            total += value - prev_value
        prev_value, prev_created = value, stamp
    return total
