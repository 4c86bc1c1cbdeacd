"""The rows of the state file as Python values: what ``StateStore`` reads and writes.

Plain dataclasses with no SQLite in them, so the engine, the notifier and the rule tests can
hold alerts, messages and silences without opening a database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "AlertRecord",
    "JsonScalar",
    "LogEntry",
    "OutboxMessage",
    "Silence",
    "TransitionRecord",
    "service_key",
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


def service_key(url: str) -> str:
    """Which service of a channel a queued message is for: a hash of its apprise URL.

    Not its position in the channel's list, so a reload that reorders, inserts or removes
    URLs never hands a message to another service. A hash, so the URL (often a secret)
    never reaches the state file; a URL that changes in any way is another service.
    """
    digest = hashlib.sha256(b"omealert service\0" + url.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def channel_services(urls: Sequence[str]) -> dict[str, int]:
    """Each service of a channel (its ``service_key``) and the first index of its URL: a URL
    listed twice is one service, sent one message."""
    out: dict[str, int] = {}
    for index, url in enumerate(urls):
        out.setdefault(service_key(url), index)
    return out


@dataclass(slots=True)
class OutboxMessage:
    """A rendered message for one service of a channel, waiting until it is delivered or dropped.

    ``service_key`` (``service_key(url)``) names the service it goes to; ``url_index`` is only
    where that URL stood in the channel when the message was queued, for display. A message
    queued by a version without keys has ``service_key == ""`` until the outbox binds it.
    """

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
    service_key: str = ""


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
    #: "silence", or "maintenance" (``omealert maintenance add``: the comment says why)
    kind: str = "silence"


@dataclass(slots=True)
class LogEntry:
    """One line of history: a transition, or what happened to a message (sent/failed/dropped)."""

    at: float
    kind: str
    rule: str
    targets: list[str] = field(default_factory=list)
    channel: str = ""
    detail: str = ""
