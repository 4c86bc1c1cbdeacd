"""Dependencies between servers: page the cause, hold its echoes on the servers behind it.

An edge pulls its streams from its origin (``servers: [{name: edge-1, depends_on:
[origin-1]}]``). When the origin fails, every edge's copy of every stream fails a moment
later; the pages that matter say "origin-1 is down", not a hundred "edge-n/stream-m
stalled". So, per tick, after the engine moved the instances:

* a **cause** is a pending or firing alert on a server that others depend on, and is
  either that server's ``ome-api-down`` (it covers every alert of the dependents but
  their own ``ome-api-down``), or an alert of a rule that says a target is stalled or
  absent: ``when: absent``, a condition reading ``lastRecvTime``, or any rule with
  ``dependency_cause: true`` (``false`` turns the detection off). It covers the
  dependents' alerts on the same target and everything below it (same vhost/app/stream
  names; a stream's pushes and recordings too);
* dependency is transitive: an edge behind a mid-tier behind an origin is held by both;
* a firing alert covered by a cause is **held**: it sends no firing or repeat message; it
  is named and counted in ``status`` and ``check --format json``, and the cause's own
  messages say "also affects edge-1, edge-2: 14 alerts held";
* a cause that fired and then resolved keeps holding for ``dependency_grace`` (2m) after
  it resolved: a held alert still firing then is sent on its own, one that resolved
  meanwhile sends nothing (it was counted in the parent's message). A cause that was only
  pending releases its holds at once;
* resolves are never held: a held alert that was notified before the cause began (its
  firing message went out) sends its resolve as usual (the planner's rule).

The book keeps the causes that ended and when, so holds survive a restart in the grace
(``dump``/``load``, a JSON value in the state file's meta).
"""

from __future__ import annotations

import heapq
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..durations import format_duration
from ..model import AlertState, Target
from ..rules import API_DOWN_RULE, Rule, Settings
from .alerts import Instance, Transition

__all__ = ["DependencyBook", "Hold", "ancestors"]

log = logging.getLogger(__name__)

Key = tuple[str, str]

#: Held alerts named in the state file (and so in ``status``); causes count every one.
MAX_NAMED = 1000
#: A rule reading this field watches ingest: it says a stream is stalled.
STALL_FIELD = "providers.lastRecvTime"


@dataclass(frozen=True, slots=True)
class Hold:
    """Why one firing alert is held: the causes covering it, and when the hold ends
    (None while a cause is still pending or firing)."""

    rule: str
    target: Target
    by: tuple[Key, ...]
    until: float | None

    def as_json(self) -> dict[str, Any]:
        return {"by": [{"rule": r, "target": t} for r, t in self.by], "until": self.until}


def ancestors(depends_on: dict[str, tuple[str, ...]]) -> dict[str, frozenset[str]]:
    """Every server's parents, their parents and so on (the config refuses cycles)."""
    out: dict[str, frozenset[str]] = {}

    def walk(name: str, path: frozenset[str]) -> frozenset[str]:
        if name in out:
            return out[name]
        found: set[str] = set()
        for parent in depends_on.get(name, ()):
            if parent not in path:  # a cycle that slipped through counts once, not forever
                found.add(parent)
                found |= walk(parent, path | {parent})
        out[name] = frozenset(found)
        return out[name]

    for name in depends_on:
        walk(name, frozenset({name}))
    return out


class DependencyBook:
    """The causes now and lately, and the alerts they hold."""

    def __init__(self) -> None:
        self._ancestors: dict[str, frozenset[str]] = {}
        self._parents: frozenset[str] = frozenset()
        self._grace = 120.0
        self._rule_for: Callable[[str], Rule | None] = lambda name: None
        #: causes pending or firing at the last update, and whether each fired yet
        self._active: dict[Key, bool] = {}
        #: causes that fired and resolved, with when: they hold for the grace after it
        self._ended: dict[Key, float] = {}
        #: held alerts, by key
        self.held: dict[Key, Hold] = {}
        #: each cause's held alerts, by cause key (for its message and for ``status``)
        self.holding: dict[Key, list[Key]] = {}
        #: the instances whose ``also_affects`` the last update set
        self._told: dict[Key, Instance] = {}
        #: each cause's dependent servers with held alerts
        self._servers: dict[Key, set[str]] = {}
        self._dumped: str | None = None

    def configure(self, settings: Settings, rule_for: Callable[[str], Rule | None]) -> None:
        self._ancestors = ancestors({s.name: s.depends_on for s in settings.servers})
        self._parents = frozenset(p for found in self._ancestors.values() for p in found)
        self._grace = settings.dependency_grace_s
        self._rule_for = rule_for

    @property
    def grace_s(self) -> float:
        return self._grace

    def is_cause(self, inst: Instance) -> bool:
        """Whether ``inst`` (when pending or firing) holds alerts behind its server."""
        if inst.target.server not in self._parents:
            return False
        if inst.rule == API_DOWN_RULE:
            return True
        rule = self._rule_for(inst.rule)
        if rule is None:
            return False
        if rule.dependency_cause is not None:
            return rule.dependency_cause
        return rule.is_absent or STALL_FIELD in rule.when.fields

    # -- one tick ----------------------------------------------------------------------------

    def update(
        self, instances: Iterable[Instance], transitions: Iterable[Transition], now: float
    ) -> None:
        """Recompute causes and holds after the engine's step (or a restore)."""
        if not self._parents and not self.held and not self._ended:
            return
        live = list(instances)
        causes: dict[Key, Instance] = {}
        parents = self._parents
        for inst in live:
            if inst.target.server in parents and self.is_cause(inst):
                causes[inst.key] = inst  # live instances are pending or firing
        ended_before = dict(self._ended)
        for key, fired in self._active.items():
            if key not in causes and fired:
                self._ended[key] = now
        self._active = {
            k: self._active.get(k, False) or i.state is AlertState.FIRING for k, i in causes.items()
        }
        for key in causes:
            self._ended.pop(key, None)
        for key in [k for k, at in self._ended.items() if now - at >= self._grace]:
            del self._ended[key]
        if self._ended != ended_before:
            self._dumped = None
        self._hold(live)
        ended_now = {
            t.instance.key: t.instance for t in transitions if t.instance.key in self._ended
        }
        for key, inst in self._told.items():
            if key not in causes:
                inst.also_affects = ""  # no longer a cause: its messages say nothing more
        self._told = {**causes, **ended_now}
        for key, inst in self._told.items():
            inst.also_affects = self.summary(key, now)

    def _hold(self, live: list[Instance]) -> None:
        by_server: dict[str, list[tuple[tuple[str | None, ...], Key, float | None]]] = {}
        for key, ended in [(k, None) for k in self._active] + list(self._ended.items()):
            target = Target.from_key(key[1])
            by_server.setdefault(target.server, []).append((target.names, key, ended))
        old = self.held
        self.held, self.holding, self._servers = {}, {}, {}
        if not by_server:
            if old:
                self._dumped = None
            return  # no cause anywhere: the usual tick costs nothing more
        # the servers with a cause upstream; only their alerts can be held
        behind = {s for s, found in self._ancestors.items() if not found.isdisjoint(by_server)}
        grace = self._grace
        for inst in live:
            t = inst.target
            if t.server not in behind or inst.state is not AlertState.FIRING:
                continue
            if inst.rule == API_DOWN_RULE:
                continue
            names = (t.vhost, t.app, t.stream)
            by: list[Key] = []
            until: float | None = None
            pending_or_firing = False
            for parent in self._ancestors[t.server]:
                for cover, key, ended in by_server.get(parent, ()):
                    if cover and names[: len(cover)] != cover:
                        continue
                    by.append(key)
                    if ended is None:
                        pending_or_firing = True
                    else:
                        until = max(until or 0.0, ended + grace)
            if by:
                if len(by) > 1:
                    by.sort()
                key = inst.key
                self.held[key] = Hold(inst.rule, t, tuple(by), None if pending_or_firing else until)
                for cause in by:
                    self.holding.setdefault(cause, []).append(key)
                    self._servers.setdefault(cause, set()).add(t.server)
        if self.held.keys() != old.keys() or any(h != old[k] for k, h in self.held.items()):
            self._dumped = None

    def summary(self, cause: Key, now: float) -> str:
        """What a cause's message adds: ``also affects edge-1, edge-2: 14 alerts held``."""
        held = self.holding.get(cause)
        if not held:
            return ""
        servers = sorted(self._servers.get(cause, ()))
        count = f"{len(held)} alert{'s' if len(held) != 1 else ''} held"
        if cause in self._ended:
            left = max(0.0, self._ended[cause] + self._grace - now)
            return (
                f"also affected {', '.join(servers)}: {count}; each is sent on its own "
                f"if it still fires in {format_duration(left)}"
            )
        return f"also affects {', '.join(servers)}: {count}"

    # -- the state file ----------------------------------------------------------------------

    def dump(self) -> str:
        """Held alerts (the first ``MAX_NAMED`` by name), holding causes with their full
        counts and causes in their grace, as JSON; built again only when the holds changed."""
        if self._dumped is not None:
            return self._dumped
        named = heapq.nsmallest(MAX_NAMED, self.held)  # the causes below count them all
        self._dumped = json.dumps(
            {
                "held": {f"{r}\t{t}": self.held[(r, t)].as_json() for r, t in named},
                "causes": {
                    f"{r}\t{t}": {
                        "held": len(keys),
                        "servers": sorted(self._servers.get((r, t), ())),
                        "ended_at": self._ended.get((r, t)),
                    }
                    for (r, t), keys in sorted(self.holding.items())
                },
                "ended": [[r, t, at] for (r, t), at in sorted(self._ended.items())],
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return self._dumped

    def load(self, raw: str | None) -> None:
        """Take back the causes in their grace (holds are recomputed on the next tick)."""
        if not raw:
            return
        try:
            data = json.loads(raw)
            ended = data["ended"] if isinstance(data, dict) else None
            if not isinstance(ended, list):
                raise ValueError("no list of ended causes")
            for rule, target, at in ended:
                self._ended[(str(rule), str(target))] = float(at)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("dependency state in the state file does not read (%s); ignored", exc)
