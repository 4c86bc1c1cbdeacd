"""Record what OME answers, for backtests on real traffic (``omealert record``).

``record`` polls the configured servers through ``OmeClient`` over the live client's own
HTTP stack (``omeapi.default_getter``), wrapped in a ``CapturingGetter`` that keeps a copy
of every answer, or of the failure instead of one (path, status, headers, body, time), and
writes them to a recording (``recording.format``), which ``replay`` plays back through the
very same client code. What is recorded is what the live client saw, at live speed.

By default ``record`` fetches stats and stream info of *every* target, not just what the
current rules read, so any rule change can be backtested on the recording.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ..clock import Clock
from ..durations import format_duration
from ..lang.fields import Source
from ..model import PollResult, Scope
from ..ome.api import default_getter, server_secrets
from ..ome.client import OmeClient, poll_all
from ..ome.http import Answer, Getter
from ..ome.outputs import scrub_pushes
from ..ome.plan import Need, PollPlan, plans_for
from ..rules import ServerSpec, Settings
from .format import (
    FORMAT,
    IDENTITY,
    VERSION,
    AtomicGzipLines,
    RecordedResponse,
    failure_record,
)

__all__ = ["CapturingGetter", "RecordSummary", "capture_for", "record", "record_plan"]

#: Response headers never written: a proxy in front of OME could set a session cookie.
_DROP_HEADERS = frozenset({"set-cookie"})


class CapturingGetter:
    """A ``Getter`` that passes each GET to ``inner`` and keeps what it got in ``responses``:
    the answer, or the name of the failure ``inner`` raised (``recording.format``).

    A GET cancelled because another request of the poll failed, or because the poll ran out
    of time, ended neither way and is not kept; ``inner`` raises ``TimeoutError`` itself for
    a request that took too long, and that is kept.
    """

    def __init__(self, inner: Getter, clock: Clock, secrets: Sequence[str] = ()) -> None:
        self.inner = inner
        self.clock = clock
        self.responses: list[RecordedResponse] = []
        self._secrets = tuple(s for s in secrets if s)

    async def get(self, path: str) -> Answer:
        try:
            answer = await self.inner.get(path)
        except Exception as exc:
            failure = failure_record(exc)
            if failure is not None:
                name, message, code = failure
                self.responses.append(
                    RecordedResponse(
                        self.clock.now(),
                        path,
                        error=name,
                        message=self._scrub(message),
                        verify_code=code,
                    )
                )
            raise
        # kept as the client got it, less a cookie; only error messages are scrubbed of the
        # token, as OME never echoes it (ome-api.md, section 3)
        headers = {
            k.lower(): v for k, v in answer.headers.items() if k.lower() not in _DROP_HEADERS
        }
        # a push's stream key is a secret OME hands out in the clear: never stored
        body = scrub_pushes(answer.body) if path.endswith(":pushes") else answer.body
        self.responses.append(
            RecordedResponse(self.clock.now(), path, answer.status, headers, body)
        )
        return answer

    async def aclose(self) -> None:
        await self.inner.aclose()

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def capture_for(server: ServerSpec, clock: Clock) -> CapturingGetter:
    """The live client's HTTP stack for ``server``, capturing, with its secrets scrubbed."""
    return CapturingGetter(default_getter(server), clock, server_secrets(server))


def record_plan(server: str) -> PollPlan:
    """Fetch everything: every listing, stats at every level, every stream's info, every
    app's pushes and records, the internal queues, and the release (``/v1/version``, as
    often as the watcher asks it, so a replay asks it at the same rounds)."""
    listing_and_stats = frozenset({Source.STATS, Source.LISTING})
    needs = (
        Need(Scope.SERVER, (), listing_and_stats | {Source.VERSION}),
        Need(Scope.VHOST, (), listing_and_stats),
        Need(Scope.APP, (), listing_and_stats),
        Need(Scope.STREAM, (), frozenset({Source.STATS, Source.INFO})),
        Need(Scope.PUSH, (), frozenset({Source.OUTPUTS})),
        Need(Scope.RECORD, (), frozenset({Source.OUTPUTS})),
        Need(Scope.QUEUE, (), frozenset({Source.QUEUES})),
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

    The duration is what the recording covers: rounds on the slots from the start up to and
    including ``start + duration_s`` (``--duration 10s`` at a 2 s interval is 6 rounds,
    0 s to 10 s, so a replay spans 10 s). ``before_poll(now)`` runs before each round (tests
    script a simulator with it). ``only_needed`` fetches just what the config's rules read,
    as ``watch`` would. The file appears under ``out_path`` only when recording ends without
    an exception.
    """
    path = Path(out_path)
    summary = RecordSummary(path)
    writer = AtomicGzipLines(path)
    captures: dict[str, CapturingGetter] = {}
    clients: list[OmeClient] = []
    try:
        for server in settings.servers:
            capture = capture_for(server, clock)
            captures[server.name] = capture
            clients.append(OmeClient(server, clock=clock, getter=capture))
        plans = (
            plans_for(settings)
            if only_needed
            else {s.name: record_plan(s.name) for s in settings.servers}
        )
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
                "accept_encoding": IDENTITY,  # omewire asks for no compression
            }
        )
        interval = settings.interval_s
        # the last slot inside the duration (float noise forgiven); the first round always
        # runs, so a duration shorter than one interval still records one round
        last_slot = None if duration_s is None else int(duration_s / interval + 1e-9)
        slot = 0
        next_at = start
        while stop is None or not stop.is_set():
            now = clock.now()
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
            slot += 1
            if start + slot * interval < clock.now():  # a slow round: skip the slots it overran
                slot += int((clock.now() - start - slot * interval) // interval) + 1
            if last_slot is not None and slot > last_slot:
                break
            next_at = start + slot * interval
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
    writer: AtomicGzipLines, poll: PollResult, capture: CapturingGetter, summary: RecordSummary
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
