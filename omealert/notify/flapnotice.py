"""``[FLAPPING]`` and ``[FLAPPING ENDED]`` notices, and who hears them.

The flap book (``engine/flapping.py``) says which alerts started or stopped flapping this
tick; this module turns that into messages, one per (rule, channel, start or end), and
records which channels heard the start so that exactly those hear the end:

* ``[FLAPPING]`` goes to the channels the alert would notify (its rule's, plus routes),
  unless it is silenced, acknowledged, inhibited or held by a dependency, or the channel
  is closed by a time interval; from then on the planner sends no firing, repeat or
  resolved message for it;
* ``[FLAPPING ENDED]`` goes to the channels that heard ``[FLAPPING]`` (even under a
  silence: it closes what they were told) and says whether the alert fires now. If it
  does, its notified marks are cleared, so the planner's normal firing message follows in
  the same tick.

The text is fixed (a channel's ``title``/``body`` templates are for firing and resolved
messages, and would call a flap notice ``[FIRING]``); target names are escaped for the
channel's format.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from ..engine.alerts import Instance
from ..engine.flapping import FlapEvent
from ..model import Target
from ..rules import Rule, Settings
from ..state.records import OutboxMessage, channel_services
from .defaults import Fmt
from .escape import escape

if TYPE_CHECKING:
    from ..engine.flapping import FlapBook

__all__ = ["flap_notices"]

ChannelsFor = Callable[[Rule | None, Instance], list[str]]


def flap_notices(
    settings: Settings,
    book: FlapBook,
    rule_for: Callable[[str], Rule | None],
    instances_of: Callable[[str], Mapping[Target, Instance]],
    channels_for: ChannelsFor,
    quiet: Callable[[Instance, str], bool],
    now: float,
) -> list[OutboxMessage]:
    """Messages for this tick's flap events; clears ``notified`` of alerts that settled firing."""
    groups: dict[tuple[str, str, bool], list[FlapEvent]] = {}
    for event in book.take_events():
        flap = event.flap
        rule = rule_for(flap.rule)
        stand_in = Instance(flap.rule, flap.target, flap.labels, identity="")
        if event.started:
            if rule is None:
                continue
            flap.told = [c for c in channels_for(rule, stand_in) if not quiet(stand_in, c)]
            channels: Sequence[str] = flap.told
        else:
            channels = [c for c in flap.told if c in settings.channels]
            flap.told = []
            inst = instances_of(flap.rule).get(flap.target)
            if event.firing and inst is not None:
                inst.notified = {}  # a normal firing message follows, as for a new alert
                inst.dirty = True
        for channel in channels:
            groups.setdefault((flap.rule, channel, event.started), []).append(event)
    out: list[OutboxMessage] = []
    for (rule_name, channel, started), events in sorted(groups.items()):
        events.sort(key=lambda e: e.flap.target.key)
        out.extend(_messages(settings, rule_name, channel, started, events, book, now))
    return out


def _messages(
    settings: Settings,
    rule_name: str,
    channel_name: str,
    started: bool,
    events: list[FlapEvent],
    book: FlapBook,
    now: float,
) -> list[OutboxMessage]:
    channel = settings.channels[channel_name]
    f = Fmt(channel.format.value)
    spec = book.spec(rule_name)
    window = spec.window if spec else 0
    low = f"{spec.low:.0%}" if spec else "the low threshold"
    tag = "[FLAPPING]" if started else "[FLAPPING ENDED]"
    if len(events) == 1:
        title = f"{tag} {rule_name} on {events[0].flap.target.key}"
    else:
        title = f"{tag} {rule_name} ({len(events)} targets)"
    lines = []
    for e in events:
        share = f"{e.flap.share:.0%} of the last {window} evaluations"
        if started:
            state = "firing" if e.firing else "not firing"
            text = f"{e.flap.target.key}: changed state in {share} (weighted); {state} now"
        else:
            now_state = "firing now: a firing message follows" if e.firing else "not firing now"
            text = f"{e.flap.target.key}: settled ({share}, under {low}); {now_state}"
        lines.append(f.esc(text))
    if started:
        head = (
            f"Rule {f.esc(rule_name)} is flapping: no firing or resolved messages are sent for "
            f"{'this alert' if len(events) == 1 else 'these alerts'} until the share of state "
            f"changes falls under {f.esc(low)}."
        )
    else:
        head = f"Rule {f.esc(rule_name)} stopped flapping."
    body = f.paragraphs([head, f.bullets(lines)])
    firing = any(e.firing for e in events)
    notify_type = "warning" if started or firing else "success"
    reason = "flapping" if started else "flapping-ended"
    return [
        OutboxMessage(
            id=None,
            channel=channel_name,
            url_index=index,
            service_key=key,
            created_at=now,
            next_attempt_at=now,
            attempts=0,
            title=escape(title, "text"),
            body=body,
            format=f.fmt,
            notify_type=notify_type,
            reason=reason,
            rule=rule_name,
            targets=[e.flap.target.key for e in events],
        )
        for key, index in channel_services(channel.urls).items()
    ]
