"""One HTTP/1.1 answer read from a connection's bytes as they arrive, parsed by llhttp.

``httptools.HttpResponseParser`` (llhttp, the parser under Node.js and uvicorn) does the
parsing; what is here is what llhttp leaves to its user, each a bound on what a server (or
whoever sits on the path to an ``http://`` URL) can make the watcher hold or do:

- the head (interim answers included) is fed at most ``MAX_HEAD_BYTES`` at a time, so one
  that does not end within the limit is refused however it arrives;
- the body is counted against ``MAX_BODY_BYTES`` as it arrives, never after;
- a chunk-size line (llhttp takes any run of leading zeros and any extension) and the
  trailer are measured exactly, by following the chunks' positions in each segment;
- a CPU budget caps the number of chunks per answer, so a peer sending millions of tiny
  chunks is cut off within a few milliseconds of work, not at the deadline;
- framing llhttp accepts but a client has no use for, and which is where request smuggling
  lives, is refused: a ``Transfer-Encoding`` that is not exactly ``chunked`` (a list, a
  repeat, another coding) and chunking on HTTP/1.0.

llhttp itself refuses bare CR and NUL (and every other control but tab) in header values,
header names that are not tokens, ``Transfer-Encoding`` with ``Content-Length``, and
duplicate lengths. A bare LF ending a head line is accepted, as RFC 9112 lets a client do.
"""

from __future__ import annotations

from httptools import (
    HttpParserCallbackError,
    HttpParserError,
    HttpParserUpgrade,
    HttpResponseParser,
)

from .http import Answer, Garbled, TooLarge

__all__ = ["MAX_CHUNK_LINE", "MAX_HEAD_BYTES", "Reader", "chunk_budget"]

#: Longest response head (status line and headers, interim answers included), and trailer.
MAX_HEAD_BYTES = 64 * 1024
#: Longest chunk-size line (size, extensions and line end).
MAX_CHUNK_LINE = 1024
_NO_BODY = frozenset({204, 304})

# where a chunked body is when a segment ends: in a chunk-size line, in a chunk's data (or
# the line end after it), or in the trailer
_LINE, _DATA, _TRAILER = range(3)


def chunk_budget(body_bytes: int) -> int:
    """How many chunks an answer may have when ``body_bytes`` of body came so far: 1,024,
    and one more per 32 bytes. Each chunk is a few parser callbacks (about a microsecond),
    so the work per answer stays proportional to a body that is itself bounded."""
    return 1024 + body_bytes // 32


class _Refused(Exception):
    """Raised inside a parser callback to stop llhttp; the failure itself is kept aside."""


class Reader:
    """The answer to the request in flight on one connection: feed it bytes, then read
    ``done``, ``keep`` and ``answer()``. One per connection; ``start`` before each request.

    ``feed`` raises ``Garbled`` or ``TooLarge``; after either, the connection must be closed.
    """

    def __init__(self) -> None:
        self._parser = HttpResponseParser(self)
        self._parser.set_dangerous_leniencies(lenient_optional_cr_before_lf=True)
        self.start(0)

    def start(self, max_body: int) -> None:
        """Expect a new answer (the request was just sent), of at most ``max_body`` bytes."""
        self._max_body = max_body
        self.status = 0
        self.headers: dict[str, str] = {}
        #: the final answer is complete
        self.done = False
        #: and the connection may carry another request
        self.keep = False
        #: its body is framed by the server closing the connection
        self.until_close = False
        #: bytes came after the answer (an unasked-for second one, or garbage)
        self.extra = False
        self._head = True  # still reading heads (interim answers included)
        self._head_left = MAX_HEAD_BYTES
        self._head_pieces: list[bytes] = []
        self._parts: list[bytes] = []
        self._size = 0
        self._failure: Exception | None = None
        # chunked bodies: where in the piece being fed the parser is, and what it reads
        self._chunked = False
        self._piece = b""
        self._cursor = 0
        self._where = _LINE
        self._line = b""  # the start of a chunk-size line the previous piece ended in
        self._run = 0  # bytes of the trailer so far
        self._trailer = 0  # bytes of trailer fields read whole
        self._chunks = 0
        self._tail = b""  # the head's last bytes in the previous piece

    def answer(self) -> Answer:
        return Answer(self.status, self.headers, b"".join(self._parts))

    def feed(self, data: bytes) -> None:
        """Parse ``data``, the next bytes of the connection."""
        while data and not self.done:
            if self._head:
                piece = data[: self._head_left]
                self._feed(piece)
                if self._head:
                    self._head_left -= len(piece)
                    self._head_pieces.append(piece)
                    self._tail = piece[max(self._cursor, len(piece) - 2) :]
                    if self._head_left <= 0:
                        raise Garbled(f"the response head is longer than {MAX_HEAD_BYTES} bytes")
                data = data[len(piece) :]
            else:
                self._feed(data)
                data = b""
        if data:
            self.extra = True

    def end(self) -> bool:
        """The server closed the connection in order: whether that completes the answer."""
        if self.until_close and not self._head and not self.done:
            self.done = True
        return self.done

    # -- feeding ---------------------------------------------------------------------------

    def _feed(self, piece: bytes) -> None:
        self._piece, self._cursor = piece, 0
        try:
            self._parser.feed_data(piece)
        except HttpParserCallbackError as exc:
            raise self._failure or Garbled(str(exc)) from None
        except HttpParserUpgrade:
            raise Garbled("the server switched protocols, which was not asked for") from None
        except HttpParserError as exc:
            if self.done:  # garbage after a complete answer: the answer stands
                self.extra = True
                return
            reason = str(exc)
            if reason == "Content-Length overflow":
                raise TooLarge from None
            raise Garbled(self._explain(reason)) from None
        if self._chunked and not self.done:
            self._measure_run()

    def _explain(self, reason: str) -> str:
        """llhttp's reason, and the head line it stopped at if the error is in a head."""
        if not self._head:
            return reason
        found = _failing_line(b"".join([*self._head_pieces, self._piece]))
        if found is None:
            return reason
        line, first = found
        shown = repr(line[:80].decode("latin-1"))
        return f"not an HTTP/1 status line: {shown}" if first else f"{reason} in {shown}"

    def _fail(self, failure: Exception) -> None:
        self._failure = failure
        raise _Refused

    # -- llhttp's callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.done:
            self.extra = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._head:  # a trailer field: not kept, only counted
            self._trailer += len(name) + len(value) + 4
            if self._trailer > MAX_HEAD_BYTES:
                self._fail(Garbled(f"the chunked trailer is longer than {MAX_HEAD_BYTES} bytes"))
            return
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        if key == "transfer-encoding" and (key in self.headers or text.lower() != "chunked"):
            shown = f"{self.headers[key]}, {text}" if key in self.headers else text
            self._fail(Garbled(f"Transfer-Encoding {shown[:40]!r} is not just chunked"))
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            self._cursor = self._head_end()
            self.headers = {}
            return
        version = self._parser.get_http_version()
        if version not in ("1.1", "1.0"):
            self._fail(Garbled(f"HTTP/{version} is not HTTP/1"))
        self.status, self._head, self._head_pieces = status, False, []
        headers = self.headers
        if "transfer-encoding" in headers:
            if version == "1.0":
                self._fail(Garbled("a chunked answer on HTTP/1.0"))
            self._chunked = True
            self._cursor = self._head_end()
        elif "content-length" in headers:
            digits = headers["content-length"].lstrip("0") or "0"  # llhttp checked the digits
            if status not in _NO_BODY and int(digits) > self._max_body:
                self._fail(TooLarge())
        else:
            self.until_close = status not in _NO_BODY

    def on_message_complete(self) -> None:
        if self._head:  # an interim answer (100 Continue): the real one follows
            return
        self.done = True
        self.keep = self._parser.should_keep_alive() and not self.until_close

    def on_chunk_header(self) -> None:
        end = self._piece.find(b"\n", self._cursor) + 1
        line = self._line + self._piece[self._cursor : end]
        if len(line) > MAX_CHUNK_LINE:
            self._fail(Garbled(f"a chunk-size line is longer than {MAX_CHUNK_LINE} bytes"))
        # llhttp checked the line: hex digits, then extensions after ";" or the line end
        size = int(line.partition(b";")[0].rstrip(b"\r\n"), 16)
        if self._size + size > self._max_body:
            self._fail(TooLarge())  # announced: no need to wait for it
        self._cursor, self._line = end, b""
        self._where = _DATA if size else _TRAILER
        self._chunks += 1
        if self._chunks > chunk_budget(self._size):
            self._fail(Garbled(f"{self._chunks} chunks for {self._size} bytes of body"))

    def on_body(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._max_body:
            self._fail(TooLarge())
        self._parts.append(data)
        self._cursor += len(data)

    def on_chunk_complete(self) -> None:
        if self._where == _DATA:  # past the line end that follows the chunk's data
            self._cursor = self._piece.find(b"\n", self._cursor) + 1
            self._where = _LINE

    # -- positions in a chunked body -------------------------------------------------------

    def _measure_run(self) -> None:
        """After a piece: keep what of it belongs to a chunk-size line still open (at most
        ``MAX_CHUNK_LINE`` bytes), and count what belongs to the trailer."""
        rest = self._piece[self._cursor :]
        if self._where == _LINE:
            self._line += rest
            if len(self._line) > MAX_CHUNK_LINE:
                raise Garbled(f"a chunk-size line is longer than {MAX_CHUNK_LINE} bytes")
        elif self._where == _TRAILER:
            self._run += len(rest)
            if self._run > MAX_HEAD_BYTES:
                raise Garbled(f"the chunked trailer is longer than {MAX_HEAD_BYTES} bytes")

    def _head_end(self) -> int:
        """Where in the piece being fed the head llhttp just finished ends: after the first
        empty line from the cursor on (the head may have begun in the previous piece)."""
        joined = self._tail + self._piece if not self._cursor else self._piece
        start = self._cursor
        found = [
            at + len(blank)
            for blank in (b"\n\n", b"\n\r\n")
            if (at := joined.find(blank, start)) >= 0
        ]
        end = min(found) - (len(joined) - len(self._piece))
        self._tail = b""
        return max(0, end)


def _failing_line(head: bytes) -> tuple[bytes, bool] | None:
    """The line of ``head`` a fresh parser fed line by line stops at, and whether it is a
    status line (the first of a head). For the error message only."""
    parser = HttpResponseParser(object())
    parser.set_dangerous_leniencies(lenient_optional_cr_before_lf=True)
    start, first = 0, True
    while start < len(head):
        end = head.find(b"\n", start) + 1 or len(head)
        line = head[start:end].rstrip(b"\r\n")
        try:
            parser.feed_data(head[start:end])
        except (HttpParserError, HttpParserUpgrade):
            return line, first
        start, first = end, not line
    return None
