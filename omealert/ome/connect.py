"""A TCP connection to a host name over whichever of its addresses answers first (RFC 8305).

A name with IPv6 and IPv4 addresses is tried IPv6 first, and if that attempt has not
connected within ``delay`` the next address (of the other family) is tried alongside it,
and so on: a host whose IPv6 route is dead still connects over IPv4, a quarter of a second
late, instead of hanging until the poll's deadline and paging ``ome-api-down``.

Why not ``loop.create_connection(happy_eyeballs_delay=...)``: on Python 3.11 its race
(``asyncio.staggered``) leaves the socket of an attempt open when the connect is cancelled
as it succeeds, which a poll's deadline or a server-wide failure does routinely. Here every
socket but the winner's is closed, whenever and however the race ends.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from typing import Any

__all__ = ["open_socket"]

_AddrInfo = tuple[Any, ...]


async def open_socket(host: str, port: int, delay: float) -> socket.socket:
    """A connected, non-blocking socket to ``host``:``port``; ``OSError`` if none connects."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"{host} has no address")
    attempts: list[asyncio.Task[socket.socket]] = []
    errors: list[OSError] = []
    winner: socket.socket | None = None
    try:
        for info in _interleaved(infos):
            attempts.append(loop.create_task(_connect(loop, info)))
            winner = await _first(attempts, errors, delay)
            if winner is not None:
                return winner
        while any(not attempt.done() for attempt in attempts):
            winner = await _first(attempts, errors, None)
            if winner is not None:
                return winner
    finally:
        for attempt in attempts:
            attempt.add_done_callback(lambda done: _close_unless(done, winner))
            attempt.cancel()
    messages = list(dict.fromkeys(str(error) for error in errors))
    if len(messages) == 1:
        raise errors[0]
    raise OSError("; ".join(messages))


async def _first(
    attempts: list[asyncio.Task[socket.socket]], errors: list[OSError], delay: float | None
) -> socket.socket | None:
    """Wait up to ``delay`` (None: until one ends) for an attempt to connect; the failed
    ones are taken out of the race."""
    running = [attempt for attempt in attempts if not attempt.done()]
    if running:
        await asyncio.wait(running, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    for attempt in [attempt for attempt in attempts if attempt.done()]:
        error = attempt.exception()
        if error is None:
            return attempt.result()
        attempts.remove(attempt)
        errors.append(error if isinstance(error, OSError) else OSError(str(error)))
    return None


async def _connect(loop: asyncio.AbstractEventLoop, info: _AddrInfo) -> socket.socket:
    family, kind, proto, _, address = info
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    return sock


def _close_unless(attempt: asyncio.Task[socket.socket], winner: socket.socket | None) -> None:
    """Close what a losing attempt connected (it may have connected as it was cancelled)."""
    if not attempt.cancelled() and attempt.exception() is None:
        sock = attempt.result()
        if sock is not winner:
            sock.close()


def _interleaved(infos: list[_AddrInfo]) -> list[_AddrInfo]:
    """The addresses alternating between families, in the resolver's order otherwise."""
    families: dict[int, list[_AddrInfo]] = {}
    for info in infos:
        families.setdefault(info[0], []).append(info)
    rounds = itertools.zip_longest(*families.values())
    return [info for round_ in rounds for info in round_ if info is not None]
