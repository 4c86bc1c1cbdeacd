"""What a template sees: one alert as the notifier describes it, and the names built from it."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..lang.fields import FIELDS
from ..model import Scope, nest_fields
from .filters import Epoch, Seconds

__all__ = ["CONTEXT_NAMES", "AlertView", "template_context", "template_sample"]

#: Every top-level name a template may use. Single-alert templates (summary, description) get
#: the group names too (``alerts`` holding just that alert), so one list serves every template.
CONTEXT_NAMES: frozenset[str] = frozenset(
    {
        "rule",
        "severity",
        "status",
        "value",
        "target",
        "labels",
        "since",
        "duration",
        "sample",
        "summary",
        "description",
        "fired_at",
        "resolved_at",
        "silenced",
        "alerts",
        "reason",
        "count",
        "firing_count",
        "resolved_count",
        "now",
        "also_affects",
    }
)


@functools.cache
def _empty_fields(scope: Scope) -> dict[str, Any]:
    """Every field of ``scope`` with no value (0 for connection counts): the same each call."""
    return {p: 0 if s.missing_is_zero else None for p, s in FIELDS.items() if scope in s.scopes}


def template_sample(scope: Scope, fields: Mapping[str, Any] | None) -> dict[str, Any]:
    """``sample`` as templates see it: every field the catalogue has for ``scope``, nested
    (``sample.publishers.connections.llhls``), with the sample's values laid over it.

    A field the sample lacks is None, or 0 for a connection count (missing keys read as 0,
    as in conditions); with no sample at all (the alert was restored after a restart, or
    is the server's ``ome-api-down``) every field is so. The engine keeps the last sample
    seen for an alert whose target vanished, so a resolve by ``on_missing`` shows that. A
    template that reads the sample therefore never fails because the target is gone.
    """
    flat = dict(_empty_fields(scope))
    if fields:
        flat.update(fields)
    return nest_fields(flat)


@dataclass(slots=True)
class AlertView:
    """One alert as templates and default messages see it (built by the notifier)."""

    rule: str
    severity: str
    status: str  # "firing" | "resolved"
    value: float | str | bool | None
    target: str
    labels: dict[str, str]
    since: float | None  # epoch seconds: active (pending) since
    fired_at: float | None
    resolved_at: float | None
    summary: str
    description: str
    sample: dict[str, Any] = field(default_factory=dict)
    silenced: bool = False
    #: the unit of ``value`` (``Condition.value_unit``), so default messages can say
    #: "239.7 kbps" rather than "239728"; None for counts, text and derived numbers
    unit: str | None = None
    #: resolved because the target was no longer listed: ``value`` is the last one seen
    gone: bool = False
    #: a cause's held echoes: ``also affects edge-1, edge-2: 14 alerts held`` (or "")
    also_affects: str = ""


def _alert_fields(alert: AlertView, now: float) -> dict[str, Any]:
    since = Epoch(alert.since) if alert.since is not None else None
    end = alert.resolved_at if alert.status == "resolved" and alert.resolved_at else now
    return {
        "rule": alert.rule,
        "severity": alert.severity,
        "status": alert.status,
        "value": alert.value,
        "target": alert.target,
        "labels": dict(alert.labels),
        "since": since,
        "duration": Seconds(max(0.0, end - alert.since)) if alert.since is not None else None,
        "sample": alert.sample,
        "summary": alert.summary,
        "description": alert.description,
        "fired_at": Epoch(alert.fired_at) if alert.fired_at is not None else None,
        "resolved_at": Epoch(alert.resolved_at) if alert.resolved_at is not None else None,
        "silenced": alert.silenced,
        "also_affects": alert.also_affects,
    }


def template_context(alerts: Sequence[AlertView], reason: str, now: float) -> dict[str, Any]:
    """The first alert's fields plus the group's, so one set of names serves every template."""
    each = [_alert_fields(a, now) for a in alerts]
    firing = sum(1 for a in alerts if a.status != "resolved")
    ctx = dict(each[0])
    ctx.update(
        status="firing" if firing else "resolved",
        alerts=each,
        reason=reason,
        count=len(alerts),
        firing_count=firing,
        resolved_count=len(alerts) - firing,
        now=Epoch(now),
    )
    return ctx
