"""The value types of the config model: durations, names, labels, percentages, shards,
each with the validator that reads what people write (``30s``, ``90%``, ``priority: 1``).

Why apart from config/model.py: the models are the YAML's shape; these are how one value
is read, and they grow with every key that takes a new kind of value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
)

from ..durations import format_duration, parse_duration
from .messages import describe
from .shard import parse_shard


def _duration(value: object) -> float:
    """Durations are text with a unit; a bare number is ambiguous (seconds? minutes?)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a duration such as 30s or 5m, got {describe(value)}")
    if isinstance(value, int | float):
        if value == 0:
            return 0.0
        if isinstance(value, int) and value.bit_length() > 64:  # float() or str() would raise
            raise ValueError("a bare number is not a duration: write it with a unit, e.g. 30s")
        shown = int(value) if float(value).is_integer() else value
        raise ValueError(f"duration {shown} has no unit: write {shown}s, {shown}m or {shown}h")
    seconds = parse_duration(value)
    if not math.isfinite(seconds):
        raise ValueError("duration is too long")
    return seconds


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("must be longer than 0s")
    return seconds


def _an_hour_or_more(seconds: float) -> float:
    """A retention of seconds is a slip (``30`` meant as days) that would wipe the history."""
    if seconds < 3600:
        raise ValueError(f"must be at least 1h (got {format_duration(seconds)})")
    return seconds


def _name_checker(kind: str, pattern: str, allowed: str) -> Callable[[str], str]:
    regex = re.compile(pattern)

    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(f"invalid {kind} '{value}': use only {allowed}")
        return value

    return check


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _none_as_empty_list(value: object) -> object:
    """``rules:`` with every rule commented out reads as null; treat it as an empty list."""
    return [] if value is None else value


def _none_as_empty_dict(value: object) -> object:
    return {} if value is None else value


def _label_value(value: object) -> object:
    """Label values are text, but ``priority: 1`` is what people write."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value.bit_length() > 64:  # str() past 4,300 digits raises
        raise ValueError("a number this large as a label value: put it in quotes")
    if isinstance(value, int | float):
        return str(value)
    return value


Duration = Annotated[float, BeforeValidator(_duration)]
PositiveDuration = Annotated[float, BeforeValidator(_duration), AfterValidator(_positive)]
Retention = Annotated[float, BeforeValidator(_duration), AfterValidator(_an_hour_or_more)]
RuleName = Annotated[
    str, AfterValidator(_name_checker("rule name", r"[a-z0-9_-]+", "a-z, 0-9, '_' and '-'"))
]
ServerName = Annotated[
    str,
    AfterValidator(_name_checker("server name", r"[A-Za-z0-9_.-]+", "letters, digits, '_.-'")),
]
ChannelName = Annotated[
    str,
    AfterValidator(_name_checker("channel name", r"[A-Za-z0-9_.-]+", "letters, digits, '_.-'")),
]
LabelName = Annotated[
    str,
    AfterValidator(
        _name_checker("label name", r"[A-Za-z_][A-Za-z0-9_]*", "letters, digits and '_'")
    ),
]
LabelValue = Annotated[str, BeforeValidator(_label_value)]
#: where a rule's notices go: apprise channels, the Alertmanagers, or both
DeliverTo = Literal["channels", "alertmanager"]
Deliver = Annotated[list[DeliverTo], Field(min_length=1)]


def _channels_only() -> list[DeliverTo]:
    return ["channels"]


def _shard(value: object) -> object:
    """``K/N`` (``0/3``): shard K of N, 0 ≤ K < N."""
    if value is None or not isinstance(value, str):
        return value
    parse_shard(value)  # ValueError says what is wrong
    return value


def _percent(value: object) -> float:
    """``30%`` as 0.3; a bare number could mean 0.3 or 30, so it needs its ``%``."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            share = float(value.strip()[:-1]) / 100
        except ValueError:
            share = math.nan
        if math.isfinite(share):
            if not 0 < share <= 1:
                raise ValueError(f"must be above 0% and at most 100% (got {value.strip()})")
            return share
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"write a percentage such as 30%, not a bare number ({value!r})")
    raise ValueError(f"expected a percentage such as 30%, got {describe(value)}")


Percent = Annotated[float, BeforeValidator(_percent)]
