"""Which part of the fleet this watcher polls: shard K of N, by server or by app.

Ownership is rendezvous hashing: each (shard, name) pair gets a stable score and a name
belongs to the shard with the highest one. Every name has exactly one owner, every
watcher computes the same owner without talking to the others, and going from N to N+1
shards moves only the names the new shard wins (~1/(N+1) of them), not a reshuffle.

``shard_by: server`` (the default): a watcher polls only the servers it owns, so a
server's ``ome-api-down`` comes from its shard. ``shard_by: app``, for one server too big
for one watcher: every shard polls every server but reads the stats (and lists the
streams) only of the apps it owns; the server and vhost levels (their stats and stream
counts) are read, and its ``ome-api-down`` raised, by the shard that owns the server
(``ShardSpec.alerts_api_down``). The cost: every shard lists every server's vhosts and
apps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ..lang.fields import Source
from ..model import Scope, Target
from ..rules import Rule, Settings, ShardSpec, shard_owner
from .plan import PollPlan, plan_polls

__all__ = ["ShardPlan", "owner", "owns", "shard_plan", "shard_plans", "shard_servers"]


def owner(name: str, count: int) -> int:
    """The shard (0 to count-1) that ``name`` belongs to."""
    return shard_owner(name, count)


def owns(shard: ShardSpec, name: str) -> bool:
    return shard.owns(name)


def shard_servers(settings: Settings) -> Settings:
    """``settings`` with only this shard's servers (``shard_by: server``); else as they are."""
    shard = settings.shard
    if shard.count <= 1 or shard.by != "server":
        return settings
    return replace(settings, servers=tuple(s for s in settings.servers if owns(shard, s.name)))


@dataclass(frozen=True, slots=True)
class ShardPlan(PollPlan):
    """A server's plan cut to one shard's apps (``shard_by: app``)."""

    shard: ShardSpec = field(default_factory=ShardSpec)
    owns_server: bool = True
    #: a rule counts the streams of a server or vhost: its owner lists every app's streams
    counts_above_apps: bool = False

    def _mine(self, target: Target) -> bool:
        if target.app is None:
            return self.owns_server
        return owns(self.shard, f"{target.vhost}/{target.app}")

    def explores(self, target: Target) -> bool:
        if not PollPlan.explores(self, target):
            return False
        if target.app is None:  # every shard lists the vhosts and apps
            return True
        return self._mine(target) or (self.owns_server and self.counts_above_apps)

    def sources(self, target: Target) -> frozenset[Source] | None:
        if not self._mine(target):
            return None
        return PollPlan.sources(self, target)

    def outputs(self, app: Target) -> frozenset[Scope]:
        return PollPlan.outputs(self, app) if self._mine(app) else frozenset()

    @property
    def reads_queues(self) -> bool:
        return self.owns_server and PollPlan.reads_queues.fget(self)  # type: ignore[attr-defined]


def shard_plan(settings: Settings, rules: Sequence[Rule], server: str) -> PollPlan:
    """The plan for ``server``: all of it, or this shard's apps of it (``shard_by: app``)."""
    edges = [e.name for e in settings.servers if e.origin == server]
    plan = plan_polls(rules, server, edges=edges)
    shard = settings.shard
    if shard.count <= 1 or shard.by != "app":
        return plan
    counts = any(
        Source.LISTING in n.sources and n.scope.depth < Scope.APP.depth for n in plan.needs
    )
    return ShardPlan(
        plan.server,
        plan.needs,
        shard=shard,
        owns_server=owns(shard, server),
        counts_above_apps=counts,
    )


def shard_plans(settings: Settings) -> dict[str, PollPlan]:
    """Every server's plan for this shard, once per config load."""
    return {s.name: shard_plan(settings, settings.rules, s.name) for s in settings.servers}
