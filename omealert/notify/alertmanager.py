"""What a tick tells the Alertmanagers, the way Prometheus' rule manager does it.

A rule that ``deliver``s to ``alertmanager`` has each firing instance posted as an alert
(labels ``alertname``, ``severity``, the target's ``server``/``vhost``/``app``/``stream``
and the rule's labels; annotations ``summary``, ``description``, ``value``, ``replica``)
when it starts firing and again every ``resend_delay``, with ``endsAt`` set
``4 × max(resend_delay, interval)`` ahead: if every watcher dies, Alertmanager resolves the
alert by itself. A resolved one is posted with ``endsAt`` = its resolve time, and again
every ``resend_delay`` for ``RESOLVED_RETENTION_S``, so an Alertmanager that was down
still hears it. ``startsAt`` is the instance's ``fired_at`` from the state file: it
survives restarts. Which watcher sent an alert is an annotation, never a label, so the
alerts of two replicas have one label set and Alertmanager deduplicates them.

The heartbeat's ``omealert-watchdog`` alert rides along: always firing while ticks run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..model import AlertState
from .am_sender import AlertKey, AlertmanagerPool, AmAlert, alert_key

if TYPE_CHECKING:
    from ..engine.alerts import Instance, Transition
    from ..engine.engine import Engine
    from ..rules import RouteSpec, Rule, Settings
    from .context import AlertView

#: a resolved alert is posted again for this long (Prometheus keeps it 15 minutes)
RESOLVED_RETENTION_S = 15 * 60.0
WATCHDOG = "omealert-watchdog"

#: renders an instance's summary and description (``Planner.view``)
Viewer = Callable[["Instance", "Rule | None", float], "AlertView"]


def rfc3339(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def delivers_to_alertmanager(rule: Rule | None) -> bool:
    return rule is not None and "alertmanager" in rule.deliver


def _routed(settings: Settings) -> tuple[RouteSpec, ...]:
    return tuple(r for r in settings.routes if "alertmanager" in r.deliver)


@dataclass(slots=True)
class _Resolved:
    alert: AmAlert
    resolved_at: float


class AlertFeed:
    """Turns each tick's transitions and firing alerts into posts to the pool."""

    def __init__(self, settings: Settings, pool: AlertmanagerPool, viewer: Viewer) -> None:
        self.pool = pool
        self.viewer = viewer
        self.configure(settings)
        #: firing alerts last posted, by label set, with the instance they came from
        self._firing: dict[AlertKey, AmAlert] = {}
        self._resolved: dict[AlertKey, _Resolved] = {}
        self._next_resend = 0.0
        self._started: float | None = None

    def configure(self, settings: Settings) -> None:
        self.settings = settings
        self.resend_s = settings.resend_delay_s
        self.valid_s = 4 * max(settings.resend_delay_s, settings.interval_s)
        self.routes = _routed(settings)

    def delivers(self, rule: Rule | None, inst: Instance) -> bool:
        """The rule's ``deliver``, or a route with ``deliver: [alertmanager]`` matching."""
        if delivers_to_alertmanager(rule):
            return True
        return rule is not None and any(r.matches(inst.labels) for r in self.routes)

    def observe(self, transitions: Iterable[Transition], engine: Engine, now: float) -> None:
        """After a tick: post what changed now, and everything firing each ``resend_delay``."""
        out: list[AmAlert] = []
        for tr in transitions:
            if tr.to_state is AlertState.FIRING and self.delivers(tr.rule, tr.instance):
                alert = self._alert(tr.instance, tr.rule, now)
                key = alert_key(alert)
                self._firing[key] = alert
                self._resolved.pop(key, None)
                out.append(alert)
            elif tr.from_state is AlertState.FIRING:
                out.extend(self._resolve(tr.instance, tr.rule, tr.at, now))
        if now >= self._next_resend:
            self._next_resend = now + self.resend_s
            out.extend(self._resend(engine, now))
        self.pool.put(out)

    def _resend(self, engine: Engine, now: float) -> list[AmAlert]:
        """Every firing alert (re-read from the engine: restored and reloaded ones too),
        the resolved ones still retained, and the watchdog."""
        firing: dict[AlertKey, AmAlert] = {}
        for inst in engine.instances():
            if inst.state is not AlertState.FIRING:
                continue
            rule = engine.rule_for(inst.rule)
            if not self.delivers(rule, inst):
                continue
            key = alert_key({"labels": am_labels(inst)})
            old = self._firing.get(key)
            alert = self._refresh(old, inst, now) if old else self._alert(inst, rule, now)
            firing[key] = alert
        for key in self._firing.keys() - firing.keys():  # gone without a transition
            self._resolved[key] = _Resolved(self._ended(self._firing[key], now), now)
        self._firing = firing
        for key, r in list(self._resolved.items()):
            if now - r.resolved_at > RESOLVED_RETENTION_S:
                del self._resolved[key]
        out = [*firing.values(), *(r.alert for r in self._resolved.values())]
        if self.settings.heartbeat.watchdog:
            out.append(self.watchdog(now))
        return out

    def _resolve(self, inst: Instance, rule: Rule | None, at: float, now: float) -> list[AmAlert]:
        """The resolve of an alert this feed posted, or (just started: the first tick
        after a restart) of one an earlier run posted, as its rule delivers there."""
        key = alert_key({"labels": am_labels(inst)})
        alert = self._firing.pop(key, None)
        if alert is None and self.delivers(rule, inst):
            alert = self._alert(inst, rule, now)
        if alert is None:
            return []
        ended = self._ended(alert, inst.resolved_at or at)
        ended["annotations"] = {**alert["annotations"], "value": _text(inst.value)}
        self._resolved[key] = _Resolved(ended, at)
        return [ended]

    def _ended(self, alert: AmAlert, at: float) -> AmAlert:
        return {**alert, "endsAt": rfc3339(at)}

    def _alert(self, inst: Instance, rule: Rule | None, now: float) -> AmAlert:
        view = self.viewer(inst, rule, now)
        annotations = {
            "summary": view.summary,
            "description": view.description,
            "value": _text(inst.value),
            "replica": self.settings.replica,
        }
        return {
            "labels": am_labels(inst),
            "annotations": {k: v for k, v in annotations.items() if v},
            "startsAt": rfc3339(inst.fired_at if inst.fired_at is not None else now),
            "endsAt": rfc3339(now + self.valid_s),
        }

    def _refresh(self, alert: AmAlert, inst: Instance, now: float) -> AmAlert:
        """A resend: the same alert with today's value and a new ``endsAt``."""
        annotations = {**alert["annotations"], "value": _text(inst.value)}
        return {**alert, "annotations": annotations, "endsAt": rfc3339(now + self.valid_s)}

    def watchdog(self, now: float) -> AmAlert:
        """Always firing while this watcher ticks; a dead-man service pages when it stops.

        Shards each send their own (a ``shard`` label), so one dead shard is noticed too."""
        if self._started is None:
            self._started = now
        labels = {"alertname": WATCHDOG, "severity": "none"}
        shard = self.settings.shard
        if shard.count > 1:
            labels["shard"] = str(shard)
        return {
            "labels": labels,
            "annotations": {
                "summary": "omealert is running: this alert fires for as long as it does",
                "replica": self.settings.replica,
            },
            "startsAt": rfc3339(self._started),
            "endsAt": rfc3339(now + self.valid_s),
        }


def am_labels(inst: Instance) -> dict[str, str]:
    """The instance's labels with ``rule`` as Alertmanager's ``alertname``."""
    labels = dict(inst.labels)
    labels["alertname"] = labels.pop("rule", inst.rule)
    return labels


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
