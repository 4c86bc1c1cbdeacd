"""HTTP/1.1 GETs to one OME server over plain asyncio: the client's default HTTP stack.

Why its own connections: a poll is thousands of small GETs to one host, and the HTTP
library's own CPU per request was most of a tick. ``bench/bench_poll.py`` measured aiohttp
at about 270 µs of CPU per stats request and this module at about 90 µs, JSON decoding
included, which is what brought a 10,000-stream tick under the benchmark's bar (issue 8).
The bytes are parsed by llhttp (``framing``), not here.

It does what OME's API needs and nothing else: GET with fixed headers, keep-alive
connections up to the request limit, bodies framed by ``Content-Length``, chunked, or the
connection closing, TLS with SNI and host name checks, Happy Eyeballs between IPv6 and
IPv4, and one deadline for the whole exchange. A connection the server closes while it sits
idle between polls is let go as it happens, as is one on which any unasked-for byte
arrives; if it closes in a race, as the GET is sent, without a byte of answer, the GET is
sent again once on a fresh connection, as browsers do (GETs are idempotent). It never
follows redirects (a 3xx is an unexpected answer for ``ome.api`` to report), asks for no
compression, keeps no cookies and uses no proxy, none of which OME's API uses. Header
names come back in lower case.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import quote, urlsplit

from .connect import open_socket
from .framing import Reader
from .http import (
    MAX_BODY_BYTES,
    Answer,
    Broken,
    Garbled,
    NoConnection,
    TooLarge,
    client_context,
)

__all__ = ["WireGetter"]

#: How long an IPv6 attempt gets before IPv4 is tried too (RFC 8305's recommended 250 ms)
HAPPY_EYEBALLS_DELAY = 0.25


class _Closed(Exception):
    """The connection ended (EOF, reset or aborted) while more of an answer was awaited."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection: the answer being read, and a way to wait for it.

    Bytes are parsed as they arrive (``framing.Reader``), so nothing is buffered beyond the
    answer's own body. Between requests the connection reads on, so a close by the server
    is noticed at once, but any byte that comes then (a 408 before an idle close, or a
    peer that floods) closes it: nothing unasked-for is ever kept or read as an answer.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reader = Reader()
        #: a request is in flight and its answer not yet complete
        self.busy = False
        self.ended = False
        #: whatever ended the connection, for the error message
        self.reason = ""
        #: ended by the server's orderly close (not a reset, an abort or the deadline)
        self.clean_end = False
        #: bytes arrived since the current request was sent
        self.answered = False
        self.expired = False
        #: why the answer was refused (not HTTP, too large)
        self.failure: Garbled | TooLarge | None = None
        self._waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not self.busy:  # idle: nobody asked for these bytes
            self.abort()
            return
        self.answered = True
        try:
            self.reader.feed(data)
        except (Garbled, TooLarge) as exc:
            self.failure = exc
            self.abort()
            return
        if self.reader.done:
            self.busy = False
            self._wake()

    def eof_received(self) -> bool:
        self._end("the server closed the connection", clean=True)
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            self._end("the server closed the connection", clean=True)
        else:
            self._end(f"the connection broke: {exc}")

    # -- used by WireGetter ------------------------------------------------------------------

    def idle_and_open(self) -> bool:
        """Fit to carry a request: open, and not reading an answer."""
        return not self.ended and not self.busy

    def send(self, request: bytes, max_body: int) -> None:
        assert self.transport is not None
        self.reader.start(max_body)
        self.busy, self.answered = True, False
        self.transport.write(request)

    def expire(self) -> None:
        """The request's deadline passed: stop waiting, and drop the connection."""
        self.expired = True
        self.abort()

    def abort(self) -> None:
        self._end("closed by the client")
        if self.transport is not None:
            self.transport.abort()

    async def exchange(self) -> tuple[Answer, bool]:
        """The answer to the request sent; also whether the connection may carry another."""
        reader = self.reader
        while not reader.done:
            if self.failure is not None:
                raise self.failure
            if self.ended:
                if self.clean_end and reader.end():
                    break  # a body framed by the close
                raise _Closed(self.reason)
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None
        self.busy = False
        return reader.answer(), reader.keep and not reader.extra

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _end(self, reason: str, *, clean: bool = False) -> None:
        if not self.ended:
            self.ended = True
            self.reason = reason
            self.clean_end = clean
        self._wake()


class WireGetter:
    """GETs below ``base`` (``http(s)://host[:port][/prefix]``) with fixed headers, over a
    pool of at most ``limit`` idle keep-alive connections, each exchange within ``timeout``.

    ``tls`` is the verification to use for ``https``: a context, ``True`` for the system's
    CAs, ``False`` for none. Connections are opened on first use, in the loop that polls.
    """

    def __init__(
        self,
        base: str,
        headers: dict[str, str],
        limit: int,
        tls: ssl.SSLContext | bool,
        timeout: float,
        *,
        max_body: int | None = None,  # None: MAX_BODY_BYTES
    ) -> None:
        parts = urlsplit(base)
        self._max_body = max_body
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        # a prefix as configured may hold non-ASCII; what is %-escaped already stays so
        self._prefix = quote(parts.path.rstrip("/"), safe="/%:@!$&'()*+,;=~").encode("ascii")
        self._tls = tls
        self._context: ssl.SSLContext | None = None
        self._limit = limit
        self._timeout = timeout
        self._idle: list[_Connection] = []
        self._closed = False
        host = _ascii_host(self._host)
        if parts.port is not None and parts.port != (443 if self._https else 80):
            host += f":{parts.port}"
        lines = [f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
        if any("\r" in line or "\n" in line for line in lines):
            raise ValueError("a request header holds a line break")
        self._head_tail = (" HTTP/1.1\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def get(self, path: str) -> Answer:
        """GET ``path`` (already percent-encoded) below the base URL."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        request = b"GET " + self._prefix + path.encode("ascii") + self._head_tail
        retried = False
        while True:
            conn = None if retried else self._take_idle()
            reused = conn is not None
            if conn is None:
                conn = await self._connect(deadline)
            timer = loop.call_at(deadline, conn.expire)
            try:
                conn.send(request, self._max_body or MAX_BODY_BYTES)
                answer, keep = await conn.exchange()
            except _Closed:
                conn.abort()
                if conn.expired:
                    raise TimeoutError from None
                if reused and not conn.answered:
                    retried = True  # closed while idle, as it was taken: once more, afresh
                    continue
                raise Broken(conn.reason, answered=conn.answered) from None
            except BaseException:  # garbage, too large, or the poll was cancelled
                conn.abort()
                raise
            finally:
                timer.cancel()
            if keep and not self._closed and conn.idle_and_open() and len(self._idle) < self._limit:
                self._idle.append(conn)
            else:
                conn.abort()
            return answer

    async def aclose(self) -> None:
        """Close the idle connections; one still carrying a GET is closed when it ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.abort()
        if idle:
            await asyncio.sleep(0)  # let the transports finish closing their sockets

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.idle_and_open():
                return conn
            conn.abort()
        return None

    async def _connect(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        context = self._tls_context() if self._https else None
        try:
            async with asyncio.timeout_at(deadline):
                sock = await open_socket(self._host, self._port, HAPPY_EYEBALLS_DELAY)
                try:
                    _, conn = await loop.create_connection(
                        _Connection,
                        sock=sock,
                        ssl=context,
                        server_hostname=self._host if context is not None else None,
                    )
                except BaseException:
                    sock.close()
                    raise
        except ssl.SSLCertVerificationError as exc:
            raise NoConnection(str(exc), exc) from None
        except ssl.SSLError as exc:
            raise NoConnection(f"TLS handshake failed: {exc.reason or exc}") from None
        except TimeoutError:
            raise
        except OSError as exc:
            raise NoConnection(str(exc) or type(exc).__name__) from None
        return conn

    def _tls_context(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = client_context(self._tls)
        return self._context


def _ascii_host(host: str) -> str:
    """The host as the ``Host`` header spells it: IDNA for international names (a name IDNA
    refuses is %-escaped; connecting to it fails and says so), brackets around IPv6."""
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            host = quote(host, safe="")
    return f"[{host}]" if ":" in host else host
