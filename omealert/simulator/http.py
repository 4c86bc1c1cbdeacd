"""A minimal HTTP/1.1 server connection, as an ``asyncio`` protocol.

``http.server`` with a thread per connection is far too slow for 10,000 streams polled
over keep-alive connections, so every connection is a protocol on the simulator's own
event loop.  Requests are parsed here and answered by the ``Simulator``: ``/_sim/`` paths
by its control endpoint, everything else as OME's API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Final, Protocol

from .faults import _Fault
from .reply import _dumps, _error, _Reply

_MAX_HEAD: Final = 64 * 1024
_MAX_BODY: Final = 1024 * 1024
_REASONS: Final = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class _Host(Protocol):
    """What a connection needs of the ``Simulator`` that serves it.

    Spelled out here so that this module does not import ``server`` (which imports it).
    """

    _protocols: set[_HttpProtocol]
    _send_date: bool

    def _control(self, method: str, name: str, body: bytes) -> _Reply: ...

    def _receive(self, method: str, path: str) -> _Fault | None: ...

    def _handle(
        self, method: str, path: str, headers: Mapping[str, str], fault: _Fault | None
    ) -> _Reply | None: ...

    def _date_header(self) -> str: ...


class _HttpProtocol(asyncio.Protocol):
    """A minimal HTTP/1.1 server connection: keep-alive, Content-Length bodies, no chunking."""

    def __init__(self, sim: _Host) -> None:
        self._sim = sim
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None
        self._busy = False  # a slow reply is pending; later requests wait their turn
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._sim._protocols.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._sim._protocols.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        self._transport = None

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        self._buf += data
        self._process()

    def _process(self) -> None:
        while not self._busy and self._transport is not None:
            while self._buf[:2] == b"\r\n":  # tolerate stray CRLFs between requests
                del self._buf[:2]
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > _MAX_HEAD:
                    self._fail("request head too large")
                return
            lines = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                self._fail("malformed request line")
                return
            method, target, version = parts
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if not sep:
                    self._fail("malformed header")
                    return
                headers[name.strip().lower()] = value.strip()  # the last one wins, as in OME
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._fail("chunked request bodies are not supported")
                return
            try:
                length = int(headers.get("content-length", "0") or "0")
            except ValueError:
                self._fail("bad Content-Length")
                return
            if length < 0 or length > _MAX_BODY:
                self._fail("bad Content-Length")
                return
            if len(self._buf) < end + 4 + length:
                return
            body = bytes(self._buf[end + 4 : end + 4 + length])
            del self._buf[: end + 4 + length]
            try:
                self._dispatch(method, target, version, headers, body)
            except Exception as exc:  # a simulator bug: say so instead of hanging the client
                reply = _error(500, f"simulator bug: {type(exc).__name__}: {exc}")
                self._send(reply, head_only=False, keep_alive=False, extra=[])
                raise

    def _fail(self, text: str) -> None:
        reply = _Reply(400, raw=_dumps({"error": text, "ok": False}))
        self._send(reply, head_only=False, keep_alive=False, extra=[])

    def _dispatch(
        self, method: str, target: str, version: str, headers: dict[str, str], body: bytes
    ) -> None:
        path = target.split("?", 1)[0]
        keep_alive, extra = _connection_policy(version, headers.get("connection"))
        head_only = method == "HEAD"
        if path.startswith("/_sim/"):
            reply = self._sim._control(method, path[len("/_sim/") :], body)
            self._send(reply, head_only=head_only, keep_alive=keep_alive, extra=extra)
            return
        fault = self._sim._receive(method, path)
        if fault is not None and fault.kind == "hang":
            self._busy = True  # accepted, never answered: OME hung on its way down
            return
        if fault is not None and fault.kind == "slow":
            # Answer after the delay, computed then, without blocking other connections;
            # later requests on this connection wait their turn.
            self._busy = True

            def later() -> None:
                self._timer = None
                self._busy = False
                self._respond(method, path, headers, None, head_only, keep_alive, extra)
                self._process()

            self._timer = asyncio.get_running_loop().call_later(fault.delay, later)
            return
        self._respond(method, path, headers, fault, head_only, keep_alive, extra)

    def _respond(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        fault: _Fault | None,
        head_only: bool,
        keep_alive: bool,
        extra: list[tuple[str, str]],
    ) -> None:
        if self._transport is None:
            return
        reply = self._sim._handle(method, path, headers, fault)
        if reply is None:
            self._transport.close()
            self._transport = None
            return
        self._send(reply, head_only=head_only, keep_alive=keep_alive, extra=extra)

    def _send(
        self, reply: _Reply, *, head_only: bool, keep_alive: bool, extra: list[tuple[str, str]]
    ) -> None:
        transport = self._transport
        if transport is None:
            return
        body = reply.body()
        lines = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Unknown')}"]
        lines.append(f"Server: {reply.server}")
        if self._sim._send_date:
            lines.append(f"Date: {self._sim._date_header()}")
        if reply.status != 204:
            if reply.content_type:
                lines.append(f"Content-Type: {reply.content_type}")
            lines.append(f"Content-Length: {len(body)}")
        lines.extend(f"{k}: {v}" for k, v in reply.headers)
        lines.extend(f"{k}: {v}" for k, v in extra)
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if head_only or reply.status == 204:
            transport.write(head)
        elif len(body) < 65536:
            transport.write(head + body)  # one write, one segment for the common case
        else:
            transport.write(head)
            transport.write(body)
        if not keep_alive:
            transport.close()
            self._transport = None


def _connection_policy(version: str, connection: str | None) -> tuple[bool, list[tuple[str, str]]]:
    """OME's rule: exact ``Keep-Alive``/``Close`` are echoed; otherwise 1.1 stays open."""
    if connection == "Keep-Alive":
        return True, [("Connection", "Keep-Alive"), ("Keep-Alive", "timeout=5, max=100")]
    if connection == "Close":
        return False, [("Connection", "Close")]
    if connection is not None and "close" in connection.lower():
        return False, []  # OME would ignore a lower-case "close"; the client closes anyway
    return version == "HTTP/1.1", []
