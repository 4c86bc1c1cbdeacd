"""Alert instances and their transitions: what the engine keeps per (rule, target).

The engine advances them; the runner persists them (``state.persist``), the planner turns
transitions into notifications (``notify.planner``), and ``status``/``check`` print them. The
built-in ``ome-api-down`` rule and an instance's identity and labels are made here too,
so restoring state and reloading the config agree on what "the same alert" is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from ..model import AlertState, Sample, Scope, Target, Value
from ..rules import API_DOWN_RULE, Rule, Settings

if TYPE_CHECKING:
    from ..lang.condition import Condition

__all__ = [
    "AlertValue",
    "Instance",
    "Transition",
    "api_down_rule",
    "instance_labels",
    "rule_identity",
]

AlertValue = float | str | bool | None


@dataclass(slots=True, eq=False)
class Instance:
    """One alert instance: a rule applied to one target, with its timestamps."""

    rule: str
    target: Target
    labels: dict[str, str]
    identity: str
    state: AlertState = AlertState.INACTIVE
    active_since: float | None = None
    fired_at: float | None = None
    resolved_at: float | None = None
    keep_firing_since: float | None = None
    last_eval_at: float | None = None
    value: AlertValue = None
    #: the last evaluation could not compute a value (missing field, too little history)
    no_value: bool = False
    #: channel → when the last firing notice for this episode was queued
    notified: dict[str, float] = field(default_factory=dict)
    summary: str = ""
    sample: Sample | None = None
    #: its last resolve was because the target was no longer listed (``on_missing``), so
    #: its value is the last one seen, which still met the condition (not persisted)
    gone: bool = False
    #: a cause's held echoes on dependent servers, said in its messages (not persisted)
    also_affects: str = ""
    dirty: bool = True

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule, self.target.key)


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of state. ``rule`` is None only for instances of a rule that no longer exists."""

    instance: Instance
    rule: Rule | None
    from_state: AlertState
    to_state: AlertState
    at: float
    reason: str  # condition | missing | absent | api-down | rule-removed | rule-changed | restart


class _FixedCondition:
    """Stands in for a compiled condition on the built-in ``ome-api-down`` rule."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.is_absent = False
        self.fields: frozenset[str] = frozenset()
        self.field_offsets: dict[str, int] = {}
        self.history_fields: frozenset[str] = frozenset()
        self.rate_fields: frozenset[str] = frozenset()
        self.value_fields: frozenset[str] = frozenset()
        self.history_uses: frozenset[tuple[str, str, float | None, float | None]] = frozenset()
        self.max_window = 0.0
        self.value_unit: str | None = None

    def evaluate(
        self, fields: Mapping[str, Value], server_now: float, history: Any
    ) -> tuple[bool | None, AlertValue]:
        raise NotImplementedError("the engine decides ome-api-down itself")


def api_down_rule(settings: Settings) -> Rule:
    spec = settings.api_down
    return Rule(
        name=API_DOWN_RULE,
        scope=Scope.SERVER,
        patterns=(),
        when=cast("Condition", _FixedCondition("OME API not answering")),
        when_text="OME API not answering",
        resolve_when=None,
        for_s=spec.for_s,
        keep_firing_for_s=0.0,
        repeat_interval_s=spec.repeat_interval_s,
        send_resolved=spec.send_resolved,
        severity=spec.severity,
        labels={},
        summary=spec.summary,
        description="",
        channels=spec.channels or settings.default_channels,
        deliver=settings.default_deliver,
        flapping=spec.flapping,
    )


def rule_identity(rule: Rule) -> str:
    """Short stable hash of what must not change for state to carry over."""
    return hashlib.sha1(repr(rule.identity()).encode()).hexdigest()[:16]


def instance_labels(rule: Rule, target: Target) -> dict[str, str]:
    labels = target.labels()
    labels.update(rule.labels)
    labels["rule"] = rule.name
    labels["severity"] = rule.severity.value
    return labels
