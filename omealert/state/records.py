"""The rows of the state file as Python values: what ``StateStore`` reads and writes.

Plain dataclasses with no SQLite in them, so the engine, the notifier and the rule tests can
hold alerts, messages and silences without opening a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "AlertRecord",
    "JsonScalar",
    "LogEntry",
    "OutboxMessage",
    "Silence",
    "TransitionRecord",
]

JsonScalar = float | str | bool | None


@dataclass(slots=True)
class AlertRecord:
    """One (rule, target) instance as persisted; ``notified`` maps channel → last firing send."""

    rule: str
    target: str
    state: str
    active_since: float | None
    fired_at: float | None
    resolved_at: float | None
    keep_firing_since: float | None
    last_eval_at: float | None
    value: JsonScalar
    labels: dict[str, str]
    notified: dict[str, float]
    identity: str
    summary: str = ""


@dataclass(slots=True)
class TransitionRecord:
    """One state change of one instance, kept for ``omealert history``."""

    at: float
    rule: str
    target: str
    from_state: str
    to_state: str
    value: JsonScalar


@dataclass(slots=True)
class OutboxMessage:
    """A rendered message for one service of a channel, waiting until it is delivered or dropped."""

    id: int | None
    channel: str
    url_index: int
    created_at: float
    next_attempt_at: float
    attempts: int
    title: str
    body: str
    format: str
    notify_type: str
    reason: str
    rule: str
    targets: list[str]
    last_error: str = ""


@dataclass(slots=True)
class Silence:
    """Mutes notifications whose labels match every matcher while ``starts_at <= now < ends_at``."""

    id: str
    matchers: list[str]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    created_at: float
    expired_at: float | None = None


@dataclass(slots=True)
class LogEntry:
    """One line of history: a transition, or what happened to a message (sent/failed/dropped)."""

    at: float
    kind: str
    rule: str
    targets: list[str] = field(default_factory=list)
    channel: str = ""
    detail: str = ""
