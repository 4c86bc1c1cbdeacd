"""The alert state machine: rules × samples × previous state × now → new state + transitions.

No I/O and no clock in here: the runner passes every poll result and the time in, and
persists/notifies from what comes back. That keeps every transition table-testable on
simulated time.

Lifecycle of one (rule, target) instance::

    inactive ─holds─▶ pending ─held for `for`─▶ firing ─clears, after keep_firing_for─▶ resolved
               │               │                  ▲
               │               └─stops holding─▶ inactive (silently)
               └─holds and for=0 ─────────────────┘

"Clears" means ``when`` no longer holds, or, with ``resolve_when`` (hysteresis), that
``resolve_when`` holds. A condition with no value (a missing field, too little history)
changes nothing. A server that cannot be read changes nothing for its instances either:
its ``ome-api-down`` instance fires instead, so an outage never looks like a recovery.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from ..model import AlertState, PollResult, Sample, Scope, Target, under
from ..rules import API_DOWN_RULE, OnMissing, Rule, Settings
from .alerts import AlertValue, Instance, Transition, api_down_rule, instance_labels, rule_identity
from .dependencies import DependencyBook
from .flapping import FlapBook
from .history import History
from .relay import join_origins, origin_fields

if TYPE_CHECKING:
    from ..lang.condition import HistoryView

__all__ = ["AlertValue", "Engine", "Instance", "Transition"]

INACTIVE, PENDING, FIRING, RESOLVED = (
    AlertState.INACTIVE,
    AlertState.PENDING,
    AlertState.FIRING,
    AlertState.RESOLVED,
)


class Engine:
    """Holds every live instance and the history, and advances them one poll at a time."""

    #: resolved and inactive instances are forgotten at the end of the tick that ended them
    def __init__(self, settings: Settings, *, lenient_history: bool = False) -> None:
        self._lenient = lenient_history
        self._by_rule: dict[str, dict[Target, Instance]] = {}
        self._selected: dict[str, dict[Target, bool]] = {}
        self.removed: list[Instance] = []
        #: rule → targets whose value could not be computed in the last tick (for status)
        self.no_value: dict[str, list[Target]] = {}
        #: each server's OME release, labelled ``ome_version`` on its instances
        self.versions: dict[str, str] = {}
        self.flapping = FlapBook()  # alerts that change state too often (engine/flapping.py)
        self.dependencies = DependencyBook()  # alerts held by a parent server's outage
        self._configure(settings)

    # -- configuration -------------------------------------------------------------------

    def _configure(self, settings: Settings) -> None:
        self.settings = settings
        self.rules: dict[str, Rule] = {r.name: r for r in settings.rules}
        self.api_rule = api_down_rule(settings)
        self._identities = {r.name: rule_identity(r) for r in settings.rules}
        self._identities[API_DOWN_RULE] = rule_identity(self.api_rule)
        self.flapping.configure(settings, self.api_rule)
        self.dependencies.configure(settings, self.rule_for)
        conditions = [r.when for r in settings.rules] + [
            r.resolve_when for r in settings.rules if r.resolve_when is not None
        ]
        uses = frozenset().union(*(c.history_uses for c in conditions))
        wanted = History.for_uses(uses, lenient=self._lenient)
        self._origins = {s.name: s.origin for s in settings.servers if s.origin is not None}
        self._origin_fields = origin_fields(p for c in conditions for p in c.fields)
        old = getattr(self, "history", None)
        if old is None or not old.needs.covers(wanted.needs):
            # The history kept so far stays when it covers the new rules. Otherwise start
            # over: windows refill ("no value" meanwhile, listed by `status`) rather than
            # serve a window with a hole in it.
            self.history = wanted
        self._selected = {}
        self._views: dict[Target, HistoryView] = {}

    def reload(self, settings: Settings, now: float) -> list[Transition]:
        """Swap in a new config; instances of unchanged rules carry over, the rest resolve."""
        old_rules = dict(self.rules)
        old_rules[API_DOWN_RULE] = self.api_rule
        old_ids = dict(self._identities)
        self._configure(settings)
        out: list[Transition] = []
        for name in list(self._by_rule):
            keep = name in self._identities and self._identities[name] == old_ids.get(name)
            if name == API_DOWN_RULE:
                keep = settings.api_down.enabled
            if keep:
                rule = self.rules.get(name, self.api_rule)
                for inst in self._by_rule[name].values():
                    inst.labels = self._labels(rule, inst.target)
                    inst.identity = self._identities[name]
                continue
            reason = "rule-changed" if name in self._identities else "rule-removed"
            for inst in self._by_rule.pop(name).values():
                if inst.state is FIRING:
                    self._set(inst, RESOLVED, now, out, old_rules.get(name), reason)
                    inst.resolved_at = now
                self.removed.append(inst)
        return out

    def restore(
        self, instances: Iterable[Instance], now: float, last_tick_at: float | None
    ) -> list[Transition]:
        """Load instances saved by an earlier run.

        A pending ``for`` timer survives a restart only if the watcher was down for less
        than ``outage_tolerance``; after a longer outage it starts again (the condition
        was not observed meanwhile). Firing alerts keep their ``notified`` times so they
        are not announced again before their repeat interval. Instances of rules that
        were removed or changed while we were down resolve (with a notice) right away.
        """
        out: list[Transition] = []
        down_for = now - last_tick_at if last_tick_at is not None else 0.0
        for inst in instances:
            expected = self._identities.get(inst.rule)
            if inst.rule == API_DOWN_RULE and not self.settings.api_down.enabled:
                expected = None
            if expected is None or expected != inst.identity:
                if inst.state is FIRING:
                    reason = "rule-removed" if expected is None else "rule-changed"
                    self._set(inst, RESOLVED, now, out, None, reason)
                    inst.resolved_at = now
                self.removed.append(inst)
                continue
            if inst.state is PENDING and down_for > self.settings.outage_tolerance_s:
                self.removed.append(inst)
                continue
            if inst.state in (INACTIVE, RESOLVED):
                self.removed.append(inst)
                continue
            inst.dirty = False
            self._by_rule.setdefault(inst.rule, {})[inst.target] = inst
        return out

    # -- queries ---------------------------------------------------------------------------

    def instances(self) -> Iterable[Instance]:
        for by_target in self._by_rule.values():
            yield from by_target.values()

    def instances_of(self, rule: str) -> Mapping[Target, Instance]:
        """The pending and firing instances of ``rule``, by target."""
        return self._by_rule.get(rule, {})

    def rule_for(self, name: str) -> Rule | None:
        if name == API_DOWN_RULE:
            return self.api_rule
        return self.rules.get(name)

    def take_removed(self) -> list[Instance]:
        removed, self.removed = self.removed, []
        return removed

    # -- evaluation --------------------------------------------------------------------------

    def step(self, polls: Sequence[PollResult], now: float) -> list[Transition]:
        """Advance every instance by one poll of every server; return what changed."""
        out: list[Transition] = []
        full = [p for p in polls if p.covers is None]  # targeted polls leave no_value be
        if full:
            self.no_value = {}
        self._views = {}
        join_origins(polls, self._origins, self._origin_fields)  # edges' relayed streams
        for poll in polls:
            self._step_server(poll, now, out)
        self._forget_ended()
        self.flapping.observe(polls, out, self.instances_of, now)
        self.dependencies.update(self.instances(), out, now)
        if full:  # not after targeted polls, which saw few targets and record none
            self.history.prune(now, {p.server for p in full})
        seen = sum(len(p.samples) for p in full)
        for cache in self._selected.values() if full else ():
            if len(cache) > 2 * seen + 1000:
                cache.clear()  # streams come and go; do not remember every name forever
        return out

    def _step_server(self, poll: PollResult, now: float, out: list[Transition]) -> None:
        if poll.ome_version is not None:
            self.versions[poll.server] = poll.ome_version
        # a targeted poll neither fires nor resolves ome-api-down: the tick judges the server;
        # with shard_by app only the server's owner raises it
        api = (
            self.settings.api_down.enabled
            and poll.covers is None
            and self.settings.shard.alerts_api_down(poll.server)
        )
        if poll.error is not None:
            if api:
                reason = f"{poll.error.kind.value}: {poll.error.reason}"
                inst = self._instance(self.api_rule, Target(poll.server), create=True)
                assert inst is not None
                self._advance(inst, self.api_rule, True, reason, now, out, "api-down")
            return  # every other instance of this server keeps its state
        if api:
            inst = self._instance(self.api_rule, Target(poll.server), create=False)
            if inst is not None:
                self._advance(inst, self.api_rule, False, inst.value, now, out, "api-up")

        by_scope: dict[Scope, list[Sample]] = {}
        # a targeted poll's readings stay out of the history: a moment after a tick's, they
        # would make rate(x) span milliseconds; its rules read the ticks' history
        keep = poll.covers is None
        for sample in poll.samples.values():
            by_scope.setdefault(sample.target.scope, []).append(sample)
            if keep:
                self.history.record(sample)

        for rule in self.settings.rules:
            if not rule.applies_to_server(poll.server):
                continue
            if rule.is_absent:
                self._step_absent(rule, poll, now, out)
                continue
            selected = self._select(rule, by_scope.get(rule.scope, ()))
            self._step_rule(rule, selected, now, out)
            self._step_known(rule, poll, now, out)

    def _view_for(self, target: Target, now: float) -> HistoryView:
        """One history view per target and tick, shared by every rule that reads history."""
        view = self._views.get(target)
        if view is None:
            view = self._views[target] = self.history.view(target, now)
        return view

    def _select(self, rule: Rule, samples: Sequence[Sample]) -> Sequence[Sample]:
        """The samples a rule looks at; glob matching is cached per target."""
        if not rule.patterns:
            return samples
        cache = self._selected.setdefault(rule.name, {})
        out = []
        for sample in samples:
            ok = cache.get(sample.target)
            if ok is None:
                ok = cache[sample.target] = rule.selects(sample.target)
            if ok:
                out.append(sample)
        return out

    def _step_rule(
        self, rule: Rule, samples: Sequence[Sample], now: float, out: list[Transition]
    ) -> None:
        """Evaluate every selected sample; only holding ones can create or touch state here.

        Existing instances whose condition does not hold are advanced by ``_step_known``,
        so the hot loop over thousands of quiet streams does one call and one test each.
        """
        uses_history = bool(rule.when.history_fields)
        history_for = None
        if uses_history:
            view_for = self._view_for

            def history_for(target: Target) -> HistoryView:
                return view_for(target, now)

        unknown: list[Sample] = []
        for sample, value in rule.when.holding(samples, history_for, unknown):
            inst = self._instance(rule, sample.target, create=True)
            assert inst is not None
            inst.sample = sample
            if sample.labels:
                inst.labels.update(sample.labels)  # a push's latest OME id
            self._advance(inst, rule, True, value, now, out, "condition")
        if unknown:
            self.no_value.setdefault(rule.name, []).extend(s.target for s in unknown)

    def _step_known(self, rule: Rule, poll: PollResult, now: float, out: list[Transition]) -> None:
        """Advance existing instances not already advanced this tick: cleared, or missing."""
        instances = self._by_rule.get(rule.name)
        if not instances:
            return
        for target, inst in list(instances.items()):
            if target.server != poll.server or inst.last_eval_at == now:
                continue
            if not poll.judges(target):
                continue  # a targeted poll did not look at it
            sample = poll.samples.get(target)
            if sample is not None and rule.selects(target):
                history = self._view_for(target, now) if self.history.fields else None
                holds, value = rule.when.evaluate(sample.fields, sample.server_now, history)
                resolve_holds: bool | None = None
                if inst.state is FIRING and rule.resolve_when is not None:
                    resolve_holds = rule.resolve_when.evaluate(
                        sample.fields, sample.server_now, history
                    )[0]
                inst.sample = sample
                if sample.labels:
                    inst.labels.update(sample.labels)
                self._advance(inst, rule, holds, value, now, out, "condition", resolve_holds)
                continue
            if inst.state not in (PENDING, FIRING):
                continue
            if target in poll.target_errors:
                continue  # its own request failed: unknown, keep the state
            if poll.unconfirmed and under(target, poll.unconfirmed):
                continue  # its vhost or app vanished whole: gone only once confirmed
            if target not in poll.gone and target in poll.listed:
                continue  # listed but not sampled this time: nothing to conclude
            # inst.sample stays the last one seen: the resolve's templates may read it
            if rule.on_missing is OnMissing.KEEP:
                continue
            holds_missing = rule.on_missing is OnMissing.FIRE
            self._advance(
                inst, rule, holds_missing, inst.value, now, out, "missing", force_clear=True
            )

    def _step_absent(self, rule: Rule, poll: PollResult, now: float, out: list[Transition]) -> None:
        for pattern in rule.patterns:
            names = list(pattern.segments) + [None] * (3 - len(pattern.segments))
            target = Target(poll.server, names[0], names[1], names[2])
            if not poll.judges(target):
                continue
            missing = target not in poll.listed
            if missing and poll.unconfirmed and under(target, poll.unconfirmed):
                continue  # absent only once the next poll confirms it
            inst = self._instance(rule, target, create=missing)
            if inst is None:
                continue
            value = "absent" if missing else "listed"
            self._advance(inst, rule, missing, value, now, out, "absent")

    # -- the state machine -----------------------------------------------------------------

    def _instance(self, rule: Rule, target: Target, *, create: bool) -> Instance | None:
        by_target = self._by_rule.get(rule.name)
        inst = by_target.get(target) if by_target is not None else None
        if inst is None and create:
            inst = Instance(
                rule=rule.name,
                target=target,
                labels=self._labels(rule, target),
                identity=self._identities.get(rule.name, ""),
            )
            self._by_rule.setdefault(rule.name, {})[target] = inst
        return inst

    def _labels(self, rule: Rule, target: Target) -> dict[str, str]:
        labels = instance_labels(rule, target)
        version = self.versions.get(target.server)
        if version is not None:
            labels.setdefault("ome_version", version)
        return labels

    def _advance(
        self,
        inst: Instance,
        rule: Rule,
        holds: bool | None,
        value: AlertValue,
        now: float,
        out: list[Transition],
        reason: str,
        resolve_holds: bool | None = None,
        *,
        force_clear: bool = False,
    ) -> None:
        inst.last_eval_at = now
        if holds is None:
            inst.no_value = True
            return
        inst.no_value = False
        if value is not None and value != inst.value:
            inst.value = value
            if inst.state is not INACTIVE:
                inst.dirty = True
        state = inst.state
        if state is INACTIVE or state is RESOLVED:
            if not holds:
                return
            inst.active_since = now
            inst.fired_at = inst.resolved_at = inst.keep_firing_since = None
            inst.notified = {}
            if rule.for_s <= 0:
                inst.fired_at = now
                self._set(inst, FIRING, now, out, rule, reason)
            else:
                self._set(inst, PENDING, now, out, rule, reason)
        elif state is PENDING:
            if not holds:
                inst.active_since = None
                self._set(inst, INACTIVE, now, out, rule, reason)
            elif now - (inst.active_since or now) >= rule.for_s:
                inst.fired_at = now
                self._set(inst, FIRING, now, out, rule, reason)
        else:  # FIRING
            if holds:
                if inst.keep_firing_since is not None:
                    inst.keep_firing_since = None
                    inst.dirty = True
                return
            if not force_clear and rule.resolve_when is not None and resolve_holds is not True:
                return  # between the two thresholds: stay firing (hysteresis)
            if rule.keep_firing_for_s > 0:
                if inst.keep_firing_since is None:
                    inst.keep_firing_since = now
                    inst.dirty = True
                if now - inst.keep_firing_since < rule.keep_firing_for_s:
                    return
            inst.resolved_at = now
            inst.keep_firing_since = None
            self._set(inst, RESOLVED, now, out, rule, reason)

    def _set(
        self,
        inst: Instance,
        to: AlertState,
        now: float,
        out: list[Transition],
        rule: Rule | None,
        reason: str,
    ) -> None:
        out.append(Transition(inst, rule, inst.state, to, now, reason))
        if to is RESOLVED:
            inst.gone = reason == "missing"
        inst.state = to
        inst.dirty = True

    def _forget_ended(self) -> None:
        for by_target in self._by_rule.values():
            ended = [t for t, i in by_target.items() if i.state in (INACTIVE, RESOLVED)]
            for target in ended:
                self.removed.append(by_target.pop(target))
