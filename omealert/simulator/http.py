"""A minimal HTTP/1.1 server connection, as an ``asyncio`` protocol.

``http.server`` with a thread per connection is far too slow for 10,000 streams polled
over keep-alive connections, so every connection is a protocol on the simulator's own
event loop.  Requests are parsed by httptools (llhttp) and answered by the ``Simulator``:
``/_sim/`` paths by its control endpoint, everything else as OME's API. Answers are
written here, byte by byte, since OME's exact bytes and quirks are what the simulator is for.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from typing import Final, NamedTuple, Protocol

import httptools

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


class _Request(NamedTuple):
    """One request as parsed, waiting for its turn to be answered."""

    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request the simulator will not take."""


class _HttpProtocol(asyncio.Protocol):
    """A minimal HTTP/1.1 server connection: keep-alive, Content-Length bodies, no chunking.

    httptools calls the ``on_*`` methods while it parses; finished requests queue in
    ``_pending`` and are answered in order. While an answer is held back (a "slow" or
    "hang" fault) the connection keeps reading, so it sees the client go away, but stops
    once a request's worth of bytes has piled up behind it.
    """

    def __init__(self, sim: _Host) -> None:
        self._sim = sim
        self._parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._busy = False  # a slow reply is pending; later requests wait their turn
        self._held = 0  # bytes received while busy
        self._timer: asyncio.TimerHandle | None = None
        self._pending: deque[_Request] = deque()
        self._refusal: str | None = None  # answered with a 400 once the pending are answered
        self._upgraded = False  # CONNECT or Upgrade: answer it, then close
        # The request being parsed.
        self._url = bytearray()
        self._headers: dict[str, str] = {}
        self._body = bytearray()
        self._head_open = False
        self._head_bytes = 0  # bytes of the open head, counted whole reads after its first
        self._began = False  # a request began in the read being parsed

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
        parser = self._parser
        if parser is None:
            return  # refused or upgraded: nothing after that is read
        self._began = False
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._parser, self._upgraded = None, True
        except httptools.HttpParserCallbackError:
            self._parser = None
            if self._refusal is None:
                raise  # a simulator bug in a callback: asyncio logs it and drops the connection
        except httptools.HttpParserError as exc:
            self._parser, self._refusal = None, _reason(exc)
        else:
            # llhttp sets no limit on a head and says nowhere where in a read one began, so
            # the reads that follow the one it began in are counted whole: never more than
            # the head, and at most one read (256 KiB) short of it.
            if self._head_open and not self._began:
                self._head_bytes += len(data)
                if self._head_bytes > _MAX_HEAD:
                    self._parser, self._refusal = None, "request head too large"
        if self._busy and self._transport is not None:
            self._held += len(data)
            if self._held > _MAX_HEAD + _MAX_BODY:
                self._transport.pause_reading()
        self._process()

    # ----------------------------------------------------------- httptools callbacks

    def on_message_begin(self) -> None:
        self._url.clear()
        self._headers = {}
        self._body.clear()
        self._head_open, self._head_bytes, self._began = True, 0, True

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # The last one wins, as in OME.
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1").strip()

    def on_headers_complete(self) -> None:
        self._head_open, self._head_bytes = False, 0
        assert self._parser is not None
        if not self._parser.get_http_version().startswith("1."):
            self._refuse("malformed request line")
        if "transfer-encoding" in self._headers:
            self._refuse("chunked request bodies are not supported")
        # llhttp has checked that Content-Length is one run of digits, given once.
        if int(self._headers.get("content-length", "0")) > _MAX_BODY:
            self._refuse("bad Content-Length")

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        assert self._parser is not None
        method = self._parser.get_method().decode("ascii")
        version = "HTTP/" + self._parser.get_http_version()
        target = self._url.decode("latin-1")
        self._pending.append(_Request(method, target, version, self._headers, bytes(self._body)))

    def _refuse(self, text: str) -> None:
        self._refusal = text
        raise _Refused(text)

    # ----------------------------------------------------------- answering

    def _process(self) -> None:
        while not self._busy and self._transport is not None:
            if self._pending:
                request = self._pending.popleft()
                try:
                    self._dispatch(*request)
                except Exception as exc:  # a simulator bug: say so instead of hanging the client
                    reply = _error(500, f"simulator bug: {type(exc).__name__}: {exc}")
                    self._send(reply, head_only=False, keep_alive=False, extra=[])
                    raise
            elif self._refusal is not None:
                self._fail(self._refusal)
            elif self._upgraded:
                self._transport.close()
                self._transport = None
            else:
                self._held = 0
                if not self._transport.is_reading():
                    self._transport.resume_reading()
                return

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


def _reason(exc: httptools.HttpParserError) -> str:
    """A 400's text for what llhttp refused (its reasons are fixed strings, not the request)."""
    if isinstance(
        exc, httptools.HttpParserInvalidMethodError | httptools.HttpParserInvalidURLError
    ):
        return "malformed request line"
    return f"malformed request: {exc}"
