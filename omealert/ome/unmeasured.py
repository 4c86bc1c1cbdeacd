"""Leave out what OME printed but has not measured: a new stream's first seconds, garbage,
and the window that straddles an input gap (issue 21).

OME 0.18 prints uninitialised memory and zeros for about a second after a stream
(re)connects: ``bitrateLatest`` of -1977517884, ``framerateLatest`` 0.0, ``avgThroughputIn``
0 and then, for one window, 873841335088853936 (which ``maxThroughputIn`` keeps for the
stream's life). After a stalled encoder resumes, the first window holds the few bytes since
the last measurement over the whole gap (26 kbps), then a catch-up spike. Each is "no value"
here, the key's absence, as for a field OME does not print: conditions on it are unknown and
change nothing, history records a gap. The field catalogue (``lang/fields.py``) says which
field is checked how: ``plausible``, ``warmup_s`` and ``windowed``.

A stream's age is ``server_now - createdTime`` on the server's clock, which ``ServerClock``
estimates low, so ages err young: a value is dropped rather than believed.

Cheap at 10,000 streams: a sample pays a few range checks; only a young stream, or the first
poll after its input was seen stale, walks the warm-up or window lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from ..lang.fields import FIELDS, Source
from ..model import Scope, Target, Value

__all__ = [
    "IMPLAUSIBLE",
    "INPUT_GAP_S",
    "PARTIAL_WINDOW",
    "WARMING_UP",
    "InputGaps",
    "drop_unmeasured",
]

#: Why a value was left out: the ``reason`` label of ``omealert_values_dropped_total``.
IMPLAUSIBLE: Final = "implausible"  # negative, or beyond any link or camera
WARMING_UP: Final = "warming_up"  # the stream is younger than the field's first measurement
PARTIAL_WINDOW: Final = "partial_window"  # the first window after an input gap

#: Input older than this on the server's clock at a poll is a gap: OME's window (1 s) and
#: slack. The poll that then sees ``lastRecvTime`` move gets the partial window.
INPUT_GAP_S: Final = 2.0


def _ranges(source: Source) -> tuple[tuple[str, float, float], ...]:
    return tuple(
        (path, *spec.plausible)
        for path, spec in FIELDS.items()
        if spec.plausible is not None and spec.source is source
    )


_STATS_RANGES: Final = _ranges(Source.STATS)
_INFO_RANGES: Final = _ranges(Source.INFO)
_WARMUPS: Final = tuple((p, s.warmup_s) for p, s in FIELDS.items() if s.warmup_s > 0)
_LONGEST_WARMUP: Final = max(w for _, w in _WARMUPS)
_WINDOWED: Final = tuple(p for p, s in FIELDS.items() if s.windowed)


def drop_unmeasured(
    fields: dict[str, Value],
    server_now: float,
    *,
    stats: bool = True,
    info: bool = True,
    after_gap: bool = False,
) -> list[tuple[str, str]]:
    """Delete from ``fields`` what OME has not measured; return (path, reason) of each.

    ``stats``/``info`` say which answers the fields came from (only their ranges are
    checked); ``after_gap`` that this is the first poll since the input resumed.
    """
    dropped: list[tuple[str, str]] = []
    for ranges in (_STATS_RANGES if stats else (), _INFO_RANGES if info else ()):
        for path, low, high in ranges:
            value = fields.get(path)
            # a number by now (normalize checked it); None: OME did not print it
            if value is not None and not low <= value <= high:  # type: ignore[operator]
                del fields[path]
                dropped.append((path, IMPLAUSIBLE))
    created = fields.get("createdTime")
    if isinstance(created, datetime):
        age = server_now - created.timestamp()
        if age < _LONGEST_WARMUP:
            for path, warmup in _WARMUPS:
                if age < warmup and path in fields:
                    del fields[path]
                    dropped.append((path, WARMING_UP))
    if after_gap:
        for path in _WINDOWED:
            if path in fields:
                del fields[path]
                dropped.append((path, PARTIAL_WINDOW))
    return dropped


class InputGaps:
    """Which streams' input was stale at the last poll, to know the poll after it resumes.

    Only stale streams are remembered, and only until the next poll: a healthy stream costs
    one timestamp and one comparison.
    """

    def __init__(self) -> None:
        self._stale: dict[Target, float] = {}
        self._next: dict[Target, float] = {}

    def after_gap(self, target: Target, fields: Mapping[str, Value], server_now: float) -> bool:
        """Whether this poll is the first to see ``target``'s input move after a gap; notes
        whether its input is stale now, for the next poll."""
        if target.scope is not Scope.STREAM:
            return False
        recv = fields.get("providers.lastRecvTime")
        if not isinstance(recv, datetime):
            return False  # stream info alone: no gap detection
        at = recv.timestamp()
        if server_now - at > INPUT_GAP_S:
            self._next[target] = at
        before = self._stale.get(target) if self._stale else None
        return before is not None and at > before

    def end_poll(self) -> None:
        """Forget streams that were not stale at this poll (gone ones included)."""
        self._stale, self._next = self._next, {}
