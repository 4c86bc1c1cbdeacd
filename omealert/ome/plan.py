"""What one poll of one OME server fetches, decided from the rules before any request.

``plan_polls`` turns the rules into one ``PollPlan`` per server, once per config load:
which listings discovery descends into (only targets a rule's ``match`` glob can still
select, or whose streams a rule counts), and which targets' stats and stream infos the
fetch phase reads. ``Routes`` turns the plan into the paths to GET for each listed target,
and keeps them from poll to poll.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple
from urllib.parse import quote

from ..lang.fields import FIELDS, Source, origin_source
from ..model import Scope, Target
from ..rules import Rule, Settings, TargetPattern

__all__ = [
    "Need",
    "PollPlan",
    "Route",
    "Routes",
    "api_path",
    "output_path",
    "plan_polls",
    "plans_for",
    "with_stream_stats",
]


@dataclass(frozen=True, slots=True)
class Need:
    """What one rule asks of a poll: targets of ``scope`` matching ``patterns`` (none: all),
    and the sources (stats, info, listing) of the fields it reads."""

    scope: Scope
    patterns: tuple[TargetPattern, ...]
    sources: frozenset[Source]
    absent: bool = False

    def selects(self, names: tuple[str, ...]) -> bool:
        if self.scope is Scope.QUEUE:
            return False  # queues are not listed: ``PollPlan.reads_queues``
        if len(names) != self.scope.depth:
            return False
        return not self.patterns or any(p.matches(names) for p in self.patterns)

    def leads_below(self, names: tuple[str, ...]) -> bool:
        """Whether a target with ``names`` has to be listed for this need to reach its scope."""
        if len(names) < self.scope.depth:
            return not self.patterns or any(p.matches(names) for p in self.patterns)
        # counting streams needs every level below a selected target listed
        return (
            Source.LISTING in self.sources
            and len(names) < Scope.STREAM.depth
            and self.selects(names[: self.scope.depth])
        )


@dataclass(frozen=True, slots=True)
class PollPlan:
    """Which listings, stats and stream infos one poll of ``server`` fetches.

    Built once per config load by ``plan_polls``; the client asks it per target.
    """

    server: str
    needs: tuple[Need, ...] = ()

    def explores(self, target: Target) -> bool:
        """Whether the children of ``target`` are listed."""
        names = target.names
        return any(n.leads_below(names) for n in self.needs)

    def sources(self, target: Target) -> frozenset[Source] | None:
        """Sources of the fields rules read of ``target``; ``None`` if no rule samples it."""
        names = target.names
        found: set[Source] | None = None
        for need in self.needs:
            if need.scope.is_output:
                continue  # read from the app's list, not per stream
            if need.selects(names) and (need.sources or not need.absent):
                found = (found or set()) | need.sources
        return None if found is None else frozenset(found)

    def outputs(self, app: Target) -> frozenset[Scope]:
        """Which of ``:pushes`` and ``:records`` a poll reads of ``app``: those a rule of
        that scope can select a stream of ``app`` for."""
        names = app.names
        return frozenset(
            n.scope
            for n in self.needs
            if n.scope.is_output and (not n.patterns or any(p.matches(names) for p in n.patterns))
        )

    @property
    def stats_scopes(self) -> frozenset[Scope]:
        return frozenset(n.scope for n in self.needs if Source.STATS in n.sources)

    @property
    def reads_info(self) -> bool:
        return any(Source.INFO in n.sources for n in self.needs)

    def reads_picture(self, target: Target) -> bool:
        """Whether a rule reads ``picture.*`` of ``target`` (a stream)."""
        sources = self.sources(target)
        return sources is not None and Source.PICTURE in sources

    @property
    def reads_version(self) -> bool:
        return any(Source.VERSION in n.sources for n in self.needs)

    @property
    def reads_queues(self) -> bool:
        """Whether a rule reads internal queues: one ``internals/queues`` GET per poll."""
        return any(n.scope is Scope.QUEUE for n in self.needs)


def plan_polls(rules: Sequence[Rule], server: str, *, edges: Collection[str] = ()) -> PollPlan:
    """The plan for ``server``: one ``Need`` per distinct scope, patterns and sources of rules.

    ``edges`` are the servers whose origin ``server`` is: their rules' ``origin.*`` fields
    are read here, of the streams their ``match`` selects (same vhost, app and stream names).
    An edge reads stream info for them: only relayed (``Ovt``) streams have an origin.
    """
    needs: dict[Need, None] = {}
    for rule in rules:
        paths = set(rule.when.fields)
        if rule.resolve_when is not None:
            paths |= rule.resolve_when.fields
        sources = frozenset(FIELDS[p].source for p in paths if p in FIELDS)
        relayed = frozenset(origin_source(p) for p in paths if FIELDS[p].source is Source.ORIGIN)
        if Source.PICTURE in sources:
            sources |= {Source.STATS}  # frozen is judged with the input bytes
        if rule.applies_to_server(server):
            if relayed:
                sources |= {Source.INFO}
            needs[Need(rule.scope, rule.patterns, sources, rule.is_absent)] = None
        if relayed and any(rule.applies_to_server(e) for e in edges):
            needs[Need(Scope.STREAM, rule.patterns, relayed)] = None
    return PollPlan(server, tuple(needs))


def with_stream_stats(plan: PollPlan) -> PollPlan:
    """``plan``, also reading every stream's stats: what the health states need
    (``engine/health.py``: input times, bitrate, viewers), whatever the rules read."""
    need = Need(Scope.STREAM, (), frozenset({Source.STATS}))
    return (
        plan if need in plan.needs else replace(plan, needs=(*plan.needs, need))
    )  # keeps a ShardPlan


def plans_for(settings: Settings) -> dict[str, PollPlan]:
    """Every server's plan, an origin's with what its edges' rules read of it."""
    return {
        s.name: plan_polls(
            settings.rules, s.name, edges=[e.name for e in settings.servers if e.origin == s.name]
        )
        for s in settings.servers
    }


# -- per-target routes ------------------------------------------------------------------------


class Route(NamedTuple):
    """What one poll fetches of one target: its stats and info paths, if any."""

    stats: str | None
    info: str | None
    counts_streams: bool  # a rule reads the target's ``streams`` count


_NO_ROUTE: Any = object()


class Routes:
    """The ``Route`` of every listed target under one server's ``api_version``."""

    def __init__(self, api_version: str) -> None:
        self._api_version = api_version
        self._routes: dict[Target, Route | None] = {}
        self._plan: PollPlan | None = None

    def for_listing(self, plan: PollPlan, listed: Iterable[Target]) -> dict[Target, Route | None]:
        """What to fetch of each listed target (``None``: nothing), kept from poll to poll.

        The same streams come back every poll, and matching them against every rule's globs
        and quoting their URLs again cost more than a dictionary lookup. The cache holds only
        what the latest listing showed, and starts over when the plan changes.
        """
        if plan is not self._plan:
            self._routes, self._plan = {}, plan
        known = self._routes
        routes: dict[Target, Route | None] = {}
        for target in listed:
            route = known.get(target, _NO_ROUTE)
            routes[target] = self._route(plan, target) if route is _NO_ROUTE else route
        self._routes = routes
        return routes

    def route(self, plan: PollPlan, target: Target) -> Route | None:
        """One target's route for a targeted poll (``ome.targeted``): the cache is read, not
        replaced, so the next full poll still finds every stream's route in it."""
        if plan is self._plan:
            known = self._routes.get(target, _NO_ROUTE)
            if known is not _NO_ROUTE:
                return known  # type: ignore[no-any-return]
        return self._route(plan, target)

    def _route(self, plan: PollPlan, target: Target) -> Route | None:
        sources = plan.sources(target)
        if sources is None:
            return None
        stream = target.scope is Scope.STREAM
        return Route(
            stats=self._stats_path(target) if Source.STATS in sources else None,
            info=api_path("/v1", target) if Source.INFO in sources and stream else None,
            counts_streams=Source.LISTING in sources and not stream,
        )

    def _stats_path(self, target: Target) -> str:
        version = self._api_version
        if target.scope is Scope.SERVER:
            version = "v1"  # Enterprise documents no server-wide /v2 stats
        return api_path(f"/{version}/stats/current", target)


def output_path(app: Target, scope: Scope) -> str:
    """``/v1/vhosts/{v}/apps/{a}:pushes`` or ``…:records``.

    OME serves these lists on POST and, marked "will be deprecated" but present from 0.15
    through 0.21, on GET; omealert only GETs, so ``record`` and ``replay`` keep working.
    """
    return api_path("/v1", app) + (":pushes" if scope is Scope.PUSH else ":records")


#: Characters left as they are in a path segment; OME names needing escapes are unreachable.
_SAFE = "!$&'()*+,;=:@-._~"


def api_path(prefix: str, target: Target) -> str:
    """``prefix/vhosts/{v}/apps/{a}/streams/{s}`` down to the target's level; no trailing slash."""
    segments = zip(("vhosts", "apps", "streams"), target.names, strict=False)
    return prefix + "".join(f"/{kind}/{_quote(name)}" for kind, name in segments)


@functools.lru_cache(maxsize=1 << 16)
def _quote(name: str) -> str:
    """A name as a path segment; cached, since every poll quotes the same names again."""
    return quote(name, safe=_SAFE)
