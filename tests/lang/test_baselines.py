"""The baseline functions in the condition language: the issue's examples, their values, and
a clear error at FILE:LINE:COL for each bad use."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from omealert.config.load import load_config_text
from omealert.errors import ConfigError, ExprError
from omealert.lang.condition import FUNCTIONS, compile_condition
from omealert.model import Scope, Value

S = Scope.STREAM
SERVER = "servers:\n  - name: o\n    url: http://127.0.0.1:1\n"
NOW = 1_767_225_600.0
EXAMPLES = [
    "video.bitrateLatest < 50% * median_over(video.bitrateLatest, 1h)",
    "viewers < 40% * max_over(viewers, 5m) and max_over(viewers, 5m) > 100",
    "avgThroughputIn < median_over(avgThroughputIn, 30m) - 3 * stddev_over(avgThroughputIn, 30m)",
    "changes(createdTime, 1h) > 3",
]


@dataclass
class Answers:
    """A history that answers each (function, field, window[, q]) from a table."""

    table: dict[tuple[object, ...], float | None]
    asked: list[tuple[object, ...]] = field(default_factory=list)

    def _get(self, *key: object) -> float | None:
        self.asked.append(key)
        return self.table.get(key)

    def __getattr__(self, func: str) -> object:
        return lambda *args: self._get(func, *args)


@pytest.mark.parametrize("text", EXAMPLES)
def test_the_issues_examples_validate_in_a_config(text: str) -> None:
    """Each example of issue 20 loads as a rule's condition, as written."""
    config = SERVER + f"rules:\n  - name: r\n    when: {text}\n"
    settings = load_config_text(config, "t.yaml", {})
    assert settings.rules[0].when.text == text


def test_bitrate_below_half_its_hourly_median() -> None:
    """50% of the median: 2 Mbps under a 5 Mbps median holds, with the bitrate as value."""
    cond = compile_condition(EXAMPLES[0], S)
    history = Answers({("median_over", "video.bitrateLatest", 3600.0): 5e6})
    assert cond.evaluate({"video.bitrateLatest": 2e6}, NOW, history) == (True, 2e6)
    assert cond.evaluate({"video.bitrateLatest": 3e6}, NOW, history) == (False, 3e6)
    assert cond.evaluate({"video.bitrateLatest": 2e6}, NOW, Answers({})) == (None, 2e6)


def test_throughput_three_deviations_under_its_median() -> None:
    """median - 3 * stddev: 1.5 Mbps is under 4 - 3·0.5 = 2.5 Mbps."""
    cond = compile_condition(EXAMPLES[2], S)
    path = "providers.avgThroughputIn"
    history = Answers({("median_over", path, 1800.0): 4e6, ("stddev_over", path, 1800.0): 5e5})
    assert cond.evaluate({path: 1.5e6}, NOW, history)[0] is True
    assert cond.evaluate({path: 2.6e6}, NOW, history)[0] is False


def test_quantile_and_offset_ask_the_history_the_right_question() -> None:
    """quantile_over passes its q; `x offset w` asks for the value w ago."""
    cond = compile_condition(
        "viewers < 50% * viewers offset 1d and quantile_over(90%, viewers, 1h) > 10", S
    )
    path = "publishers.viewers"
    history = Answers(
        {("offset", path, 86400.0): 100.0, ("quantile_over", 0.9, path, 3600.0): 20.0}
    )
    values: dict[str, Value] = {path: 40}
    assert cond.evaluate(values, NOW, history) == (True, 40)
    assert ("quantile_over", 0.9, path, 3600.0) in history.asked
    uses = cond.history_uses
    assert ("offset", path, 86400.0, None) in uses and ("quantile_over", path, 3600.0, 0.9) in uses


def test_changes_compares_as_a_count_and_is_batched() -> None:
    """`changes(createdTime, 1h) > 3` holds at 4 reconnects, the count as value."""
    cond = compile_condition(EXAMPLES[3], S)
    history = Answers({("changes", "createdTime", 3600.0): 4.0})
    assert cond.evaluate({}, NOW, history) == (True, 4.0)
    assert cond.value_unit == "count"


def test_every_new_function_is_listed() -> None:
    """The new names are functions, for hints and docs."""
    for name in ("median_over", "quantile_over", "stddev_over", "changes", "resets"):
        assert name in FUNCTIONS


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("median_over(viewers) > 1", "median_over() takes a field and a window", 0),
        ("quantile_over(viewers, 1h) > 1", "quantile_over() takes a quantile between 0 and 1", 0),
        (
            "quantile_over(1.5, viewers, 1h) > 1",
            "the quantile must be between 0 and 1, not 1.5",
            14,
        ),
        ("quantile_over(90, viewers, 1h) > 1", "for the 90th percentile write 0.9", 14),
        ("quantile_over(-0.1, viewers, 1h) > 1", "a plain number between 0 and 1", 14),
        ("median_over(viewrs, 1h) > 1", "unknown field 'viewrs'; did you mean 'viewers'?", 12),
        ("median_over(viewers + 1, 1h) > 1", "must be a field name, not an expression", 12),
        ("median_over(viewers, 100) > 1", "must be a duration such as 5m", 21),
        ("stddev_over(sourceType, 1h) > 1", "needs a number field; sourceType is text", 12),
        ("changes(sourceType, 1h) > 1", "a number, timestamp or true/false field", 8),
        ("resets(viewers, 1h) > 1", "so use changes(viewers, …) to count its changes", 7),
        ("median_ovr(viewers, 1h) > 1", "did you mean 'median_over'?", 0),
        ("median_over > 1", "call it like median_over(video.bitrateLatest, 1h)", 0),
        ("offset > 1", "'offset' goes after a field", 0),
        ("(viewers + 1) offset 1h > 1", "'offset' goes after a number field", 14),
        ("viewers offset 5 > 1", "the window of offset must be a duration", 15),
        ("median_over(viewers, 1h) > 5Mbps", "is a count; compare it with a plain number", 27),
    ],
)
def test_bad_uses_are_errors_at_their_column(text: str, message: str, column: int) -> None:
    """Each mistake gets a message that says how to fix it, at the offending token."""
    with pytest.raises(ExprError) as info:
        compile_condition(text, S)
    assert message in info.value.message
    assert info.value.offset == column


def test_a_window_shorter_than_the_interval_is_an_error_at_file_line_col() -> None:
    """`interval: 30s` and `median_over(x, 10s)`: the window could never hold two polls."""
    config = (
        SERVER
        + "interval: 30s\nrules:\n  - name: r\n    when: viewers < median_over(viewers, 10s)\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config_text(config, "t.yaml", {})
    (issue,) = [str(i) for i in info.value.issues]
    assert issue.startswith("t.yaml:7:42: ")
    assert "shorter than the interval between polls (30s); use 1m 30s or more" in issue


def test_a_window_as_long_as_the_interval_is_allowed() -> None:
    """Equal to the interval is fine (two polls can fall inside it)."""
    compile_condition("viewers offset 10s > 1 and changes(viewers, 10s) > 0", S, 10.0)
