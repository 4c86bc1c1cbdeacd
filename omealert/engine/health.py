"""One health state per stream, app and server, derived each tick from what omealert knows.

The status page, ``omealert status`` and ``/metrics`` all show this one state, so they never
disagree. It is derived, never stored as truth: from the last poll of each server (listed
or not, its streams' input times), and from the alerts the engine holds.

A stream is, in this order of precedence:

- ``unknown`` — its server could not be read in its last poll (or has not been polled yet);
- ``stalled`` — no input bytes for more than ``stale_after`` (OME's ``lastRecvTime``
  against the server's own clock, so a skewed watcher clock does not matter);
- ``failing`` — a critical alert fires on it (or on one of its pushes or records);
- ``degraded`` — a warning alert fires on it;
- ``healthy`` — none of these.

``offline`` is a stream, app or vhost an ``absent`` rule expects and the listing lacks.
An app or server takes the worst state below it (``RANK``) and says how many streams are in
it ("3 of 120 streams stalled"); a server that cannot be read is ``unknown``, never healthy.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ..model import AlertState, PollResult, Scope, Severity, Target
from ..rules import Settings
from .alerts import Instance
from .trend import Trends

#: input bits/s and viewers, as the page and the stream report read them
BITRATE_FIELD = "providers.avgThroughputIn"
VIEWERS_FIELD = "publishers.viewers"
LAST_RECV_FIELD = "providers.lastRecvTime"
DEFAULT_STALE_AFTER_S = 10.0


class Health(enum.StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    FAILING = "failing"
    STALLED = "stalled"
    OFFLINE = "offline"
    UNKNOWN = "unknown"


#: worse is higher: what sorts problems first, and what an app or server takes from below
RANK: Mapping[Health, int] = {
    Health.STALLED: 5,
    Health.OFFLINE: 4,
    Health.FAILING: 3,
    Health.UNKNOWN: 2,
    Health.DEGRADED: 1,
    Health.HEALTHY: 0,
}


@dataclass(slots=True)
class TargetHealth:
    """A target's state, why (in words), since when, and what it was last seen doing."""

    target: Target
    state: Health
    reason: str
    since: float
    viewers: float | None = None
    bitrate: float | None = None
    #: apps and servers: how many streams below are in each state
    counts: dict[str, int] = field(default_factory=dict)
    #: the stream's fields as last polled (the stream page shows them)
    fields: Mapping[str, object] | None = None


@dataclass(slots=True)
class ServerSeen:
    """What the last poll of one server said."""

    at: float | None = None
    error: str | None = None
    version: str | None = None
    #: streams the last good poll listed (kept through a failed poll: shown as unknown)
    streams: list[Target] = field(default_factory=list)
    fields: dict[Target, Mapping[str, object]] = field(default_factory=dict)
    #: seconds since the last input bytes, by the server's clock
    idle: dict[Target, float] = field(default_factory=dict)
    apps: list[Target] = field(default_factory=list)


def clock_text(at: float) -> str:
    """``12:03:10``, UTC: what "since" says in a reason."""
    return time.strftime("%H:%M:%S", time.gmtime(at))


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _owner(target: Target) -> Target:
    """The stream, app or server whose health an alert on ``target`` counts for."""
    if target.output == Scope.QUEUE.value:
        return Target(target.server)
    if target.output is not None:
        return Target(target.server, target.vhost, target.app, target.stream)
    return target


class HealthBook:
    """The health of every server, app and stream, recomputed at each tick."""

    def __init__(self, servers: Iterable[str], stale_after_s: float = DEFAULT_STALE_AFTER_S):
        self.stale_after_s = stale_after_s
        self.seen: dict[str, ServerSeen] = {name: ServerSeen() for name in servers}
        self.streams: dict[Target, TargetHealth] = {}
        self.apps: dict[Target, TargetHealth] = {}
        self.servers: dict[str, TargetHealth] = {}
        self._since: dict[Target, tuple[Health, float]] = {}
        self.updated_at: float | None = None
        #: each stream's recent input bitrate and viewers, for sparklines
        self.trends = Trends()

    def configure(self, servers: Iterable[str], stale_after_s: float) -> None:
        """A reload: servers that left are forgotten, new ones start unknown."""
        names = list(servers)
        for gone in set(self.seen) - set(names):
            self.trends.forget_server(gone)
        self.seen = {name: self.seen.get(name) or ServerSeen() for name in names}
        self.stale_after_s = stale_after_s

    def observe(
        self,
        polls: Iterable[PollResult],
        instances: Iterable[Instance],
        absent_rules: frozenset[str],
        now: float,
    ) -> None:
        """Take in this tick's polls, then derive every state again."""
        for poll in polls:
            seen = self.seen.get(poll.server)
            if seen is None:
                continue
            seen.at = poll.at
            if poll.ome_version is not None:
                seen.version = poll.ome_version
            if poll.error is not None:
                seen.error = f"{poll.error.kind.value}: {poll.error.reason}"
                continue
            seen.error = None
            self._take(seen, poll)
        self._derive(list(instances), absent_rules, now)
        self.updated_at = now

    def _take(self, seen: ServerSeen, poll: PollResult) -> None:
        # ``Target.scope`` is a property: the fields themselves are tested, 10,000 times a tick
        listed = poll.listed
        streams = [t for t in listed if t.stream is not None and t.output is None]
        seen.streams = streams
        seen.apps = [
            t for t in listed if t.app is not None and t.stream is None and t.output is None
        ]
        fields: dict[Target, Mapping[str, object]] = {}
        idle: dict[Target, float] = {}
        readings: dict[Target, tuple[float | None, float | None]] = {}
        for target in streams:
            sample = poll.samples.get(target)
            if sample is None:
                continue
            fields[target] = sample.fields
            got = sample.fields.get
            readings[target] = (_number(got(BITRATE_FIELD)), _number(got(VIEWERS_FIELD)))
            recv = sample.fields.get(LAST_RECV_FIELD)
            if isinstance(recv, datetime):
                idle[target] = max(0.0, sample.server_now - recv.timestamp())
        seen.fields, seen.idle = fields, idle
        self.trends.record(poll.at, readings, streams, poll.server)

    # -- derivation --------------------------------------------------------------------------

    def _derive(self, instances: list[Instance], absent: frozenset[str], now: float) -> None:
        firing: dict[Target, list[Instance]] = {}
        offline: dict[Target, Instance] = {}
        for inst in instances:
            if inst.state is not AlertState.FIRING:
                continue
            if inst.rule in absent:
                offline[inst.target] = inst
                continue
            firing.setdefault(_owner(inst.target), []).append(inst)
        streams: dict[Target, TargetHealth] = {}
        apps: dict[Target, TargetHealth] = {}
        servers: dict[str, TargetHealth] = {}
        for name, seen in self.seen.items():
            below: dict[Target, list[TargetHealth]] = {}
            for target in seen.streams:
                health = self._stream(target, seen, firing.get(target), now)
                streams[target] = health
                below.setdefault(Target(name, target.vhost, target.app), []).append(health)
            for target, inst in offline.items():
                if target.server == name and target.scope is Scope.STREAM:
                    health = self._mark(
                        target, Health.OFFLINE, _offline_reason(inst), now, None, None, None
                    )
                    streams[target] = health
                    below.setdefault(Target(name, target.vhost, target.app), []).append(health)
            app_targets = dict.fromkeys([*seen.apps, *below])
            for target in offline:
                if target.server == name and target.scope is Scope.APP:
                    app_targets[target] = None
            server_below: list[TargetHealth] = []
            for app in app_targets:
                rows = below.get(app, [])
                health = self._group(app, rows, firing.get(app), offline.get(app), seen, now)
                apps[app] = health
                server_below.extend(rows)
            servers[name] = self._server(name, seen, server_below, firing, offline, now)
        keep = {*streams, *apps, *(Target(n) for n in servers)}
        self._since = {t: v for t, v in self._since.items() if t in keep}
        self.streams, self.apps, self.servers = streams, apps, servers

    def _mark(
        self,
        target: Target,
        state: Health,
        reason: str,
        now: float,
        viewers: float | None,
        bitrate: float | None,
        fields: Mapping[str, object] | None,
    ) -> TargetHealth:
        was = self._since.get(target)
        since = was[1] if was is not None and was[0] is state else now
        self._since[target] = (state, since)
        return TargetHealth(target, state, reason, since, viewers, bitrate, fields=fields)

    def _stream(
        self, target: Target, seen: ServerSeen, alerts: list[Instance] | None, now: float
    ) -> TargetHealth:
        fields = seen.fields.get(target)
        viewers = _number(fields.get(VIEWERS_FIELD)) if fields is not None else None
        bitrate = _number(fields.get(BITRATE_FIELD)) if fields is not None else None
        idle = seen.idle.get(target)
        if seen.error is not None:
            state, reason = Health.UNKNOWN, f"server unreadable ({seen.error})"
        elif idle is not None and idle > self.stale_after_s:
            state, reason = Health.STALLED, f"no input for {_seconds(idle)}"
        else:
            state, reason = _alerted(alerts)
        return self._mark(target, state, reason, now, viewers, bitrate, fields)

    def _group(
        self,
        target: Target,
        rows: list[TargetHealth],
        alerts: list[Instance] | None,
        absent: Instance | None,
        seen: ServerSeen,
        now: float,
    ) -> TargetHealth:
        counts = _counts(rows)
        if absent is not None:
            state, reason = Health.OFFLINE, _offline_reason(absent)
        elif seen.error is not None:
            state, reason = Health.UNKNOWN, f"server unreadable ({seen.error})"
        else:
            own, own_reason = _alerted(alerts)
            state, reason = _worst_of(own, own_reason, rows, counts)
        viewers = sum(r.viewers or 0.0 for r in rows) if rows else None
        health = self._mark(target, state, reason, now, viewers, None, None)
        health.counts = counts
        return health

    def _server(
        self,
        name: str,
        seen: ServerSeen,
        rows: list[TargetHealth],
        firing: dict[Target, list[Instance]],
        offline: dict[Target, Instance],
        now: float,
    ) -> TargetHealth:
        target = Target(name)
        counts = _counts(rows)
        if seen.at is None:
            state, reason = Health.UNKNOWN, "no poll yet"
        elif seen.error is not None:
            state, reason = Health.UNKNOWN, f"cannot be read: {seen.error}"
        else:
            own, own_reason = _alerted(firing.get(target))
            for vhost, inst in offline.items():  # a whole vhost an absent rule expects
                if vhost.server == name and vhost.scope is Scope.VHOST:
                    own, own_reason = Health.OFFLINE, _offline_reason(inst)
            state, reason = _worst_of(own, own_reason, rows, counts)
        viewers = sum(r.viewers or 0.0 for r in rows) if rows else None
        health = self._mark(target, state, reason, now, viewers, None, None)
        health.counts = counts
        return health


def _alerted(alerts: list[Instance] | None) -> tuple[Health, str]:
    """Failing for a critical alert firing, degraded for a warning one; the first says why."""
    if not alerts:
        return Health.HEALTHY, ""
    critical = [i for i in alerts if i.labels.get("severity") == Severity.CRITICAL.value]
    warning = [i for i in alerts if i.labels.get("severity") == Severity.WARNING.value]
    chosen, state = (critical, Health.FAILING) if critical else (warning, Health.DEGRADED)
    if not chosen:
        return Health.HEALTHY, ""  # info alerts say something, but nothing is wrong
    chosen.sort(key=lambda i: (i.fired_at or 0.0, i.rule))
    first = chosen[0]
    reason = f"{first.rule} firing since {clock_text(first.fired_at or 0.0)}"
    if len(chosen) > 1:
        reason += f" (+{len(chosen) - 1} more)"
    return state, reason


def _worst_of(
    own: Health, own_reason: str, rows: list[TargetHealth], counts: dict[str, int]
) -> tuple[Health, str]:
    """An app's or server's own state, or the worst of its streams' when that is worse."""
    worst = max((r.state for r in rows), key=RANK.__getitem__, default=Health.HEALTHY)
    if RANK[worst] <= RANK[own]:
        return own, own_reason
    return worst, f"{counts[worst]} of {len(rows)} streams {worst.value}"


def _counts(rows: list[TargetHealth]) -> dict[str, int]:
    # keyed by the state itself (a str): ``.value`` is a property, slow 10,000 times a tick
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    return counts


def _offline_reason(inst: Instance) -> str:
    return f"expected by {inst.rule}, not listed since {clock_text(inst.fired_at or 0.0)}"


def _seconds(idle: float) -> str:
    if idle < 120:
        return f"{idle:.0f}s"
    if idle < 7200:
        return f"{idle / 60:.0f}m"
    return f"{idle / 3600:.0f}h"


def absent_rules(settings: Settings) -> frozenset[str]:
    """Rules that expect a target to be listed (``absent``): they make health ``offline``."""
    return frozenset(r.name for r in settings.rules if r.is_absent)
