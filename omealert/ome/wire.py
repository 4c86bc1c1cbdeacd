"""HTTP/1.1 GETs to one OME server over plain asyncio: the client's default HTTP stack.

Why by hand: a poll is thousands of small GETs to one host, and the HTTP library's own CPU
per request was most of a tick. ``bench/bench_poll.py`` measured aiohttp at about 270 µs of
CPU per stats request and this module at about 90 µs, JSON decoding included, which is what
brought a 10,000-stream tick under the benchmark's bar (issue 8).

It does what OME's API needs and nothing else: GET with fixed headers, keep-alive
connections up to the request limit, bodies framed by ``Content-Length``, chunked, or the
connection closing, TLS with SNI and host name checks, and one deadline for the whole
exchange. A connection the server closed while it sat idle between polls is noticed when it
is taken; if it closes in a race, as the GET is sent, without a byte of answer, the GET is
sent again once on a fresh connection, as browsers do (GETs are idempotent). It never
follows redirects (a 3xx is an unexpected answer for ``ome.api`` to report), asks for no
compression, keeps no cookies and uses no proxy, none of which OME's API uses. Header
names come back in lower case.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import quote, urlsplit

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

#: Longest response head (status line and headers) read before calling it garbage.
MAX_HEAD_BYTES = 64 * 1024
_STATUS_WITHOUT_BODY = frozenset({204, 304})
_HEX = frozenset(b"0123456789abcdefABCDEF")


class _Closed(Exception):
    """The connection ended (EOF, reset or aborted) while more of an answer was awaited."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection: what arrived, and a way to wait for more.

    A trimmed ``asyncio.StreamReader``: reads return at once while the buffer holds what they
    need, so a whole small answer arriving in one segment costs one wake-up.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.ended = False
        #: whatever ended the connection, for the error message
        self.reason = ""
        #: ended by the server's orderly close (not a reset, an abort or the deadline)
        self.clean_end = False
        #: bytes arrived since the current request was sent
        self.answered = False
        self.expired = False
        self._waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.answered = True
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
        """Fit to carry a request: open, and nothing unasked-for waiting in it (a server may
        send a 408 before it closes an idle connection)."""
        return not self.ended and not self.buffer

    def expire(self) -> None:
        """The request's deadline passed: stop waiting, and drop the connection."""
        self.expired = True
        self.abort()

    def abort(self) -> None:
        self._end("closed by the client")
        if self.transport is not None:
            self.transport.abort()

    async def read_until(self, separator: bytes, limit: int) -> bytes:
        start = 0
        while True:
            found = self.buffer.find(separator, start)
            if found >= 0:
                end = found + len(separator)
                data = bytes(self.buffer[:end])
                del self.buffer[:end]
                return data
            if len(self.buffer) > limit:
                raise Garbled(f"no end of line within {limit} bytes")
            start = max(0, len(self.buffer) - len(separator) + 1)
            await self._more()

    async def read_head(self, limit: int) -> bytes:
        """Through the blank line that ends a response head (CRLF, or a bare LF, which
        RFC 9112 lets a client accept)."""
        start = 0
        while True:
            end = _head_end(self.buffer, start)
            if end >= 0:
                data = bytes(self.buffer[:end])
                del self.buffer[:end]
                return data
            if len(self.buffer) > limit:
                raise Garbled(f"no end of the response head within {limit} bytes")
            start = max(0, len(self.buffer) - 3)
            await self._more()

    async def read_exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            await self._more()
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    async def read_to_end(self, limit: int) -> bytes:
        """Everything until the server closes the connection: the framing of last resort.
        A reset or the deadline cuts such a body off just as it would any other."""
        while not self.ended:
            if len(self.buffer) > limit:
                raise TooLarge
            await self._more()
        if not self.clean_end:
            raise _Closed(self.reason)
        if len(self.buffer) > limit:
            raise TooLarge
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    async def _more(self) -> None:
        if self.ended:
            raise _Closed(self.reason)
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None

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
    ) -> None:
        parts = urlsplit(base)
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
                conn.answered = False
                assert conn.transport is not None
                conn.transport.write(request)
                answer, keep = await _exchange(conn)
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
                _, conn = await loop.create_connection(
                    _Connection,
                    self._host,
                    self._port,
                    ssl=context,
                    server_hostname=self._host if context is not None else None,
                )  # no happy_eyeballs_delay: Python 3.11's leaks a socket when cancelled
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


async def _exchange(conn: _Connection) -> tuple[Answer, bool]:
    """Read one answer; also whether the connection may carry another request."""
    while True:
        head = await conn.read_head(MAX_HEAD_BYTES)
        status, http11, headers = _parse_head(head)
        if not 100 <= status < 200:
            break  # an interim answer (100 Continue) is followed by the real one
    connection = headers.get("connection", "").lower()
    keep = "close" not in connection if http11 else "keep-alive" in connection
    if status in _STATUS_WITHOUT_BODY:
        body = b""
    elif "transfer-encoding" in headers:
        if headers["transfer-encoding"].lower().rsplit(",", 1)[-1].strip() == "chunked":
            body = await _read_chunked(conn)
        else:
            body, keep = await conn.read_to_end(MAX_BODY_BYTES), False
    elif "content-length" in headers:
        length = _content_length(headers["content-length"])
        if length > MAX_BODY_BYTES:
            raise TooLarge
        body = await conn.read_exactly(length)
    else:
        body, keep = await conn.read_to_end(MAX_BODY_BYTES), False
    return Answer(status, headers, body), keep


def _parse_head(head: bytes) -> tuple[int, bool, dict[str, str]]:
    """``HTTP/1.x NNN reason`` and the header lines: (status, HTTP/1.1 or later, headers)."""
    lines = [line.rstrip(b"\r") for line in head.rstrip(b"\r\n").split(b"\n")]
    version, _, rest = lines[0].partition(b" ")
    code = rest[:3]
    if (
        not version.startswith(b"HTTP/1.")
        or len(code) != 3
        or not code.isdigit()
        or rest[3:4] not in (b"", b" ")
    ):
        raise Garbled(f"not an HTTP/1 status line: {_show(lines[0])}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name[-1:] in (b" ", b"\t") or line[:1] in (b" ", b"\t"):
            raise Garbled(f"not a header line: {_show(line)}")
        key = name.decode("latin-1").lower()
        text = value.strip(b" \t").decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return int(code), version != b"HTTP/1.0", headers


def _content_length(text: str) -> int:
    # the same length repeated ("12, 12") is allowed; different ones are an attack or a bug
    values = {v.strip() for v in text.split(",")}
    if len(values) != 1 or not (value := values.pop()).isdigit() or not value.isascii():
        raise Garbled(f"invalid Content-Length: {text[:40]!r}")
    value = value.lstrip("0") or "0"
    if len(value) > len(str(MAX_BODY_BYTES)):  # int() refuses 4,300 digits and more
        raise TooLarge
    return int(value)


async def _read_chunked(conn: _Connection) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = await conn.read_until(b"\n", 1024)
        size_text = line.rstrip(b"\r\n").split(b";", 1)[0].strip(b" \t")
        if not size_text or not _HEX.issuperset(size_text):
            raise Garbled(f"invalid chunk size: {_show(line)}")
        size = int(size_text, 16)
        if size == 0:
            trailer = 0
            while (line := await conn.read_until(b"\n", MAX_HEAD_BYTES)).rstrip(b"\r\n"):
                trailer += len(line)
                if trailer > MAX_HEAD_BYTES:
                    raise Garbled("chunked trailer too long")
            return b"".join(parts)
        total += size
        if total > MAX_BODY_BYTES:
            raise TooLarge
        parts.append(await conn.read_exactly(size))
        if await conn.read_until(b"\n", 2) not in (b"\r\n", b"\n"):
            raise Garbled("a chunk is not followed by a line break")


def _head_end(buffer: bytearray, start: int) -> int:
    """Where the head in ``buffer`` ends (after its blank line), or -1 if it has not yet."""
    crlf = buffer.find(b"\r\n\r\n", start)
    bare = buffer.find(b"\n\n", start)
    if bare < 0:
        return crlf + 4 if crlf >= 0 else -1
    return bare + 2 if crlf < 0 or bare + 2 < crlf + 4 else crlf + 4


def _ascii_host(host: str) -> str:
    """The host as the ``Host`` header spells it: IDNA for international names (a name IDNA
    refuses is %-escaped; connecting to it fails and says so), brackets around IPv6."""
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            host = quote(host, safe="")
    return f"[{host}]" if ":" in host else host


def _show(line: bytes) -> str:
    return repr(line[:60].decode("latin-1"))
