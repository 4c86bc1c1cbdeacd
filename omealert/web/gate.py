"""The listener's connection bounds: a cap on open connections, a deadline for the first head.

One over the cap is reset the moment it is accepted.
``aiohttp``'s sites have no such cap, so the listening socket is made with
``loop.create_server`` and this gate as its protocol factory, in front of the runner's own
(``AppRunner.server``). Connections are counted from the factory call, not from
``connection_made``: ``asyncio`` accepts a whole backlog's worth of sockets before any of
them is connected, and a count taken later would let all of them in.

A connection whose first request head has not arrived ``head_deadline`` seconds after it
opened is reset, however many bytes of it trickled in (slowloris); ``request_started``
(called by the application's middleware once a head is parsed) lifts the deadline. Later
heads on a kept-alive connection are bounded by ``aiohttp``'s keep-alive timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class ConnectionGate:
    """Admits at most ``limit`` connections at once; the rest are reset at accept."""

    def __init__(
        self, factory: Callable[[], asyncio.Protocol], limit: int, head_deadline: float
    ) -> None:
        self._factory = factory
        self.limit = limit
        self.head_deadline = head_deadline
        self._waiting: dict[asyncio.BaseTransport, asyncio.TimerHandle] = {}
        #: connections admitted and not yet lost
        self.open = 0
        #: connections closed at accept because ``limit`` were open
        self.refused = 0

    def __call__(self) -> asyncio.Protocol:
        if self.open >= self.limit:
            self.refused += 1
            return _Refused()
        self.open += 1
        return _Counted(self._factory(), self)

    def request_started(self, transport: asyncio.BaseTransport | None) -> None:
        """A head arrived on ``transport``: it no longer has to beat the deadline."""
        timer = self._waiting.pop(transport, None) if transport is not None else None
        if timer is not None:
            timer.cancel()

    def _opened(self, transport: asyncio.BaseTransport) -> None:
        loop = asyncio.get_running_loop()
        self._waiting[transport] = loop.call_later(self.head_deadline, _reset, transport)

    def _closed(self, transport: asyncio.BaseTransport | None) -> None:
        self.open -= 1
        self.request_started(transport)  # cancels a deadline still pending


def _reset(transport: asyncio.BaseTransport) -> None:
    assert isinstance(transport, asyncio.Transport)
    transport.abort()


class _Refused(asyncio.Protocol):
    """Resets the connection at once: no bytes read, no timer, the descriptor freed now."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.abort()


class _Counted(asyncio.Protocol):
    """The real protocol, with the gate told once when its connection is gone."""

    def __init__(self, inner: asyncio.Protocol, gate: ConnectionGate) -> None:
        self._inner = inner
        self._gate: ConnectionGate | None = gate
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        if self._gate is not None:
            self._gate._opened(transport)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            self._inner.connection_lost(exc)
        finally:
            if self._gate is not None:
                self._gate._closed(self._transport)
                self._gate = None
