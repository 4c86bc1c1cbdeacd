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

Cheap at 10,000 streams (``Unmeasured``): only a sample with a suspect value, a young
stream, or the first poll after its input was seen stale walks the fields one by one.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from ..lang.fields import FIELDS, Source
from ..model import Target, Value

__all__ = [
    "IMPLAUSIBLE",
    "INPUT_GAP_S",
    "PARTIAL_WINDOW",
    "WARMING_UP",
    "Unmeasured",
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

#: (values of some fields, low, high): ``min``/``max`` over them against one range, run in
#: C. A sample inside every screen of its source is plausible as a whole; one outside may
#: be, and takes the exact path.
_Screen = tuple[Callable[[Mapping[str, Value]], Any], float, float]
#: Highs at least this large share one screen (with the smallest of them as its bound): a
#: byte total past 125 GB takes the exact path, which is rare and still right.
_HUGE = 1e9


def _screens(ranges: tuple[tuple[str, float, float], ...]) -> tuple[_Screen, ...]:
    groups: dict[tuple[str, float, float], list[tuple[str, float]]] = {}
    for path, low, high in ranges:
        kind = path.split(".", 1)[0] if path.startswith(("video.", "audio.")) else ""
        groups.setdefault((kind, low, high if high < _HUGE else _HUGE), []).append((path, high))
    # itemgetter of one key returns the bare value: a repeated key keeps it a tuple
    return tuple(
        (operator.itemgetter(*(p for p, _ in rows), rows[0][0]), low, min(h for _, h in rows))
        for (_, low, _), rows in groups.items()
    )


_STATS_SCREENS: Final = _screens(_STATS_RANGES)
_INFO_SCREENS: Final = _screens(_INFO_RANGES)


def _plausible(fields: Mapping[str, Value], screens: tuple[_Screen, ...]) -> bool:
    """True when every ranged value is in range; False when one may not be (or is missing)."""
    try:
        for values, low, high in screens:
            found = values(fields)
            if min(found) < low or max(found) > high:
                return False
    except (KeyError, TypeError):
        return False
    return True


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


class Unmeasured:
    """``drop_unmeasured`` over every sample of a poll, and which streams' input was stale
    at the last poll, to know the poll after it resumes.

    Made cheap for 10,000 streams: a sample whose values pass the range screens, whose
    stream is older than the warm-up and whose input had no gap costs a few C calls and two
    datetime comparisons; only the others take ``drop_unmeasured``'s field-by-field path.
    Only stale streams are remembered, and only until the next poll.
    """

    def __init__(self) -> None:
        self._stale: dict[Target, datetime] = {}

    def drop(
        self,
        fields_of: Mapping[Target, dict[str, Value]],
        sources: Callable[[Target], tuple[bool, bool]],
        server_now: float,
    ) -> Counter[tuple[str, str]]:
        """Leave out what OME has not measured from each sample; ``sources(target)`` says
        whether its fields came from stats and from stream info. Returns the tally by
        (path, reason)."""
        dropped: Counter[tuple[str, str]] = Counter()
        # a millisecond early: rounding at the edge sends a sample to the exact path
        young_after = datetime.fromtimestamp(server_now - _LONGEST_WARMUP - 1e-3, UTC)
        stale_before = datetime.fromtimestamp(server_now - INPUT_GAP_S, UTC)
        was_stale, stale = self._stale, {}
        for target, fields in fields_of.items():
            stats, info = sources(target)
            suspect = (stats and not _plausible(fields, _STATS_SCREENS)) or (
                info and not _plausible(fields, _INFO_SCREENS)
            )
            created = fields.get("createdTime")
            if isinstance(created, datetime) and created > young_after:
                suspect = True
            after_gap = False
            recv = fields.get("providers.lastRecvTime")
            if target.stream is not None and isinstance(recv, datetime):
                if recv < stale_before:
                    stale[target] = recv
                if was_stale:
                    before = was_stale.get(target)
                    after_gap = before is not None and recv > before
            if suspect or after_gap:
                found = drop_unmeasured(
                    fields, server_now, stats=stats, info=info, after_gap=after_gap
                )
                dropped.update(found)
        self._stale = stale
        return dropped
