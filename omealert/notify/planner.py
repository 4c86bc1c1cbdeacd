"""Notification policy: which alert tells which channel what, and when.

Per tick, after the engine has moved the instances:

1. a firing instance that has not yet told a channel about this episode does so once its
   rule's ``group_wait`` has passed since it fired (reason ``first``);
2. one that has, tells it again when ``repeat_interval`` has passed since the last time,
   measured exactly per instance and channel (reason ``repeat``);
3. an instance that resolved tells every channel it told about the firing (reason
   ``resolved``) when ``send_resolved`` — even if it is silenced or inhibited now, because
   a silence that swallows the resolve leaves a stale incident behind;
4. silenced, inhibited and acknowledged instances say nothing new (they are still
   evaluated and shown), nor do those inside a mute time interval or outside their active
   ones (``notify.windows``: the repeats that fall due meanwhile are skipped, and a resolve
   sent while quiet says why it came through), nor alerts held by a parent server's outage
   (``engine/dependencies.py``: the cause's message counts them) or flapping ones, whose
   resolves wait too (``notify/flapnotice.py``: ``[FLAPPING]`` once, ``[FLAPPING ENDED]``
   saying how it stands);
5. what is left is grouped by (rule, channel, ``group_by`` labels) into one message each,
   rendered, and becomes one outbox entry per service (apprise URL) of the channel.

``notified`` is stamped when a message is *queued*: the queue is persisted in the same
transaction as the stamp, so a crash can repeat at most the message in flight, never lose
one.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..engine.alerts import Instance, Transition
from ..engine.engine import Engine
from ..errors import printable
from ..model import AlertState
from ..rules import API_DOWN_RULE, InhibitSpec, Matcher, Rule, Settings, matches_all
from ..state.acks import Ack
from ..state.records import OutboxMessage, Silence, channel_services
from .acks import AckNotices
from .context import AlertView, template_sample
from .defaults import Fmt
from .flapnotice import flap_notices
from .render import render_alert_fields, render_message
from .windows import Quiet, resolve_note, skip_due_repeats

log = logging.getLogger(__name__)

#: Ids of stored silences already reported as unreadable, so each is logged once.
_unreadable_told: set[str] = set()


class NotifyReason(enum.StrEnum):
    FIRST = "first"
    REPEAT = "repeat"
    RESOLVED = "resolved"


@dataclass(slots=True)
class _Item:
    instance: Instance
    rule: Rule | None
    reason: NotifyReason
    #: why this resolve is sent although the alert is quiet now (``notify.windows``)
    held: str | None = None


def compile_silences(silences: Iterable[Silence]) -> list[tuple[Silence, tuple[Matcher, ...]]]:
    out = []
    for s in silences:
        try:
            matchers = tuple(Matcher.parse(m) for m in s.matchers)
        except ValueError as exc:
            # Validated when added; one added under an older, wider regex syntax (Python's
            # lookaround or backreferences) silences nothing now, and says so once.
            if s.id not in _unreadable_told:
                _unreadable_told.add(s.id)
                log.warning("silence %s matches nothing: %s", s.id, exc)
            continue
        out.append((s, matchers))
    return out


def is_silenced(
    labels: dict[str, str], silences: Sequence[tuple[Silence, tuple[Matcher, ...]]]
) -> bool:
    return any(matches_all(m, labels) for _, m in silences)


def inhibited_keys(
    instances: Iterable[Instance], rules: Sequence[InhibitSpec]
) -> set[tuple[str, str]]:
    """Keys of instances muted because a matching source alert is firing on equal labels."""
    if not rules:
        return set()
    firing = [i for i in instances if i.state is AlertState.FIRING]
    muted: set[tuple[str, str]] = set()
    for spec in rules:
        sources = [i for i in firing if matches_all(spec.source, i.labels)]
        if not sources:
            continue
        source_values = {tuple(s.labels.get(n, "") for n in spec.equal) for s in sources}
        for inst in firing:
            if not matches_all(spec.target, inst.labels):
                continue
            if matches_all(spec.source, inst.labels):
                continue  # an alert matching both sides is never muted by its peers
            if tuple(inst.labels.get(n, "") for n in spec.equal) in source_values:
                muted.add(inst.key)
    return muted


class Planner:
    """Turns engine state into queued messages; holds no state of its own beyond the config."""

    def __init__(self, settings: Settings, acks: AckNotices | None = None) -> None:
        self.settings = settings
        #: tells the channels that heard a firing who acknowledged it; kept across reloads
        self.acks = acks or AckNotices()
        self.acks.settings = settings

    def channels_for(self, rule: Rule | None, inst: Instance) -> list[str]:
        names: list[str] = list(rule.channels) if rule is not None else []
        for route in self.settings.routes:
            if route.matches(inst.labels):
                names.extend(route.channels)
        if rule is None:
            names.extend(inst.notified)  # a rule that is gone: tell whoever heard of it
        seen: dict[str, None] = {}
        for n in names:
            if n in self.settings.channels:
                seen.setdefault(n, None)
        return list(seen)

    def plan(
        self,
        engine: Engine,
        transitions: Sequence[Transition],
        now: float,
        silences: Iterable[Silence] = (),
        acks: Iterable[Ack] = (),
    ) -> list[OutboxMessage]:
        quiet = Quiet.build(self.settings, now, compile_silences(silences), acks)
        instances = list(engine.instances())
        muted = inhibited_keys(instances, self.settings.inhibit)
        items: dict[tuple[str, str, tuple[str, ...]], list[_Item]] = {}
        flaps, deps = engine.flapping, engine.dependencies.held

        def hushed_flap(inst: Instance, channel: str) -> bool:
            """No ``[FLAPPING]`` where the alert is to say nothing now."""
            if inst.key in muted or inst.key in deps or quiet.silence_for(inst.labels):
                return True
            if quiet.ack_for(inst.rule, inst.target.key, inst.fired_at) is not None:
                return True
            return quiet.window(engine.rule_for(inst.rule), inst, channel) is not None

        notices = flap_notices(
            self.settings,
            flaps,
            engine.rule_for,
            engine.instances_of,
            self.channels_for,
            hushed_flap,
            now,
        )

        def add(
            channel: str, inst: Instance, rule: Rule | None, reason: NotifyReason, held: str | None
        ) -> None:
            group = tuple(inst.labels.get(n, "") for n in (rule.group_by if rule else ()))
            item = _Item(inst, rule, reason, held)
            items.setdefault((inst.rule, channel, group), []).append(item)

        for inst in instances:
            if inst.state is not AlertState.FIRING:
                continue
            rule = engine.rule_for(inst.rule)
            if rule is None:
                continue
            if inst.key in muted or inst.key in deps or flaps.is_flapping(inst.key):
                continue  # held: the cause's message counts it; flapping: [FLAPPING] said it
            hushed = quiet.ack_for(inst.rule, inst.target.key, inst.fired_at) is not None
            hushed = hushed or quiet.silence_for(inst.labels) is not None
            for channel in self.channels_for(rule, inst):
                if hushed or quiet.window(rule, inst, channel):
                    skip_due_repeats(inst, channel, rule.repeat_interval_s, now)
                    continue
                last = inst.notified.get(channel)
                if last is None:
                    if now - (inst.fired_at or now) >= rule.group_wait_s:
                        add(channel, inst, rule, NotifyReason.FIRST, None)
                elif now - last >= rule.repeat_interval_s:
                    add(channel, inst, rule, NotifyReason.REPEAT, None)

        for tr in transitions:
            if tr.to_state is not AlertState.RESOLVED:
                continue
            inst = tr.instance
            if tr.rule is not None and flaps.is_flapping(inst.key):
                inst.notified = {}  # [FLAPPING ENDED] will say how it stands
                continue
            silence = quiet.silence_for(inst.labels)
            for channel in self.channels_for(tr.rule, inst):
                if channel not in inst.notified:
                    continue  # never told about the firing: nothing to take back
                if self._send_resolved(tr.rule, channel):
                    held = quiet.why(tr.rule, inst, channel, silence)
                    add(channel, inst, tr.rule, NotifyReason.RESOLVED, held)
            inst.notified = {}

        out: list[OutboxMessage] = notices
        for (rule_name, channel_name, _), group in sorted(items.items(), key=lambda kv: kv[0]):
            group.sort(key=lambda item: item.instance.target.key)  # same message every run
            out.extend(self._render(rule_name, channel_name, group, now))
            for item in group:
                if item.reason is not NotifyReason.RESOLVED:
                    item.instance.notified[channel_name] = now
                    item.instance.dirty = True
        out.extend(self.acks.messages(engine, quiet.acks.values(), now))
        return out

    def _send_resolved(self, rule: Rule | None, channel: str) -> bool:
        override = self.settings.channels[channel].send_resolved
        if override is not None:
            return override
        return rule.send_resolved if rule is not None else True

    def _render(
        self, rule_name: str, channel_name: str, group: list[_Item], now: float
    ) -> list[OutboxMessage]:
        channel = self.settings.channels[channel_name]
        views = [self.view(item.instance, item.rule, now) for item in group]
        reasons = {item.reason for item in group}
        if NotifyReason.FIRST in reasons:
            reason = NotifyReason.FIRST
        elif NotifyReason.RESOLVED in reasons:
            reason = NotifyReason.RESOLVED
        else:
            reason = NotifyReason.REPEAT
        message = render_message(
            views,
            reason=reason.value,
            now=now,
            fmt=channel.format.value,
            title_src=channel.title,
            body_src=channel.body,
        )
        body = message.body
        held = [item.held for item in group if item.held is not None]
        if held:
            f = Fmt(message.format)
            note = f.paragraphs([f.esc(resolve_note(held))])
            body += f"\n{note}" if message.format == "html" else f"\n\n{note}"
        targets = [item.instance.target.key for item in group]
        services = channel_services(channel.urls)
        return [
            OutboxMessage(
                id=None,
                channel=channel_name,
                url_index=index,
                service_key=key,
                created_at=now,
                next_attempt_at=now,
                attempts=0,
                title=message.title,
                body=body,
                format=message.format,
                notify_type=message.notify_type,
                reason=reason.value,
                rule=rule_name,
                targets=targets,
            )
            for key, index in services.items()
        ]

    def view(self, inst: Instance, rule: Rule | None, now: float) -> AlertView:
        """How templates (and ``check``/``status`` output) see one instance."""
        status = "resolved" if inst.state is AlertState.RESOLVED else inst.state.value
        view = AlertView(
            rule=inst.rule,
            severity=inst.labels.get("severity", "warning"),
            status=status,
            value=inst.value,
            unit=rule.when.value_unit if rule is not None else None,
            target=printable(inst.target.key),  # stream and app names come from OME
            labels={name: printable(value) for name, value in inst.labels.items()},
            since=inst.active_since,
            fired_at=inst.fired_at,
            resolved_at=inst.resolved_at,
            gone=inst.gone and status == "resolved",
            also_affects=inst.also_affects,
            summary=inst.summary,
            description="",
            sample=template_sample(
                inst.target.scope, inst.sample.fields if inst.sample is not None else None
            ),
        )
        if rule is not None:
            summary, description = render_alert_fields(
                rule.summary, rule.description, view, now, condition_text=rule.when_text
            )
            view.summary, view.description = summary, description
            inst.summary = summary
        elif not view.summary:
            view.summary = f"{view.target}: rule {inst.rule} no longer exists"
        return view


__all__ = ["API_DOWN_RULE", "NotifyReason", "Planner", "compile_silences", "inhibited_keys"]
