"""Per-minute aggregates of one (target, field): what windows longer than ``EXACT_LIMIT`` read.

A point costs nothing once its minute is over: each closed minute keeps its count, the sum
and sum of squares of its values (shifted by the series' first value, so the variance of a
5 Mbps bitrate does not drown in rounding), its minimum and maximum, a quantile sketch
(``engine.stats``), its last reading and when that was, and the running counts of changes
and counter restarts. All columns are flat ``array``s, one row per minute, so a 1-hour
window of one field costs a few kilobytes whatever the poll interval.

A long window reads whole minutes only: those that ended at or before ``now`` and started
at or after ``now - window``. The newest, unfinished minute joins when it ends, so a
baseline never includes the last minute's anomaly, and its value, cached per function and
window, changes once a minute. Minute boundaries are shifted per target (``phase``) so the
recomputations of ten thousand streams spread over the minute instead of landing in one
tick. ``changes`` and ``resets`` add the unfinished minute's count (they are exact).
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right, insort

from .stats import compress, quantile, weighted_quantile

#: windows up to this long are answered from every point; longer ones from minutes
EXACT_LIMIT = 600.0
BUCKET_S = 60.0
_NAN = math.nan
_INF = math.inf
#: the columns a series' functions do not read: shared, and never appended to
_UNUSED: array[float] = array("d")
_UNUSED_B: array[int] = array("B")
_UNUSED_F: array[float] = array("f")


class Buckets:
    """One series' closed minutes, and the minute being filled (``pending``)."""

    __slots__ = (
        "cache", "chg", "cur", "hi", "idx", "keep", "last_t", "last_v", "lo", "n", "nv",
        "ordered", "p_added", "p_chg", "p_rst", "p_t", "p_v", "pending", "phase", "rst",
        "s1", "s2", "shift", "since", "vals", "version", "window",
    )  # fmt: skip

    def __init__(self, phase: float, keep: float, kinds: frozenset[str]) -> None:
        """``kinds``: the aggregates kept (``engine.needs.KIND``); the others stay empty."""
        self.phase = phase
        #: minutes kept: the longest window, plus one before its start (for counts, offset)
        self.keep = math.ceil(keep / BUCKET_S) + 2
        self.idx = array("i")  # minute number: floor((t - phase) / BUCKET_S)
        self.n = array("H")  # points in the minute
        moments, sketch, extremes = "moments" in kinds, "sketch" in kinds, "extremes" in kinds
        last, counts = "last" in kinds, "counts" in kinds
        self.s1 = array("d") if moments else _UNUSED
        self.s2 = array("d") if moments else _UNUSED
        self.lo = array("d") if extremes else _UNUSED
        self.hi = array("d") if extremes else _UNUSED
        self.nv = array("B") if sketch else _UNUSED_B  # sketch values of each minute
        self.vals = array("f") if sketch else _UNUSED_F  # the sketches, one after another
        self.last_t = array("d") if last else _UNUSED
        self.last_v = array("d") if last else _UNUSED
        self.chg = array("d") if counts else _UNUSED  # running count of changes at the end
        self.rst = array("d") if counts else _UNUSED  # running count of restarts at the end
        self.shift = _NAN
        self.cur: int | None = None
        self.pending: list[float] = []
        self.p_t, self.p_v, self.p_chg, self.p_rst = _NAN, _NAN, 0.0, 0.0
        self.p_added = False
        self.since = _NAN  # the first point's time: how far back this series was watched
        self.version = 0
        #: aggregates, cached until a minute ends; made on first use (a median needs none)
        self.cache: dict[tuple[str, float, float], tuple[int, int, int, float | None]] | None
        self.cache = None
        #: the sorted points of the first window a quantile reads (``window``), while every
        #: minute keeps all its points; a second window has its own in ``ordered``
        self.window: _Ordered | None = None
        self.ordered: dict[float, _Ordered] | None = {}

    def feed(
        self, minute: int, at: float, value: float, chg: float, rst: float, replace: bool
    ) -> None:
        """Add a point of ``minute`` (``minute_of``); ``replace``: it takes the place of the
        newest one (the same poll recorded again)."""
        if replace:
            if self.p_added and self.pending:
                self.pending.pop()  # (a replaced reading stays the last one if the new has none)
        elif minute != self.cur:
            if self.cur is not None:
                self._close()
            else:
                self.since = at
            self.cur = minute
        if value == value:  # not NaN
            self.pending.append(value)
            self.p_added = True
            self.p_t = at
            self.p_v = value
        else:
            self.p_added = False
        if chg or rst:
            self.p_chg = chg
            self.p_rst = rst

    def _close(self) -> None:
        assert self.cur is not None
        points = self.pending
        self.pending = []
        if points and self.shift != self.shift:
            self.shift = points[0]
        shift = self.shift
        self.idx.append(self.cur)
        self.n.append(min(len(points), 65535))  # (a minute of over 65,535 polls: absurd)
        if self.s1 is not _UNUSED:
            self.s1.append(math.fsum(v - shift for v in points))
            self.s2.append(math.fsum((v - shift) ** 2 for v in points))
        if points and (self.vals is not _UNUSED_F or self.lo is not _UNUSED):
            points.sort()
        if self.lo is not _UNUSED:
            self.lo.append(points[0] if points else _INF)
            self.hi.append(points[-1] if points else -_INF)
        if self.vals is not _UNUSED_F:
            sketch = compress(points)
            if len(sketch) < len(points):
                self.ordered = None  # a compressed minute: quantiles weigh the sketches
            self.nv.append(len(sketch))
            self.vals.extend(sketch)
        if self.last_t is not _UNUSED:
            self.last_t.append(self.p_t)
            self.last_v.append(self.p_v)
        if self.chg is not _UNUSED:
            self.chg.append(self.p_chg)
            self.rst.append(self.p_rst)
        self.version += 1
        old = bisect_left(self.idx, self.cur - self.keep)
        if old > 0:
            if self.vals is not _UNUSED_F:
                del self.vals[: sum(self.nv[:old])]
            for column in (self.idx, self.n, self.s1, self.s2, self.lo, self.hi, self.nv,
                           self.last_t, self.last_v, self.chg, self.rst):  # fmt: skip
                if len(column):  # the shared unused columns stay empty
                    del column[:old]

    # -- reading

    def _minutes(self, now: float, window: float) -> tuple[int, int]:
        """(first, current): the first minute wholly inside the window, the one ``now`` is in."""
        phase = self.phase
        return (
            math.ceil((now - window - phase) / BUCKET_S),
            math.floor((now - phase) / BUCKET_S),
        )

    def _rows(self, first: int, current: int) -> tuple[int, int]:
        """The rows of minutes ``first`` to ``current - 1``."""
        lo = bisect_left(self.idx, first)
        return lo, bisect_left(self.idx, current, lo)

    def _enough(self, lo: int, hi: int, window: float) -> bool:
        """Half the window in whole minutes, and two points: else no value."""
        idx = self.idx
        return (
            hi > lo
            and (idx[hi - 1] + 1 - idx[lo]) * BUCKET_S >= window * 0.5
            and sum(self.n[lo:hi]) >= 2
        )

    def aggregate(self, func: str, now: float, window: float, q: float) -> float | None:
        """``func`` over the window's whole minutes; cached until a minute ends."""
        first, current = self._minutes(now, window)
        key = (func, window, q)
        cache = self.cache
        if cache is None:
            cache = self.cache = {}
        hit = cache.get(key)
        if hit is not None and hit[0] == first and hit[1] == current and hit[2] == self.version:
            return hit[3]
        lo, hi = self._rows(first, current)
        value = self._compute(func, lo, hi, q) if self._enough(lo, hi, window) else None
        cache[key] = (first, current, self.version, value)
        return value

    def quantile(self, q: float, now: float, window: float) -> float | None:
        """The ``q`` quantile of the window's whole minutes.

        While every minute holds all its points, the window's points are kept sorted and
        moved along a minute at a time (a few inserts and deletes in one flat array), so
        a quantile is an index; with compressed minutes, the sketches are weighed.
        """
        ordered = self.ordered
        if ordered is None:
            return self.aggregate("quantile_over", now, window, q)
        phase = self.phase
        first = math.ceil((now - window - phase) / BUCKET_S)
        current = math.floor((now - phase) / BUCKET_S)
        win = self.window
        if win is None:
            win = self.window = _Ordered(window)
        elif win.span != window:
            win = ordered.get(window)
            if win is None:
                win = ordered[window] = _Ordered(window)
        if win.first != first or win.end != current or win.version != self.version:
            self._slide(win, first, current, window)
        if win.q != q:
            win.q = q
            win.answer = quantile(win.values, q) if win.ok else None
        return win.answer

    def _slide(self, win: _Ordered, first: int, current: int, window: float) -> None:
        nv, vals, values = self.nv, self.vals, win.values
        lo, hi = self._rows(first, current)
        old_lo, old_hi = self._rows(win.first, win.end)
        moved_back = first < win.first or current < win.end
        if win.end <= first or moved_back or old_hi - old_lo != win.rows:
            values = win.values = array("f", sorted(vals[sum(nv[:lo]) : sum(nv[:hi])]))
        else:
            start = sum(nv[:old_lo])
            for row in range(old_lo, lo):  # minutes that left the window
                for v in vals[start : start + nv[row]]:
                    del values[bisect_left(values, v)]
                start += nv[row]
            start = sum(nv[:old_hi])
            for row in range(old_hi, hi):  # minutes that ended since
                for v in vals[start : start + nv[row]]:
                    insort(values, v)
                start += nv[row]
        win.first, win.end, win.version, win.rows = first, current, self.version, hi - lo
        win.ok = self._enough(lo, hi, window)
        win.q = _NAN  # the answer is for the old window

    def _compute(self, func: str, lo: int, hi: int, q: float) -> float | None:
        count = sum(self.n[lo:hi])
        if func == "min_over":
            return min(self.lo[lo:hi])
        if func == "max_over":
            return max(self.hi[lo:hi])
        if func in ("avg_over", "stddev_over"):
            s1 = math.fsum(self.s1[lo:hi])
            if func == "avg_over":
                return self.shift + s1 / count
            var = (math.fsum(self.s2[lo:hi]) - s1 * s1 / count) / count
            return math.sqrt(var) if var > 0 else 0.0
        start = sum(self.nv[:lo])
        stored = self.nv[lo:hi]
        values = self.vals[start : start + sum(stored)]
        if sum(stored) == count:  # every point kept: exact
            return quantile(sorted(values), q)
        points: list[tuple[float, float]] = []
        at = 0
        for kept, n in zip(stored, self.n[lo:hi], strict=True):
            weight = n / kept if kept else 0.0
            points.extend((v, weight) for v in values[at : at + kept])
            at += kept
        points.sort()
        return weighted_quantile(points, count, q)

    def count_since(self, which: str, now: float, window: float) -> float | None:
        """Changes (or restarts) after the last minute that ended before the window began;
        no value unless the series goes back that far."""
        lo = bisect_left(self.idx, self._minutes(now, window)[0])
        if lo == 0 or self.since > now - window:
            return None  # not watched since before the window: a count would be short
        if which == "changes":
            return self.p_chg - self.chg[lo - 1]
        return self.p_rst - self.rst[lo - 1]

    def value_at(self, now: float, window: float, slack: float) -> float | None:
        """The last reading at or before ``now - window``, if no more than ``slack`` older."""
        then = now - window
        j = bisect_right(self.idx, math.floor((then - self.phase) / BUCKET_S)) - 1
        if j >= 0 and self.last_t[j] > then:
            j -= 1
        if j < 0 or self.last_t[j] != self.last_t[j] or self.last_t[j] < then - slack:
            return None
        return self.last_v[j]


class _Ordered:
    """The sorted points of one window's minutes ``first`` to ``end - 1``, and the last
    quantile asked of them (a series usually has one)."""

    __slots__ = ("answer", "end", "first", "ok", "q", "rows", "span", "values", "version")

    def __init__(self, span: float) -> None:
        self.span = span
        self.first = self.end = self.rows = 0
        self.version = -1
        self.ok = False
        self.values = array("f")
        self.q = _NAN
        self.answer: float | None = None


def minute_of(at: float, phase: float) -> int:
    """The minute a point at ``at`` belongs to, for a target whose minutes start at ``phase``."""
    return math.floor((at - phase) / BUCKET_S)
