"""Play a recording back through the real client, and evaluate rules over it (``replay``).

``replay_polls`` serves the recorded answers through ``httpx.MockTransport`` on a fake
clock set to the recorded times, so the very code that ran live (discovery,
normalization, failure classes, the server-clock estimate) runs again over the
recording, only as fast as the machine allows. ``replay`` runs the engine and the
planner on top and prints what would have happened; rule tests use ``replay_polls`` too.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import httpx

from .clock import FakeClock
from .engine import Engine, Transition
from .model import PollResult
from .notify import Planner
from .ome import OmeClient
from .omeplan import PollPlan, plan_polls
from .recordformat import RecordedResponse, RecordingReader, relative_path, server_base_path
from .rules import Settings
from .series import format_offset
from .staterecords import OutboxMessage

__all__ = ["ReplayStats", "ReplaySummary", "replay", "replay_polls"]


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
        path = relative_path(request, self.base_path)
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
                player = _Player(server_base_path(server.url))
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
