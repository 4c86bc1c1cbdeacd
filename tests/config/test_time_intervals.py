"""``time_intervals`` in Alertmanager's shape: what each field matches, and every error at
FILE:LINE:COL."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from omealert.config.load import load_config_text
from omealert.config.time_intervals import TimeIntervalModel
from omealert.errors import ConfigError

BASE = """\
servers:
  - name: origin
    url: http://127.0.0.1:1
channels:
  ops:
    urls: ["json://127.0.0.1:9/x"]
"""


def matches(spec: dict[str, Any], when: str, zone: str = "UTC") -> bool:
    model = TimeIntervalModel.model_validate({"location": zone, **spec})
    return model.contains(datetime.fromisoformat(when).replace(tzinfo=ZoneInfo(zone)).timestamp())


def issues(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config_text(BASE + text, "t.yaml", {})
    return [str(i) for i in caught.value.issues]


class TestFields:
    def test_times_start_inclusive_end_exclusive_and_24_00(self) -> None:
        """09:00 is in 09:00-17:00, 17:00 is not; an end of 24:00 reaches 23:59."""
        office = {"times": [{"start_time": "09:00", "end_time": "17:00"}]}
        assert matches(office, "2026-06-10 09:00") and matches(office, "2026-06-10 16:59")
        assert not matches(office, "2026-06-10 17:00") and not matches(office, "2026-06-10 08:59")
        late = {"times": [{"start_time": "22:00", "end_time": "24:00"}]}
        assert matches(late, "2026-06-10 23:59") and not matches(late, "2026-06-10 00:00")

    def test_weekday_ranges_run_sunday_to_saturday(self) -> None:
        """monday:friday holds Wednesday 2026-06-10, not Saturday 2026-06-13 nor Sunday."""
        week = {"weekdays": ["monday:friday"]}
        assert matches(week, "2026-06-10 12:00")
        assert not matches(week, "2026-06-13 12:00") and not matches(week, "2026-06-14 12:00")
        assert matches({"weekdays": ["Sunday"]}, "2026-06-14 12:00")

    def test_negative_days_count_from_the_month_end(self) -> None:
        """-1 is Feb 28 in 2026 and Feb 29 in 2028; -3:-1 is the last three days."""
        assert matches({"days_of_month": [-1]}, "2026-02-28 10:00")
        assert not matches({"days_of_month": [-1]}, "2028-02-28 10:00")
        assert matches({"days_of_month": ["-1"]}, "2028-02-29 10:00")
        assert matches({"days_of_month": ["-3:-1"]}, "2026-04-28 10:00")
        assert not matches({"days_of_month": ["-3:-1"]}, "2026-04-27 10:00")

    def test_day_ranges_clamp_to_the_month(self) -> None:
        """1:31 covers all of February; 31 alone never matches in a 30-day month."""
        assert matches({"days_of_month": ["1:31"]}, "2026-02-28 10:00")
        assert not matches({"days_of_month": [31]}, "2026-04-30 10:00")

    def test_months_years_and_all_fields_together(self) -> None:
        """Each field must hold the moment; within a field any range may."""
        spec = {
            "months": ["january:march", "december"],
            "years": ["2026:2027"],
            "weekdays": ["saturday", "sunday"],
        }
        assert matches(spec, "2026-12-12 10:00")  # a Saturday in December 2026
        assert not matches(spec, "2026-12-11 10:00")  # a Friday
        assert not matches(spec, "2028-01-01 10:00")  # 2028
        assert matches({"months": ["2:3"]}, "2026-03-01 00:00")

    def test_fields_are_read_in_the_location(self) -> None:
        """21:30 UTC on Tuesday is 23:30 Tuesday in Berlin and 07:30 Wednesday in Sydney."""
        t = datetime(2026, 6, 9, 21, 30, tzinfo=ZoneInfo("UTC")).timestamp()
        late = TimeIntervalModel.model_validate(
            {"times": [{"start_time": "23:00", "end_time": "24:00"}], "location": "Europe/Berlin"}
        )
        wednesday = TimeIntervalModel.model_validate(
            {"weekdays": ["wednesday"], "location": "Australia/Sydney"}
        )
        assert late.contains(t) and wednesday.contains(t)


class TestErrors:
    def test_bad_fields_are_errors_at_their_position(self) -> None:
        """Each bad value is reported at its own line and column, with what is expected."""
        found = issues(
            """\
time_intervals:
  - name: bad
    time_intervals:
      - times:
          - start_time: "25:00"
            end_time: "17:00"
          - start_time: "18:00"
            end_time: "09:00"
        weekdays: ["saturday:sunday", "funday"]
        days_of_month: [0, "-3:5", "10:2"]
        months: [13]
        years: ["2027:2026"]
        location: Mars/Olympus
"""
        )
        assert found == [
            "t.yaml:11:25: invalid time '25:00': expected HH:MM, 00:00 to 24:00",
            "t.yaml:13:13: start_time must be before end_time; for a range across midnight "
            "write two intervals (until 24:00, and from 00:00 on the next day)",
            "t.yaml:15:20: start weekday saturday is after end weekday sunday in 'saturday:sunday'",
            "t.yaml:15:39: invalid weekday 'funday' — did you mean 'sunday'?",
            "t.yaml:16:25: 0 is not a valid day of the month: use 1 to 31 or -31 to -1",
            "t.yaml:16:28: end day must be negative if start day is negative, in '-3:5'",
            "t.yaml:16:36: end day 2 is before start day 10 in '10:2'",
            "t.yaml:17:18: invalid month '13': use january to december or 1 to 12",
            "t.yaml:18:17: end year 2026 is before start year 2027 in '2027:2026'",
            "t.yaml:19:19: unknown time zone 'Mars/Olympus': use an IANA name such as "
            "Europe/Berlin, or UTC",
        ]

    def test_unknown_names_are_errors_where_they_are_used(self) -> None:
        """A rule, route or channel naming an undefined interval points at that name."""
        found = issues(
            """\
    mute_time_intervals: [nigthly]
time_intervals:
  - name: nightly
    time_intervals: [{weekdays: [saturday]}]
  - name: nightly
rules:
  - name: r
    when: lastRecvTime stale > 1s
    channels: [ops]
    active_time_intervals: [office]
routes:
  - matchers: [severity=warning]
    channels: [ops]
    mute_time_intervals: [nightly, weekend]
"""
        )
        assert found == [
            "t.yaml:7:27: unknown time interval 'nigthly' — did you mean 'nightly'?",
            "t.yaml:11:11: duplicate time interval 'nightly'",
            "t.yaml:16:29: unknown time interval 'office' (defined time intervals: nightly)",
            "t.yaml:20:36: unknown time interval 'weekend' (defined time intervals: nightly)",
        ]

    def test_a_valid_file_puts_the_names_on_rules_routes_and_channels(self) -> None:
        """Loaded, each reference is on its runtime object and the interval is callable."""
        settings = load_config_text(
            BASE
            + """\
    mute_time_intervals: [nightly]
    notify_acks: false
time_intervals:
  - name: nightly
    time_intervals: [{times: [{start_time: "00:00", end_time: "06:00"}]}]
rules:
  - name: r
    when: lastRecvTime stale > 1s
    channels: [ops]
    active_time_intervals: [nightly]
routes:
  - matchers: [severity=warning]
    channels: [ops]
    mute_time_intervals: [nightly]
""",
            "t.yaml",
            {},
        )
        assert settings.rules[0].active_time_intervals == ("nightly",)
        assert settings.routes[0].mute_time_intervals == ("nightly",)
        assert settings.channels["ops"].mute_time_intervals == ("nightly",)
        assert settings.channels["ops"].notify_acks is False
        midnight = datetime(2026, 6, 10, tzinfo=ZoneInfo("UTC")).timestamp()
        nightly = settings.time_intervals["nightly"]
        assert nightly(midnight + 3600) and not nightly(midnight + 7 * 3600)
