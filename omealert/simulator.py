"""A built-in OvenMediaEngine simulator: an HTTP/1.1 server on loopback speaking OME's REST API.

omealert's tests, its ``demo`` command and its benchmarks need an OME that can be told to
misbehave on cue (stalled encoders, token rotation, proxies returning HTML, restarts) and
whose clock can be driven by hand.  The byte-level behaviour follows ``ome-api.md``: the
``{"message","response","statusCode"}`` envelope printed compact with sorted keys, the
401/404 texts, auth before routing, HEAD wherever GET is, times printed in the server's
own offset with truncated milliseconds, and stream-info bitrates as JSON strings.

It deliberately imports nothing from the rest of omealert, so a misunderstanding of the
API in the client cannot be mirrored here and hide itself.  Counters are computed lazily
from the injected clock at request time, so a manual clock needs no ticking thread.

The server is an ``asyncio`` protocol with its own event loop in a background thread:
``http.server`` with a thread per connection is far too slow for 10,000 streams polled
over keep-alive connections.

Run ``python -m omealert.simulator --port 8081 --streams 100`` for a stand-alone server;
``POST /_sim/<method>`` with a JSON object of keyword arguments scripts it from elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import email.utils
import hmac
import json
import math
import re
import signal
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final

__all__ = [
    "FAULT_KINDS",
    "PROVIDER_KEYS",
    "PUBLISHER_KEYS",
    "ManualClock",
    "Simulator",
    "main",
]

#: Publisher (viewer/egress) connection keys of OME ≥ 0.18.0, in the order OME prints them.
PUBLISHER_KEYS: Final = ("file", "hlsv3", "llhls", "ovt", "push", "srt", "thumbnail", "webrtc")
#: Provider (ingest) connection keys of OME Enterprise's /v2 stats.
PROVIDER_KEYS: Final = (
    "file", "mpegts", "multiplex", "ovt", "rtmp", "rtsp", "rtsppull", "scheduled", "srt", "webrtc",
)  # fmt: skip
#: What ``set_fault`` understands; see ``Simulator.set_fault``.
FAULT_KINDS: Final = frozenset(
    {"slow", "500", "html", "garbage", "truncated", "wrong_shape", "wrong_types", "huge", "drop",
     "vanish"}
)  # fmt: skip

_DEFAULT_START: Final = 1_767_225_600.0  # 2026-01-01T00:00:00Z
_HUGE_BYTES: Final = 20 * 1024 * 1024
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
_JSON_TYPE: Final = "application/json;charset=UTF-8"
_NGINX_502: Final = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
_GARBAGE: Final = b"\x00\xffOME<<this is not JSON>>\xfe{{{"
_B64_PREFIX: Final = re.compile(r"[A-Za-z0-9+/]*")
_TZ_OFFSET: Final = re.compile(r"([+-])(\d{2}):(\d{2})")
#: Scripting methods reachable through ``POST /_sim/<method>``.
_CONTROL_METHODS: Final = frozenset(
    {"add_vhost", "add_app", "add_stream", "add_streams", "remove_stream", "remove_app",
     "remove_vhost", "set_viewers", "stall", "resume", "set_bitrate", "set_framerate", "restart",
     "set_token", "set_fault", "clear_faults", "reset_requests", "request_count",
     "set_clock_skew", "server_time"}
)  # fmt: skip
_MANUAL_CLOCK_METHODS: Final = frozenset({"advance", "set_time"})


class ManualClock:
    """A clock that moves only when told to, so tests can make minutes pass without sleeping."""

    def __init__(self, start: float = _DEFAULT_START) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += float(seconds)

    def set(self, epoch: float) -> None:
        self._now = float(epoch)


# --------------------------------------------------------------------------- encoding


def _dumps(value: Any) -> bytes:
    """jsoncpp's output: compact, keys sorted, non-ASCII escaped, C floats as ``_c_float`` says."""
    data = json.dumps(value, sort_keys=True, separators=(",", ":")).encode("ascii")
    if b"\\u0000" in data:
        data = data.replace(b'"\\u0000', b"").replace(b'\\u0000"', b"")
    return data


def _c_float(value: float) -> str:
    """A C ``float`` field as jsoncpp prints it: widened to double, ``%.17g``, ``.0`` if integral.

    Python's shortest round-trip repr differs from ``%.17g`` for many C floats (199.998 is
    ``199.99800109863281`` here, ``199.9980010986328`` in Python), so the number travels
    as a NUL-marked string that ``_dumps`` unwraps into a bare JSON number.
    """
    widened: float = struct.unpack("<f", struct.pack("<f", value))[0]
    text = format(widened, ".17g")
    if "." not in text and "e" not in text and math.isfinite(widened):
        text += ".0"
    return f"\x00{text}\x00"


def _lenient_b64decode(text: str) -> bytes:
    """Decode base64 the way OME's Apache-style decoder does: stop at the first stray byte."""
    prefix = _B64_PREFIX.match(text)
    valid = prefix.group(0) if prefix else ""
    if len(valid) % 4 == 1:
        valid = valid[:-1]  # a lone sextet carries no whole byte
    valid += "=" * (-len(valid) % 4)
    try:
        return base64.b64decode(valid)
    except binascii.Error:  # pragma: no cover - the prefix is always decodable
        return b""


def _parse_offset(offset: str) -> int:
    match = _TZ_OFFSET.fullmatch(offset)
    if match is None:
        raise ValueError(f"tz_offset must look like +09:00 or -05:30, not {offset!r}")
    sign = -1 if match.group(1) == "-" else 1
    hours, minutes = int(match.group(2)), int(match.group(3))
    if hours > 23 or minutes > 59:
        raise ValueError(f"tz_offset out of range: {offset!r}")
    return sign * (hours * 3600 + minutes * 60)


def _mangle_types(value: Any, in_object: bool = False) -> Any:
    """Turn every number (and numeric string inside objects) into ``"n/a"``."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return "n/a"
    if isinstance(value, dict):
        return {k: _mangle_types(v, True) for k, v in value.items()}
    if isinstance(value, list):
        return [_mangle_types(v) for v in value]
    if isinstance(value, str) and value.startswith("\x00"):
        return "n/a"  # a C float, see _c_float
    if in_object and isinstance(value, str) and value.lstrip("-").replace(".", "", 1).isdigit():
        return "n/a"
    return value


# --------------------------------------------------------------------------- metrics


class _Metrics:
    """One OME metrics object (server, vhost, app or stream), integrated lazily over time.

    Rates are piecewise constant between scripted events, and every event settles the
    object up to "now" before changing a rate, so reading at any time is exact without a
    ticking thread.  Rates are integers in bits/s so aggregate sums never drift.
    """

    __slots__ = (
        "avg_in",
        "avg_out",
        "bytes_in",
        "bytes_out",
        "connections",
        "created",
        "last_event",
        "last_recv",
        "last_sent",
        "max_in",
        "max_out",
        "max_total",
        "max_total_time",
        "rate_in",
        "rate_out",
        "settled",
        "total",
    )

    def __init__(self, now: float) -> None:
        self.created = now
        self.settled = now
        self.bytes_in = 0.0
        self.bytes_out = 0.0
        self.rate_in = 0  # bits/s arriving now
        self.rate_out = 0  # bits/s leaving now
        self.last_recv = now
        self.last_sent = now
        self.last_event = now
        self.avg_in = 0  # bits/s at the last measurement (frozen while nothing ingests)
        self.avg_out = 0
        self.max_in = 0
        self.max_out = 0
        self.connections = dict.fromkeys(PUBLISHER_KEYS, 0)
        self.total = 0
        self.max_total = 0
        self.max_total_time = now

    def settle(self, now: float) -> float:
        """Integrate bytes up to ``now``; returns the effective time (never before the last)."""
        if now <= self.settled:
            return self.settled
        dt = now - self.settled
        if self.rate_in:
            self.bytes_in += self.rate_in * dt / 8
            self.last_recv = now
            self.last_event = now
        if self.rate_out:
            self.bytes_out += self.rate_out * dt / 8
            self.last_sent = now
            self.last_event = now
        self.settled = now
        return now

    def set_rates(self, now: float, rate_in: int, rate_out: int) -> None:
        now = self.settle(now)
        self.rate_in = rate_in
        self.rate_out = rate_out
        if rate_in > 0:
            # OME measures both throughputs only when input arrives: they follow the new
            # rates while something ingests and freeze at their last values otherwise.
            self.avg_in = rate_in
            self.avg_out = rate_out
            self.max_in = max(self.max_in, rate_in)
            self.max_out = max(self.max_out, rate_out)
            self.last_recv = now
            self.last_event = now
            if rate_out > 0:
                self.last_sent = now

    def add_connections(self, now: float, deltas: Mapping[str, int]) -> None:
        now = self.settle(now)
        changed = False
        for key, delta in deltas.items():
            if delta:
                self.connections[key] = self.connections.get(key, 0) + delta
                self.total += delta
                changed = True
        if not changed:
            return
        self.last_event = now
        if self.total > self.max_total:
            self.max_total = self.total
            self.max_total_time = now


@dataclass(slots=True)
class _Stream:
    name: str
    id: int
    source: str
    bitrate: int  # bits/s being ingested (when not stalled)
    announced_bitrate: int  # RTMP metadata value; OME never updates it
    framerate: float
    announced_framerate: float
    width: int
    height: int
    audio_bitrate: int | None
    key_frame_interval: int  # GOP in frames
    port: int
    metrics: _Metrics
    stalled: bool = False

    def rate_in(self) -> int:
        return 0 if self.stalled else self.bitrate

    def rate_out(self) -> int:
        # Viewers get nothing while the encoder is silent; negative counts (OME's
        # bookkeeping bug) are not real viewers.
        watchers = sum(c for c in self.metrics.connections.values() if c > 0)
        return self.rate_in() * watchers


@dataclass(slots=True)
class _App:
    name: str
    metrics: _Metrics
    providers: dict[str, int]
    streams: dict[str, _Stream] = field(default_factory=dict)


@dataclass(slots=True)
class _VHost:
    name: str
    metrics: _Metrics
    providers: dict[str, int]
    apps: dict[str, _App] = field(default_factory=dict)


@dataclass(slots=True)
class _Fault:
    kind: str
    path: str | None
    times: int | None
    delay: float


@dataclass(slots=True)
class _Reply:
    """An answer before it is turned into bytes, so faults can still reshape it."""

    status: int
    message: str = "OK"
    payload: Any = None
    has_payload: bool = False
    headers: list[tuple[str, str]] = field(default_factory=list)
    raw: bytes | None = None  # a non-envelope body (HTML, garbage, control replies)
    content_type: str = _JSON_TYPE
    server: str = "OvenMediaEngine"
    body_override: bytes | None = None

    def body(self) -> bytes:
        if self.body_override is not None:
            return self.body_override
        if self.raw is not None:
            return self.raw
        envelope: dict[str, Any] = {"message": self.message, "statusCode": self.status}
        if self.has_payload:
            envelope["response"] = self.payload
        return _dumps(envelope)


def _ok(payload: Any) -> _Reply:
    return _Reply(200, payload=payload, has_payload=True)


def _error(status: int, text: str) -> _Reply:
    return _Reply(status, message=f"[HTTP] {text} ({status})")


_NOT_FOUND = "Controller not found"
_R = re.compile
_ROUTES: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (_R(r"/v1/version"), "version"),
    (_R(r"/v1/vhosts"), "vhost_list"),
    (_R(r"/v1/vhosts/([^/]*)"), "vhost_info"),
    (_R(r"/v1/vhosts/([^/]*)/apps"), "app_list"),
    (_R(r"/v1/vhosts/([^/]*)/apps/([^/:]*)"), "app_info"),
    (_R(r"/v1/vhosts/([^/]*)/apps/([^/:]*)/streams"), "stream_list"),
    (_R(r"/v1/vhosts/([^/]*)/apps/([^/:]*)/streams/([^/]*)"), "stream_info"),
    (_R(r"/v1/stats/current"), "stats_server"),
    (_R(r"/v1/stats/current/internals"), "internals"),
    (_R(r"/v1/stats/current/internals/queues"), "queues"),
    (_R(r"/v1/stats/current/vhosts/([^/]*)"), "stats_vhost"),
    (_R(r"/v1/stats/current/vhosts/([^/]*)/apps/([^/]*)"), "stats_app"),
    (_R(r"/v1/stats/current/vhosts/([^/]*)/apps/([^/:]*)/streams/([^/]*)"), "stats_stream"),
)
_V2_ROUTES: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (_R(r"/v2/stats/current/vhosts/([^/]*)"), "v2_vhost"),
    (_R(r"/v2/stats/current/vhosts/([^/]*)/apps/([^/]*)"), "v2_app"),
    (_R(r"/v2/stats/current/vhosts/([^/]*)/apps/([^/:]*)/streams/([^/]*)"), "v2_stream"),
)


class _NotFound(Exception):
    """A resource 404 raised while building a reply."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


# --------------------------------------------------------------------------- the simulator


class Simulator:
    """An OME REST API on 127.0.0.1 with scriptable streams, clock and faults.

    All public methods are thread-safe; the server runs in its own thread.  Use it as a
    context manager, or call ``start()`` and ``stop()``.  With ``tls`` (a server-side
    ``ssl.SSLContext``) it speaks HTTPS, as OME's ``<TLSPort>`` does, so tests can check
    how a client verifies certificates.
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
        self._next_id = 100
        now = self._now()
        self._server = _Metrics(now)
        self._vhosts: dict[str, _VHost] = {}

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._protocols: set[_HttpProtocol] = set()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Bind 127.0.0.1 and serve from a background thread until ``stop()``."""
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
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

    # ----------------------------------------------------------------- time

    def _now(self) -> float:
        """The simulated server's clock: the injected clock plus the configured skew."""
        return self._clock() + self._skew

    def server_time(self) -> float:
        """What the simulated OME believes the time is (epoch seconds)."""
        return self._now()

    def format_time(self, epoch: float) -> str:
        """Print ``epoch`` the way this server prints times (local offset, ms truncated)."""
        millis = round(epoch * 1_000_000) // 1000
        text = self._time_cache.get(millis)
        if text is None:
            seconds, ms = divmod(millis, 1000)
            tm = time.gmtime(seconds + self._tz_seconds)
            text = (
                f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}T"
                f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}.{ms:03d}{self._tz_text}"
            )
            if len(self._time_cache) > 50_000:
                self._time_cache.clear()
            self._time_cache[millis] = text
        return text

    def advance(self, seconds: float) -> None:
        """Move the owned ManualClock forward (only when driven by one)."""
        self._require_manual().advance(seconds)

    def set_time(self, epoch: float) -> None:
        """Set the owned ManualClock (only when driven by one)."""
        self._require_manual().set(epoch)

    def _require_manual(self) -> ManualClock:
        if self._manual is None:
            raise RuntimeError("this simulator is not driven by a ManualClock")
        return self._manual

    def set_clock_skew(self, seconds: float) -> None:
        """Make the simulated server clock run ``seconds`` ahead (+) or behind (-)."""
        with self._lock:
            self._skew = float(seconds)

    # ----------------------------------------------------------------- topology

    def add_vhost(self, vhost: str) -> None:
        """Create a virtual host (no-op if it exists)."""
        with self._lock:
            self._vhost(vhost, create=True)

    def add_app(self, vhost: str, app: str) -> None:
        """Create an application, and its vhost if missing (no-op if it exists)."""
        with self._lock:
            self._app(vhost, app, create=True)

    def add_stream(
        self,
        vhost: str,
        app: str,
        stream: str,
        *,
        bitrate: int = 2_500_000,
        source: str = "Rtmp",
        framerate: float = 30.0,
        width: int = 1280,
        height: int = 720,
        audio_bitrate: int | None = 128_000,
        viewers: Mapping[str, int] | None = None,
        key_frame_interval: int | None = None,
    ) -> None:
        """Start ingesting ``stream`` now; missing vhost/app are created.  Duplicates raise."""
        self.add_streams(
            vhost,
            app,
            [stream],
            bitrate=bitrate,
            source=source,
            framerate=framerate,
            width=width,
            height=height,
            audio_bitrate=audio_bitrate,
            viewers=viewers,
            key_frame_interval=key_frame_interval,
        )

    def add_streams(
        self,
        vhost: str,
        app: str,
        names: Iterable[str],
        *,
        bitrate: int = 2_500_000,
        source: str = "Rtmp",
        framerate: float = 30.0,
        width: int = 1280,
        height: int = 720,
        audio_bitrate: int | None = 128_000,
        viewers: Mapping[str, int] | None = None,
        key_frame_interval: int | None = None,
    ) -> None:
        """Add many streams with the same settings, all or none; cheap for 10,000."""
        names = list(names)
        if len(set(names)) != len(names):
            raise ValueError("duplicate stream names in one call")
        bitrate = _non_negative_int("bitrate", bitrate)
        if audio_bitrate is not None:
            audio_bitrate = _non_negative_int("audio_bitrate", audio_bitrate)
        if framerate < 0:
            raise ValueError("framerate must be >= 0")
        if not source:
            raise ValueError("source must not be empty")
        views = _check_viewers(viewers or {})
        gop = key_frame_interval if key_frame_interval is not None else max(1, round(framerate * 2))
        with self._lock:
            now = self._now()
            app_node = self._app(vhost, app, create=True)
            for name in names:
                if name in app_node.streams:
                    raise ValueError(f"stream already exists: {vhost}/{app}/{name}")
            batch: list[_Stream] = []
            for name in names:
                metrics = _Metrics(now)
                stream = _Stream(
                    name=name,
                    id=self._next_id,
                    source=source,
                    bitrate=bitrate,
                    announced_bitrate=bitrate,
                    framerate=float(framerate),
                    announced_framerate=float(framerate),
                    width=width,
                    height=height,
                    audio_bitrate=audio_bitrate,
                    key_frame_interval=int(gop),
                    port=40000 + self._next_id % 20000,
                    metrics=metrics,
                )
                self._next_id += 1
                metrics.add_connections(now, views)
                metrics.set_rates(now, stream.rate_in(), stream.rate_out())
                app_node.streams[name] = stream
                batch.append(stream)
            self._attach(now, vhost, app_node, batch)

    def _attach(self, now: float, vhost: str, app: _App, streams: list[_Stream]) -> None:
        """Add a batch of new streams' sessions, ingests and rates to their aggregates."""
        if not streams:
            return
        conns: dict[str, int] = {}
        provs: dict[str, int] = {}
        d_in = d_out = 0
        for s in streams:
            for key, count in s.metrics.connections.items():
                conns[key] = conns.get(key, 0) + count
            provs[s.source.lower()] = provs.get(s.source.lower(), 0) + 1
            d_in += s.metrics.rate_in
            d_out += s.metrics.rate_out
        vhost_node = self._vhosts[vhost]
        for metrics, providers in (
            (app.metrics, app.providers),
            (vhost_node.metrics, vhost_node.providers),
            (self._server, None),
        ):
            metrics.add_connections(now, conns)
            if providers is not None:
                for key, count in provs.items():
                    providers[key] = providers.get(key, 0) + count
            if d_in or d_out:
                metrics.set_rates(now, metrics.rate_in + d_in, metrics.rate_out + d_out)

    def remove_stream(self, vhost: str, app: str, stream: str) -> None:
        """The stream ends: unlisted at once, its stats 404, aggregates keep its bytes."""
        with self._lock:
            app_node = self._app(vhost, app)
            s = self._stream(vhost, app, stream)
            self._detach(self._now(), vhost, app_node, s)
            del app_node.streams[stream]

    def _detach(self, now: float, vhost: str, app: _App, s: _Stream) -> None:
        vhost_node = self._vhosts[vhost]
        minus = {k: -v for k, v in s.metrics.connections.items() if v}
        key = s.source.lower()
        for metrics, providers in (
            (app.metrics, app.providers),
            (vhost_node.metrics, vhost_node.providers),
            (self._server, None),
        ):
            metrics.set_rates(
                now, metrics.rate_in - s.metrics.rate_in, metrics.rate_out - s.metrics.rate_out
            )
            metrics.add_connections(now, minus)
            if providers is not None:
                providers[key] = providers.get(key, 0) - 1

    def remove_app(self, vhost: str, app: str) -> None:
        """Delete an application and every stream in it."""
        with self._lock:
            app_node = self._app(vhost, app)
            now = self._now()
            for s in list(app_node.streams.values()):
                self._detach(now, vhost, app_node, s)
            del self._vhosts[vhost].apps[app]

    def remove_vhost(self, vhost: str) -> None:
        """Delete a virtual host with all its applications and streams."""
        with self._lock:
            vhost_node = self._vhost(vhost)
            now = self._now()
            for app_node in list(vhost_node.apps.values()):
                for s in list(app_node.streams.values()):
                    self._detach(now, vhost, app_node, s)
            del self._vhosts[vhost]

    # ----------------------------------------------------------------- live changes

    def set_viewers(self, vhost: str, app: str, stream: str, protocol: str, count: int) -> None:
        """Set the sessions of one publisher; negative counts mimic OME's bookkeeping bug."""
        if protocol not in PUBLISHER_KEYS:
            raise ValueError(f"unknown publisher {protocol!r}; use one of {list(PUBLISHER_KEYS)}")
        count = int(count)
        with self._lock:
            now = self._now()
            app_node = self._app(vhost, app)
            s = self._stream(vhost, app, stream)
            delta = {protocol: count - s.metrics.connections.get(protocol, 0)}
            for metrics in self._chain(vhost, app_node, s):
                metrics.add_connections(now, delta)
            self._update_rates(now, vhost, app_node, s)

    def stall(self, vhost: str, app: str, stream: str) -> None:
        """The encoder hangs with its TCP session open: the stream stays listed, input stops."""
        self._set_stalled(vhost, app, stream, True)

    def resume(self, vhost: str, app: str, stream: str) -> None:
        """The hung encoder sends again."""
        self._set_stalled(vhost, app, stream, False)

    def _set_stalled(self, vhost: str, app: str, stream: str, stalled: bool) -> None:
        with self._lock:
            app_node = self._app(vhost, app)
            s = self._stream(vhost, app, stream)
            s.stalled = stalled
            self._update_rates(self._now(), vhost, app_node, s)

    def set_bitrate(self, vhost: str, app: str, stream: str, bits_per_second: int) -> None:
        """Change the ingest rate; stream info's announced ``bitrate`` keeps its old value."""
        value = _non_negative_int("bits_per_second", bits_per_second)
        with self._lock:
            app_node = self._app(vhost, app)
            s = self._stream(vhost, app, stream)
            s.bitrate = value
            self._update_rates(self._now(), vhost, app_node, s)

    def set_framerate(self, vhost: str, app: str, stream: str, fps: float) -> None:
        """Change the measured frame rate shown in stream info."""
        if fps < 0:
            raise ValueError("fps must be >= 0")
        with self._lock:
            self._stream(vhost, app, stream).framerate = float(fps)

    def _chain(self, vhost: str, app: _App, s: _Stream) -> tuple[_Metrics, ...]:
        return (s.metrics, app.metrics, self._vhosts[vhost].metrics, self._server)

    def _update_rates(self, now: float, vhost: str, app: _App, s: _Stream) -> None:
        old_in, old_out = s.metrics.rate_in, s.metrics.rate_out
        new_in, new_out = s.rate_in(), s.rate_out()
        if (old_in, old_out) == (new_in, new_out):
            return
        for metrics in self._chain(vhost, app, s):
            metrics.set_rates(
                now, metrics.rate_in - old_in + new_in, metrics.rate_out - old_out + new_out
            )

    def restart(self) -> None:
        """OME restarts: every metrics object is new; streams and viewers come back at once.

        Stream ids restart at 100 in the old listing order, negative viewer counts (a
        bookkeeping bug) are gone, and stalled encoders stay stalled.
        """
        with self._lock:
            now = self._now()
            self._server = _Metrics(now)
            self._next_id = 100
            for vhost_node in self._vhosts.values():
                vhost_node.metrics = _Metrics(now)
                vhost_node.providers = dict.fromkeys(PROVIDER_KEYS, 0)
                for app_node in vhost_node.apps.values():
                    app_node.metrics = _Metrics(now)
                    app_node.providers = dict.fromkeys(PROVIDER_KEYS, 0)
                    for s in app_node.streams.values():
                        viewers = {k: v for k, v in s.metrics.connections.items() if v > 0}
                        s.metrics = _Metrics(now)
                        s.metrics.add_connections(now, viewers)
                        s.metrics.set_rates(now, s.rate_in(), s.rate_out())
                        s.id = self._next_id
                        s.port = 40000 + s.id % 20000
                        s.announced_bitrate = s.bitrate
                        s.announced_framerate = s.framerate
                        self._next_id += 1
                    self._attach(now, vhost_node.name, app_node, list(app_node.streams.values()))

    def set_token(self, token: str) -> None:
        """Rotate the access token; the old one gets 401 "Invalid credential" from now on."""
        with self._lock:
            self._token = str(token)

    # ----------------------------------------------------------------- faults

    def set_fault(
        self,
        kind: str,
        *,
        path: str | None = None,
        times: int | None = None,
        delay: float = 0.0,
    ) -> None:
        """Make API requests misbehave.

        ``path`` is a substring of the request path (None: every API path); ``times`` how
        many matching requests are affected (None: until ``clear_faults``); ``delay`` the
        real seconds a ``"slow"`` reply waits.  When several faults match, the one set
        first applies.  Faults hit every method and are applied before authentication,
        except that ``slow`` delays, and ``truncated``/``wrong_types``/``huge`` reshape,
        whatever the normal answer would have been.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; use one of {sorted(FAULT_KINDS)}")
        if times is not None and int(times) < 1:
            raise ValueError("times must be >= 1 or None")
        if delay < 0:
            raise ValueError("delay must be >= 0")
        with self._lock:
            self._faults.append(
                _Fault(kind, path, None if times is None else int(times), float(delay))
            )

    def clear_faults(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

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

    # ----------------------------------------------------------------- lookups

    def _vhost(self, vhost: str, *, create: bool = False) -> _VHost:
        node = self._vhosts.get(vhost)
        if node is None:
            if not create:
                raise _NotFound(f"Could not find the virtual host: [{vhost}]")
            node = _VHost(vhost, _Metrics(self._now()), dict.fromkeys(PROVIDER_KEYS, 0))
            self._vhosts[vhost] = node
        return node

    def _app(self, vhost: str, app: str, *, create: bool = False) -> _App:
        vhost_node = self._vhost(vhost, create=create)
        node = vhost_node.apps.get(app)
        if node is None:
            if not create:
                raise _NotFound(f"Could not find the application: [{vhost}/{app}]")
            node = _App(app, _Metrics(self._now()), dict.fromkeys(PROVIDER_KEYS, 0))
            vhost_node.apps[app] = node
        return node

    def _stream(self, vhost: str, app: str, stream: str) -> _Stream:
        node = self._app(vhost, app).streams.get(stream)
        if node is None:
            raise _NotFound(_stream_not_found(vhost, app, stream))
        return node

    # ----------------------------------------------------------------- HTTP handling

    def _receive(self, method: str, path: str) -> _Fault | None:
        """Log an API request and pick the fault that applies to it, if any."""
        with self._lock:
            self._requests.append((method, path))
            for index, fault in enumerate(self._faults):
                if fault.path is None or fault.path in path:
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            del self._faults[index]
                    return fault
        return None

    def _handle(
        self, method: str, path: str, headers: Mapping[str, str], fault: _Fault | None
    ) -> _Reply | None:
        """Answer one API request; None means "drop the connection without a reply"."""
        if fault is not None:
            kind = fault.kind
            if kind == "drop":
                return None
            if kind == "500":
                return _error(500, "Internal Server Error")
            if kind == "html":
                return _Reply(502, raw=_NGINX_502, content_type="text/html", server="nginx")
            if kind == "garbage":
                return _Reply(200, raw=_GARBAGE)
            if kind == "vanish":
                return _error(404, _vanish_text(path))
        reply = self._answer(method, path, headers)
        if fault is not None:
            self._reshape(fault.kind, reply)
        return reply

    def _reshape(self, kind: str, reply: _Reply) -> None:
        if kind == "wrong_shape":
            reply.status = 200
            reply.raw = _dumps([reply.payload] if reply.has_payload else [])
        elif kind == "wrong_types" and reply.has_payload:
            reply.payload = _mangle_types(reply.payload)
        elif kind == "truncated":
            body = reply.body()
            reply.body_override = body[: len(body) // 2]
        elif kind == "huge":
            reply.body_override = self._huge_body(reply)

    def _huge_body(self, reply: _Reply) -> bytes:
        if self._huge_padding is None:
            self._huge_padding = b'"' + b"x" * _HUGE_BYTES + b'"'
        parts = [b'{"message":', _dumps(reply.message), b',"padding":', self._huge_padding]
        if reply.has_payload:
            parts += [b',"response":', _dumps(reply.payload)]
        parts += [b',"statusCode":', str(reply.status).encode(), b"}"]
        return b"".join(parts)

    def _answer(self, method: str, path: str, headers: Mapping[str, str]) -> _Reply:
        if method == "OPTIONS":
            return _Reply(204, raw=b"", content_type="")
        denied = self._check_auth(headers.get("authorization"))
        if denied is not None:
            reply = _error(401, denied)
            reply.headers.append(("WWW-Authenticate", 'Basic realm="OvenMediaEngine"'))
            return reply
        if method not in ("GET", "HEAD"):
            return _error(404, _NOT_FOUND)
        routes = _ROUTES + _V2_ROUTES if self._enterprise else _ROUTES
        for pattern, name in routes:
            match = pattern.fullmatch(path)
            if match is not None:
                with self._lock:
                    try:
                        return self._route(name, match.groups())
                    except _NotFound as exc:
                        return _error(404, exc.text)
        return _error(404, _NOT_FOUND)

    def _check_auth(self, value: str | None) -> str | None:
        if not value:
            return "Authorization header is required to call API"
        parts = value.split(" ")
        if len(parts) != 2:
            return "Invalid authorization header"
        scheme, credential = parts
        if scheme.upper() != "BASIC":
            return f"Not supported credential type: {scheme}"
        if not hmac.compare_digest(_lenient_b64decode(credential), self._token.encode()):
            return "Invalid credential"
        return None

    def _route(self, name: str, groups: tuple[str | Any, ...]) -> _Reply:
        now = self._now()
        g = [str(x) for x in groups]
        if name == "version":
            return _ok({"gitVersion": f"v{self._version}", "version": self._version})
        if name == "vhost_list":
            return _ok(list(self._vhosts))
        if name == "vhost_info":
            node = self._vhost(g[0])
            return _ok({"name": node.name, "distribution": "ovenmediaengine.com",
                        "host": {"names": ["*"]}})  # fmt: skip
        if name == "app_list":
            return _ok(list(self._vhost(g[0]).apps))
        if name == "app_info":
            app_node = self._app(g[0], g[1])
            return _ok({"name": app_node.name, "dynamic": False, "type": "live"})
        if name == "stream_list":
            return _ok(list(self._app(g[0], g[1]).streams))
        if name == "stream_info":
            return _ok(self._stream_info(self._stream(g[0], g[1], g[2]), now))
        if name == "stats_server":
            return _ok(self._v1(self._server, now))
        if name == "internals":
            return _ok(["/v1/stats/current/internals/queues"])
        if name == "queues":
            return _ok([])
        if name == "stats_vhost":
            return _ok(self._v1(self._vhost(g[0]).metrics, now))
        if name == "stats_app":
            return _ok(self._v1(self._app(g[0], g[1]).metrics, now))
        if name == "stats_stream":
            return _ok(self._v1(self._stream(g[0], g[1], g[2]).metrics, now))
        if name == "v2_vhost":
            vhost_node = self._vhost(g[0])
            return _ok(self._v2(vhost_node.metrics, vhost_node.providers, now))
        if name == "v2_app":
            app_node = self._app(g[0], g[1])
            return _ok(self._v2(app_node.metrics, app_node.providers, now))
        if name == "v2_stream":
            s = self._stream(g[0], g[1], g[2])
            providers = dict.fromkeys(PROVIDER_KEYS, 0)
            providers[s.source.lower()] = 1
            return _ok(self._v2(s.metrics, providers, now))
        raise AssertionError(name)  # pragma: no cover

    def _v1(self, m: _Metrics, now: float) -> dict[str, Any]:
        m.settle(now)
        fmt = self.format_time
        return {
            "avgThroughputIn": m.avg_in,
            "avgThroughputOut": m.avg_out,
            "connections": dict(m.connections),
            "createdTime": fmt(m.created),
            "lastRecvTime": fmt(m.last_recv),
            "lastSentTime": fmt(m.last_sent),
            "lastThroughputIn": m.avg_in // 8,
            "lastThroughputOut": m.avg_out // 8,
            "lastUpdatedTime": fmt(m.last_event),
            "maxThroughputIn": m.max_in,
            "maxThroughputOut": m.max_out,
            "maxTotalConnectionTime": fmt(m.max_total_time),
            "maxTotalConnections": m.max_total,
            "totalBytesIn": round(m.bytes_in),
            "totalBytesOut": round(m.bytes_out),
            "totalConnections": m.total,
        }

    def _v2(self, m: _Metrics, providers: Mapping[str, int], now: float) -> dict[str, Any]:
        v1 = self._v1(m, now)
        return {
            "createdTime": v1["createdTime"],
            "lastUpdatedTime": v1["lastUpdatedTime"],
            "providers": {
                "avgThroughputIn": v1["avgThroughputIn"],
                "connections": dict(providers),
                "lastRecvTime": v1["lastRecvTime"],
                "lastThroughputIn": v1["lastThroughputIn"],
                "maxThroughputIn": v1["maxThroughputIn"],
                "totalBytesIn": v1["totalBytesIn"],
            },
            "publishers": {
                key: v1[key]
                for key in (
                    "avgThroughputOut",
                    "connections",
                    "lastSentTime",
                    "lastThroughputOut",
                    "maxThroughputOut",
                    "maxTotalConnectionTime",
                    "maxTotalConnections",
                    "totalBytesOut",
                    "totalConnections",
                )
            },
        }

    def _stream_info(self, s: _Stream, now: float) -> dict[str, Any]:
        live = not s.stalled
        fps = _c_float(s.framerate)
        gop = s.key_frame_interval
        frames = int(max(0.0, now - s.metrics.created) * s.framerate) if live else 0
        video: dict[str, Any] = {
            "bitrate": str(s.announced_bitrate),
            "bitrateAvg": str(s.bitrate),
            "bitrateConf": str(s.announced_bitrate),
            "bitrateLatest": str(s.bitrate if live else 0),
            "bypass": False,
            "codec": "H264",
            "deltaFramesSinceLastKeyFrame": frames % gop if gop > 0 else 0,
            "framerate": fps,
            "framerateAvg": fps,
            "framerateConf": _c_float(s.announced_framerate),
            "framerateLatest": fps if live else _c_float(0.0),
            "hasBframes": False,
            "height": s.height,
            "keyFrameInterval": gop,
            "keyFrameIntervalAvg": _c_float(gop),
            "keyFrameIntervalConf": gop,
            "keyFrameIntervalLatest": gop,
            "maxHeight": s.height,
            "maxWidth": s.width,
            "width": s.width,
        }
        tracks: list[dict[str, Any]] = [{"id": 0, "name": "Video", "type": "Video", "video": video}]
        out_tracks: list[dict[str, Any]] = [
            {"id": 0, "name": "bypass_video", "type": "Video", "video": {**video, "bypass": True}}
        ]
        if s.audio_bitrate is not None:
            audio: dict[str, Any] = {
                "bitrate": str(s.audio_bitrate),
                "bitrateAvg": str(s.audio_bitrate),
                "bitrateConf": str(s.audio_bitrate),
                "bitrateLatest": str(s.audio_bitrate if live else 0),
                "bypass": False,
                "channel": 2,
                "codec": "AAC",
                "samplerate": 48000,
            }
            tracks.append({"id": 1, "name": "Audio", "type": "Audio", "audio": audio})
            out_tracks.append(
                {
                    "id": 1,
                    "name": "bypass_audio",
                    "type": "Audio",
                    "audio": {**audio, "bypass": True},
                }
            )
        playlist = {
            "fileName": "llhls",
            "name": "default",
            "options": {"enableTsPackaging": False, "webrtcAutoAbr": True},
            "renditions": [
                {
                    "audioTrackName": "bypass_audio",
                    "name": "bypass",
                    "videoTrackName": "bypass_video",
                }
            ],
        }
        return {
            "input": {
                "createdTime": self.format_time(s.metrics.created),
                "sourceType": s.source,
                "sourceUrl": f"TCP://127.0.0.1:{s.port}",
                "tracks": tracks,
            },
            "name": s.name,
            "outputs": [{"name": s.name, "playlists": [playlist], "tracks": out_tracks}],
        }

    def _date_header(self) -> str:
        return email.utils.formatdate(self._now(), usegmt=True)

    # ----------------------------------------------------------------- control endpoint

    def _control(self, method: str, name: str, body: bytes) -> _Reply:
        """``POST /_sim/<name>`` with a JSON object of keyword arguments calls ``name``."""

        def fail(text: str) -> _Reply:
            return _Reply(400, raw=_dumps({"error": text, "ok": False}))

        if method != "POST":
            return fail("use POST")
        allowed = _CONTROL_METHODS | (_MANUAL_CLOCK_METHODS if self._manual else frozenset())
        if name not in allowed:
            return fail(f"unknown or disallowed method: {name}")
        try:
            kwargs = json.loads(body) if body.strip() else {}
        except (ValueError, UnicodeDecodeError) as exc:
            return fail(f"body is not JSON: {exc}")
        if not isinstance(kwargs, dict):
            return fail("body must be a JSON object of keyword arguments")
        try:
            result = getattr(self, name)(**kwargs)
        except _NotFound as exc:
            return fail(exc.text)
        except Exception as exc:  # any scripting mistake is the caller's to see, not a crash
            return fail(f"{type(exc).__name__}: {exc}")
        answer: dict[str, Any] = {"ok": True}
        if result is not None:
            answer["result"] = result
        return _Reply(200, raw=_dumps(answer))


def _non_negative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a number >= 0")
    return round(value)


def _check_viewers(viewers: Mapping[str, int]) -> dict[str, int]:
    unknown = sorted(set(viewers) - set(PUBLISHER_KEYS))
    if unknown:
        raise ValueError(f"unknown publisher(s) {unknown}; use {list(PUBLISHER_KEYS)}")
    return {k: int(v) for k, v in viewers.items()}


def _stream_not_found(vhost: str, app: str, stream: str) -> str:
    internal = f"#{vhost.replace('#', '_')}#{app.replace('#', '_')}"
    return f"Could not find the stream: [{vhost}/{internal}/{stream}]"


def _vanish_text(path: str) -> str:
    """The narrowest resource 404 for ``path``: what OME says when the object just went away."""
    for pattern, _name in reversed(_ROUTES + _V2_ROUTES):
        match = pattern.fullmatch(path)
        if match is None or not match.groups():
            continue
        names = match.groups()
        if "/streams/" in path and len(names) == 3:
            return _stream_not_found(*names)
        if len(names) >= 2:
            return f"Could not find the application: [{names[0]}/{names[1]}]"
        return f"Could not find the virtual host: [{names[0]}]"
    return _NOT_FOUND


# --------------------------------------------------------------------------- HTTP/1.1


class _HttpProtocol(asyncio.Protocol):
    """A minimal HTTP/1.1 server connection: keep-alive, Content-Length bodies, no chunking."""

    def __init__(self, sim: Simulator) -> None:
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


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """Serve K streams until SIGTERM/SIGINT; prints the base URL on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m omealert.simulator",
        description="Serve a simulated OvenMediaEngine REST API on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to bind (0: any free port)")
    parser.add_argument("--streams", type=int, default=1, help="number of streams to ingest")
    parser.add_argument("--vhost", default="default")
    parser.add_argument("--app", default="app")
    parser.add_argument("--token", default="ome-access-token", help="the API access token")
    parser.add_argument("--bitrate", type=int, default=2_500_000, help="bits/s per stream")
    parser.add_argument("--viewers", type=int, default=0, help="webrtc viewers per stream")
    parser.add_argument("--tz-offset", default="+00:00")
    parser.add_argument("--enterprise", action="store_true", help="also serve /v2 stats")
    parser.add_argument("--date-header", action="store_true", help="send a Date header")
    parser.add_argument(
        "--manual-clock",
        type=float,
        metavar="EPOCH",
        help="run on a manual clock starting at EPOCH (POST /_sim/advance moves it)",
    )
    args = parser.parse_args(argv)
    clock: ManualClock | None = None
    if args.manual_clock is not None:
        clock = ManualClock(args.manual_clock)
    sim = Simulator(
        clock=clock,
        access_token=args.token,
        tz_offset=args.tz_offset,
        send_date_header=args.date_header,
        enterprise=args.enterprise,
        port=args.port,
        request_log_limit=100_000,
    )
    sim.add_app(args.vhost, args.app)
    viewers = {"webrtc": args.viewers} if args.viewers else None
    names = [f"stream{i}" for i in range(1, args.streams + 1)]
    sim.add_streams(args.vhost, args.app, names, bitrate=args.bitrate, viewers=viewers)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sim.start()
    print(sim.url, flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
