"""Why a channel must not hear a firing alert right now: a silence, a maintenance, an ack
or a time interval, and what that means for the alert's repeats.

The pinned semantics (README "Maintenance windows"), which the planner applies through
``Quiet``:

* a firing alert that a channel already heard is not told again when the quiet ends: the
  repeats that fell due while it was quiet are skipped, so its next repeat is the next one
  on its own schedule (last notice + n × ``repeat_interval``);
* one that began while quiet and still fires when the quiet ends is told then, once (it
  has no notice yet, so it is a first notice like any other);
* a resolve goes to every channel that heard the firing even while quiet, and says why it
  came through anyway (``resolve_note``); alerts that began and ended while quiet say
  nothing.

Time intervals come from the rule, the channel and the route that led the alert to the
channel: ``mute_time_intervals`` quiet a path while any of them is active,
``active_time_intervals`` while none is. A channel reached through several paths (the
rule's own channels and routes) hears the alert if any path is open.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..engine.alerts import Instance
from ..rules import Matcher, Rule, Settings, matches_all
from ..state.acks import Ack, ack_index, ack_view
from ..state.records import Silence

__all__ = ["Quiet", "resolve_note", "skip_due_repeats"]


def skip_due_repeats(inst: Instance, channel: str, repeat_s: float, now: float) -> None:
    """Move the channel's last notice on by the repeats that fell due while quiet."""
    last = inst.notified.get(channel)
    if last is None or repeat_s <= 0 or now - last < repeat_s:
        return
    inst.notified[channel] = last + ((now - last) // repeat_s) * repeat_s
    inst.dirty = True


@dataclass(slots=True)
class Quiet:
    """One tick's view of everything that keeps channels quiet; built by the planner."""

    settings: Settings | None  # None: no config at hand (``status``), so no time intervals
    now: float
    silences: Sequence[tuple[Silence, tuple[Matcher, ...]]]
    acks: dict[tuple[str, str, float], Ack]
    _active: dict[str, bool] = field(default_factory=dict, init=False)
    #: whether any time interval is defined: without one, ``window`` is always None
    _timed: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self._timed = self.settings is not None and bool(self.settings.time_intervals)

    @classmethod
    def build(
        cls,
        settings: Settings | None,
        now: float,
        silences: Sequence[tuple[Silence, tuple[Matcher, ...]]],
        acks: Iterable[Ack],
    ) -> Quiet:
        return cls(settings, now, silences, ack_index(acks, now))

    def ack_for(self, rule: str, target: str, fired_at: float | None) -> Ack | None:
        """The live ack of this firing of the alert (another firing is another alert)."""
        if fired_at is None or not self.acks:
            return None
        return self.acks.get((rule, target, fired_at))

    def silence_for(self, labels: dict[str, str]) -> Silence | None:
        if not self.silences:
            return None
        return next((s for s, m in self.silences if matches_all(m, labels)), None)

    def view(
        self, rule: str, target: str, fired_at: float | None, labels: dict[str, str]
    ) -> dict[str, Any]:
        """Who acknowledged the alert and what silences it, as plain JSON values: the shape
        ``status`` and ``check --format json`` print, for a status page to reuse."""
        silence = self.silence_for(labels)
        held = None
        if silence is not None:
            held = {
                "id": silence.id,
                "kind": silence.kind,
                "comment": silence.comment,
                "by": silence.created_by,
                "ends_at": silence.ends_at,
            }
        return {"ack": ack_view(self.ack_for(rule, target, fired_at)), "silence": held}

    def why(
        self, rule: Rule | None, inst: Instance, channel: str, silence: Silence | None
    ) -> str | None:
        """Why ``channel`` must not hear ``inst`` now, in words for a message; None: it may.

        ``silence``: ``silence_for(inst)``, looked up once per instance by the caller."""
        if silence is not None:
            if silence.kind == "maintenance":
                about = f": {silence.comment}" if silence.comment else ""
                return f"under maintenance {silence.id}{about}"
            return f"silenced by {silence.id}"
        return self.window(rule, inst, channel)

    def window(self, rule: Rule | None, inst: Instance, channel: str) -> str | None:
        """The time interval that closes every path from ``inst`` to ``channel``, if any."""
        if not self._timed or self.settings is None:
            return None
        if rule is not None:
            closed = self._closed(rule.mute_time_intervals, rule.active_time_intervals)
            if closed:
                return closed
        spec = self.settings.channels.get(channel)
        if spec is not None:
            closed = self._closed(spec.mute_time_intervals, spec.active_time_intervals)
            if closed:
                return closed
        if rule is None or channel in rule.channels:
            return None  # the rule's own path is open
        first: str | None = None
        for route in self.settings.routes:
            if channel in route.channels and route.matches(inst.labels):
                closed = self._closed(route.mute_time_intervals, route.active_time_intervals)
                if not closed:
                    return None
                first = first or closed
        return first

    def _closed(self, mute: Sequence[str], active: Sequence[str]) -> str | None:
        for name in mute:
            if self._is_active(name):
                return f"inside mute time interval '{name}'"
        if active and not any(self._is_active(name) for name in active):
            return f"outside active time intervals {', '.join(repr(n) for n in active)}"
        return None

    def _is_active(self, name: str) -> bool:
        known = self._active.get(name)
        if known is None:
            assert self.settings is not None
            interval = self.settings.time_intervals.get(name)
            known = self._active[name] = interval is not None and interval(self.now)
        return known


def resolve_note(reasons: Iterable[str]) -> str:
    """The line a resolve carries when it is delivered although its alert is quiet now."""
    unique = list(dict.fromkeys(reasons))
    return (
        "Delivered although notifications are held ("
        + "; ".join(unique)
        + "): "
        + ("this alert was notified before, so its resolve is always sent.")
    )
