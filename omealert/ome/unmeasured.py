"""Leave out what OME printed but has not measured: a new stream's first seconds, garbage,
and the window that straddles an input gap (issue 21).

OME 0.18 prints uninitialised memory and zeros for about a second after a stream
(re)connects: ``bitrateLatest`` of -1977517884, ``framerateLatest`` 0.0, ``avgThroughputIn``
0 and then, for one window, 873841335088853936 (which ``maxThroughputIn`` keeps for the
stream's life). After a stalled encoder resumes, the first window holds the few bytes since
the last measurement over the whole gap (26 kbps), then a catch-up spike. OME re-times its
windows at the first packet after a gap and serves that partial window until the first
packet a second later, so at fast polling several polls show it: windowed fields are left
out for ``SETTLE_S`` after the input is seen to resume. A gap no poll saw as stale input
counts too: the first answer after a failed poll (OME itself frozen: polls time out) and
one whose server clock leapt ahead of the watcher's (a request that hung across a freeze).
Each is "no value" here, the key's absence, as for a field OME does not print: conditions
on it are unknown and change nothing, history records a gap. The field catalogue
(``lang/fields.py``) says which field is checked how: ``plausible``, ``warmup_s`` and
``windowed``.

A stream's age is ``server_now - createdTime`` on the server's clock, which ``ServerClock``
estimates low, so ages err young: a value is dropped rather than believed.

Cheap at 10,000 streams (``Unmeasured``): only a sample with a suspect value, a young
stream, or a stream within ``SETTLE_S`` of a gap walks the fields one by one.
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
    "SETTLE_S",
    "WARMING_UP",
    "Unmeasured",
    "drop_unmeasured",
]

#: Why a value was left out: the ``reason`` label of ``omealert_values_dropped_total``.
IMPLAUSIBLE: Final = "implausible"  # negative, or beyond any link or camera
WARMING_UP: Final = "warming_up"  # the stream is younger than the field's first measurement
PARTIAL_WINDOW: Final = "partial_window"  # the first window after an input gap

#: Input older than this on the server's clock at a poll is a gap: OME's window (1 s) and
#: slack. The poll that then sees ``lastRecvTime`` move gets the partial window. Also how
#: much further the server's clock may move than the watcher's between two answers before
#: the server is taken to have been frozen in between.
INPUT_GAP_S: Final = 2.0

#: How long after the first poll that saw the input resume (on the server's clock, which is
#: never behind that input's ``lastRecvTime``) windowed fields stay no value. OME closes the
#: partial window at the first packet after the gap, at or before that poll, and the next
#: one at the first packet a second later (``THROUGHPUT_MEASURE_INTERVAL`` 1 s for stats,
#: 1000 ms for a track's ``bitrateLatest``/``framerateLatest``); 0.5 s is slack for that
#: packet's lateness and the timestamps' milliseconds. The catch-up window after it is
#: real traffic and is read.
SETTLE_S: Final = 1.5


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
    checked); ``after_gap`` that the input resumed less than ``SETTLE_S`` ago.
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
    """``drop_unmeasured`` over every sample of a poll, remembering which streams' input was
    stale at the last poll and which are settling after a gap (until when).

    Made cheap for 10,000 streams: a sample whose values pass the range screens, whose
    stream is older than the warm-up and whose input had no gap costs a few C calls and two
    datetime comparisons; only the others take ``drop_unmeasured``'s field-by-field path.
    Only stale streams (until the next poll) and settling ones (for ``SETTLE_S``) are
    remembered. ``failed`` is told of each failed poll of the server.
    """

    def __init__(self) -> None:
        self._stale: dict[Target, datetime] = {}
        #: stream -> server time until which its windowed fields are no value
        self._settling: dict[Target, float] = {}
        #: the same for every stream of the server, after a gap of the server itself
        self._all_settling_until = float("-inf")
        #: (watcher time, server time) of the last answered poll; whether one failed since
        self._answered: tuple[float, float] | None = None
        self._failed_since = False

    def failed(self) -> None:
        """A poll of the server failed: the next answer may straddle a gap no poll saw."""
        self._failed_since = True

    def _server_gap(self, at: float | None, server_now: float) -> bool:
        """Whether this answer is the first after a failed poll, or its server clock moved
        more than ``INPUT_GAP_S`` further than the watcher's since the last answer."""
        gap = self._failed_since
        if at is not None:
            last = self._answered
            if last is not None and (server_now - last[1]) - (at - last[0]) > INPUT_GAP_S:
                gap = True
            self._answered = (at, server_now)
        self._failed_since = False
        return gap

    def drop(
        self,
        fields_of: Mapping[Target, dict[str, Value]],
        sources: Callable[[Target], tuple[bool, bool]],
        server_now: float,
        at: float | None = None,
        *,
        partial: bool = False,
    ) -> Counter[tuple[str, str]]:
        """Leave out what OME has not measured from each sample; ``sources(target)`` says
        whether its fields came from stats and from stream info, ``at`` is the poll's start
        on the watcher's clock. Returns the tally by (path, reason).

        ``partial``: a targeted poll of a few streams (``ome.targeted``). It learns and
        forgets only their staleness, and leaves the server's own gap detection to the
        polls of the whole server (a failed poll still makes its answers settle)."""
        dropped: Counter[tuple[str, str]] = Counter()
        if self._failed_since if partial else self._server_gap(at, server_now):
            self._all_settling_until = server_now + SETTLE_S
        all_settling = server_now < self._all_settling_until
        settling = self._settling
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
            after_gap = all_settling  # every target's windows straddle a server's own gap
            recv = fields.get("providers.lastRecvTime")
            if target.stream is not None and isinstance(recv, datetime):
                if recv < stale_before:
                    stale[target] = recv
                if was_stale:
                    before = was_stale.get(target)
                    if before is not None and recv > before:
                        settling[target] = server_now + SETTLE_S
                if settling and not after_gap:
                    after_gap = server_now < settling.get(target, server_now)
            if suspect or after_gap:
                found = drop_unmeasured(
                    fields, server_now, stats=stats, info=info, after_gap=after_gap
                )
                dropped.update(found)
        if partial:
            stale = {t: r for t, r in was_stale.items() if t not in fields_of} | stale
        self._stale = stale
        if settling:
            self._settling = {t: until for t, until in settling.items() if until > server_now}
        return dropped
