"""The polls OME's events ask for, outside the tick schedule: coalesced and bounded.

An event naming a stream asks for a targeted poll of that stream (``ome.targeted``); one
naming none (0.18's queue congestion, an app's queue) or any queue event asks for an
early poll of the whole server, which also reads the queues. The runner's loop takes what
is pending at most once per ``EVENT_POLL_GAP_S`` and runs it as one round, between ticks
and never during one, so at most one poll per target is in flight and one more pending.

Bounded whatever OME (or anyone holding its key) sends: past ``MAX_STREAMS`` pending
streams of one server, or ``MAX_PENDING`` in all, the server's pending streams are folded
into one early poll of the whole server, and the streams left out are counted
(``omealert_event_polls_folded_total``). A storm of events for thousands of streams thus
costs one server poll per gap, and the memory held here is a few hundred targets.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..model import Target

if TYPE_CHECKING:
    from ..metrics import Metrics

__all__ = ["EVENT_POLL_GAP_S", "MAX_PENDING", "MAX_STREAMS", "EventPolls"]

#: at most one round of early polls per gap: a storm of events costs one round per gap
EVENT_POLL_GAP_S = 0.25
#: pending streams of one server before they fold into one poll of the whole server
MAX_STREAMS = 32
#: pending streams of all servers together
MAX_PENDING = 256


class EventPolls:
    """What is pending: servers to poll whole, and streams per server to poll alone."""

    def __init__(
        self,
        metrics: Metrics | None = None,
        *,
        max_streams: int = MAX_STREAMS,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.metrics = metrics
        self.max_streams = max_streams
        self.max_pending = max_pending
        self.servers: set[str] = set()
        self.streams: dict[str, dict[Target, None]] = {}
        self._count = 0
        #: set when something becomes pending: wakes the runner's loop
        self.wake = asyncio.Event()

    def pending(self) -> bool:
        return bool(self.servers or self._count)

    def ask(self, server: str, stream: Target | None = None) -> None:
        """Poll ``stream`` (a stream of ``server``) soon, or all of ``server`` if None."""
        self.wake.set()
        if server in self.servers:
            return  # the whole server is pending already: it covers the stream too
        if stream is None:
            self._fold(server, 0)
            return
        mine = self.streams.setdefault(server, {})
        if stream in mine:
            return
        if len(mine) >= self.max_streams or self._count >= self.max_pending:
            self._fold(server, 1)
            return
        mine[stream] = None
        self._count += 1

    def _fold(self, server: str, extra: int) -> None:
        """Make ``server`` pending whole; its pending streams (and ``extra``) are let go."""
        dropped = len(self.streams.pop(server, {}))
        self._count -= dropped
        self.servers.add(server)
        if self.metrics is not None and dropped + extra:
            self.metrics.event_polls_folded(server, dropped + extra)

    def take(self) -> tuple[frozenset[str], dict[str, tuple[Target, ...]]]:
        """Everything pending, emptied: (servers to poll whole, streams per server)."""
        servers = frozenset(self.servers)
        streams = {s: tuple(t) for s, t in self.streams.items() if t}
        self.servers, self.streams, self._count = set(), {}, 0
        self.wake.clear()
        return servers, streams

    def forget(self, keep: frozenset[str]) -> None:
        """Drop what is pending for servers no longer configured (after a reload)."""
        self.servers &= keep
        for name in [n for n in self.streams if n not in keep]:
            self._count -= len(self.streams.pop(name))
