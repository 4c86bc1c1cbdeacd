"""Loopback sinks that real delivery code talks to in tests: an SMTP relay and an HTTP endpoint.

Both bind to 127.0.0.1 only, run in background threads that ``stop()`` joins, and record what
they received so a test can assert on the exact bytes a client sent. ``wait_for`` blocks on a
condition variable (no polling sleeps) and exists only to wait for a delivery that runs in the
background; it is never a way to make time pass.
"""

from __future__ import annotations

import contextlib
import email.policy
import json
import socket
import threading
from email.message import EmailMessage
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    Needed where a server cannot be asked for port 0 (aiosmtpd's Controller connects to its own
    port to check readiness, so it must know the number before it starts).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


class _Recorder:
    """A list guarded by a condition so readers can wait for the n-th item."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: list[Any] = []

    def append(self, item: Any) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def snapshot(self) -> list[Any]:
        with self._cond:
            return list(self._items)

    def wait_for(self, n: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self._items) >= n, timeout)


# --------------------------------------------------------------------------- SMTP


class _SmtpHandler:
    """aiosmtpd handler: stores each message, or refuses recipients when told to."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self._sink._refusing:
            return "554 5.7.1 Recipient refused by test sink"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self._sink._refusing:
            return "554 5.6.0 Message refused by test sink"
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        # SMTP carries CRLF line ends; tests compare text with "\n", as any mail client shows it.
        raw = raw.replace(b"\r\n", b"\n")
        msg = BytesParser(policy=email.policy.default).parsebytes(raw)
        assert isinstance(msg, EmailMessage)
        self._sink._envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self._sink._messages.append(msg)
        return "250 Message accepted"


class SmtpSink:
    """An SMTP relay on 127.0.0.1 (aiosmtpd) that keeps every message it accepts.

    ``refuse(True)`` makes it answer 554 to every recipient, so a client's send fails the way
    it would against a relay that rejects mail.
    """

    def __init__(self, port: int = 0) -> None:
        self._messages = _Recorder()
        self._envelopes = _Recorder()
        self._refusing = False
        self._controller: Controller | None = None
        self._fixed = port  # a port something else held before (0: pick a free one)
        self.port = 0

    def start(self) -> None:
        if self._controller is not None:
            return
        last: Exception | None = None
        # free_port() releases its probe socket, so another process may take the port before
        # the controller binds it; a couple of fresh picks make that race harmless.
        for _ in range(5 if self._fixed == 0 else 1):
            port = self._fixed or free_port()
            ctl = Controller(_SmtpHandler(self), hostname=LOOPBACK, port=port, ready_timeout=10)
            try:
                ctl.start()
            except Exception as exc:
                last = exc
                ctl.stop(no_assert=True)
                continue
            self._controller = ctl
            self.port = port
            return
        raise RuntimeError(f"could not start the SMTP sink: {last}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        """Every accepted message, parsed with the modern email policy."""
        return self._messages.snapshot()

    @property
    def envelopes(self) -> list[tuple[str, list[str]]]:
        """``(MAIL FROM, [RCPT TO...])`` of every accepted message, in order."""
        return self._envelopes.snapshot()

    def refuse(self, refusing: bool = True) -> None:
        self._refusing = refusing

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        """True once ``n`` messages have arrived; False if ``timeout`` passes first."""
        return self._messages.wait_for(n, timeout)


class TrickleSmtp:
    """A raw TCP server on 127.0.0.1 that sends its SMTP greeting one byte every ``pace`` s.

    The line never ends, and each byte resets the client's socket read timeout, so a client
    stays inside its read until ``stop()`` closes every connection (it then sees EOF).
    """

    def __init__(self, pace: float = 0.3) -> None:
        self._pace = pace
        self._stopping = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((LOOPBACK, 0))
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        self.accepted = 0

    def start(self) -> None:
        self._listener.listen(32)
        self._spawn(self._accept)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed by stop()
            with self._lock:
                self._connections.append(conn)
                self.accepted += 1
            self._spawn(self._trickle, conn)

    def _trickle(self, conn: socket.socket) -> None:
        greeting = b"220 slow.example.com ESMTP " + b"." * 100_000
        for byte in greeting:
            if self._stopping.wait(self._pace):
                return
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                return

    def stop(self) -> None:
        self._stopping.set()
        # shutdown() wakes a thread blocked in accept(); close() alone does not on Linux
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:  # the acceptor first: after it, no connection is added
            thread.join(10)
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------- HTTP


class _HttpServer(ThreadingHTTPServer):
    # Join handler threads on close, so stop() leaves nothing running behind the test.
    daemon_threads = False
    block_on_close = True
    receiver: HttpReceiver


class _HttpHandler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so no handler thread idles on a kept-alive socket.
    protocol_version = "HTTP/1.0"
    server: _HttpServer
    timeout = 10

    def _handle(self) -> None:
        rec = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            # The sender died mid-request (a test SIGKILLs it): like any real server, take
            # an incomplete request as never received.
            return
        rec._requests.append((self.command, self.path, dict(self.headers.items()), body))
        if rec._delay > 0:
            # Wait on the release event rather than sleeping, so stop() can end a delayed
            # request at once instead of waiting out the delay.
            rec._release.wait(rec._delay)
        payload = rec.reply_body
        self.send_response(rec._status)
        self.send_header("Content-Type", rec.reply_content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        # The client may have given up already (its own read timeout): nothing left to tell it.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean; requests are recorded instead


class HttpReceiver:
    """An HTTP endpoint on 127.0.0.1 that records requests and answers as configured.

    ``set_status(500)`` fails requests, ``set_delay(s)`` holds each answer back,
    ``set_down(True)`` closes the listening socket (connections are refused) and
    ``set_down(False)`` listens again on the same port. ``reply_body`` is what it answers
    (Slack webhooks need exactly ``b"ok"``).
    """

    def __init__(self, *, status: int = 200, reply_body: bytes = b"ok") -> None:
        self._requests = _Recorder()
        self._status = status
        self._delay = 0.0
        self._release = threading.Event()
        self.reply_body = reply_body
        self.reply_content_type = "text/plain"
        self._server: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # lifecycle -------------------------------------------------------------

    def _serve(self, port: int) -> None:
        server = _HttpServer((LOOPBACK, port), _HttpHandler)
        server.receiver = self
        self.port = server.server_address[1]
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="http-receiver"
        )
        thread.start()
        self._server, self._thread = server, thread

    def _halt(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.shutdown()
        thread.join()
        server.server_close()  # closes the socket and joins in-flight handler threads

    def start(self) -> None:
        if self._server is None:
            self._release.clear()
            self._serve(self.port)

    def stop(self) -> None:
        self._release.set()
        self._halt()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # behaviour -------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def set_status(self, code: int) -> None:
        self._status = code

    def set_delay(self, seconds: float) -> None:
        self._delay = seconds

    def release(self) -> None:
        """Answer every held request now and stop delaying new ones."""
        self._delay = 0.0
        self._release.set()

    def set_down(self, down: bool) -> None:
        """Close the listening socket (connections refused), or re-bind the same port."""
        if down:
            self._release.set()
            self._halt()
        elif self._server is None:
            self._release.clear()
            self._serve(self.port)

    # what arrived ----------------------------------------------------------

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str], bytes]]:
        """``(method, path, headers, body)`` of every request, in arrival order."""
        return self._requests.snapshot()

    def json_bodies(self) -> list[Any]:
        return [json.loads(body) for _m, _p, _h, body in self.requests]

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        """True once ``n`` requests have arrived; False if ``timeout`` passes first."""
        return self._requests.wait_for(n, timeout)
