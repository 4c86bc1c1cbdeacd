"""The condition language: literals, precedence, three-valued logic, errors, history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omealert.errors import ExprError
from omealert.lang.condition import FUNCTIONS, Condition, compile_condition
from omealert.lang.fields import FIELDS, FieldType
from omealert.model import Scope, Value

NOW = 1_767_225_600.0  # the server's clock, 2026-01-01T00:00:00Z
S = Scope.STREAM


def ago(seconds: float) -> datetime:
    """A timestamp ``seconds`` before NOW, in a non-UTC zone as OME sends them."""
    zone = timezone(timedelta(hours=9))
    return datetime.fromtimestamp(NOW - seconds, zone)


def run(text: str, fields: dict[str, Value] | None = None, **kw: Any) -> tuple[Any, Any]:
    scope = kw.pop("scope", S)
    return compile_condition(text, scope).evaluate(fields or {}, NOW, kw.pop("history", None))


def error_of(text: str, scope: Scope = S) -> tuple[str, int]:
    with pytest.raises(ExprError) as info:
        compile_condition(text, scope)
    return info.value.message, info.value.offset


@dataclass
class FakeHistory:
    """Answers every history question with a fixed number and records what was asked."""

    answer: float | None = 2.0
    calls: list[tuple[str, str, float | None]] = field(default_factory=list)

    def _ask(self, func: str, path: str, window: float | None) -> float | None:
        self.calls.append((func, path, window))
        return self.answer

    def rate(self, path: str, window: float | None) -> float | None:
        return self._ask("rate", path, window)

    def delta(self, path: str, window: float) -> float | None:
        return self._ask("delta", path, window)

    def avg_over(self, path: str, window: float) -> float | None:
        return self._ask("avg_over", path, window)

    def min_over(self, path: str, window: float) -> float | None:
        return self._ask("min_over", path, window)

    def max_over(self, path: str, window: float) -> float | None:
        return self._ask("max_over", path, window)


# --------------------------------------------------------------------- the card's examples


def test_protocol_shorthand_reads_publisher_connections() -> None:
    """`webrtc publishers > 500` reads publishers.connections.webrtc and reports it as value."""
    cond = compile_condition("webrtc publishers > 500", S)
    assert cond.fields == frozenset({"publishers.connections.webrtc"})
    assert cond.field_offsets == {"publishers.connections.webrtc": 0}
    assert cond.evaluate({"publishers.connections.webrtc": 501}, NOW, None) == (True, 501)
    assert cond.evaluate({"publishers.connections.webrtc": 500}, NOW, None) == (False, 500)


def test_stale_is_seconds_since_timestamp_on_the_server_clock() -> None:
    """`lastRecvTime stale > 30s` measures against server_now and returns the age as value."""
    cond = compile_condition("lastRecvTime stale > 30s", S)
    assert cond.fields == frozenset({"providers.lastRecvTime"})
    assert cond.evaluate({"providers.lastRecvTime": ago(45)}, NOW, None) == (True, 45.0)
    assert cond.evaluate({"providers.lastRecvTime": ago(10)}, NOW, None) == (False, 10.0)
    assert cond.evaluate({"providers.lastRecvTime": ago(10)}, NOW + 25, None) == (True, 35.0)


def test_age_function_equals_stale() -> None:
    """`age(x)` is the same number as `x stale`."""
    sample: dict[str, Value] = {"providers.lastRecvTime": ago(12.5)}
    assert run("age(lastRecvTime) > 10s", sample) == run("lastRecvTime stale > 10s", sample)
    assert run("age(providers.lastRecvTime) > 10s", sample) == (True, 12.5)


def test_missing_timestamp_is_no_value() -> None:
    """A timestamp the sample lacks gives no age, so the condition cannot hold or fail."""
    assert run("lastRecvTime stale > 30s") == (None, None)


# ------------------------------------------------------------------------------ literals


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("42", 42), ("2.5", 2.5), ("1e3", 1000.0), ("500ms", 0.5), ("30s", 30), ("5m", 300),
        ("1h", 3600), ("1d", 86400), ("1w", 604800), ("1h30m", 5400.0), ("1m30s", 90.0),
        ("1.5s", 1.5), ("100bps", 100), ("5kbps", 5000), ("5Mbps", 5_000_000),
        ("1.5Mbps", 1_500_000.0), ("2Gbps", 2_000_000_000), ("1B", 1), ("5KB", 5000),
        ("5MB", 5_000_000), ("2GB", 2_000_000_000), ("1KiB", 1024), ("1MiB", 1_048_576),
        ("1GiB", 1_073_741_824), ("50%", 0.5), ("12.5%", 0.125), ("-5MB", -5_000_000),
    ],
)  # fmt: skip
def test_number_literals_and_units(literal: str, expected: float) -> None:
    """Every literal unit converts to seconds, bits/s, bytes or a fraction."""
    holds, value = run(f"{literal} == {literal}")
    assert holds is True
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('sourceType == "Rtmp"', True), ("sourceType == 'Rtmp'", True),
        ('sourceType != "Rtmp"', False), ('sourceType == "SRT"', False),
        (r'sourceType == "Rt\"mp"', False), (r"sourceType == 'it\'s'", False),
        # a value OME may add later is no error, whatever its case
        ('sourceType == "NewIngest"', False), ('sourceType != "newingest"', True),
    ],
)  # fmt: skip
def test_string_literals(text: str, expected: bool) -> None:
    """Double- and single-quoted strings compare with == and != against text fields."""
    assert run(text, {"sourceType": "Rtmp"}) == (expected, "Rtmp")


def test_escaped_quote_inside_string() -> None:
    """A backslash keeps a quote inside the string."""
    assert run(r"sourceType == 'it\'s'", {"sourceType": "it's"}) == (True, "it's")


def test_bool_literals_and_bool_fields() -> None:
    """true/false, bare bool fields, `not`, and ==/!= on bools."""
    sample: dict[str, Value] = {"video.hasBframes": True}
    assert run("true") == (True, True)
    assert run("false") == (False, False)
    assert run("video.hasBframes", sample) == (True, True)
    assert run("not video.hasBframes", sample) == (False, True)
    assert run("video.hasBframes == false", sample) == (False, True)
    assert run("video.hasBframes != false", sample) == (True, True)


# ---------------------------------------------------------------------------- precedence


@pytest.mark.parametrize(
    "text",
    [
        "2 + 3 * 4 == 14", "(2 + 3) * 4 == 20", "10 - 4 - 3 == 3", "8 / 4 / 2 == 1",
        "-2 * 3 == -6", "- -2 == 2", "2 * -3 == -6", "not 1 > 2", "not not 1 < 2",
        "true or false and false", "not (true and false)", "(1 < 2) == true",
        "abs(-3) == 3", "min(4, 2, 3) == 2", "max(4, 2, 3) == 4", "1 + 2 > 2 and 3 > 2",
    ],
)  # fmt: skip
def test_precedence(text: str) -> None:
    """`* /` bind tighter than `+ -`, then comparison, `not`, `and`, `or`; all left-assoc."""
    assert run(text)[0] is True


def test_precedence_of_and_over_or_changes_result() -> None:
    """Parentheses around `or` change what `and` applies to."""
    assert run("(true or false) and false")[0] is False
    assert run("true or (false and false)")[0] is True


def test_stale_binds_tighter_than_arithmetic() -> None:
    """`x stale * 2` doubles the age, not the timestamp."""
    sample: dict[str, Value] = {"providers.lastRecvTime": ago(20)}
    assert run("lastRecvTime stale * 2 > 30s", sample) == (True, 40.0)
    assert run("-lastRecvTime stale < 0", sample) == (True, -20.0)


def test_whitespace_and_newlines_are_ignored() -> None:
    """Conditions written over several YAML lines parse the same."""
    text = "webrtc publishers > 1\n  and\tllhls publishers > 1"
    sample: dict[str, Value] = {
        "publishers.connections.webrtc": 2, "publishers.connections.llhls": 2,
    }  # fmt: skip
    assert run(text, sample) == (True, 2)


# ------------------------------------------------------------------- three-valued logic

_BOOLS: dict[bool | None, str] = {True: "true", False: "false", None: "video.bypass"}


def _kleene_and(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _kleene_or(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


@pytest.mark.parametrize("a", [True, False, None])
@pytest.mark.parametrize("b", [True, False, None])
def test_three_valued_and_or(a: bool | None, b: bool | None) -> None:
    """None and False → False, None or True → True, otherwise a missing side gives None."""
    assert run(f"{_BOOLS[a]} and {_BOOLS[b]}")[0] is _kleene_and(a, b)
    assert run(f"{_BOOLS[a]} or {_BOOLS[b]}")[0] is _kleene_or(a, b)


def test_not_of_no_value_is_no_value() -> None:
    """`not` keeps an unknown unknown."""
    assert run("not video.bypass") == (None, None)


def test_comparison_with_missing_operand() -> None:
    """A missing left side gives (None, None); a missing right side keeps the left as value."""
    assert run("totalConnections > 5") == (None, None)
    assert run("totalConnections > maxTotalConnections", {"publishers.totalConnections": 3}) == (
        None,
        3,
    )


def test_arithmetic_with_missing_or_zero_divisor_is_no_value() -> None:
    """Arithmetic on a missing field, and division by zero, give no value instead of errors."""
    sample: dict[str, Value] = {"publishers.totalConnections": 4, "publishers.viewers": 0}
    assert run("totalConnections / viewers > 1", sample) == (None, None)
    assert run("totalConnections + maxTotalConnections > 1", sample) == (None, None)
    assert run("totalConnections / 2 > 1", sample) == (True, 2.0)


def test_missing_connection_key_is_zero() -> None:
    """Connection keys an OME release does not send count as 0; other fields do not."""
    assert run("dash publishers == 0") == (True, 0)
    assert run(
        "webrtc publishers + llhls publishers > 1", {"publishers.connections.webrtc": 2}
    ) == (
        True,
        2,
    )


def test_and_short_circuits_history_calls() -> None:
    """Once `and` sees False (or `or` sees True) the rest is not evaluated."""
    history = FakeHistory()
    assert run("false and rate(totalBytesIn) > 0", history=history) == (False, False)
    assert run("true or rate(totalBytesIn) > 0", history=history) == (True, True)
    assert history.calls == []
    assert run("video.bypass and rate(totalBytesIn) > 0", history=history)[0] is None
    assert history.calls == [("rate", "providers.totalBytesIn", None)]


# --------------------------------------------------------------------------------- value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("totalConnections > 1", 7),
        ("1 < totalConnections", 7),  # a constant on the left: the measured side is the value
        ("totalConnections > 1 and viewers > 100", 7),
        ("viewers > 100 or totalConnections > 1", 3),
        ("not (viewers > 1)", 3),
        ("totalConnections * 2 > 1", 14),
        ("video.hasBframes", True),
        ("not video.hasBframes", True),
    ],
)
def test_value_is_left_side_of_first_comparison(text: str, value: Value) -> None:
    """The value shown in alerts is the left side of the (leftmost) top-level comparison."""
    sample: dict[str, Value] = {
        "publishers.totalConnections": 7, "publishers.viewers": 3, "video.hasBframes": True,
    }  # fmt: skip
    assert run(text, sample)[1] == value


# --------------------------------------------------------------------- names and scopes


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("publishers.totalConnections > 1", "publishers.totalConnections"),
        ("totalBytesIn > 1", "providers.totalBytesIn"),
        ("maxTotalConnections > 1", "publishers.maxTotalConnections"),
        ("lastRecvTime stale > 1s", "providers.lastRecvTime"),
        ("providers.connections.webrtc > 1", "providers.connections.webrtc"),
        ("rtmp providers > 0", "providers.connections.rtmp"),
        ("LLHLS publishers > 0", "publishers.connections.llhls"),
        ("viewers > 0", "publishers.viewers"),
        ("video.framerateLatest < 20", "video.framerateLatest"),
    ],
)
def test_names_resolve_to_catalogue_paths(text: str, path: str) -> None:
    """Dotted paths, unique bare names and `<protocol> publishers|providers` resolve."""
    assert compile_condition(text, S).fields == frozenset({path})


def test_streams_counts_listed_streams_at_app_and_vhost_scope() -> None:
    """`streams < 1` works at app and vhost scope and reads the `streams` field."""
    for scope in (Scope.APP, Scope.VHOST, Scope.SERVER):
        cond = compile_condition("streams < 1", scope)
        assert cond.fields == frozenset({"streams"})
        assert cond.evaluate({"streams": 0}, NOW, None) == (True, 0)
        assert cond.evaluate({"streams": 3}, NOW, None) == (False, 3)


@pytest.mark.parametrize(
    ("text", "scope", "message"),
    [
        ("streams < 1", Scope.STREAM,
         "streams is not reported at stream scope, only at server, vhost and app scope"),
        ("video.framerateLatest < 20", Scope.APP,
         "video.framerateLatest is not reported at app scope, only at stream scope"),
        ('sourceType == "Rtmp"', Scope.VHOST,
         "sourceType is not reported at vhost scope, only at stream scope"),
    ],
)  # fmt: skip
def test_scope_errors_name_where_the_field_exists(text: str, scope: Scope, message: str) -> None:
    """A field read at a scope that does not report it is an error naming where it exists."""
    assert error_of(text, scope) == (message, 0)


def test_field_offsets_and_history_bookkeeping() -> None:
    """fields, field_offsets, history_fields and max_window describe what the rule reads."""
    text = "rate(totalBytesIn, 1m) * 8 > 5Mbps and avg_over(viewers, 5m) > 2 and totalBytesIn > 0"
    cond = compile_condition(text, S)
    assert cond.fields == frozenset({"providers.totalBytesIn", "publishers.viewers"})
    assert cond.field_offsets == {"providers.totalBytesIn": 5, "publishers.viewers": 48}
    assert cond.history_fields == frozenset({"providers.totalBytesIn", "publishers.viewers"})
    assert cond.max_window == 300.0
    plain = compile_condition("totalBytesIn > 0 and rate(totalBytesOut) > 0", S)
    assert plain.history_fields == frozenset({"publishers.totalBytesOut"})
    assert plain.max_window == 0.0


# ---------------------------------------------------------------------------- absent


@pytest.mark.parametrize("text", ["absent", "  absent\n"])
def test_absent_is_a_whole_condition(text: str) -> None:
    """`absent` compiles to a marker the engine acts on; a present target never holds it."""
    cond = compile_condition(text, S)
    assert cond.is_absent
    assert cond.fields == frozenset()
    assert cond.evaluate({}, NOW, None) == (False, None)
    assert not compile_condition("totalConnections > 0", S).is_absent


# ------------------------------------------------------------------- history functions


@pytest.mark.parametrize(
    ("text", "call"),
    [
        ("rate(totalBytesIn) > 1", ("rate", "providers.totalBytesIn", None)),
        ("rate(totalBytesOut, 1m) > 1", ("rate", "publishers.totalBytesOut", 60.0)),
        ("delta(totalBytesIn, 5m) > 1", ("delta", "providers.totalBytesIn", 300.0)),
        ("avg_over(avgThroughputIn, 5m) > 1", ("avg_over", "providers.avgThroughputIn", 300.0)),
        ("min_over(llhls publishers, 30s) > 1", ("min_over", "publishers.connections.llhls", 30)),
        ("max_over(viewers, 1h30m) > 1", ("max_over", "publishers.viewers", 5400.0)),
    ],
)  # fmt: skip
def test_history_functions_ask_the_history_view(
    text: str, call: tuple[str, str, float | None]
) -> None:
    """Each history function asks the engine's view with the field path and window seconds."""
    history = FakeHistory(answer=2.0)
    assert run(text, history=history) == (True, 2.0)
    assert history.calls == [call]


def test_history_without_enough_samples_is_no_value() -> None:
    """No history view, or a view without enough samples, gives no value."""
    assert run("rate(totalBytesIn) > 1") == (None, None)
    assert run("rate(totalBytesIn) > 1", history=FakeHistory(answer=None)) == (None, None)


def test_rate_of_bytes_times_eight_compares_with_bit_rate() -> None:
    """`rate(x) * 8` turns bytes/s into bits/s, so a bit-rate literal is fine after it."""
    history = FakeHistory(answer=1_000_000.0)
    assert run("rate(totalBytesIn) * 8 > 5Mbps", history=history) == (True, 8_000_000.0)
    assert run("rate(totalBytesIn) > 500KB", history=history) == (True, 1_000_000.0)


# ---------------------------------------------------------------------------- errors

_TOO_DEEP = "the condition nests deeper than 32 levels"

ERRORS: list[tuple[str, str, int]] = [
    # shape
    ("", "the condition is empty", 0),
    ("  \n ", "the condition is empty", 0),
    ("> 5", "the condition must start with a value, not '>'", 0),
    ("totalConnections >", "expected a value after '>'", 18),
    ("totalConnections > )", "expected a value after '>', not ')'", 19),
    ("totalConnections > and", "expected a value after '>', not 'and'", 19),
    ("totalConnections > 5)", "unexpected ')'", 20),
    ("totalConnections > 5,", "unexpected ','", 20),
    ("(totalConnections > 5", "unclosed '('", 0),
    ("(totalConnections > 5 viewers)",
     "unexpected 'viewers'; expected an operator, 'and', 'or' or ')'", 22),
    ("totalConnections > 5 viewers > 1",
     "unexpected 'viewers'; expected an operator, 'and', 'or'", 21),
    ("totalConnections > 5 AND viewers > 1", "write 'and' in lower case", 21),
    ("True", "write 'true' in lower case", 0),
    ("1 < viewers < 5",
     "comparisons cannot be chained; join them with 'and', e.g. 'a > 1 and a < 5'", 12),
    ("(" * 40 + "true" + ")" * 40, _TOO_DEEP, 32),
    ("-" * 40 + "1 > 0", _TOO_DEEP, 32),
    ("not " * 40 + "true", _TOO_DEEP, 128),
    # characters and literals
    ("viewers = 5", "use '==' to compare", 8),
    ("true && false", "use 'and' instead of '&'", 5),
    ("true || false", "use 'or' instead of '|'", 5),
    ("!true", "use 'not' instead of '!'", 0),
    ("viewers > 5 % 2", "'%' goes right after a number, e.g. 50%", 12),
    ("viewers > 5 # note", "unexpected character '#'", 12),
    ('sourceType == "Rtmp', 'unclosed string; add the closing "', 14),
    ("sourceType == 'Rtmp", "unclosed string; add the closing '", 14),
    ("avgThroughputIn > 5mbps", "unknown unit 'mbps' in '5mbps'; did you mean 5Mbps?", 18),
    ("lastRecvTime stale > 30sec", "unknown unit 'sec' in '30sec'; did you mean 30s?", 21),
    ("viewers > 5xyz", "unknown unit 'xyz' in '5xyz'; use a duration (500ms, 30s, 5m, 1h, 1d, "
     "1h30m), a bit rate (bps, kbps, Mbps, Gbps), a size (B, KB, MB, GB, KiB, MiB, GiB) or %", 10),
    ("avgThroughputIn > 5 Mbps",
     "write the unit right after the number, without a space: 5Mbps", 20),
    # names
    ("totalBytesInn > 1", "unknown field 'totalBytesInn'; did you mean 'totalBytesIn'?", 0),
    ("connections.webrtc > 1", "field 'connections.webrtc' is ambiguous; write one of: "
     "providers.connections.webrtc, publishers.connections.webrtc", 0),
    ("webrtcc publishers > 1", "unknown publisher protocol 'webrtcc'; did you mean 'webrtc'?", 0),
    ("rtmpp providers > 1", "unknown provider protocol 'rtmpp'; did you mean 'rtmp'?", 0),
    ("rat(totalBytesIn) > 1", "unknown function 'rat'; did you mean 'rate'?", 0),
    ("zzz(1) > 1", "unknown function 'zzz'; functions: " + ", ".join(FUNCTIONS), 0),
    ("rate > 1", "rate is a function; call it like rate(totalBytesIn)", 0),
    ("absent or viewers > 1", "'absent' must be the whole condition: it fires when a name in "
     "'match' is not listed", 0),
    ("stale > 30s", "'stale' goes after a timestamp field, e.g. 'lastRecvTime stale > 30s'", 0),
    ('sourceType == Rtmp', 'to compare sourceType with text, quote it: "Rtmp"', 14),
    # types
    ("avgThroughputIn", "avgThroughputIn is a number, not a condition; compare it, e.g. "
     "'avgThroughputIn > 1Mbps'", 0),
    ("sourceType", "sourceType is text, not a condition; compare it, e.g. "
     "'sourceType == \"...\"'", 0),
    ("viewers and true", "viewers is a number, not a condition; compare it, e.g. "
     "'viewers > 0'", 0),
    ("not lastRecvTime stale", "lastRecvTime stale is a number, not a condition; compare it, "
     "e.g. 'lastRecvTime stale > 30s'", 4),
    ("lastRecvTime > 30", "lastRecvTime is a timestamp; use 'lastRecvTime stale > 30s' or "
     "'age(lastRecvTime)' for its age in seconds", 0),
    ("5 < createdTime + 1", "createdTime is a timestamp; use 'createdTime stale > 30s' or "
     "'age(createdTime)' for its age in seconds", 4),
    ("lastRecvTime", "lastRecvTime is a timestamp; use 'lastRecvTime stale > 30s' or "
     "'age(lastRecvTime)' for its age in seconds", 0),
    ("avgThroughputIn stale > 3", "'stale' goes after a timestamp field such as lastRecvTime; "
     "avgThroughputIn is a number", 16),
    ("age(totalBytesIn) > 1", "age() needs a timestamp field such as lastRecvTime; "
     "totalBytesIn is a number", 4),
    ('sourceType > "a"', "text can only be compared with '==' or '!='", 11),
    ("video.hasBframes > false", "true/false values can only be compared with '==' or '!='", 17),
    ("sourceType == 5", "cannot compare text with a number", 14),
    ("video.hasBframes == 1", "cannot compare true/false with a number", 20),
    ('viewers + "a" > 1', '"a" is text, not a number', 10),
    ("-video.hasBframes < 1", "video.hasBframes is true/false, not a number", 1),
    # units
    ("avgThroughputIn > 5MB", "avgThroughputIn is in bits/s; write a bit rate such as 5Mbps", 18),
    ("5MB < avgThroughputIn", "avgThroughputIn is in bits/s; write a bit rate such as 5Mbps", 0),
    ("lastThroughputIn > 2Mbps", "lastThroughputIn is in bytes (counted over the last ~1 s), "
     "not bits/s; multiply it by 8 (lastThroughputIn * 8) or compare it with a size such as "
     "250KB", 19),
    ("totalBytesIn > 2Mbps",
     "totalBytesIn is a byte counter; compare rate(totalBytesIn) * 8 with a bit rate", 15),
    ("delta(totalBytesIn, 5m) > 30s",
     "delta(totalBytesIn, 5m) is in bytes; write a size such as 5MB", 26),
    ("rate(totalBytesIn) > 5Mbps", "rate(totalBytesIn) is in bytes/s; write rate(totalBytesIn) "
     "* 8 to compare it with a bit rate", 21),
    ("rate(totalBytesIn) > 5s",
     "rate(totalBytesIn) is in bytes/s; compare it with a size per second such as 1MB", 21),
    ("lastRecvTime stale > 5MB",
     "the age of lastRecvTime is in seconds; write a duration such as 30s", 21),
    ("age(lastRecvTime) > 1Gbps",
     "age(lastRecvTime) is in seconds; write a duration such as 30s", 20),
    ("avg_over(avgThroughputIn, 5m) < 1KB",
     "avg_over(avgThroughputIn, 5m) is in bits/s; write a bit rate such as 5Mbps", 32),
    ("abs(avgThroughputIn) > 1KB",
     "abs(avgThroughputIn) is in bits/s; write a bit rate such as 5Mbps", 23),
    ("webrtc publishers > 30s",
     "webrtc publishers is a count; compare it with a plain number, not a duration", 20),
    ("video.keyFrameInterval > 2s",
     "video.keyFrameInterval is in frames; compare it with a plain number, not a duration", 25),
    # functions
    ("rate(avgThroughputIn) > 1", "rate() needs a counter such as totalBytesIn; avgThroughputIn "
     "is not one, so use delta(avgThroughputIn, 5m) for its change over a window", 5),
    ("rate() > 1", "rate() takes a counter field and an optional window, e.g. "
     "rate(totalBytesIn) or rate(totalBytesIn, 1m)", 0),
    ("delta(totalBytesIn) > 1",
     "delta() takes a field and a window, e.g. delta(totalBytesIn, 5m)", 0),
    ("avg_over(viewers, 5m, 1m) > 1",
     "avg_over() takes a field and a window, e.g. avg_over(avgThroughputIn, 5m)", 0),
    ("delta(totalBytesIn, 0s) > 1", "the window of delta() must be longer than 0", 20),
    ("delta(totalBytesIn, 300) > 1", "the window of delta() must be a duration such as 5m", 20),
    ("delta(totalBytesIn, -5m) > 1", "the window of delta() must be a duration such as 5m", 20),
    ("rate(totalBytesIn, 1e999s) > 1", "the window of rate() is too long", 19),
    ("max_over(viewers * 2, 5m) > 1",
     "the first argument of max_over() must be a field name, not an expression", 9),
    ("min_over(lastRecvTime, 5m) > 1",
     "min_over() needs a number field; lastRecvTime is a timestamp", 9),
    ("avg_over(sourceType, 5m) > 1", "avg_over() needs a number field; sourceType is text", 9),
    ("delta(totalBytesIn, 5m > 1", "unclosed '('", 5),
    ("delta(totalBytesIn 5m) > 1",
     "expected ',' or ')' after an argument of delta(), not '5m'", 19),
    ("abs(1, 2) > 1", "abs() takes one value, e.g. abs(x)", 0),
    ("age() > 1", "age() takes one timestamp field, e.g. age(lastRecvTime)", 0),
    ("max(1) > 1", "max() takes two or more values, e.g. max(a, b)", 0),
    ("min(avgThroughputIn, 5m) > 1", "min() compares values; for the minimum over a window "
     "write min_over(avgThroughputIn, 5m)", 0),
    ("max(1, sourceType) > 1", "sourceType is text, not a number", 7),
    ('sourceType == "RTMP"',
     'sourceType is never "RTMP": OME writes "Rtmp" (text comparisons are exact)', 14),
    ('"srt" != sourceType',
     'sourceType is never "srt": OME writes "SRT" (text comparisons are exact)', 0),
    ('video.bitrateLatest > 1 and video.codec == "h264"',
     'video.codec is never "h264": OME writes "H264" (text comparisons are exact)', 43),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message", "offset"), ERRORS)
def test_error_messages_and_offsets(text: str, message: str, offset: int) -> None:
    """Each mistake gets its specific message, pointing at the offending token."""
    assert error_of(text) == (message, offset)


def test_error_str_names_the_column() -> None:
    """The exception text carries the 1-based column for people reading a raw traceback."""
    with pytest.raises(ExprError, match=r"at column 19 of the expression"):
        compile_condition("totalConnections >", S)


def test_python_code_is_not_evaluated() -> None:
    """Text that would be Python is just an unknown name, never executed."""
    assert error_of("__import__('os').system('true')") == (
        "unknown function '__import__'; functions: " + ", ".join(FUNCTIONS),
        0,
    )


def test_first_mistake_from_the_left_is_reported() -> None:
    """A bad character further right does not hide an earlier mistake."""
    assert error_of("viewerz > 1 # comment") == (
        "unknown field 'viewerz'; did you mean 'viewers'?",
        0,
    )


# --------------------------------------------------------------------- robustness


def test_wrong_value_types_from_source_are_no_value() -> None:
    """A value of the wrong type (text where a number belongs) is no value, not a crash."""
    assert run("avgThroughputIn > 5Mbps", {"providers.avgThroughputIn": "fast"}) == (None, None)
    assert run("lastRecvTime stale > 1s", {"providers.lastRecvTime": "yesterday"}) == (None, None)
    assert run("viewers * 1000000000000000000000000000000000000000 > 1",
               {"publishers.viewers": 1e300}) == (True, float("inf"))  # fmt: skip


def test_conditions_compare_by_text_and_scope() -> None:
    """Equal text and scope give equal, equally hashed conditions (rules stay comparable)."""
    a = compile_condition("viewers > 1", S)
    assert a == compile_condition("viewers > 1", S)
    assert hash(a) == hash(compile_condition("viewers > 1", S))
    assert a != compile_condition("viewers > 1", Scope.APP)
    assert a != compile_condition("viewers > 2", S)
    assert isinstance(a, Condition)
    assert "viewers > 1" in repr(a)


# ------------------------------------------------------------------------ properties

_SOUP = [
    *FIELDS, *(p.rsplit(".", 1)[-1] for p in FIELDS), *FUNCTIONS,
    "webrtc", "llhls", "rtmp", "publishers", "providers", "and", "or", "not", "true", "false",
    "stale", "absent", "AND", ">", ">=", "<", "<=", "==", "!=", "+", "-", "*", "/", "(", ")",
    ",", "=", "!", "%", ".", "&", "|", '"', "'", "\\", "#", "0", "5", "2.5", "1e3", "1e999",
    "9" * 400, "500ms", "30s", "1h30m", "0s", "5Mbps", "5MB", "1KiB", "50%", "5xyz", "5 MB",
    '"Rtmp"', "'x'", "\n", "é", "٣",
]  # fmt: skip
_TYPICAL: dict[FieldType, Value] = {
    FieldType.NUMBER: 7, FieldType.TIME: datetime(2025, 12, 31, tzinfo=UTC),
    FieldType.STRING: "Rtmp", FieldType.BOOL: True,
}  # fmt: skip
_SAMPLE: dict[str, Value] = {path: _TYPICAL[spec.type] for path, spec in FIELDS.items()}


def _compiles_or_points_inside(text: str) -> None:
    for scope in (Scope.STREAM, Scope.APP):
        try:
            cond = compile_condition(text, scope)
        except ExprError as exc:
            assert 0 <= exc.offset <= len(text), (text, exc.offset)
            assert exc.message
            continue
        for fields in ({}, _SAMPLE):
            for history in (None, FakeHistory(answer=0.0)):
                holds, _value = cond.evaluate(fields, NOW, history)
                assert holds in (True, False, None)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_compiles_or_raises_expr_error(text: str) -> None:
    """Any text either compiles or raises ExprError pointing inside the text; nothing else."""
    _compiles_or_points_inside(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_SOUP), max_size=25), st.lists(st.sampled_from(["", " "])))
def test_token_soup_compiles_or_raises_expr_error(tokens: list[str], gaps: list[str]) -> None:
    """Random sequences of the language's own tokens never escape as other exceptions."""
    text = "".join(tok + (gaps[i % len(gaps)] if gaps else " ") for i, tok in enumerate(tokens))
    _compiles_or_points_inside(text)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["true", "false", "video.bypass"]), min_size=1, max_size=6),
    st.lists(st.sampled_from(["and", "or"]), min_size=5, max_size=5),
)
def test_three_valued_logic_matches_kleene(atoms: list[str], ops: list[str]) -> None:
    """Longer and/or chains agree with Kleene logic where `and` binds tighter than `or`."""
    values: dict[str, bool | None] = {"true": True, "false": False, "video.bypass": None}
    text = atoms[0]
    disjuncts: list[bool | None] = []
    current = values[atoms[0]]
    for op, atom in zip(ops, atoms[1:], strict=False):
        text += f" {op} {atom}"
        if op == "and":
            current = _kleene_and(current, values[atom])
        else:
            disjuncts.append(current)
            current = values[atom]
    expected = current
    for d in disjuncts:
        expected = _kleene_or(d, expected)
    assert run(text)[0] is expected


# A reference interpreter over generated trees: the compiled closures must agree with it.
_NUM_PATHS = ("publishers.totalConnections", "publishers.viewers", "publishers.connections.webrtc")
_Tree = tuple[Any, ...]


def _num_branches(kids: st.SearchStrategy[_Tree]) -> st.SearchStrategy[_Tree]:
    return st.one_of(
        st.tuples(st.just("bin"), st.sampled_from("+-*/"), kids, kids),
        st.tuples(st.just("neg"), kids),
        st.tuples(st.just("abs"), kids),
        st.tuples(st.sampled_from(["min", "max"]), st.lists(kids, min_size=2, max_size=3)),
    )


_NUM_TREES = st.recursive(
    st.one_of(
        st.tuples(st.just("lit"), st.integers(0, 9)),
        st.tuples(st.just("field"), st.sampled_from(_NUM_PATHS)),
    ),
    _num_branches,
    max_leaves=5,
)
_BOOL_TREES = st.recursive(
    st.one_of(
        st.tuples(st.just("lit"), st.booleans()),
        st.just(("field", "video.bypass")),
        st.tuples(st.just("cmp"), st.sampled_from([">", ">=", "<", "<=", "==", "!="]),
                  _NUM_TREES, _NUM_TREES),
    ),
    lambda kids: st.one_of(
        st.tuples(st.just("logic"), st.sampled_from(["and", "or"]), kids, kids),
        st.tuples(st.just("not"), kids),
    ),
    max_leaves=4,
)  # fmt: skip
_SAMPLES = st.fixed_dictionaries(
    {
        **{p: st.one_of(st.none(), st.integers(-3, 5)) for p in _NUM_PATHS},
        "video.bypass": st.one_of(st.none(), st.booleans()),
    }
).map(lambda d: {k: v for k, v in d.items() if v is not None})


def _text(t: _Tree) -> str:
    kind = t[0]
    if kind == "lit":
        return str(t[1]).lower()
    if kind == "field":
        return str(t[1])
    if kind in ("bin", "cmp", "logic"):
        return f"({_text(t[2])} {t[1]} {_text(t[3])})"
    if kind == "neg":
        return f"-({_text(t[1])})"
    if kind == "not":
        return f"not ({_text(t[1])})"
    return (
        f"{kind}({', '.join(_text(k) for k in t[-1])})" if kind != "abs" else f"abs({_text(t[1])})"
    )


def _ref(t: _Tree, fields: dict[str, Value]) -> Any:
    kind = t[0]
    if kind == "lit":
        return t[1]
    if kind == "field":
        return fields.get(t[1], 0 if t[1].startswith("publishers.connections.") else None)
    if kind in ("neg", "abs", "not"):
        v = _ref(t[1], fields)
        if v is None:
            return None
        return -v if kind == "neg" else abs(v) if kind == "abs" else not v
    if kind in ("min", "max"):
        vs = [_ref(k, fields) for k in t[1]]
        return None if None in vs else (min(vs) if kind == "min" else max(vs))
    a, b = _ref(t[2], fields), _ref(t[3], fields)
    if kind == "logic":
        return _kleene_and(a, b) if t[1] == "and" else _kleene_or(a, b)
    if a is None or b is None or (t[1] == "/" and b == 0):
        return None
    ops: dict[str, Any] = {
        "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
        ">": lambda: a > b, ">=": lambda: a >= b, "<": lambda: a < b, "<=": lambda: a <= b,
        "==": lambda: a == b, "!=": lambda: a != b,
    }  # fmt: skip
    return ops[t[1]]()


def _is_const(t: _Tree) -> bool:
    return t[0] == "lit" or (t[0] in ("neg", "abs") and _is_const(t[1]))


def _ref_value(t: _Tree, fields: dict[str, Value]) -> Any:
    while t[0] in ("logic", "not"):
        t = t[2] if t[0] == "logic" else t[1]
    if t[0] == "cmp":
        t = t[3] if _is_const(t[2]) and not _is_const(t[3]) else t[2]
    return _ref(t, fields)


@settings(max_examples=200, deadline=None)
@given(_BOOL_TREES, _SAMPLES)
def test_compiled_conditions_agree_with_a_reference_interpreter(
    tree: _Tree, fields: dict[str, Value]
) -> None:
    """For generated well-typed conditions, (holds, value) equals a naive tree walk's answer."""
    text = _text(tree)
    cond = compile_condition(text, S)
    assert cond.evaluate(fields, NOW, None) == (_ref(tree, fields), _ref_value(tree, fields))
