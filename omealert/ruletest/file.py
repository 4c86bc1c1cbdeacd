"""Rule test files: their shape as written, and the checked tests ``omealert test`` runs.

A test file names the config under test and lists tests. Each test gives an input timeline
(series in the notation of ``series.py``, a recording made by ``omealert record``, or
both) and expectations: which alerts are in which state at an evaluation time, and which
notifications were queued between two times. ``ruletest.load`` turns the file as written
(the pydantic models here) into the checked dataclasses here; ``ruletest.run`` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ..config.values import Duration, LabelValue, PositiveDuration
from ..engine.alerts import AlertValue
from ..rules import Settings
from ..state.records import Silence
from .series import SeriesInput

__all__ = [
    "DEFAULT_START",
    "AlertCheck",
    "AlertExpectation",
    "MessageExpectation",
    "NotificationCheck",
    "RuleTest",
    "RuleTestFile",
]

#: Where simulated time starts unless a test sets ``start_time``: 2026-01-01T00:00:00Z.
DEFAULT_START = 1_767_225_600.0


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
