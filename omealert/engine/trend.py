"""The recent input bitrate and viewers of each stream: what the page's sparklines draw.

The rules' ``History`` keeps only the fields some rule reads, for as long as its windows;
the page wants the same two numbers of every stream whatever the rules say. So this keeps
its own: the last ``points`` polls of each listed stream, column-wise in ``array`` (4 bytes
a value, 8 a time: ~1.2 MB per 1,000 streams at the default 60 points), trimmed in blocks
so an append stays O(1). A stream that leaves the listing is forgotten at once.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..model import Target

DEFAULT_POINTS = 60


@dataclass(slots=True)
class Series:
    """One stream's recent points: times (clock seconds), bits/s in, viewers (NaN: unknown)."""

    times: array[float]
    bitrate: array[float]
    viewers: array[float]


class Trends:
    """Per stream, the last ``points`` readings of its input bitrate and viewers."""

    def __init__(self, points: int = DEFAULT_POINTS) -> None:
        self.points = points
        self._series: dict[Target, Series] = {}

    def record(
        self,
        at: float,
        readings: Mapping[Target, tuple[float | None, float | None]],
        listed: Iterable[Target],
        server: str,
    ) -> None:
        """Append one poll of ``server``: (bitrate, viewers) of each stream it read."""
        series = self._series
        keep = set(listed)
        for target in [t for t in series if t.server == server and t not in keep]:
            del series[target]
        for target in keep:
            bitrate, viewers = readings.get(target, (None, None))
            s = series.get(target)
            if s is None:
                s = series[target] = Series(array("d"), array("f"), array("f"))
            if s.times and s.times[-1] >= at:
                continue
            s.times.append(at)
            s.bitrate.append(math.nan if bitrate is None else bitrate)
            s.viewers.append(math.nan if viewers is None else viewers)
            if len(s.times) >= self.points * 3 // 2:
                cut = len(s.times) - self.points
                del s.times[:cut], s.bitrate[:cut], s.viewers[:cut]

    def forget_server(self, server: str) -> None:
        for target in [t for t in self._series if t.server == server]:
            del self._series[target]

    def get(self, target: Target, last: int | None = None) -> Series | None:
        """The stream's series, its newest ``last`` points (default: ``points``)."""
        s = self._series.get(target)
        if s is None:
            return None
        n = self.points if last is None else last
        return Series(s.times[-n:], s.bitrate[-n:], s.viewers[-n:])

    def __len__(self) -> int:
        return len(self._series)
