"""Record what OME answers, and play it back through the real client: backtests on real traffic.

``record`` polls the configured servers through ``OmeClient`` with a transport that keeps a
copy of every answer (path, status, headers, body, time). ``replay`` serves those answers
back through ``httpx.MockTransport`` on a fake clock set to the recorded times, so the very
code that ran live (discovery, normalization, failure classes, the server-clock estimate)
runs again over the recording, only as fast as the machine allows.

A recording is gzip-compressed JSON Lines, written to a temporary file next to the target,
fsynced and renamed into place, so a crash or Ctrl-C never leaves half a file under the
final name. Lines, in order::

    {"type": "header", "format": "omealert-recording", "version": 1, "created": T,
     "interval": 10.0, "servers": [{"name": "origin-1", "api_version": "v1"}]}
    {"type": "tick", "at": T}             one per polling round, T on the interval grid
    {"type": "poll", "server": "origin-1", "at": T, "requests": 7, "error": null}
    {"type": "response", "server": "origin-1", "at": T, "path": "/v1/vhosts",
     "status": 200, "headers": {...}, "body": "..."}          ("body_b64" if not UTF-8)
    {"type": "response", ..., "error": "ConnectError", "message": "..."}   no answer

Paths are relative to the server's configured URL, so a recording replays against a config
whose URLs differ. No request header is kept (the access token travels in one), and the
token is scrubbed from the text of transport errors.

By default ``record`` fetches stats and stream info of *every* target, not just what the
current rules read, so any rule change can be backtested on the recording.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import io
import json
import os
import ssl
import tempfile
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO
from urllib.parse import urlsplit

import httpx

from .clock import Clock, FakeClock
from .durations import format_duration
from .engine import Engine, Transition
from .errors import OmealertError
from .fields import Source
from .model import PollResult, Scope
from .notify import Planner
from .ome import Need, OmeClient, PollPlan, plan_polls, poll_all
from .rules import ServerSpec, Settings
from .series import format_offset
from .state import OutboxMessage

__all__ = [
    "FORMAT",
    "VERSION",
    "RecordSummary",
    "RecordedPoll",
    "RecordedResponse",
    "RecordedTick",
    "RecordingError",
    "RecordingHeader",
    "RecordingReader",
    "ReplayStats",
    "ReplaySummary",
    "record",
    "record_plan",
    "replay",
    "replay_polls",
]

FORMAT = "omealert-recording"
VERSION = 1
#: Response headers never written: a proxy in front of OME could set a session cookie.
_DROP_HEADERS = frozenset({"set-cookie"})
#: What the copied response keeps of the original's transport details.
_KEEP_EXTENSIONS = ("http_version", "reason_phrase")


class RecordingError(OmealertError):
    """A recording that cannot be read; the message starts with FILE:LINE:COL."""

    def __init__(self, file: str, line: int, message: str) -> None:
        self.file = file
        self.line = line
        self.message = message
        super().__init__(f"{file}:{line}:1: {message}")


# -- the data ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordingHeader:
    created: float
    interval: float
    servers: tuple[str, ...]


@dataclass(slots=True)
class RecordedResponse:
    """One answer (or the transport error instead of one) to a GET of ``path``."""

    at: float
    path: str
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None  # httpx exception class name when no answer came
    message: str = ""

    def to_json(self, server: str) -> dict[str, Any]:
        line: dict[str, Any] = {"type": "response", "server": server, "at": self.at}
        line["path"] = self.path
        if self.error is not None:
            line["error"] = self.error
            line["message"] = self.message
            return line
        line["status"] = self.status
        line["headers"] = self.headers
        try:
            line["body"] = self.body.decode("utf-8")
        except UnicodeDecodeError:
            line["body_b64"] = base64.b64encode(self.body).decode("ascii")
        return line


@dataclass(slots=True)
class RecordedPoll:
    server: str
    at: float
    responses: list[RecordedResponse] = field(default_factory=list)


@dataclass(slots=True)
class RecordedTick:
    at: float
    polls: list[RecordedPoll] = field(default_factory=list)


# -- recording ----------------------------------------------------------------------------------


class _AtomicGzipLines:
    """JSON lines into ``<dir>/.<name>.*.tmp``, moved to ``path`` only by ``commit``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self.tmp = Path(tmp)
        self._raw: IO[bytes] = os.fdopen(fd, "wb")
        self._gz = gzip.GzipFile(filename=path.name, mode="wb", fileobj=self._raw, mtime=0)
        self.bytes = 0

    def write(self, obj: dict[str, Any]) -> None:
        data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        self._gz.write(data)
        self.bytes += len(data)

    def commit(self) -> None:
        self._gz.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        os.replace(self.tmp, self.path)
        with contextlib.suppress(OSError):  # not every file system lets a directory be fsynced
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._gz.close()
        with contextlib.suppress(OSError):
            self._raw.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink()


class _Capture(httpx.AsyncBaseTransport):
    """Passes requests to ``inner`` and keeps a copy of each answer in ``responses``."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        server: ServerSpec,
        clock: Clock,
    ) -> None:
        self.inner = inner
        self.base_path = _base_path(server.url)
        self.timeout = server.timeout_s
        secrets = [server.access_token or ""]
        if server.access_token:
            secrets.append(base64.b64encode(server.access_token.encode()).decode())
        self.clock = clock
        self.secrets = [s for s in secrets if s]
        self.responses: list[RecordedResponse] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = _relative(request, self.base_path)
        started = time.perf_counter()
        try:
            response = await self.inner.handle_async_request(request)
            try:
                # raw bytes, as sent: with the headers kept alongside, a proxy's
                # Content-Encoding is undone on replay exactly as it was live
                stream = response.stream
                if not isinstance(stream, httpx.AsyncByteStream):  # pragma: no cover
                    raise httpx.ReadError("the transport gave no async stream", request=request)
                body = b"".join([chunk async for chunk in stream])
            finally:
                await response.aclose()
        except asyncio.CancelledError:
            # The client's own timeout cancels a request that takes too long: keep that as
            # a timeout. A request cancelled because another one of the poll failed is no
            # answer at all, and is not kept.
            if time.perf_counter() - started >= self.timeout * 0.9:
                message = f"no answer within {self.timeout:g}s"
                self.responses.append(
                    RecordedResponse(self.clock.now(), path, error="ReadTimeout", message=message)
                )
            raise
        except httpx.TransportError as exc:
            message = str(exc)
            for secret in self.secrets:
                message = message.replace(secret, "***")
            self.responses.append(
                RecordedResponse(self.clock.now(), path, error=type(exc).__name__, message=message)
            )
            raise
        headers = {
            k.lower(): v for k, v in response.headers.items() if k.lower() not in _DROP_HEADERS
        }
        self.responses.append(
            RecordedResponse(self.clock.now(), path, response.status_code, headers, body)
        )
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=body,
            request=request,
            extensions={
                k: v
                for k, v in response.extensions.items()
                if k in ("http_version", "reason_phrase")
            },
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def _relative(request: httpx.Request, base_path: str) -> str:
    path = request.url.raw_path.decode("ascii", "replace")
    if base_path and path.startswith(base_path):
        path = path[len(base_path) :] or "/"
    return path


def _base_path(url: str) -> str:
    return urlsplit(url).path.rstrip("/")


def _transport_for(server: ServerSpec) -> httpx.AsyncHTTPTransport:
    """What ``OmeClient`` would build for itself: the same TLS and connection settings."""
    verify: ssl.SSLContext | bool = server.verify_tls
    if server.ca_file:
        verify = ssl.create_default_context(cafile=server.ca_file)
    limits = httpx.Limits(
        max_connections=server.max_in_flight, max_keepalive_connections=server.max_in_flight
    )
    return httpx.AsyncHTTPTransport(verify=verify, limits=limits)


def record_plan(server: str) -> PollPlan:
    """Fetch everything: every listing, stats at every level and every stream's info."""
    listing_and_stats = frozenset({Source.STATS, Source.LISTING})
    needs = (
        Need(Scope.SERVER, (), listing_and_stats),
        Need(Scope.VHOST, (), listing_and_stats),
        Need(Scope.APP, (), listing_and_stats),
        Need(Scope.STREAM, (), frozenset({Source.STATS, Source.INFO})),
    )
    return PollPlan(server, needs)


@dataclass(slots=True)
class RecordSummary:
    path: Path
    ticks: int = 0
    responses: int = 0
    errors: int = 0  # polls that failed as a whole
    bytes: int = 0  # uncompressed JSON


async def record(
    settings: Settings,
    out_path: str | Path,
    *,
    clock: Clock,
    duration_s: float | None = None,
    stop: asyncio.Event | None = None,
    progress: TextIO | None = None,
    before_poll: Callable[[float], None] | None = None,
    only_needed: bool = False,
) -> RecordSummary:
    """Poll every ``settings.interval_s`` until ``duration_s`` has passed or ``stop`` is set.

    ``before_poll(now)`` runs before each round (tests script a simulator with it).
    ``only_needed`` fetches just what the config's rules read, as ``watch`` would.
    The file appears under ``out_path`` only when recording ends without an exception.
    """
    path = Path(out_path)
    summary = RecordSummary(path)
    writer = _AtomicGzipLines(path)
    captures: dict[str, _Capture] = {}
    clients: list[OmeClient] = []
    try:
        for server in settings.servers:
            capture = _Capture(_transport_for(server), server, clock)
            captures[server.name] = capture
            clients.append(OmeClient(server, clock=clock, transport=capture))
        plans = {
            s.name: plan_polls(settings.rules, s.name) if only_needed else record_plan(s.name)
            for s in settings.servers
        }
        start = clock.now()
        writer.write(
            {
                "type": "header",
                "format": FORMAT,
                "version": VERSION,
                "created": start,
                "interval": settings.interval_s,
                "servers": [
                    {"name": s.name, "api_version": s.api_version} for s in settings.servers
                ],
            }
        )
        next_at = start
        while stop is None or not stop.is_set():
            now = clock.now()
            # the first round always runs: a duration shorter than one round still records one
            if duration_s is not None and summary.ticks and now - start >= duration_s:
                break
            if before_poll is not None:
                before_poll(now)
            polls = await poll_all(clients, plans)
            # the round's slot on the schedule, so replayed evaluations fall on a grid
            writer.write({"type": "tick", "at": next_at})
            for poll in polls:
                _write_poll(writer, poll, captures[poll.server], summary)
            summary.ticks += 1
            summary.bytes = writer.bytes
            if progress is not None:
                _show_progress(progress, summary, clock.now() - start, duration_s)
            next_at += settings.interval_s
            if next_at < clock.now():  # a slow round: skip the slots it overran
                missed = int((clock.now() - next_at) // settings.interval_s) + 1
                next_at += missed * settings.interval_s
            if duration_s is not None and next_at - start >= duration_s:
                break
            await _wait(stop, next_at - clock.now(), clock)
        if progress is not None:
            progress.write("\n")
            progress.flush()
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    finally:
        for client in clients:
            await client.aclose()
    return summary


def _write_poll(
    writer: _AtomicGzipLines, poll: PollResult, capture: _Capture, summary: RecordSummary
) -> None:
    error = str(poll.error) if poll.error is not None else None
    writer.write(
        {
            "type": "poll",
            "server": poll.server,
            "at": poll.at,
            "requests": poll.requests,
            "error": error,
        }
    )
    if poll.error is not None:
        summary.errors += 1
    for response in capture.responses:
        writer.write(response.to_json(poll.server))
    summary.responses += len(capture.responses)
    capture.responses = []


def _show_progress(
    progress: TextIO, summary: RecordSummary, elapsed: float, duration: float | None
) -> None:
    of = f" of {format_duration(duration)}" if duration is not None else ""
    size = summary.bytes / 1e6
    progress.write(
        f"\rrecording {summary.path.name}: {format_duration(elapsed)}{of}, "
        f"{summary.ticks} round(s), {summary.responses} answers ({size:.1f} MB)\x1b[K"
    )
    progress.flush()


async def _wait(stop: asyncio.Event | None, seconds: float, clock: Clock) -> None:
    if seconds <= 0:
        return
    if stop is None:
        await clock.sleep(seconds)
        return
    waiter = asyncio.ensure_future(stop.wait())
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    _, pending = await asyncio.wait([waiter, sleeper], return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


# -- reading ------------------------------------------------------------------------------------


class RecordingReader:
    """Reads a recording lazily, one polling round at a time; use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._line = 0
        try:
            raw = gzip.open(self.path, "rb")  # noqa: SIM115 - closed by close()
            self._file: TextIO = io.TextIOWrapper(raw, encoding="utf-8")
        except OSError as exc:
            raise RecordingError(self.path, 1, f"cannot open: {exc.strerror or exc}") from None
        try:
            first = self._next()
        except BaseException:
            self.close()
            raise
        if first is None or first.get("type") != "header" or first.get("format") != FORMAT:
            self.close()
            raise RecordingError(self.path, 1, "not an omealert recording (no header line)")
        if first.get("version") != VERSION:
            self.close()
            raise RecordingError(
                self.path, 1, f"recording format version {first.get('version')} is not supported"
            )
        try:
            servers = tuple(str(s["name"]) for s in first["servers"])
            self.header = RecordingHeader(
                float(first["created"]), float(first["interval"]), servers
            )
        except (KeyError, TypeError, ValueError):
            self.close()
            raise RecordingError(self.path, 1, "the header line is incomplete") from None
        self._pending: dict[str, Any] | None = None

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def _next(self) -> dict[str, Any] | None:
        try:
            text = self._file.readline()
        except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
            reason = "the file ends early (truncated)" if isinstance(exc, EOFError) else str(exc)
            raise RecordingError(self.path, self._line + 1, f"unreadable: {reason}") from None
        if not text:
            return None
        self._line += 1
        try:
            obj = json.loads(text)
        except ValueError:
            raise RecordingError(self.path, self._line, "not a JSON line") from None
        if not isinstance(obj, dict):
            raise RecordingError(self.path, self._line, "expected a JSON object")
        return obj

    def ticks(self) -> Iterator[RecordedTick]:
        """Every polling round, in order, with its polls and their answers."""
        tick: RecordedTick | None = None
        poll: RecordedPoll | None = None
        while (obj := self._next()) is not None:
            kind = obj.get("type")
            try:
                if kind == "tick":
                    if tick is not None:
                        yield tick
                    tick, poll = RecordedTick(float(obj["at"])), None
                elif kind == "poll":
                    if tick is None:
                        raise RecordingError(self.path, self._line, "a poll before any tick")
                    poll = RecordedPoll(str(obj["server"]), float(obj["at"]))
                    tick.polls.append(poll)
                elif kind == "response":
                    if poll is None:
                        raise RecordingError(self.path, self._line, "a response before any poll")
                    poll.responses.append(_response(obj))
                # other types are from a newer omealert: skip them
            except (KeyError, TypeError, ValueError) as exc:
                raise RecordingError(
                    self.path, self._line, f"incomplete {kind} line ({exc})"
                ) from None
        if tick is not None:
            yield tick


def _response(obj: dict[str, Any]) -> RecordedResponse:
    at, path = float(obj["at"]), str(obj["path"])
    if obj.get("error") is not None:
        return RecordedResponse(at, path, error=str(obj["error"]), message=str(obj["message"]))
    if "body_b64" in obj:
        body = base64.b64decode(obj["body_b64"])
    else:
        body = str(obj["body"]).encode("utf-8")
    headers = {str(k): str(v) for k, v in dict(obj["headers"]).items()}
    return RecordedResponse(at, path, int(obj["status"]), headers, body)


# -- replay -------------------------------------------------------------------------------------


class _Player:
    """Answers one server's requests from the answers recorded for the current poll."""

    def __init__(self, base_path: str) -> None:
        self.base_path = base_path
        self.pending: dict[str, deque[RecordedResponse]] = {}
        self.missing = 0

    def load(self, responses: list[RecordedResponse]) -> None:
        self.pending = {}
        for r in responses:
            self.pending.setdefault(r.path, deque()).append(r)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = _relative(request, self.base_path)
        queue = self.pending.get(path)
        if not queue:
            self.missing += 1
            raise httpx.ReadError(f"no answer to GET {path} in the recording", request=request)
        r = queue.popleft()
        if r.error is not None:
            cls = getattr(httpx, r.error, None)
            if not (isinstance(cls, type) and issubclass(cls, httpx.TransportError)):
                cls = httpx.ReadError
            raise cls(r.message or r.error, request=request)
        return httpx.Response(r.status, headers=r.headers, content=r.body, request=request)


@dataclass(slots=True)
class ReplayStats:
    ticks: int = 0
    polls: int = 0
    missing: int = 0  # requests the recording had no answer for
    first_at: float | None = None
    last_at: float | None = None
    notes: list[str] = field(default_factory=list)


async def replay_polls(
    settings: Settings,
    path: str | Path,
    on_tick: Callable[[float, list[PollResult]], None],
) -> ReplayStats:
    """Run the real client over the recording; ``on_tick(at, polls)`` once per round.

    Servers are matched by name: a server of the config that the recording lacks is not
    polled (a note says so), and recorded servers the config does not name are skipped.
    """
    stats = ReplayStats()
    clock = FakeClock()
    with RecordingReader(path) as reader:
        players: dict[str, _Player] = {}
        clients: dict[str, OmeClient] = {}
        plans: dict[str, PollPlan] = {}
        try:
            for server in settings.servers:
                if server.name not in reader.header.servers:
                    stats.notes.append(f"server {server.name} is not in the recording")
                    continue
                player = _Player(_base_path(server.url))
                players[server.name] = player
                transport = httpx.MockTransport(player.handle)
                clients[server.name] = OmeClient(server, clock=clock, transport=transport)
                plans[server.name] = plan_polls(settings.rules, server.name)
            for tick in reader.ticks():
                polls: list[PollResult] = []
                for recorded in tick.polls:
                    client = clients.get(recorded.server)
                    if client is None:
                        continue
                    players[recorded.server].load(recorded.responses)
                    clock.set(recorded.at)
                    polls.append(await client.poll(plans[recorded.server]))
                stats.ticks += 1
                stats.polls += len(polls)
                stats.first_at = tick.at if stats.first_at is None else stats.first_at
                stats.last_at = tick.at
                on_tick(tick.at, polls)
        finally:
            for client in clients.values():
                await client.aclose()
        stats.missing = sum(p.missing for p in players.values())
    if stats.missing:
        stats.notes.append(
            f"{stats.missing} request(s) had no recorded answer: cancelled while recording, "
            "or the rules read more than was recorded (record without --only-needed)"
        )
    return stats


@dataclass(slots=True)
class ReplaySummary:
    stats: ReplayStats
    transitions: int = 0
    messages: int = 0
    seconds: float = 0.0


async def replay(
    settings: Settings, path: str | Path, out: TextIO, *, fmt: str = "text"
) -> ReplaySummary:
    """Evaluate ``settings`` over a recording; print every transition and every message.

    Messages are what would have been queued for each channel (once per channel, not per
    service URL); nothing is delivered and no state is written.
    """
    engine = Engine(settings)
    planner = Planner(settings)
    summary = ReplaySummary(ReplayStats())
    first: list[float] = []
    started = time.perf_counter()

    def on_tick(at: float, polls: list[PollResult]) -> None:
        if not first:
            first.append(at)
        transitions = engine.step(polls, at)
        messages = [m for m in planner.plan(engine, transitions, at, ()) if m.url_index == 0]
        summary.transitions += len(transitions)
        summary.messages += len(messages)
        offset = at - first[0]
        for tr in transitions:
            _print_transition(out, fmt, at, offset, tr)
        for msg in messages:
            _print_message(out, fmt, at, offset, msg)

    if fmt == "text":
        print(f"replaying {path} with {settings.path}", file=out)
    summary.stats = await replay_polls(settings, path, on_tick)
    summary.seconds = time.perf_counter() - started
    stats = summary.stats
    if fmt == "text":
        for note in stats.notes:
            print(f"note: {note}", file=out)
        span = format_offset((stats.last_at or 0.0) - (stats.first_at or 0.0))
        print(
            f"replayed {stats.ticks} round(s) ({span} of recording, {stats.polls} poll(s)) "
            f"in {summary.seconds:.2f}s: {summary.transitions} transition(s), "
            f"{summary.messages} message(s)",
            file=out,
        )
    else:
        for note in stats.notes:
            print(json.dumps({"event": "note", "text": note}), file=out)
    return summary


def _value_text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def _print_transition(out: TextIO, fmt: str, at: float, offset: float, tr: Transition) -> None:
    inst = tr.instance
    if fmt == "json":
        event = {
            "event": "transition",
            "at": at,
            "offset": offset,
            "rule": inst.rule,
            "target": inst.target.key,
            "from": tr.from_state.value,
            "to": tr.to_state.value,
            "value": inst.value,
            "reason": tr.reason,
        }
        print(json.dumps(event, default=str), file=out)
        return
    print(
        f"+{format_offset(offset):<9} {inst.rule} {inst.target.key}: "
        f"{tr.from_state.value} → {tr.to_state.value} "
        f"(value {_value_text(inst.value)}, {tr.reason})",
        file=out,
    )


def _print_message(out: TextIO, fmt: str, at: float, offset: float, msg: OutboxMessage) -> None:
    if fmt == "json":
        event = {
            "event": "message",
            "at": at,
            "offset": offset,
            "channel": msg.channel,
            "reason": msg.reason,
            "rule": msg.rule,
            "targets": msg.targets,
            "title": msg.title,
            "body": msg.body,
        }
        print(json.dumps(event), file=out)
        return
    print(f"+{format_offset(offset):<9} → {msg.channel} ({msg.reason}): {msg.title}", file=out)
    for line in msg.body.splitlines():
        print(f"{'':11}| {line}", file=out)
