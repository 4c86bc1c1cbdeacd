"""The arithmetic of baselines: quantiles, standard deviation, and the per-minute sketch.

Pure functions over lists of floats, shared by the exact windows (``engine.history``) and
the per-minute buckets of long windows (``engine.buckets``), so both give the same answer
where the buckets hold every point.

The sketch of one bucket keeps its points sorted when there are at most ``SKETCH_K`` of
them (1-minute buckets at a poll interval of 4 s or more: exact). With more, it keeps
``SKETCH_K`` order statistics, the middle point of each of ``SKETCH_K`` equal runs of
ranks, each standing for ``n / SKETCH_K`` points. For any value ``x`` the number of points
at or below ``x`` it implies is then off by at most ``n / (2·SKETCH_K)`` in that bucket, so
over a whole window a quantile ``q`` is answered with a point whose true rank lies within
``q ± 1/(2·SKETCH_K)``: 3.1 percentile points at worst, and only at intervals under 4 s.
Tested against the exact answer in
``tests/engine/test_baselines.py``. A small sketch of our own rather than a library's
(t-digest, DDSketch): those keep a Python object per bucket, hundreds of bytes each, where
this is ``SKETCH_K`` 4-byte floats in one flat array shared by all of a series' buckets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: order statistics kept per bucket; 16 at 4 bytes is 64 bytes a minute, worst case
SKETCH_K = 16


def quantile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted values, interpolating between the two nearest ranks.

    As Prometheus' ``quantile_over_time`` and NumPy's default do: rank ``q·(n−1)``, so
    the median of an even count is the mean of the middle two.
    """
    rank = q * (len(ordered) - 1)
    below = math.floor(rank)
    above = min(below + 1, len(ordered) - 1)
    frac = rank - below
    low = ordered[below]
    return low if frac == 0 else low + (ordered[above] - low) * frac


def pstddev(values: Sequence[float]) -> float:
    """Population standard deviation (as Prometheus' ``stddev_over_time``), two passes."""
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))


def compress(ordered: list[float]) -> list[float]:
    """A bucket's sketch: all its sorted points, or ``SKETCH_K`` evenly spaced ranks."""
    n = len(ordered)
    if n <= SKETCH_K:
        return ordered
    return [ordered[int((j + 0.5) * n / SKETCH_K)] for j in range(SKETCH_K)]


def weighted_quantile(points: list[tuple[float, float]], total: float, q: float) -> float:
    """The smallest value whose sketch weight at or below it reaches ``q`` of ``total``.

    ``points`` are (value, weight), sorted by value; the weights sum to ``total``.
    """
    goal = q * total
    acc = 0.0
    for value, weight in points:
        acc += weight
        if acc >= goal:
            return value
    return points[-1][0]
