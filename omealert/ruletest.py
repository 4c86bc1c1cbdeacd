"""Rule unit tests: load a test file, run each test on simulated time, compare, explain.

A test file names the config under test and lists tests. Each test gives an input timeline
(series in the notation of ``series.py``, a recording made by ``omealert record``, or
both) and expectations: which alerts are in which state at an evaluation time, and which
notifications were queued between two times. The real ``Engine`` and ``Planner`` run over
the timeline, one evaluation per ``evaluation_interval`` (or per recorded polling round),
with time passed in: nothing sleeps, and a run gives the same result every time.

The file is checked as strictly as a config, before any test runs: first its shape
(unknown keys, wrong types, bad durations), then what it refers to (rules, channels,
servers, fields) and every series. Each problem is reported at its FILE:LINE:COL, all of
a stage at once (``ConfigError``).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .config import Duration, LabelValue, PositiveDuration, load_config
from .configmessages import suggest, translate
from .engine import AlertValue, Engine, Instance, Transition
from .errors import ConfigError, ConfigIssue
from .fields import FieldLookupError, resolve
from .model import AlertState, PollResult, Value
from .notify import Planner
from .recording import RecordingError, RecordingReader, replay_polls
from .rules import API_DOWN_RULE, Matcher, Settings
from .series import (
    SERVER_KEY,
    SeriesError,
    SeriesInput,
    format_offset,
    parse_api_series,
    parse_series,
    parse_target,
)
from .state import Silence
from .testdiff import compare_alerts, compare_messages
from .yamlsource import YamlSource, parse_yaml

__all__ = [
    "DEFAULT_START",
    "MAX_EVALUATIONS",
    "ActualAlert",
    "ActualMessage",
    "AlertCheck",
    "AlertExpectation",
    "CheckOutcome",
    "ConfigCache",
    "MessageExpectation",
    "NotificationCheck",
    "RuleTest",
    "RuleTestFile",
    "RuleTestOutcome",
    "load_test_file",
    "run_test",
    "select",
]

#: Where simulated time starts unless a test sets ``start_time``: 2026-01-01T00:00:00Z.
DEFAULT_START = 1_767_225_600.0
#: Evaluations one test may ask for; more is almost surely a too-small interval.
MAX_EVALUATIONS = 200_000


# -- the file, as written --------------------------------------------------------------------


def _none_as_empty(value: object) -> object:
    return {} if value is None else value


def _none_as_empty_list(value: object) -> object:
    return [] if value is None else value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class AlertExpModel(_Model):
    """One alert expected at an evaluation time; only the keys written are compared."""

    state: Literal["pending", "firing", "resolved"] = "firing"
    labels: Annotated[dict[str, LabelValue], BeforeValidator(_none_as_empty)] = Field(
        default_factory=dict
    )
    value: bool | int | float | str | None = None
    summary: str | None = None
    description: str | None = None


class AlertCheckModel(_Model):
    eval_time: Duration
    rule: str | None = None
    exp_alerts: Annotated[list[AlertExpModel], BeforeValidator(_none_as_empty_list)]


class MessageExpModel(_Model):
    """One notification expected; only the keys written are compared."""

    at: Duration | None = None
    channel: str | None = None
    rule: str | None = None
    reason: Literal["first", "repeat", "resolved"] | None = None
    title: str | None = None
    body: str | None = None
    targets: list[str] | None = None


class NotificationCheckModel(_Model):
    between: list[Duration]
    channel: str | None = None
    rule: str | None = None
    exp: Annotated[list[MessageExpModel], BeforeValidator(_none_as_empty_list)]


class SilenceModel(_Model):
    matchers: list[str] = Field(min_length=1)
    start: Duration = 0.0
    end: Duration | None = None


class RuleTestModel(_Model):
    name: str
    interval: PositiveDuration | None = None
    evaluation_interval: PositiveDuration | None = None
    start_time: str | float | None = None
    server: str | None = None
    input: Annotated[dict[str, dict[str, Any]], BeforeValidator(_none_as_empty)] = Field(
        default_factory=dict
    )
    api: str | None = None
    recording: str | None = None
    silences: Annotated[list[SilenceModel], BeforeValidator(_none_as_empty_list)] = Field(
        default_factory=list
    )
    alerts: Annotated[list[AlertCheckModel], BeforeValidator(_none_as_empty_list)] = Field(
        default_factory=list
    )
    notifications: Annotated[list[NotificationCheckModel], BeforeValidator(_none_as_empty_list)] = (
        Field(default_factory=list)
    )


class RuleTestFileModel(_Model):
    config: str
    env: Annotated[dict[str, LabelValue], BeforeValidator(_none_as_empty)] = Field(
        default_factory=dict
    )
    evaluation_interval: PositiveDuration | None = None
    tests: list[RuleTestModel] = Field(min_length=1)


# -- the file, checked -------------------------------------------------------------------------


@dataclass(slots=True)
class AlertExpectation:
    text_keys: tuple[str, ...]  # the keys written, in display order
    state: str
    labels: dict[str, str]
    value: AlertValue = None
    summary: str | None = None
    description: str | None = None


@dataclass(slots=True)
class AlertCheck:
    where: str
    eval_time: float
    rule: str | None
    expected: list[AlertExpectation]


@dataclass(slots=True)
class MessageExpectation:
    fields: dict[str, Any]  # only the keys written; ``at`` in seconds from the start


@dataclass(slots=True)
class NotificationCheck:
    where: str
    start: float
    end: float
    channel: str | None
    rule: str | None
    expected: list[MessageExpectation]


@dataclass(slots=True)
class RuleTest:
    name: str
    where: str
    server: str
    start: float
    evaluation_interval: float
    series: SeriesInput | None
    recording: Path | None
    silences: list[Silence]
    alerts: list[AlertCheck]
    notifications: list[NotificationCheck]

    @property
    def horizon(self) -> float:
        """The last moment any check looks at, in seconds from the start."""
        times = [c.eval_time for c in self.alerts] + [c.end for c in self.notifications]
        return max(times, default=0.0)


@dataclass(slots=True)
class RuleTestFile:
    path: str
    config_path: Path
    settings: Settings
    tests: list[RuleTest]


#: Configs already loaded, by (path, text, env): several test files usually share one.
ConfigCache = dict[tuple[str, str, tuple[tuple[str, str], ...]], Settings]


def load_test_file(path: str | Path, *, cache: ConfigCache | None = None) -> RuleTestFile:
    """Read and check a rule test file and the config it names; raises ``ConfigError``.

    Pass the same ``cache`` for several files to load a config they share only once.
    """
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError([ConfigIssue(name, 1, 1, f"cannot read test file: {reason}")]) from None
    except UnicodeDecodeError:
        raise ConfigError([ConfigIssue(name, 1, 1, "the file is not valid UTF-8")]) from None
    src = parse_yaml(text, name, {})
    if src.fatal:
        raise ConfigError(src.issues)
    if src.data is None:
        message = "the file is empty: a rule test file needs config: and tests:"
        raise ConfigError([ConfigIssue(name, 1, 1, message)])
    try:
        model = RuleTestFileModel.model_validate(src.data)
    except ValidationError as exc:
        issues = src.issues + [translate(src, err, RuleTestFileModel) for err in exc.errors()]
        raise ConfigError(list(dict.fromkeys(issues))) from None
    checker = _Checker(src, Path(path).parent, {} if cache is None else cache)
    result = checker.check(model)
    issues = src.issues + checker.issues
    if issues or result is None:
        raise ConfigError(list(dict.fromkeys(issues)))
    return result


class _Checker:
    """Turns a validated model into runnable tests, collecting every problem on the way."""

    def __init__(self, src: YamlSource, base: Path, cache: ConfigCache) -> None:
        self.src = src
        self.base = base
        self.cache = cache
        self.issues: list[ConfigIssue] = []

    def where(self, *path: str | int) -> str:
        line, col = self.src.position(path)
        return f"{self.src.filename}:{line}:{col}"

    def issue(self, path: tuple[str | int, ...], message: str, *, key: bool = False) -> None:
        self.issues.append(self.src.issue(path, message, key=key))

    def check(self, model: RuleTestFileModel) -> RuleTestFile | None:
        config_path = self.base / model.config
        if not config_path.is_file():
            message = (
                f"config file {model.config} not found "
                "(a relative path starts at the test file's folder)"
            )
            self.issue(("config",), message)
            return None
        try:
            settings = self._config(config_path, dict(model.env))
        except ConfigError as exc:
            count = len(exc.issues)
            message = f"the config under test does not load: {count} problem(s), each at its line"
            self.issue(("config",), message)
            self.issues.extend(exc.issues)
            return None
        tests: list[RuleTest] = []
        seen: dict[str, int] = {}
        for i, test in enumerate(model.tests):
            if test.name in seen:
                self.issue(
                    ("tests", i, "name"),
                    f"duplicate test name (first at test {seen[test.name] + 1})",
                )
            seen.setdefault(test.name, i)
            got = self._test(i, test, model, settings)
            if got is not None:
                tests.append(got)
        if self.issues:
            return None
        return RuleTestFile(self.src.filename, config_path, settings, tests)

    def _config(self, path: Path, env: dict[str, str]) -> Settings:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return load_config(path, env=env)  # it says what is wrong, at FILE:LINE:COL
        key = (str(path.resolve()), text, tuple(sorted(env.items())))
        if key not in self.cache:
            self.cache[key] = load_config(path, env=env)
        return self.cache[key]

    # -- one test --------------------------------------------------------------------------

    def _test(
        self, i: int, test: RuleTestModel, model: RuleTestFileModel, settings: Settings
    ) -> RuleTest | None:
        at: tuple[str | int, ...] = ("tests", i)
        before = len(self.issues)
        servers = [s.name for s in settings.servers]
        server = test.server or servers[0]
        if server not in servers:
            self.issue(
                (*at, "server"),
                f"unknown server '{server}'" + suggest(server, servers, "the config has"),
            )
        recording: Path | None = None
        start = DEFAULT_START
        evaluation = test.evaluation_interval or model.evaluation_interval or settings.interval_s
        if test.recording is not None:
            recording, start, evaluation = self._recording(at, test, evaluation)
            if test.evaluation_interval is not None:
                message = (
                    "evaluation_interval does not apply to a recording: "
                    "it is evaluated at its recorded polling times"
                )
                self.issue((*at, "evaluation_interval"), message)
        elif test.start_time is not None:
            start = self._start_time((*at, "start_time"), test.start_time)
        step = test.interval or evaluation
        series = self._series(at, test, server, start, step)
        if test.recording is None and not test.input and test.api is None:
            self.issue(at, "a test needs input: (series), api:, recording: or a mix of them")
        if not test.alerts and not test.notifications:
            self.issue(at, "a test needs alerts: or notifications: to check something")
        rules = [r.name for r in settings.rules]
        if settings.api_down.enabled:
            rules.append(API_DOWN_RULE)
        channels = list(settings.channels)
        alerts = [
            self._alert_check((*at, "alerts", j), c, rules) for j, c in enumerate(test.alerts)
        ]
        notes = [
            self._notification_check((*at, "notifications", j), c, rules, channels)
            for j, c in enumerate(test.notifications)
        ]
        silences = self._silences(at, test)
        result = RuleTest(
            name=test.name,
            where=self.where(*at),
            server=server,
            start=start,
            evaluation_interval=evaluation,
            series=series,
            recording=recording,
            silences=silences,
            alerts=alerts,
            notifications=[n for n in notes if n is not None],
        )
        if recording is None and result.horizon / evaluation + 1 > MAX_EVALUATIONS:
            count = int(result.horizon / evaluation) + 1
            message = (
                f"this test would need {count} evaluations (more than {MAX_EVALUATIONS}): "
                "raise evaluation_interval"
            )
            self.issue(at, message)
        return result if len(self.issues) == before else None

    def _recording(
        self, at: tuple[str | int, ...], test: RuleTestModel, evaluation: float
    ) -> tuple[Path | None, float, float]:
        """The recording's path, start and polling interval (steps of series laid over it)."""
        assert test.recording is not None
        path = self.base / test.recording
        if test.start_time is not None:
            self.issue((*at, "start_time"), "start_time comes from the recording; remove it")
        try:
            with RecordingReader(path) as reader:
                return path, reader.header.created, reader.header.interval
        except RecordingError as exc:
            self.issue((*at, "recording"), f"cannot use recording {test.recording}: {exc.message}")
            return None, DEFAULT_START, evaluation

    def _start_time(self, path: tuple[str | int, ...], value: str | float) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            message = (
                "start_time must be epoch seconds or a time with a UTC offset, "
                "e.g. 2026-01-01T00:00:00Z"
            )
            self.issue(path, message)
            return DEFAULT_START
        return parsed.timestamp()

    def _series(
        self, at: tuple[str | int, ...], test: RuleTestModel, server: str, start: float, step: float
    ) -> SeriesInput | None:
        if not test.input and test.api is None:
            return None
        out = SeriesInput(server, start, step)
        for key, fields in test.input.items():
            kpath = (*at, "input", key)
            try:
                target = parse_target(server, key)
            except ValueError as exc:
                self.issue(kpath, str(exc), key=True)
                continue
            series: dict[str, list[Value | None]] = {}
            for name, raw in fields.items():
                fpath = (*kpath, name)
                try:
                    spec = resolve(name)
                except FieldLookupError as exc:
                    self.issue(fpath, str(exc), key=True)
                    continue
                if target.scope not in spec.scopes:
                    where = "the server itself" if key == SERVER_KEY else key
                    scopes = ", ".join(sorted(s.value for s in spec.scopes))
                    message = (
                        f"{spec.path} is not reported for {where} ({target.scope.value}); "
                        f"only at {scopes} scope"
                    )
                    self.issue(fpath, message, key=True)
                    continue
                if spec.path in series:
                    self.issue(fpath, f"{spec.path} is given twice for {key}", key=True)
                    continue
                if raw is None or isinstance(raw, dict | list):
                    self.issue(fpath, "expected a series such as '400x3' or 'advancing x5'")
                    continue
                text = _scalar_text(raw)
                try:
                    series[spec.path] = parse_series(text, spec, start=start, interval=step)
                except SeriesError as exc:
                    self._series_issue(fpath, raw, exc)
            out.fields[target] = series
        if test.api is not None:
            try:
                out.api = parse_api_series(test.api)
            except SeriesError as exc:
                self._series_issue((*at, "api"), test.api, exc)
        return out

    def _series_issue(self, path: tuple[str | int, ...], raw: object, exc: SeriesError) -> None:
        if isinstance(raw, str):
            self.issues.append(self.src.issue_at(path, exc.offset, exc.message))
        else:
            self.issue(path, exc.message)

    def _rule(self, path: tuple[str | int, ...], name: str | None, rules: list[str]) -> None:
        if name is not None and name not in rules:
            self.issue(path, f"unknown rule '{name}'" + suggest(name, rules, "the config has"))

    def _channel(self, path: tuple[str | int, ...], name: str | None, channels: list[str]) -> None:
        if name is not None and name not in channels:
            self.issue(
                path, f"unknown channel '{name}'" + suggest(name, channels, "the config has")
            )

    def _alert_check(
        self, at: tuple[str | int, ...], check: AlertCheckModel, rules: list[str]
    ) -> AlertCheck:
        self._rule((*at, "rule"), check.rule, rules)
        expected = []
        for exp in check.exp_alerts:
            keys = ["state"]
            if exp.labels:
                keys.append("labels")
            for name in ("value", "summary", "description"):
                if name in exp.model_fields_set:
                    keys.append(name)
            expected.append(
                AlertExpectation(
                    text_keys=tuple(keys),
                    state=exp.state,
                    labels=dict(exp.labels),
                    value=exp.value,
                    summary=exp.summary,
                    description=exp.description,
                )
            )
        return AlertCheck(self.where(*at), check.eval_time, check.rule, expected)

    def _notification_check(
        self,
        at: tuple[str | int, ...],
        check: NotificationCheckModel,
        rules: list[str],
        channels: list[str],
    ) -> NotificationCheck | None:
        self._rule((*at, "rule"), check.rule, rules)
        self._channel((*at, "channel"), check.channel, channels)
        ok = True
        if len(check.between) != 2:
            self.issue((*at, "between"), "between takes two times: [from, to], e.g. [0s, 5m]")
            ok = False
        elif check.between[0] > check.between[1]:
            self.issue((*at, "between"), "between: the first time must not be after the second")
            ok = False
        expected = []
        for k, exp in enumerate(check.exp):
            self._rule((*at, "exp", k, "rule"), exp.rule, rules)
            self._channel((*at, "exp", k, "channel"), exp.channel, channels)
            fields = {n: getattr(exp, n) for n in _MESSAGE_KEYS if n in exp.model_fields_set}
            expected.append(MessageExpectation(fields))
        if not ok:
            return None
        return NotificationCheck(
            self.where(*at), check.between[0], check.between[1], check.channel, check.rule, expected
        )

    def _silences(self, at: tuple[str | int, ...], test: RuleTestModel) -> list[Silence]:
        out = []
        for j, s in enumerate(test.silences):
            for k, text in enumerate(s.matchers):
                try:
                    Matcher.parse(text)
                except ValueError as exc:
                    self.issue((*at, "silences", j, "matchers", k), str(exc))
            end = math.inf if s.end is None else s.end
            if end <= s.start:
                self.issue((*at, "silences", j, "end"), "a silence must end after it starts")
            out.append(
                Silence(
                    id=f"test-{j + 1}",
                    matchers=list(s.matchers),
                    starts_at=s.start,  # made absolute when the test runs
                    ends_at=end,
                    created_by="omealert test",
                    comment="",
                    created_at=0.0,
                )
            )
        return out


def _scalar_text(raw: object) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


_MESSAGE_KEYS = ("at", "channel", "rule", "reason", "targets", "title", "body")


# -- running -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActualAlert:
    rule: str
    state: str
    labels: dict[str, str]
    value: AlertValue
    summary: str
    description: str


@dataclass(frozen=True, slots=True)
class ActualMessage:
    at: float  # seconds from the start
    channel: str
    rule: str
    reason: str
    targets: list[str]
    title: str
    body: str

    def get(self, key: str) -> Any:
        return getattr(self, key)


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
        self._last: tuple[float, list[Transition]] | None = None
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

    def step(self, now: float, polls: list[PollResult]) -> None:
        rel = now - self.test.start
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
        self._last = (rel, transitions)
        self.last_eval = rel

    def finish(self) -> None:
        self._settle(math.inf)

    def _settle(self, next_rel: float) -> None:
        """Snapshot the current state for every check whose time falls before ``next_rel``."""
        if self._last is None:
            return
        rel, transitions = self._last
        while self._pending and self.test.alerts[self._pending[0]].eval_time < next_rel - 1e-9:
            k = self._pending.pop(0)
            self.snapshots[k] = _Snapshot(rel, self._alerts(rel, transitions))

    def _alerts(self, rel: float, transitions: list[Transition]) -> list[ActualAlert]:
        now = self.test.start + rel
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

    def on_tick(at: float, polls: list[PollResult]) -> None:
        if series is not None:
            mine = next((p for p in polls if p.server == series.server), None)
            if mine is None:
                polls = [*polls, series.poll(at)]
            else:
                polls = [series.merge(p, at) if p is mine else p for p in polls]
        run.step(at, polls)

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
