"""Flap detection, Icinga's method: a weighted share of state changes over recent evaluations.

An alert that fires and resolves every few polls pages people for nothing; Icinga counts
how often a check changed state lately and, above a threshold, says "flapping" once
instead of every change. Here, per (rule, target):

* each **evaluation** is a tick in which the target's server answered (for
  ``ome-api-down``: every poll of its server), and records one bit: did the alert go
  into or out of *firing* in it, or did the target's ``createdTime`` change since the
  previous evaluation (the encoder reconnected, OME restarted the stream)? Pending and
  a pending timer that lapses do not count: they never page anyone.
* the last ``window`` bits (20 by default) are weighted toward the newest: the slot of
  age ``a`` (0 = newest) weighs ``0.8 + 0.4 * (window - 1 - a) / window``, so with 20
  slots the oldest weighs 0.8 and the newest 1.18 (Icinga's ``0.8 + 0.02 * i``). The
  **share** is the sum of the weights of the slots that changed, divided by ``window``:
  every slot changed is 99%, one change in the newest slot 5.9%.
* an alert whose share goes **above** ``high`` (30%) is flapping until its share falls
  **under** ``low`` (25%); between the two it stays as it is (hysteresis).

Only alerts that changed lately are tracked (a tracker whose bits are all 0 and that is
not flapping is dropped), so 10,000 quiet streams cost one ``createdTime`` comparison each
per tick. A reconnect counts only for an alert that exists on the target (pending or
firing) or is tracked already: a healthy stream that reconnects has nothing to flap.

The book says what started or stopped flapping (``events``); the planner turns those into
``[FLAPPING]``/``[FLAPPING ENDED]`` notices and keeps the flapping alert quiet meanwhile.
It survives a restart through ``dump``/``load`` (a JSON value in the state file's meta).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ..model import AlertState, PollResult, Target, Value
from ..rules import API_DOWN_RULE, FlapSpec, Rule, Settings
from .alerts import Instance, Transition

__all__ = ["Flap", "FlapBook", "FlapEvent", "flap_share", "slot_weights"]

log = logging.getLogger(__name__)

#: Weight of the oldest slot, and how much more the newest one weighs (Icinga's numbers).
OLDEST_WEIGHT = 0.8
WEIGHT_SPAN = 0.4
#: Transitions that are bookkeeping, not something the alert did.
_NOT_CHANGES = frozenset({"rule-removed", "rule-changed", "restart"})
_LIVE = (AlertState.PENDING, AlertState.FIRING)

Key = tuple[str, str]


@cache
def slot_weights(window: int) -> tuple[float, ...]:
    """Weight per slot, newest first: ``weights[age]``."""
    return tuple(OLDEST_WEIGHT + WEIGHT_SPAN * (window - 1 - age) / window for age in range(window))


def flap_share(bits: int, window: int) -> float:
    """The weighted share of changed slots; bit ``a`` of ``bits`` is the slot of age ``a``."""
    weights = slot_weights(window)
    total = 0.0
    age = 0
    while bits and age < window:
        if bits & 1:
            total += weights[age]
        bits >>= 1
        age += 1
    return total / window


@dataclass(slots=True)
class Flap:
    """What the book knows of one alert's recent changes.

    ``changes`` holds the evaluation numbers (of its server's counter) at which it changed,
    oldest first, only those inside the window: the share is computed from them when it
    can have moved (a change raises it; only a flapping alert's falling share is watched),
    so a tick costs a few operations per change, not per tracked alert.
    """

    rule: str
    target: Target
    labels: dict[str, str]
    changes: list[int] = field(default_factory=list)
    #: the evaluation number when tracking began (for "evaluations seen")
    first: int = 0
    share: float = 0.0
    flapping: bool = False
    since: float | None = None
    #: channels that heard ``[FLAPPING]``: they hear ``[FLAPPING ENDED]`` too
    told: list[str] = field(default_factory=list)

    @property
    def key(self) -> Key:
        return (self.rule, self.target.key)

    def bits(self, now: int, window: int) -> int:
        """The ring as Icinga keeps it: bit ``a`` set if the evaluation of age ``a`` changed."""
        out = 0
        for c in self.changes:
            if 0 <= now - c < window:
                out |= 1 << (now - c)
        return out

    def measure(self, now: int, window: int) -> float:
        """Drop changes out of the window and recompute the share at evaluation ``now``."""
        while self.changes and now - self.changes[0] >= window:
            del self.changes[0]
        weights = slot_weights(window)
        self.share = sum(weights[now - c] for c in self.changes) / window
        return self.share

    def as_json(self, spec: FlapSpec | None, now: int) -> dict[str, Any]:
        """The form ``status``, ``check --format json`` and a status page read."""
        window = spec.window if spec else 0
        return {
            "flapping": self.flapping,
            "share": round(self.share, 4),
            "since": self.since,
            "evaluations": min(window, now - self.first + 1),
            "window": spec.window if spec else None,
            "high": spec.high if spec else None,
            "low": spec.low if spec else None,
        }


@dataclass(frozen=True, slots=True)
class FlapEvent:
    """An alert started (``started``) or stopped flapping; ``firing`` is its state then."""

    flap: Flap
    started: bool
    firing: bool
    at: float


#: Ticks between sweeps that forget trackers whose changes all left the window.
SWEEP_TICKS = 20
#: While alerts flap, their state-file record is rewritten at least this often (in ticks).
DUMP_TICKS = 10


class FlapBook:
    """Every tracked alert's recent changes, flapping or not, and what changed this tick."""

    def __init__(self) -> None:
        self.flaps: dict[Key, Flap] = {}
        self.events: list[FlapEvent] = []
        #: each target's last ``createdTime`` seen, per server
        self._created: dict[str, dict[Target, Value]] = {}
        self._specs: dict[str, FlapSpec] = {}
        #: evaluations so far per server: ticks it answered, and ticks it was polled
        self._answered: dict[str, int] = {}
        self._polled: dict[str, int] = {}
        self._flapping: set[Key] = set()
        self._ticks = 0
        self._dumped: str | None = None

    def configure(self, settings: Settings, api_rule: Rule) -> None:
        """Take a (re)loaded config; alerts of rules gone or no longer flap-checked are
        forgotten (a rule removed resolves its alerts with a notice of its own)."""
        self._specs = {r.name: r.flapping for r in settings.rules if r.flapping is not None}
        if api_rule.flapping is not None and settings.api_down.enabled:
            self._specs[API_DOWN_RULE] = api_rule.flapping
        for key in [k for k in self.flaps if k[0] not in self._specs]:
            del self.flaps[key]
            self._flapping.discard(key)
        self._dumped = None
        if not self._specs:
            self._created.clear()

    def spec(self, rule: str) -> FlapSpec | None:
        return self._specs.get(rule)

    def is_flapping(self, key: Key) -> bool:
        return key in self._flapping

    def take_events(self) -> list[FlapEvent]:
        events, self.events = self.events, []
        return events

    def evaluation(self, flap: Flap) -> int:
        """The current evaluation number of ``flap``'s server (all polls for ome-api-down)."""
        counts = self._polled if flap.rule == API_DOWN_RULE else self._answered
        return counts.get(flap.target.server, 0)

    def bits(self, key: Key) -> int:
        flap = self.flaps[key]
        return flap.bits(self.evaluation(flap), self._specs[flap.rule].window)

    # -- one tick ----------------------------------------------------------------------------

    def observe(
        self,
        polls: Sequence[PollResult],
        transitions: Iterable[Transition],
        instances_of: Callable[[str], Mapping[Target, Instance]],
        now: float,
    ) -> None:
        """Record this tick's evaluations: a change for each alert that changed."""

        def live(rule: str, target: Target) -> Instance | None:
            return instances_of(rule).get(target)

        if not self._specs:
            return
        evaluated: set[str] = set()
        for poll in polls:
            if poll.covers is not None:
                continue  # a targeted poll (an OME event) judged a few streams: no evaluation
            self._polled[poll.server] = self._polled.get(poll.server, 0) + 1
            if poll.error is None:
                self._answered[poll.server] = self._answered.get(poll.server, 0) + 1
            evaluated.add(poll.server)
        #: alerts that changed this tick, with their live instance (None: tracked, ended)
        changed: dict[Key, Instance | None] = {}
        for tr in transitions:
            was, firing = tr.from_state is AlertState.FIRING, tr.to_state is AlertState.FIRING
            rule = tr.instance.rule
            if was != firing and tr.reason not in _NOT_CHANGES and rule in self._specs:
                changed[tr.instance.key] = tr.instance
        reconnected: set[Target] = set()
        for poll in polls:
            if poll.error is None:
                reconnected.update(self._reconnected(poll))
        if reconnected:
            self._churned(reconnected, instances_of, changed)
        for key, inst in changed.items():
            flap = self.flaps.get(key)
            if flap is None:
                if inst is None:
                    continue
                flap = self.flaps[key] = Flap(inst.rule, inst.target, inst.labels)
                flap.first = self.evaluation(flap)
            elif inst is not None:
                flap.labels = inst.labels  # the latest (a push's OME id changes)
            at = self.evaluation(flap)
            if not flap.changes or flap.changes[-1] != at:
                flap.changes.append(at)
            spec = self._specs[flap.rule]
            if flap.measure(at, spec.window) > spec.high and not flap.flapping:
                flap.flapping, flap.since, flap.told = True, now, []
                self._flapping.add(key)
                self.events.append(
                    FlapEvent(flap, True, _firing(live(flap.rule, flap.target)), now)
                )
        for key in list(self._flapping):
            flap = self.flaps[key]
            if key in changed or flap.target.server not in evaluated:
                continue
            spec = self._specs[flap.rule]
            if flap.measure(self.evaluation(flap), spec.window) < spec.low:
                flap.flapping, flap.since = False, None
                self._flapping.discard(key)
                self.events.append(
                    FlapEvent(flap, False, _firing(live(flap.rule, flap.target)), now)
                )
        self._ticks += 1
        if self.events or (self._flapping and self._ticks % DUMP_TICKS == 0):
            self._dumped = None
        if self._ticks % SWEEP_TICKS == 0:
            self._sweep()

    def _churned(
        self,
        reconnected: set[Target],
        instances_of: Callable[[str], Mapping[Target, Instance]],
        changed: dict[Key, Instance | None],
    ) -> None:
        """A reconnect is a change of each pending or firing alert on the target, and of
        each tracked one. An OME restart reconnects every stream at once, so each side is
        walked from the smaller one."""
        for rule in self._specs:
            insts = instances_of(rule)
            if len(insts) <= len(reconnected):
                hits = [i for t, i in insts.items() if t in reconnected]
            else:
                hits = [insts[t] for t in reconnected if t in insts]
            for inst in hits:
                if inst.state in _LIVE:
                    changed[inst.key] = inst
        keys = {t.key for t in reconnected}
        for key in self.flaps:
            if key[1] in keys:
                changed.setdefault(key, None)

    def _sweep(self) -> None:
        """Forget alerts whose every change left the window (and that are not flapping)."""
        for key, flap in list(self.flaps.items()):
            if flap.flapping:
                continue
            spec = self._specs[flap.rule]
            if not flap.changes or self.evaluation(flap) - flap.changes[-1] >= spec.window:
                del self.flaps[key]

    def _reconnected(self, poll: PollResult) -> list[Target]:
        """Targets sampled now whose ``createdTime`` differs from the one seen last."""
        seen = self._created.setdefault(poll.server, {})
        out = []
        for target, sample in poll.samples.items():
            created = sample.fields.get("createdTime")
            if created is None:
                continue
            before = seen.get(target)
            if before is not None and before != created:
                out.append(target)
            seen[target] = created
        if poll.covers is None and len(seen) > len(poll.samples):
            for target in [t for t in seen if t not in poll.listed and t not in poll.samples]:
                del seen[target]  # it ended: a stream of that name later is a new one
        return out

    # -- the state file ----------------------------------------------------------------------

    def rows(self) -> dict[Key, dict[str, Any]]:
        """The flapping alerts as ``status`` shows them, their share measured now."""
        out = {}
        for key in sorted(self._flapping):
            flap = self.flaps[key]
            spec = self._specs[flap.rule]
            at = self.evaluation(flap)
            flap.measure(at, spec.window)
            out[key] = flap.as_json(spec, at)
        return out

    def dump(self) -> str:
        """The flapping alerts as JSON, for the state file and ``omealert status``.

        Only those: an alert building up its share starts its count over after a restart.
        Computed again after a tick that started or ended a flap, and every
        ``DUMP_TICKS`` ticks while any flaps (its share in ``status`` is that fresh), so a
        storm of 10,000 flapping alerts costs one JSON write per ten ticks."""
        if self._dumped is not None:
            return self._dumped
        rows = {
            f"{rule}\t{target}": {
                **row,
                "bits": self.bits((rule, target)),
                "told": self.flaps[(rule, target)].told,
                "labels": self.flaps[(rule, target)].labels,
            }
            for (rule, target), row in self.rows().items()
        }
        self._dumped = json.dumps(rows, sort_keys=True, separators=(",", ":"))
        return self._dumped

    def load(self, raw: str | None) -> None:
        """Take back what ``dump`` wrote; a row that does not read is skipped, and said once."""
        if not raw:
            return
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            log.warning("flapping state in the state file does not read (%s); starting over", exc)
            return
        for name, row in data.items():
            rule, _, target = str(name).partition("\t")
            spec = self._specs.get(rule)
            try:
                if spec is None or not target or not isinstance(row, dict):
                    continue
                flap = Flap(
                    rule,
                    Target.from_key(target),
                    {str(k): str(v) for k, v in dict(row.get("labels") or {}).items()},
                    flapping=bool(row["flapping"]),
                    since=float(row["since"]) if row.get("since") is not None else None,
                    told=[str(c) for c in row.get("told") or []],
                )
                at = self.evaluation(flap)
                bits = int(row["bits"])
                flap.changes = [at - age for age in reversed(range(spec.window)) if bits >> age & 1]
                flap.first = at - min(int(row.get("evaluations", 1)), spec.window) + 1
            except (KeyError, TypeError, ValueError):
                log.warning("a flapping record in the state file does not read; skipped")
                continue
            flap.measure(at, spec.window)
            self.flaps[flap.key] = flap
            if flap.flapping:
                self._flapping.add(flap.key)
        self._dumped = None


def _firing(inst: Instance | None) -> bool:
    return inst is not None and inst.state is AlertState.FIRING
