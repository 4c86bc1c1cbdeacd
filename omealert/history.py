"""Per-target history of the fields that rate(), delta() and *_over() read.

Only fields some rule uses inside a history function are kept, and only for as long as
the longest window any rule uses, so memory grows with what the rules need, not with the
size of OME's answers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime

from .model import Sample, Target

#: One recorded point: (watcher time, value, createdTime of the object as epoch seconds).
Point = tuple[float, float, float]


class History:
    """Rolling windows of numbers per (target, field)."""

    def __init__(self, fields: Iterable[str], max_window: float, *, lenient: bool = False) -> None:
        self.fields = frozenset(fields)
        self.max_window = max_window
        #: ``check`` without state samples a short window: any two points then make a value.
        self.lenient = lenient
        self._series: dict[Target, dict[str, deque[Point]]] = {}
        self._last_seen: dict[Target, float] = {}

    def record(self, sample: Sample) -> None:
        if not self.fields:
            return
        created = sample.fields.get("createdTime")
        created_epoch = created.timestamp() if isinstance(created, datetime) else 0.0
        series = self._series.get(sample.target)
        if series is None:
            series = self._series[sample.target] = {}
        keep_after = sample.at - self.max_window * 1.5
        for path in self.fields:
            value = sample.fields.get(path)
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            points = series.get(path)
            if points is None:
                points = series[path] = deque()
            if points and points[-1][0] >= sample.at:
                points.pop()  # same poll recorded twice: keep the newest
            points.append((sample.at, float(value), created_epoch))
            while points and points[0][0] < keep_after:
                points.popleft()
        self._last_seen[sample.target] = sample.at

    def prune(self, now: float) -> None:
        """Forget targets not seen for longer than the longest window (the stream ended)."""
        horizon = now - max(self.max_window, 1.0)
        gone = [t for t, seen in self._last_seen.items() if seen < horizon]
        for target in gone:
            del self._last_seen[target]
            self._series.pop(target, None)

    def view(self, target: Target, now: float) -> TargetHistory:
        return TargetHistory(self._series.get(target, {}), now, self.lenient)

    def __len__(self) -> int:
        return len(self._series)


class TargetHistory:
    """The ``HistoryView`` the condition language calls, for one target at one time."""

    __slots__ = ("_lenient", "_now", "_series")

    def __init__(self, series: dict[str, deque[Point]], now: float, lenient: bool) -> None:
        self._series = series
        self._now = now
        self._lenient = lenient

    def _window(self, path: str, window: float) -> list[Point] | None:
        points = self._series.get(path)
        if not points:
            return None
        start = self._now - window
        inside = [p for p in points if p[0] >= start and p[0] <= self._now]
        if len(inside) < 2:
            return None
        if not self._lenient and inside[-1][0] - inside[0][0] < window * 0.5:
            return None  # not enough of the window observed yet: "no value", never 0
        return inside

    def rate(self, path: str, window: float | None) -> float | None:
        if window is None:
            points = self._series.get(path)
            if not points or len(points) < 2:
                return None
            pts = [points[-2], points[-1]]
        else:
            got = self._window(path, window)
            if got is None:
                return None
            pts = got
        elapsed = pts[-1][0] - pts[0][0]
        if elapsed <= 0:
            return None
        return _increase(pts) / elapsed

    def delta(self, path: str, window: float) -> float | None:
        pts = self._window(path, window)
        if pts is None:
            return None
        return pts[-1][1] - pts[0][1]

    def avg_over(self, path: str, window: float) -> float | None:
        pts = self._window(path, window)
        return None if pts is None else sum(p[1] for p in pts) / len(pts)

    def min_over(self, path: str, window: float) -> float | None:
        pts = self._window(path, window)
        return None if pts is None else min(p[1] for p in pts)

    def max_over(self, path: str, window: float) -> float | None:
        pts = self._window(path, window)
        return None if pts is None else max(p[1] for p in pts)


def _increase(points: list[Point]) -> float:
    """Counter increase over ``points``, treating a drop or a new createdTime as a restart.

    After a restart the counter starts again from 0, so the new value itself is the
    increase since the restart, never a negative amount of traffic.
    """
    total = 0.0
    prev_value, prev_created = points[0][1], points[0][2]
    for _, value, created in points[1:]:
        if value < prev_value or created != prev_created:
            total += value
        else:
            total += value - prev_value
        prev_value, prev_created = value, created
    return total
