"""Run one rule test on simulated time, compare with what it expects, and explain.

The real ``Engine`` and ``Planner`` run over the test's timeline, one evaluation per
``evaluation_interval`` (or per recorded polling round), with time passed in: nothing
sleeps, and a run gives the same result every time. The tests come checked from
``ruletest.load``; ``ruletest.diff`` shows each failing check as a diff.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..durations import format_offset
from ..engine.alerts import Instance, Transition
from ..engine.engine import Engine
from ..model import AlertState, PollResult
from ..notify.planner import Planner
from ..recording.format import RecordingError
from ..recording.replay import replay_polls
from ..rules import Settings
from ..state.records import Silence
from .actual import ActualAlert, ActualMessage
from .diff import compare_alerts, compare_messages
from .file import AlertCheck, NotificationCheck, RuleTest, RuleTestFile

__all__ = [
    "ActualAlert",
    "ActualMessage",
    "CheckOutcome",
    "RuleTestOutcome",
    "run_test",
    "select",
]


@dataclass(slots=True)
class CheckOutcome:
    """One check that failed: where it is written, what it checked, and the diff lines."""

    where: str
    title: str
    lines: list[str]


@dataclass(slots=True)
class RuleTestOutcome:
    name: str
    where: str
    checks: int = 0
    failures: list[CheckOutcome] = field(default_factory=list)
    error: str | None = None  # the test could not run (a recording that cannot be read)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and not self.failures


@dataclass(slots=True)
class _Snapshot:
    at: float  # the evaluation it shows, seconds from the start
    alerts: list[ActualAlert]


class _Run:
    """Steps the engine and planner over one test's timeline, keeping what checks need."""

    def __init__(self, settings: Settings, test: RuleTest) -> None:
        self.settings = settings
        self.test = test
        self.engine = Engine(settings)
        self.planner = Planner(settings)
        self.messages: list[ActualMessage] = []
        self.snapshots: dict[int, _Snapshot] = {}  # index of the alert check → what it sees
        self._pending = sorted(range(len(test.alerts)), key=lambda k: test.alerts[k].eval_time)
        self._last: tuple[float, float, list[Transition]] | None = None
        self.last_eval: float | None = None
        self.silences = [
            Silence(
                s.id,
                s.matchers,
                test.start + s.starts_at,
                test.start + s.ends_at,
                s.created_by,
                s.comment,
                test.start,
            )
            for s in test.silences
        ]

    def step(self, at: float, polls: list[PollResult], now: float | None = None) -> None:
        """Evaluate the round at ``at`` (its place on the test's timeline); ``now``, when
        later, is the time the engine evaluates it at (a recorded round: when its polls
        ended, as the watcher did)."""
        rel = at - self.test.start
        now = at if now is None else now
        self._settle(rel)
        for poll in polls:
            # The client builds samples from a set, whose order changes from one process
            # to the next; the engine creates instances, and so orders messages, in sample
            # order. Sorting makes every run of a test the same.
            poll.samples = dict(sorted(poll.samples.items(), key=lambda kv: kv[0].key))
        transitions = self.engine.step(polls, now)
        active = [s for s in self.silences if s.starts_at <= now < s.ends_at]
        for m in self.planner.plan(self.engine, transitions, now, active):
            if m.url_index == 0:  # one entry per service URL; the message is the same
                self.messages.append(
                    ActualMessage(
                        rel, m.channel, m.rule, m.reason, sorted(m.targets), m.title, m.body
                    )
                )
        self._last = (rel, now, transitions)
        self.last_eval = rel

    def finish(self) -> None:
        self._settle(math.inf)

    def _settle(self, next_rel: float) -> None:
        """Snapshot the current state for every check whose time falls before ``next_rel``."""
        if self._last is None:
            return
        rel, now, transitions = self._last
        while self._pending and self.test.alerts[self._pending[0]].eval_time < next_rel - 1e-9:
            k = self._pending.pop(0)
            self.snapshots[k] = _Snapshot(rel, self._alerts(now, transitions))

    def _alerts(self, now: float, transitions: list[Transition]) -> list[ActualAlert]:
        shown: list[tuple[Instance, str]] = [
            (i, i.state.value)
            for i in self.engine.instances()
            if i.state is not AlertState.INACTIVE
        ]
        shown += [
            (t.instance, "resolved") for t in transitions if t.to_state is AlertState.RESOLVED
        ]
        out = []
        for inst, state in shown:
            rule = self.engine.rule_for(inst.rule)
            view = self.planner.view(inst, rule, now)
            out.append(
                ActualAlert(
                    inst.rule, state, dict(inst.labels), inst.value, view.summary, view.description
                )
            )
        out.sort(key=lambda a: (a.rule, a.labels.get("server", ""), _target_of(a), a.state))
        return out


def _target_of(alert: ActualAlert) -> str:
    return "/".join(alert.labels.get(k, "") for k in ("vhost", "app", "stream"))


def run_test(tf: RuleTestFile, test: RuleTest) -> RuleTestOutcome:
    """Run one test and compare; never raises for a failing expectation."""
    started = time.perf_counter()
    outcome = RuleTestOutcome(test.name, test.where)
    run = _Run(tf.settings, test)
    try:
        if test.recording is not None:
            _run_recording(run, tf.settings, test)
        else:
            _run_series(run, test)
    except RecordingError as exc:
        outcome.error = str(exc)
        outcome.seconds = time.perf_counter() - started
        return outcome
    run.finish()
    for k, check in enumerate(test.alerts):
        outcome.checks += 1
        snap = run.snapshots.get(k)
        if (
            test.recording is not None
            and run.last_eval is not None
            and check.eval_time > (run.last_eval + test.evaluation_interval)
        ):
            ends, wanted = format_offset(run.last_eval), format_offset(check.eval_time)
            lines = [f"! the recording ends at {ends}: nothing was evaluated near {wanted}"]
            outcome.failures.append(CheckOutcome(check.where, _alert_title(check), lines))
            continue
        actual = [] if snap is None else [a for a in snap.alerts if check.rule in (None, a.rule)]
        lines = compare_alerts(check.expected, actual)
        if lines:
            outcome.failures.append(CheckOutcome(check.where, _alert_title(check), lines))
    for ncheck in test.notifications:
        outcome.checks += 1
        got = [
            m
            for m in run.messages
            if ncheck.start - 1e-9 <= m.at <= ncheck.end + 1e-9
            and ncheck.channel in (None, m.channel)
            and ncheck.rule in (None, m.rule)
        ]
        lines = compare_messages(ncheck.expected, got)
        if lines:
            outcome.failures.append(CheckOutcome(ncheck.where, _notification_title(ncheck), lines))
    outcome.seconds = time.perf_counter() - started
    return outcome


def _run_series(run: _Run, test: RuleTest) -> None:
    assert test.series is not None
    count = int(test.horizon / test.evaluation_interval + 1e-9) + 1
    for k in range(count):
        now = test.start + k * test.evaluation_interval
        run.step(now, [test.series.poll(now)])


def _run_recording(run: _Run, settings: Settings, test: RuleTest) -> None:
    assert test.recording is not None
    series = test.series

    def on_tick(at: float, polls: list[PollResult], now: float) -> None:
        if series is not None:
            mine = next((p for p in polls if p.server == series.server), None)
            if mine is None:
                polls = [*polls, series.poll(at)]
            else:
                polls = [series.merge(p, at) if p is mine else p for p in polls]
        run.step(at, polls, now)

    asyncio.run(replay_polls(settings, test.recording, on_tick))


def _alert_title(check: AlertCheck) -> str:
    which = f"rule {check.rule}" if check.rule else "all rules"
    return f"alerts at {format_offset(check.eval_time)}, {which}"


def _notification_title(check: NotificationCheck) -> str:
    parts = [f"notifications from {format_offset(check.start)} to {format_offset(check.end)}"]
    if check.channel:
        parts.append(f"channel {check.channel}")
    if check.rule:
        parts.append(f"rule {check.rule}")
    return ", ".join(parts)


def select(tests: Iterable[RuleTest], patterns: Sequence[re.Pattern[str]]) -> list[RuleTest]:
    """The tests whose name matches any of ``patterns`` (all of them when there are none)."""
    return [t for t in tests if not patterns or any(p.search(t.name) for p in patterns)]
