"""Named ``time_intervals`` in Alertmanager's shape: parsed, checked and made callable.

A named interval holds a list of intervals; it is active at a moment when any of them
contains it. One interval contains a moment when every field it sets contains it, each
field being a list of ranges of which any may match (Alertmanager's rules, copied):

* ``times``: ``{start_time: "09:00", end_time: "17:00"}``, start inclusive, end exclusive,
  ``24:00`` allowed as an end; a range across midnight is written as two intervals;
* ``weekdays``: ``monday:friday`` or ``sunday``; ranges run Sunday to Saturday;
* ``days_of_month``: ``1:7``, ``-1`` (the last day), ``-7:-1``; negative days count back
  from the month's end and ranges are clamped to the month;
* ``months``: ``january:march``, ``may`` or ``1:3``; ``years``: ``2026`` or ``2026:2027``;
* ``location``: an IANA zone (``Europe/Berlin``), in which every field is read; default
  ``UTC``; ``Local`` is the zone of the machine.

The models turn a bad field into a pydantic error, so it is reported at FILE:LINE:COL like
any other; ``config.interval_refs`` checks the names rules, routes and channels refer to.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from .messages import describe, suggest

__all__ = [
    "NamedInterval",
    "NamedTimeIntervalModel",
    "TimeIntervalModel",
]

#: Alertmanager numbers weekdays from Sunday, so ``saturday:sunday`` is an error there too.
WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MONTHS = tuple(m.lower() for m in calendar.month_name[1:])
_CLOCK = re.compile(r"(?:([01][0-9]|2[0-3]):([0-5][0-9])|(24):(00))")
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _split(value: object, what: str) -> tuple[str, str]:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"expected a {what} or a range of them such as a:b, got {describe(value)}")
    text = str(value).strip().lower()
    # a leading '-' is a negative day, not a separator: split on ':' only
    begin, sep, end = text.partition(":")
    return begin.strip(), (end.strip() if sep else begin.strip())


def _named(names: tuple[str, ...], what: str, first: int) -> BeforeValidator:
    def parse_one(text: str) -> int:
        if text in names:
            return names.index(text) + first
        if what == "month" and text.isdigit() and 1 <= int(text) <= 12:
            return int(text)
        hint = suggest(text, list(names), "expected one of")
        if "did you mean" not in hint:
            numbers = " or 1 to 12" if what == "month" else ""
            hint = f": use {names[0]} to {names[-1]}{numbers}"
        raise ValueError(f"invalid {what} '{text}'{hint}")

    def check(value: object) -> tuple[int, int]:
        begin, end = _split(value, what)
        b, e = parse_one(begin), parse_one(end)
        if b > e:
            raise ValueError(f"start {what} {begin} is after end {what} {end} in '{value}'")
        return (b, e)

    return BeforeValidator(check)


def _number(text: str, whole: object, what: str) -> int:
    if not re.fullmatch(r"-?[0-9]{1,9}", text):
        raise ValueError(f"invalid {what} '{text}' in '{whole}': expected a number")
    return int(text)


def _day_range(value: object) -> tuple[int, int]:
    begin, end = _split(value, "day of the month")
    b, e = _number(begin, value, "day"), _number(end, value, "day")
    for day in (b, e):
        if day == 0 or not -31 <= day <= 31:
            raise ValueError(f"{day} is not a valid day of the month: use 1 to 31 or -31 to -1")
    if b < 0 < e:
        raise ValueError(f"end day must be negative if start day is negative, in '{value}'")
    # As Alertmanager: a negative day is judged in a 28-day month to catch what never matches
    if (28 + b if b < 0 else b) > (28 + e if e < 0 else e):
        raise ValueError(f"end day {e} is before start day {b} in '{value}'")
    return (b, e)


def _year_range(value: object) -> tuple[int, int]:
    begin, end = _split(value, "year")
    b, e = _number(begin, value, "year"), _number(end, value, "year")
    if b <= 0 or e <= 0:
        raise ValueError(f"a year must be positive, got '{value}'")
    if b > e:
        raise ValueError(f"end year {e} is before start year {b} in '{value}'")
    return (b, e)


def _clock(value: object) -> int:
    """``HH:MM`` as minutes of the day; ``24:00`` is 1440, for an end at midnight."""
    m = _CLOCK.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None:
        shown = f"'{value}'" if isinstance(value, str) else describe(value)
        raise ValueError(f"invalid time {shown}: expected HH:MM, 00:00 to 24:00")
    hours, minutes = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    return int(hours) * 60 + int(minutes)


def _zone(name: str) -> str:
    if name == "Local":
        return name
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone '{name}': use an IANA name such as Europe/Berlin, or UTC"
        ) from None
    return name


def _interval_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid time interval name '{name}': use letters, digits, '_.-'")
    return name


Clock = Annotated[int, BeforeValidator(_clock)]
Weekdays = Annotated[tuple[int, int], _named(WEEKDAYS, "weekday", 0)]
Months = Annotated[tuple[int, int], _named(MONTHS, "month", 1)]
Days = Annotated[tuple[int, int], BeforeValidator(_day_range)]
Years = Annotated[tuple[int, int], BeforeValidator(_year_range)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class TimeRangeModel(_Model):
    """``start_time`` inclusive to ``end_time`` exclusive, as minutes of the local day."""

    start_time: Clock
    end_time: Clock

    @model_validator(mode="after")
    def _ordered(self) -> TimeRangeModel:
        if self.start_time >= self.end_time:
            raise ValueError(
                "start_time must be before end_time; for a range across midnight write "
                "two intervals (until 24:00, and from 00:00 on the next day)"
            )
        return self


class TimeIntervalModel(_Model):
    """One interval: every field it sets must contain the moment (any range of each)."""

    times: list[TimeRangeModel] | None = None
    weekdays: list[Weekdays] | None = None
    days_of_month: list[Days] | None = None
    months: list[Months] | None = None
    years: list[Years] | None = None
    location: Annotated[str, AfterValidator(_zone)] = "UTC"

    def zone(self) -> tzinfo | None:
        """None for ``Local``: ``datetime.astimezone`` then picks the machine's zone."""
        return None if self.location == "Local" else ZoneInfo(self.location)

    def contains(self, t: float) -> bool:
        zone = self.zone()
        local = datetime.fromtimestamp(t, zone) if zone is not None else datetime.fromtimestamp(t)
        return self.contains_local(local)

    def contains_local(self, local: datetime) -> bool:
        if self.times is not None:
            minute = local.hour * 60 + local.minute
            if not any(r.start_time <= minute < r.end_time for r in self.times):
                return False
        if self.days_of_month is not None and not any(
            _day_matches(local, b, e) for b, e in self.days_of_month
        ):
            return False
        if self.weekdays is not None:
            day = local.isoweekday() % 7  # Sunday 0 … Saturday 6
            if not any(b <= day <= e for b, e in self.weekdays):
                return False
        if self.months is not None and not any(b <= local.month <= e for b, e in self.months):
            return False
        return self.years is None or any(b <= local.year <= e for b, e in self.years)


def _day_matches(local: datetime, begin: int, end: int) -> bool:
    """Alertmanager's reading: negative days count from the month's end, then clamp."""
    days = calendar.monthrange(local.year, local.month)[1]
    b = days + begin + 1 if begin < 0 else begin
    e = days + end + 1 if end < 0 else end
    if b > days:
        return False  # the 31st in a 30-day month: nothing to clamp to
    b, e = max(b, 1), min(e, days)
    return b <= local.day <= e


class NamedTimeIntervalModel(_Model):
    """A named list of intervals, referred to by ``mute_time_intervals`` and
    ``active_time_intervals``; active when any of its intervals contains the moment."""

    name: Annotated[str, AfterValidator(_interval_name)]
    time_intervals: list[TimeIntervalModel] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class NamedInterval:
    """A named interval as the notifier uses it: called with a unix time, says if active."""

    name: str
    intervals: tuple[TimeIntervalModel, ...]

    def __call__(self, t: float) -> bool:
        return any(i.contains(t) for i in self.intervals)
