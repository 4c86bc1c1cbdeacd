"""The ``Simulator`` class: its state, and serving it from a background thread.

The server runs an ``asyncio`` event loop of its own in a daemon thread, so callers drive
it from plain synchronous code, or from another event loop, without sharing one.  Its
scripting methods come from one base class per job: ``_SimClock`` (clock.py),
``_Topology`` (topology.py), ``_Api`` (api.py), ``_Faults`` (faults.py), ``_AlertModule``
(alerts.py) and ``_Control`` (control.py).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from types import FunctionType, TracebackType

from .alerts import _AlertModule
from .clock import ManualClock, _parse_offset
from .control import _Control
from .faults import _Fault
from .http import _HttpProtocol
from .outputs import _AppOutputs
from .relay import _Relays
from .streams import _Metrics, _VHost


class Simulator(_Control, _AlertModule, _Relays):
    """An OME REST API on 127.0.0.1 with scriptable streams, clock and faults.

    All public methods are thread-safe; the server runs in its own thread.  Use it as a
    context manager, or call ``start()`` and ``stop()``.  With ``tls`` (a server-side
    ``ssl.SSLContext``) it speaks HTTPS, as OME's ``<TLSPort>`` does, so tests can check
    how a client verifies certificates. ``quirks`` (see ``set_quirks``) makes streams'
    measurements as wrong as OME 0.18 prints them.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] | ManualClock | None = None,
        access_token: str = "ome-access-token",
        tz_offset: str = "+00:00",
        send_date_header: bool = False,
        clock_skew: float = 0.0,
        enterprise: bool = False,
        version: str = "0.18.0",
        port: int = 0,
        request_log_limit: int | None = None,
        tls: ssl.SSLContext | None = None,
        quirks: Iterable[str] = (),
    ) -> None:
        self._tls = tls
        self._manual: ManualClock | None = None
        if isinstance(clock, ManualClock):
            self._manual = clock
            self._clock: Callable[[], float] = clock.now
        elif clock is None:
            self._clock = time.time
        else:
            owner = getattr(clock, "__self__", None)
            if isinstance(owner, ManualClock):
                self._manual = owner
            self._clock = clock
        self._token = access_token
        self._tz_text = tz_offset
        self._tz_seconds = _parse_offset(tz_offset)
        self._send_date = send_date_header
        self._skew = float(clock_skew)
        self._enterprise = enterprise
        self._version = version
        self._want_port = port

        self._lock = threading.Lock()
        self._time_cache: dict[int, str] = {}
        self._requests: deque[tuple[str, str]] = deque(maxlen=request_log_limit)
        self._faults: list[_Fault] = []
        self._huge_padding: bytes | None = None
        self._quirks: frozenset[str] = frozenset()
        self.set_quirks(quirks)
        self._next_id = 100
        now = self._now()
        self._server = _Metrics(now)
        self._vhosts: dict[str, _VHost] = {}
        self._outputs: dict[tuple[str, str], _AppOutputs] = {}
        self._relays = {}
        self._edges = {}

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._protocols: set[_HttpProtocol] = set()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Bind 127.0.0.1 and serve from a background thread until ``stop()``."""
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says
        # TCP, and without it a second pipelined answer waits ~40 ms for the client's ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self._want_port))
            sock.listen(1024)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []
        self._loop = loop
        self._thread = threading.Thread(
            target=self._serve, args=(loop, sock, ready, failure), name="ome-simulator", daemon=True
        )
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            self._loop = None
            raise RuntimeError("simulator failed to start") from failure[0]

    def _serve(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        ready: threading.Event,
        failure: list[BaseException],
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            server = loop.run_until_complete(
                loop.create_server(
                    lambda: _HttpProtocol(self), sock=sock, backlog=1024, ssl=self._tls
                )
            )
        except BaseException as exc:  # pragma: no cover - binding already succeeded
            failure.append(exc)
            sock.close()
            loop.close()
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            # A connection accepted in the loop's last turn gets its transport a turn later,
            # and Python 3.11 leaks its socket if the server is closed by then (the transport
            # asserts the server is open). So stop accepting, let those transports be built,
            # and only then close the server and abort every connection.
            loop.remove_reader(sock.fileno())
            for _ in range(3):
                loop.run_until_complete(asyncio.sleep(0))
            server.close()
            for proto in list(self._protocols):
                proto.abort()
            loop.run_until_complete(server.wait_closed())
            # Let aborted transports run connection_lost and close their sockets.
            for _ in range(3):
                loop.run_until_complete(asyncio.sleep(0))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        """Stop serving, drop open connections and join the server thread."""
        self.alert_module_off()
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._thread = None
        self._loop = None

    def __enter__(self) -> Simulator:
        if self._thread is None:
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
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("simulator not started")
        return self._port

    @property
    def url(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def access_token(self) -> str:
        return self._token

    @property
    def manual_clock(self) -> ManualClock | None:
        """The ManualClock driving this simulator, if any (enables ``advance``)."""
        return self._manual

    # ----------------------------------------------------------------- request log

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every API request received, in order (control calls excluded)."""
        with self._lock:
            return list(self._requests)

    def request_count(self, prefix: str | None = None) -> int:
        """How many API requests had a path starting with ``prefix`` (all if None)."""
        with self._lock:
            if prefix is None:
                return len(self._requests)
            return sum(1 for _, p in self._requests if p.startswith(prefix))

    def reset_requests(self) -> None:
        """Forget the request log."""
        with self._lock:
            self._requests.clear()


def _claim_methods(cls: type) -> None:
    """Name every method of ``cls``'s base classes as ``cls``'s own.

    The methods are written on one base class per job, but callers know them as
    ``Simulator``'s: a bad call, such as ``POST /_sim/add_stream`` without a stream,
    should say ``Simulator.add_stream() missing …``, not name an internal base class.
    """
    for base in cls.__mro__[1:-1]:
        for name, member in vars(base).items():
            if isinstance(member, FunctionType):
                member.__qualname__ = f"{cls.__name__}.{name}"


_claim_methods(Simulator)
