"""Conversion between live engine instances and the records the state database keeps."""

from __future__ import annotations

from ..engine.alerts import Instance, Transition
from ..model import AlertState, Target
from .records import AlertRecord, TransitionRecord


def to_record(inst: Instance) -> AlertRecord:
    value = inst.value
    return AlertRecord(
        rule=inst.rule,
        target=inst.target.key,
        state=inst.state.value,
        active_since=inst.active_since,
        fired_at=inst.fired_at,
        resolved_at=inst.resolved_at,
        keep_firing_since=inst.keep_firing_since,
        last_eval_at=inst.last_eval_at,
        value=value,
        labels=dict(inst.labels),
        notified=dict(inst.notified),
        identity=inst.identity,
        summary=inst.summary,
    )


def from_record(rec: AlertRecord) -> Instance:
    return Instance(
        rule=rec.rule,
        target=Target.from_key(rec.target),
        labels=dict(rec.labels),
        identity=rec.identity,
        state=AlertState(rec.state),
        active_since=rec.active_since,
        fired_at=rec.fired_at,
        resolved_at=rec.resolved_at,
        keep_firing_since=rec.keep_firing_since,
        last_eval_at=rec.last_eval_at,
        value=rec.value,
        notified=dict(rec.notified),
        summary=rec.summary,
        dirty=False,
    )


def transition_record(tr: Transition) -> TransitionRecord:
    return TransitionRecord(
        at=tr.at,
        rule=tr.instance.rule,
        target=tr.instance.target.key,
        from_state=tr.from_state.value,
        to_state=tr.to_state.value,
        value=tr.instance.value,
    )
