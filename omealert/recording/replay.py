"""Play a recording back through the real client, and evaluate rules over it (``replay``).

``replay_polls`` hands each server's ``OmeClient`` a ``Getter`` that answers from the
recording, on a fake clock set to the recorded times, so the very code that ran live
(discovery, normalization, failure classes, the server-clock estimate) runs again over the
recording, only as fast as the machine allows: a recorded failure is raised as the live
HTTP stack raised it, and ``ome.api`` sorts it as it did then. ``replay`` runs the engine and
the planner on top and prints what would have happened; rule tests use ``replay_polls`` too.

Each round is evaluated when its polls ended, as the watcher does (``Runner.tick`` takes its
time after the poll): samples carry the time their poll started, and history leaves points
later than the evaluation out of every window, so evaluating at the round's slot on the
grid would leave the newest poll out of ``rate``/``delta``/``*_over``.
"""

from __future__ import annotations

import json
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ..clock import FakeClock
from ..durations import format_offset
from ..engine.engine import Engine, Transition
from ..model import PollResult
from ..notify.planner import Planner
from ..ome.client import OmeClient
from ..ome.http import MAX_BODY_BYTES, Answer, Broken, TooLarge
from ..ome.plan import PollPlan, plans_for
from ..rules import Settings
from ..state.records import OutboxMessage
from .format import (
    IDENTITY,
    RecordedPoll,
    RecordedResponse,
    RecordingReader,
    replayed_failure,
)

__all__ = ["ReplayStats", "ReplaySummary", "replay", "replay_polls"]


class Player:
    """A ``Getter`` answering one server's GETs from the answers recorded for the current
    poll, each path's in the order they were recorded.

    ``undo_encoding`` is for recordings made through httpx, which asked for compression
    and undid a ``Content-Encoding`` before the client saw the body; replay does so too.
    """

    def __init__(self, *, undo_encoding: bool = False) -> None:
        self.pending: dict[str, deque[RecordedResponse]] = {}
        self.missing = 0
        self._undo_encoding = undo_encoding

    def load(self, responses: list[RecordedResponse]) -> None:
        self.pending = {}
        for r in responses:
            self.pending.setdefault(r.path, deque()).append(r)

    async def get(self, path: str) -> Answer:
        queue = self.pending.get(path)
        if not queue:
            self.missing += 1
            raise Broken(f"no answer to GET {path} in the recording", answered=False)
        r = queue.popleft()
        if r.error is not None:
            raise replayed_failure(r)
        body = r.body
        if self._undo_encoding and "content-encoding" in r.headers:
            body = _undo_content_encoding(r.headers, body)
        if len(body) > MAX_BODY_BYTES:  # kept whole by older versions; live never reads it
            raise TooLarge
        return Answer(r.status, r.headers, body)

    async def aclose(self) -> None:
        pass


def _undo_content_encoding(headers: Mapping[str, str], body: bytes) -> bytes:
    """Decode ``body`` as httpx did: gzip and deflate, last applied first, other codings
    left alone; a body that does not decode is a broken exchange, as it was for httpx."""
    codings = [c.strip().lower() for c in headers["content-encoding"].split(",")]
    for coding in reversed(codings):
        try:
            if coding == "gzip":
                body = _inflate(body, zlib.MAX_WBITS | 16)
            elif coding == "deflate":
                try:
                    body = _inflate(body, zlib.MAX_WBITS)
                except zlib.error:  # a raw deflate stream, without zlib's header
                    body = _inflate(body, -zlib.MAX_WBITS)
        except zlib.error as exc:
            raise Broken(str(exc), answered=False) from None
    return body


def _inflate(data: bytes, wbits: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    return inflater.decompress(data) + inflater.flush()


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
    on_tick: Callable[[float, list[PollResult], float], None],
) -> ReplayStats:
    """Run the real client over the recording; ``on_tick(at, polls, now)`` once per round.

    ``at`` is the round's slot on the recording's grid (what offsets count from); ``now`` is
    when the round's polls ended, the time the watcher evaluated that round at: the latest
    answer recorded in it, and never before a poll started or before the slot.

    Servers are matched by name: a server of the config that the recording lacks is not
    polled (a note says so), and recorded servers the config does not name are skipped.
    """
    stats = ReplayStats()
    clock = FakeClock()
    with RecordingReader(path) as reader:
        players: dict[str, Player] = {}
        clients: dict[str, OmeClient] = {}
        plans: dict[str, PollPlan] = plans_for(settings)
        try:
            for server in settings.servers:
                if server.name not in reader.header.servers:
                    stats.notes.append(f"server {server.name} is not in the recording")
                    continue
                player = Player(undo_encoding=reader.header.accept_encoding != IDENTITY)
                players[server.name] = player
                clients[server.name] = OmeClient(server, clock=clock, getter=player)
            for tick in reader.ticks():
                polls: list[PollResult] = []
                now = tick.at
                for recorded in tick.polls:
                    client = clients.get(recorded.server)
                    if client is None:
                        continue
                    players[recorded.server].load(recorded.responses)
                    clock.set(recorded.at)
                    polls.append(await client.poll(plans[recorded.server]))
                    now = max(now, _ended_at(recorded))
                stats.ticks += 1
                stats.polls += len(polls)
                stats.first_at = tick.at if stats.first_at is None else stats.first_at
                stats.last_at = tick.at
                on_tick(tick.at, polls, now)
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


def _ended_at(recorded: RecordedPoll) -> float:
    """When a recorded poll ended: its last answer (or failure), else when it started."""
    return max([recorded.at, *(r.at for r in recorded.responses)])


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

    def on_tick(at: float, polls: list[PollResult], now: float) -> None:
        if not first:
            first.append(at)
        transitions = engine.step(polls, now)
        messages = [m for m in planner.plan(engine, transitions, now, ()) if m.url_index == 0]
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
