"""The OME server's clock, estimated from its answers.

Rules measure the age of OME's timestamps (``stale``, ``age()``), and the watcher's clock
may be off; every poll feeds ``ServerClock`` what it saw, and samples carry its estimate.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from ..model import Value

__all__ = ["ServerClock", "freshest_live_time"]

#: Timestamp fields that move while OME is live; their maximum tracks the server's clock.
_LIVE_TIMES = ("lastUpdatedTime", "providers.lastRecvTime", "publishers.lastSentTime")


class ServerClock:
    """Estimates the OME server's clock as an offset from the watcher's clock.

    When a reply carries a ``Date`` header, the offset is taken from it (whole seconds).
    OME 0.18.0 sends none, so otherwise the offset is learnt from OME's own timestamps:

    * If the freshest live timestamp of a poll (``lastUpdatedTime``, ``lastRecvTime``,
      ``lastSentTime`` of every sample) moved forward since the previous poll by at least
      half the watcher time that passed, something on the server is live and its clock is
      about that timestamp: ``offset = freshest − now``.
    * A timestamp can never be ahead of the server's clock, so one later than the current
      estimate raises the offset to it at once, live or not.
    * Otherwise the offset stays as it was. A poll where everything has stalled teaches
      nothing, so stalls keep showing as growing ages instead of pulling the clock back.

    Limits: until the server has shown live ingest (and sent no ``Date``), the clocks are
    assumed to agree, apart from the lower bound above. Accuracy is that of OME's
    timestamps, about a second, plus the poll's own latency; a stream that truly stalls
    within that window looks fresh by up to that much.
    """

    def __init__(self) -> None:
        self.offset = 0.0
        self._previous: tuple[float, float] | None = None  # (watcher time, freshest)

    def now(self, at: float) -> float:
        return at + self.offset

    def update(self, at: float, freshest: float | None, date_offset: float | None) -> float:
        """Take in one poll (started at ``at``) and return the server's clock at ``at``."""
        if date_offset is not None:
            self.offset = date_offset
        elif freshest is not None:
            previous = self._previous
            elapsed = at - previous[0] if previous is not None else 0.0
            live = previous is not None and elapsed > 0 and freshest - previous[1] >= elapsed / 2
            ahead = freshest - at > self.offset  # no timestamp is later than the server's now
            if live or ahead:
                self.offset = freshest - at
        if freshest is not None:
            self._previous = (at, freshest)
        return at + self.offset


def freshest_live_time(current: datetime | None, fields: Mapping[str, Value]) -> datetime | None:
    """The later of ``current`` and the live timestamps in ``fields``: ``ServerClock``'s input."""
    for path in _LIVE_TIMES:
        value = fields.get(path)
        if isinstance(value, datetime) and (current is None or value > current):
            current = value
    return current
