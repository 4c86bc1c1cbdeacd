"""What the watcher writes to its log about each tick: one line per problem, not per tick.

A server that cannot be read, targets that fail, alerts that change state, ticks that
overrun the interval: each is logged when it starts, changes kind or ends. An operator
tailing the log of a watcher whose OME hangs for an hour reads two lines, not 360.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

from ..engine.alerts import Transition
from ..model import AlertState, PollResult, Severity

__all__ = ["Logbook"]

log = logging.getLogger("omealert")


class Logbook:
    """The log lines of a runner, with the memory that keeps them to one per problem."""

    def __init__(self) -> None:
        #: per server, the kind of problem last logged ("" when it answered normally)
        self._last_errors: dict[str, str] = {}
        #: while ticks overrun the interval: (how many so far, the longest); else None
        self._slow: tuple[int, float] | None = None

    def polls(self, polls: Sequence[PollResult]) -> None:
        """One line when a server's problem starts, changes kind or ends — not one per tick.

        The problem is keyed by its kind(s) only: a reason with a changing number in it
        ("timed out after 2.01s") or a count of failing targets that wobbles from tick to
        tick is still the same problem and is not logged again.
        """
        for poll in polls:
            if poll.error is not None:
                key = f"server:{poll.error.kind.value}"
            elif poll.target_errors:
                kinds = sorted({e.kind.value for e in poll.target_errors.values()})
                key = "targets:" + ",".join(kinds)
            else:
                key = ""
            if key == self._last_errors.get(poll.server, ""):
                continue
            self._last_errors[poll.server] = key
            if poll.error is not None:
                log.error("server %s cannot be read: %s", poll.server, poll.error)
            elif poll.target_errors:
                counts = Counter(e.kind.value for e in poll.target_errors.values())
                example = next(iter(poll.target_errors.values()))
                detail = ", ".join(f"{k} ×{n}" for k, n in sorted(counts.items()))
                log.warning(
                    "server %s: %d target request(s) failed (%s); e.g. %s",
                    poll.server,
                    len(poll.target_errors),
                    detail,
                    example,
                )
            else:
                log.info("server %s answers normally again", poll.server)

    def transitions(self, transitions: Sequence[Transition]) -> None:
        """A line per state change; a firing warning or critical alert is a WARNING."""
        for tr in transitions:
            level = logging.INFO
            # an info rule firing is news, not a problem: only warning and critical warn
            severity = tr.instance.labels.get("severity", Severity.WARNING.value)
            if tr.rule is not None:
                severity = tr.rule.severity.value
            if tr.to_state is AlertState.FIRING and severity != Severity.INFO.value:
                level = logging.WARNING
            log.log(
                level,
                "%s %s: %s → %s (value %s, %s)",
                tr.instance.rule,
                tr.instance.target.key,
                tr.from_state.value,
                tr.to_state.value,
                _show(tr.instance.value),
                tr.reason,
            )

    def tick_took(self, duration: float, interval: float) -> bool:
        """Whether the tick overran ``interval``; logs one line when ticks start being slow
        and one when they are on time again — not one per tick while OME hangs."""
        if duration > interval:
            if self._slow is None:
                self._slow = (1, duration)
                log.warning(
                    "tick took %.2fs, longer than the %.2fs interval "
                    "(slow ticks are counted in omealert_slow_ticks_total until one is on time)",
                    duration,
                    interval,
                )
            else:
                self._slow = (self._slow[0] + 1, max(self._slow[1], duration))
            return True
        if self._slow is not None:
            count, slowest = self._slow
            self._slow = None
            log.info(
                "ticks are within the %.2fs interval again after %d slow tick(s), "
                "the slowest %.2fs",
                interval,
                count,
                slowest,
            )
        return False


def _show(value: object) -> str:
    """A value for a log line: floats to 6 significant digits (1.18799996 → 1.188)."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
