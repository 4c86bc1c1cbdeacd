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
from collections.abc import Callable, Iterable, Sequence
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
    """What the book knows of one alert's recent changes."""

    rule: str
    target: Target
    labels: dict[str, str]
    bits: int = 0
    #: evaluations recorded, up to the window (a status page can show "7 of 20")
    seen: int = 0
    share: float = 0.0
    flapping: bool = False
    since: float | None = None
    #: channels that heard ``[FLAPPING]``: they hear ``[FLAPPING ENDED]`` too
    told: list[str] = field(default_factory=list)

    @property
    def key(self) -> Key:
        return (self.rule, self.target.key)

    def as_json(self, spec: FlapSpec | None) -> dict[str, Any]:
        """The form ``status``, ``check --format json`` and a status page read."""
        return {
            "flapping": self.flapping,
            "share": round(self.share, 4),
            "since": self.since,
            "evaluations": self.seen,
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


class FlapBook:
    """Every tracked alert's change bits, flapping or not, and what changed this tick."""

    def __init__(self) -> None:
        self.flaps: dict[Key, Flap] = {}
        self.events: list[FlapEvent] = []
        #: each target's last ``createdTime`` seen, per server
        self._created: dict[str, dict[Target, Value]] = {}
        self._specs: dict[str, FlapSpec] = {}

    def configure(self, settings: Settings, api_rule: Rule) -> None:
        """Take a (re)loaded config; alerts of rules gone or no longer flap-checked are
        forgotten (a rule removed resolves its alerts with a notice of its own)."""
        self._specs = {r.name: r.flapping for r in settings.rules if r.flapping is not None}
        if api_rule.flapping is not None and settings.api_down.enabled:
            self._specs[API_DOWN_RULE] = api_rule.flapping
        for key in [k for k in self.flaps if k[0] not in self._specs]:
            del self.flaps[key]
        if not self._specs:
            self._created.clear()

    def spec(self, rule: str) -> FlapSpec | None:
        return self._specs.get(rule)

    def is_flapping(self, key: Key) -> bool:
        flap = self.flaps.get(key)
        return flap is not None and flap.flapping

    def take_events(self) -> list[FlapEvent]:
        events, self.events = self.events, []
        return events

    # -- one tick ----------------------------------------------------------------------------

    def observe(
        self,
        polls: Sequence[PollResult],
        transitions: Iterable[Transition],
        live: Callable[[str, Target], Instance | None],
        now: float,
    ) -> None:
        """Record this tick's evaluations: one bit per tracked alert of each polled server."""
        if not self._specs:
            return
        #: alerts that changed this tick, with their live instance (None: tracked, ended)
        changed: dict[Key, Instance | None] = {}
        for tr in transitions:
            was, firing = tr.from_state is AlertState.FIRING, tr.to_state is AlertState.FIRING
            rule = tr.instance.rule
            if was != firing and tr.reason not in _NOT_CHANGES and rule in self._specs:
                changed[tr.instance.key] = tr.instance
        answered = {p.server for p in polls if p.error is None}
        polled = {p.server for p in polls}
        for poll in polls:
            if poll.error is not None:
                continue
            for target in self._reconnected(poll):
                for rule in self._specs:
                    inst = live(rule, target)
                    key = (rule, target.key)
                    if inst is not None and inst.state in _LIVE:
                        changed[key] = inst
                    elif key in self.flaps:
                        changed.setdefault(key, None)
        for key, inst in changed.items():
            if inst is None:
                continue
            flap = self.flaps.get(key)
            if flap is None:
                self.flaps[key] = Flap(inst.rule, inst.target, dict(inst.labels))
            else:
                flap.labels = dict(inst.labels)
        for key, flap in list(self.flaps.items()):
            servers = polled if flap.rule == API_DOWN_RULE else answered
            if flap.target.server not in servers:
                continue  # not evaluated this tick: nothing to record
            self._record(flap, key in changed, live, now)

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
        if len(seen) > len(poll.samples):
            for target in [t for t in seen if t not in poll.listed and t not in poll.samples]:
                del seen[target]  # it ended: a stream of that name later is a new one
        return out

    def _record(
        self,
        flap: Flap,
        changed: bool,
        live: Callable[[str, Target], Instance | None],
        now: float,
    ) -> None:
        spec = self._specs[flap.rule]
        mask = (1 << spec.window) - 1
        flap.bits = ((flap.bits << 1) | int(changed)) & mask
        flap.seen = min(flap.seen + 1, spec.window)
        flap.share = flap_share(flap.bits, spec.window)
        if not flap.flapping and flap.share > spec.high:
            flap.flapping, flap.since, flap.told = True, now, []
            self.events.append(FlapEvent(flap, True, _firing(live(flap.rule, flap.target)), now))
        elif flap.flapping and flap.share < spec.low:
            flap.flapping = False
            self.events.append(FlapEvent(flap, False, _firing(live(flap.rule, flap.target)), now))
            flap.since = None
        if not flap.bits and not flap.flapping:
            del self.flaps[flap.key]

    # -- the state file ----------------------------------------------------------------------

    def dump(self) -> str:
        """The tracked alerts as JSON, for the state file (and ``omealert status``)."""
        rows = {
            f"{f.rule}\t{f.target.key}": {
                **f.as_json(self._specs.get(f.rule)),
                "bits": f.bits,
                "told": f.told,
                "labels": f.labels,
            }
            for f in sorted(self.flaps.values(), key=lambda f: f.key)
        }
        return json.dumps(rows, sort_keys=True, separators=(",", ":"))

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
                    bits=int(row["bits"]) & ((1 << spec.window) - 1),
                    seen=min(int(row.get("evaluations", 0)), spec.window),
                    flapping=bool(row["flapping"]),
                    since=float(row["since"]) if row.get("since") is not None else None,
                    told=[str(c) for c in row.get("told") or []],
                )
            except (KeyError, TypeError, ValueError):
                log.warning("a flapping record in the state file does not read; skipped")
                continue
            flap.share = flap_share(flap.bits, spec.window)
            self.flaps[flap.key] = flap


def _firing(inst: Instance | None) -> bool:
    return inst is not None and inst.state is AlertState.FIRING
