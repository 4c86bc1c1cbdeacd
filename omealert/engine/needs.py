"""What the history must keep for a set of rules, derived from what their conditions read.

Each condition lists the (function, field, window, quantile) it reads. Windows up to
``EXACT_LIMIT`` (and every window of ``rate()`` and ``delta()``) are answered from every
point; longer ones of the other functions from per-minute buckets (``engine.buckets``).
``x offset w`` needs points back to ``w`` and ``offset_slack(w)`` more. The engine compares the
needs of a new config with the old ones: history that covers them is kept on reload.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .buckets import EXACT_LIMIT

OFFSET_SLACK_MAX = 600.0

#: (function, field path, window, quantile), as ``lang.parse.Use``
Use = tuple[str, str, "float | None", "float | None"]
#: functions that always read every point, whatever the window
_ALWAYS_EXACT = frozenset({"rate", "delta"})
_COUNTS = frozenset({"changes", "resets"})
#: which aggregate of a minute each function over a long window reads (engine.buckets)
KIND = {
    "avg_over": "moments", "stddev_over": "moments", "median_over": "sketch",
    "quantile_over": "sketch", "min_over": "extremes", "max_over": "extremes",
    "offset": "last", "changes": "counts", "resets": "counts",
}  # fmt: skip


@dataclass(frozen=True)
class Needs:
    rate_paths: frozenset[str] = frozenset()
    value_paths: frozenset[str] = frozenset()
    #: fields whose changes and counter restarts are counted (changes(), resets())
    step_paths: frozenset[str] = frozenset()
    #: (field, kind of aggregate) kept per minute, for windows longer than EXACT_LIMIT
    long: frozenset[tuple[str, str]] = frozenset()
    exact_window: float = 0.0
    long_window: float = 0.0

    @property
    def long_paths(self) -> dict[str, frozenset[str]]:
        """Each field with minutes, and the kinds of aggregate its minutes keep."""
        out: dict[str, set[str]] = {}
        for path, kind in self.long:
            out.setdefault(path, set()).add(kind)
        return {path: frozenset(kinds) for path, kinds in sorted(out.items())}

    @property
    def fields(self) -> frozenset[str]:
        paths = {path for path, _ in self.long}
        return self.rate_paths | self.value_paths | self.step_paths | paths

    def covers(self, other: Needs) -> bool:
        return (
            other.rate_paths <= self.rate_paths
            and other.value_paths <= self.value_paths
            and other.step_paths <= self.step_paths
            and other.long <= self.long
            and other.exact_window <= self.exact_window
            and other.long_window <= self.long_window
        )


def offset_slack(window: float) -> float:
    """How much older than ``window`` the reading ``x offset window`` may be: half the
    window, at most 10 minutes (a gap longer than that then is no value)."""
    return min(window * 0.5, OFFSET_SLACK_MAX)


def is_long(func: str, window: float | None, lenient: bool) -> bool:
    """Whether ``func`` over ``window`` is read from minutes rather than points."""
    return (
        not lenient and window is not None and window > EXACT_LIMIT and func not in (_ALWAYS_EXACT)
    )


def needs_of(uses: Iterable[Use], *, lenient: bool = False) -> Needs:
    rate: set[str] = set()
    value: set[str] = set()
    steps: set[str] = set()
    long: set[tuple[str, str]] = set()
    exact_window = long_window = 0.0
    for func, path, window, _ in uses:
        span = (window or 0.0) + (offset_slack(window or 0.0) if func == "offset" else 0.0)
        if func in _COUNTS:
            steps.add(path)
        if is_long(func, window, lenient):
            long.add((path, KIND[func]))
            long_window = max(long_window, span)
            continue
        exact_window = max(exact_window, span)
        if func == "rate":
            rate.add(path)
        elif func not in _COUNTS:
            value.add(path)
    return Needs(
        frozenset(rate), frozenset(value), frozenset(steps), frozenset(long), exact_window,
        long_window,
    )  # fmt: skip
