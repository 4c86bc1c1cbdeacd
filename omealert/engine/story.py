"""How a stream went, kept while it is live, told once when it ends (``stream_report:``).

OME forgets a stream's stats the moment it ends (OvenMediaEngine issue #407), so this keeps
what the report needs from each poll: when it was first and last seen, peak and average
viewers, bytes in and out summed over its lives (a new ``createdTime`` is a reconnect: OME
starts the counters again), and the rules that fired on it. One small record per listed
stream; a stream's record goes when it ends, so memory follows the listing.

A stream has ended when a good poll of its server no longer lists it, and its vhost or app
did not vanish whole in that poll (OME's shutdown window: ``PollResult.unconfirmed``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ..model import AlertState, PollResult, Scope, Target, under
from .alerts import Instance

BYTES_IN = "providers.totalBytesIn"
BYTES_OUT = "publishers.totalBytesOut"
VIEWERS = "publishers.viewers"


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


@dataclass(slots=True)
class Story:
    """One stream's life so far, as the report tells it."""

    target: Target
    first_seen: float
    last_seen: float
    created: float | None = None
    reconnects: int = 0
    peak_viewers: float = 0.0
    viewer_sum: float = 0.0
    viewer_polls: int = 0
    #: bytes of earlier lives (before a reconnect), and the current life's latest counters
    bytes_in_before: float = 0.0
    bytes_out_before: float = 0.0
    bytes_in: float = 0.0
    bytes_out: float = 0.0
    alerts: dict[str, None] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.last_seen - self.first_seen

    @property
    def average_viewers(self) -> float:
        return self.viewer_sum / self.viewer_polls if self.viewer_polls else 0.0

    @property
    def total_in(self) -> float:
        return self.bytes_in_before + self.bytes_in

    @property
    def total_out(self) -> float:
        return self.bytes_out_before + self.bytes_out

    def take(self, fields: Mapping[str, object], at: float) -> None:
        self.last_seen = at
        created = fields.get("createdTime")
        epoch = created.timestamp() if isinstance(created, datetime) else None
        if epoch is not None and self.created is not None and epoch != self.created:
            self.reconnects += 1
            self.bytes_in_before += self.bytes_in
            self.bytes_out_before += self.bytes_out
            self.bytes_in = self.bytes_out = 0.0
        if epoch is not None:
            self.created = epoch
        viewers = _number(fields.get(VIEWERS))
        if viewers is not None:
            self.peak_viewers = max(self.peak_viewers, viewers)
            self.viewer_sum += viewers
            self.viewer_polls += 1
        got_in, got_out = _number(fields.get(BYTES_IN)), _number(fields.get(BYTES_OUT))
        if got_in is not None:
            self.bytes_in = max(self.bytes_in, got_in)
        if got_out is not None:
            self.bytes_out = max(self.bytes_out, got_out)


class Stories:
    """Every listed stream's story; ``observe`` returns the ones that ended this tick."""

    def __init__(self) -> None:
        self._stories: dict[Target, Story] = {}

    def observe(self, polls: Iterable[PollResult], instances: Iterable[Instance]) -> list[Story]:
        ended: list[Story] = []
        for poll in polls:
            if poll.error is not None:
                continue  # an unreadable server ends nothing
            for target in poll.listed:
                if target.scope is not Scope.STREAM:
                    continue
                story = self._stories.get(target)
                if story is None:
                    story = self._stories[target] = Story(target, poll.at, poll.at)
                sample = poll.samples.get(target)
                if sample is not None:
                    story.take(sample.fields, poll.at)
                else:
                    story.last_seen = poll.at
            for target in [t for t in self._stories if t.server == poll.server]:
                if target in poll.listed:
                    continue
                if poll.unconfirmed and under(target, poll.unconfirmed):
                    continue
                ended.append(self._stories.pop(target))
        for inst in instances:
            if inst.state is not AlertState.FIRING:
                continue
            t = inst.target
            story = self._stories.get(Target(t.server, t.vhost, t.app, t.stream))
            if story is not None and t.stream is not None:
                story.alerts.setdefault(inst.rule, None)
        return ended

    def forget_server(self, server: str) -> None:
        for target in [t for t in self._stories if t.server == server]:
            del self._stories[target]

    def __len__(self) -> int:
        return len(self._stories)
