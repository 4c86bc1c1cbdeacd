"""Record what OME answers, for backtests on real traffic (``omealert record``).

``record`` polls the configured servers through ``OmeClient`` with a transport that keeps a
copy of every answer (path, status, headers, body, time) and writes them to a recording
(``recordformat``), which ``replay`` plays back through the very same client code.

By default ``record`` fetches stats and stream info of *every* target, not just what the
current rules read, so any rule change can be backtested on the recording.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import httpx

from .clock import Clock
from .durations import format_duration
from .fields import Source
from .model import PollResult, Scope
from .ome import OmeClient, poll_all
from .omeplan import Need, PollPlan, plan_polls
from .recordformat import (
    FORMAT,
    VERSION,
    AtomicGzipLines,
    RecordedResponse,
    relative_path,
    server_base_path,
)
from .rules import ServerSpec, Settings

__all__ = ["RecordSummary", "record", "record_plan"]

#: Response headers never written: a proxy in front of OME could set a session cookie.
_DROP_HEADERS = frozenset({"set-cookie"})


class _Capture(httpx.AsyncBaseTransport):
    """Passes requests to ``inner`` and keeps a copy of each answer in ``responses``."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        server: ServerSpec,
        clock: Clock,
    ) -> None:
        self.inner = inner
        self.base_path = server_base_path(server.url)
        self.timeout = server.timeout_s
        secrets = [server.access_token or ""]
        if server.access_token:
            secrets.append(base64.b64encode(server.access_token.encode()).decode())
        self.clock = clock
        self.secrets = [s for s in secrets if s]
        self.responses: list[RecordedResponse] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = relative_path(request, self.base_path)
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
    writer = AtomicGzipLines(path)
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
    writer: AtomicGzipLines, poll: PollResult, capture: _Capture, summary: RecordSummary
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
