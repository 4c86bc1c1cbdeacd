"""The simulator's sense of time: a manual clock, skew, and times printed as OME prints them.

Times are printed in the server's own offset with truncated milliseconds, as OME does.
Nothing ticks: every counter is computed from the clock when a request reads it, so a
``ManualClock`` makes minutes pass in tests without sleeping.
"""

from __future__ import annotations

import email.utils
import re
import threading
import time
from collections.abc import Callable
from typing import Final

_DEFAULT_START: Final = 1_767_225_600.0  # 2026-01-01T00:00:00Z
_TZ_OFFSET: Final = re.compile(r"([+-])(\d{2}):(\d{2})")


class ManualClock:
    """A clock that moves only when told to, so tests can make minutes pass without sleeping."""

    def __init__(self, start: float = _DEFAULT_START) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += float(seconds)

    def set(self, epoch: float) -> None:
        self._now = float(epoch)


def _parse_offset(offset: str) -> int:
    match = _TZ_OFFSET.fullmatch(offset)
    if match is None:
        raise ValueError(f"tz_offset must look like +09:00 or -05:30, not {offset!r}")
    sign = -1 if match.group(1) == "-" else 1
    hours, minutes = int(match.group(2)), int(match.group(3))
    if hours > 23 or minutes > 59:
        raise ValueError(f"tz_offset out of range: {offset!r}")
    return sign * (hours * 3600 + minutes * 60)


class _SimClock:
    """``Simulator``'s time methods.

    The simulator's scripting methods all live on one class, because ``POST /_sim/<method>``
    calls them by name; each of its jobs is a base class in its own module, declaring the
    state it shares. ``Simulator.__init__`` sets that state.
    """

    _lock: threading.Lock
    _clock: Callable[[], float]
    _manual: ManualClock | None
    _skew: float
    _tz_text: str
    _tz_seconds: int
    _time_cache: dict[int, str]

    def _now(self) -> float:
        """The simulated server's clock: the injected clock plus the configured skew."""
        return self._clock() + self._skew

    def server_time(self) -> float:
        """What the simulated OME believes the time is (epoch seconds)."""
        return self._now()

    def format_time(self, epoch: float) -> str:
        """Print ``epoch`` the way this server prints times (local offset, ms truncated)."""
        millis = round(epoch * 1_000_000) // 1000
        text = self._time_cache.get(millis)
        if text is None:
            seconds, ms = divmod(millis, 1000)
            tm = time.gmtime(seconds + self._tz_seconds)
            text = (
                f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}T"
                f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}.{ms:03d}{self._tz_text}"
            )
            if len(self._time_cache) > 50_000:
                self._time_cache.clear()
            self._time_cache[millis] = text
        return text

    def advance(self, seconds: float) -> None:
        """Move the owned ManualClock forward (only when driven by one)."""
        self._require_manual().advance(seconds)

    def set_time(self, epoch: float) -> None:
        """Set the owned ManualClock (only when driven by one)."""
        self._require_manual().set(epoch)

    def _require_manual(self) -> ManualClock:
        if self._manual is None:
            raise RuntimeError("this simulator is not driven by a ManualClock")
        return self._manual

    def set_clock_skew(self, seconds: float) -> None:
        """Make the simulated server clock run ``seconds`` ahead (+) or behind (-)."""
        with self._lock:
            self._skew = float(seconds)

    def _date_header(self) -> str:
        return email.utils.formatdate(self._now(), usegmt=True)
