"""The one short "acknowledged by NAME: comment" message an ack sends.

It goes to the channels that heard the firing of the alerts it covers, once per ack and
channel, unless ``notify_acks`` (the config's, or the channel's) is false. An ack is marked
announced in the state file in the transaction that queues its messages (the runner passes
``announced`` to ``save_tick`` and clears it once saved), so a restart does not announce it
again; the ids told are also kept in memory, so a state file that cannot be written for a
while does not repeat them either.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..durations import format_duration
from ..engine.alerts import Instance
from ..engine.engine import Engine
from ..errors import printable
from ..model import AlertState
from ..rules import Settings
from ..state.acks import Ack
from ..state.records import OutboxMessage, channel_services
from .defaults import Fmt
from .escape import escape

__all__ = ["ACK_REASON", "AckNotices"]

#: the ``reason`` of an ack's message in the outbox and the history
ACK_REASON = "acknowledged"


@dataclass(slots=True)
class AckNotices:
    """Which acks were announced, and the messages for those that were not yet."""

    settings: Settings | None = None
    told: set[str] = field(default_factory=set)
    #: (ack id, when) announced since the runner last saved
    announced: list[tuple[str, float]] = field(default_factory=list)

    def messages(self, engine: Engine, acks: Iterable[Ack], now: float) -> list[OutboxMessage]:
        fresh = {a.id: a for a in acks if a.announced_at is None and a.id not in self.told}
        if not fresh or self.settings is None:
            return []
        firing = {
            (i.rule, i.target.key, i.fired_at): i
            for i in engine.instances()
            if i.state is AlertState.FIRING
        }
        out: list[OutboxMessage] = []
        for ack in fresh.values():
            self.told.add(ack.id)
            self.announced.append((ack.id, now))
            covered = [firing[e] for e in ack.alerts if e in firing]
            heard: dict[str, list[Instance]] = {}
            for inst in covered:
                for channel in inst.notified:
                    heard.setdefault(channel, []).append(inst)
            for channel, insts in sorted(heard.items()):
                out.extend(self._message(ack, channel, insts, now))
        return out

    def _message(
        self, ack: Ack, channel_name: str, insts: list[Instance], now: float
    ) -> list[OutboxMessage]:
        assert self.settings is not None
        channel = self.settings.channels.get(channel_name)
        if channel is None:
            return []
        wanted = channel.notify_acks
        if not (self.settings.notify_acks if wanted is None else wanted):
            return []
        insts = sorted(insts, key=lambda i: (i.rule, i.target.key))
        rules = sorted({i.rule for i in insts})
        targets = [printable(i.target.key) for i in insts]
        if len(insts) == 1:
            what = f"{rules[0]} on {targets[0]}"
        else:
            what = f"{len(insts)} alerts ({', '.join(rules)})"
        who = printable(ack.created_by) or "someone"
        title = escape(f"[ACKNOWLEDGED] {what} by {who}", "text")
        f = Fmt(channel.format.value)
        said = f"acknowledged by {who}" + (f": {printable(ack.comment)}" if ack.comment else "")
        lines = [f.esc(said)]
        if len(insts) > 1:
            pairs = zip(insts, targets, strict=True)
            lines.append(f.bullets([f.esc(f"{i.rule} on {t}") for i, t in pairs]))
        if ack.expires_at is not None:
            left = format_duration(max(0.0, ack.expires_at - now))
            lines.append(f.esc(f"Repeats resume in {left} if it still fires then."))
        else:
            lines.append(f.esc("No repeats until it resolves; the resolve is still sent."))
        body = f.paragraphs(lines)
        return [
            OutboxMessage(
                id=None,
                channel=channel_name,
                url_index=index,
                service_key=key,
                created_at=now,
                next_attempt_at=now,
                attempts=0,
                title=title,
                body=body,
                format=f.fmt,
                notify_type="info",
                reason=ACK_REASON,
                rule=rules[0] if len(rules) == 1 else ",".join(rules),
                targets=[i.target.key for i in insts],
            )
            for key, index in channel_services(channel.urls).items()
        ]
