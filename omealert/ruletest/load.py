"""Load a rule test file and check it as strictly as a config, before any test runs.

First its shape (unknown keys, wrong types, bad durations), then what it refers to (rules,
channels, servers, fields) and every series. Each problem is reported at its FILE:LINE:COL,
all of a stage at once (``ConfigError``).
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from ..config.load import load_config
from ..config.messages import suggest, translate
from ..config.yamlsource import YamlSource, parse_yaml
from ..errors import ConfigError, ConfigIssue
from ..lang.fields import FieldLookupError, resolve
from ..model import Value
from ..recording.format import RecordingError, RecordingReader
from ..rules import API_DOWN_RULE, Matcher, Settings
from ..state.records import Silence
from .file import (
    DEFAULT_START,
    AlertCheck,
    AlertCheckModel,
    AlertExpectation,
    MessageExpectation,
    NotificationCheck,
    NotificationCheckModel,
    RuleTest,
    RuleTestFile,
    RuleTestFileModel,
    RuleTestModel,
)
from .series import (
    SERVER_KEY,
    SeriesError,
    SeriesInput,
    parse_api_series,
    parse_series,
    parse_target,
)

__all__ = ["MAX_EVALUATIONS", "ConfigCache", "load_test_file"]

#: Evaluations one test may ask for; more is almost surely a too-small interval.
MAX_EVALUATIONS = 200_000

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
