"""Label matchers of silences, routes and inhibit rules: RE2, anchored, linear in the text."""

from __future__ import annotations

import logging

import pytest

from omealert.notify.planner import compile_silences
from omealert.rules import Matcher
from omealert.state.records import Silence
from tests.helpers import finishes_within, in_child

#: Long enough that a backtracking engine needs minutes (``(a+)+$`` doubles its work with
#: every extra character), short enough that a linear one takes well under a millisecond.
LONG = "a" * 50_000 + "!"


@pytest.mark.parametrize(
    ("pattern", "short"),
    [("(a+)+$", "aaaa"), ("(a|aa)+$", "aaaa"), ("(a*)*b", "aaab"), ("(?:a+){2,}x", "aax")],
)
def test_nested_quantifier_finishes_on_a_long_value(pattern: str, short: str) -> None:
    """A nested-quantifier regex against a long label value answers instead of hanging."""
    matcher = Matcher.parse(f"stream=~{pattern}")

    def run() -> None:
        assert not matcher.matches({"stream": LONG})

    assert finishes_within(30, run)
    assert matcher.matches({"stream": short})


def test_regexes_are_anchored_at_both_ends() -> None:
    """``=~cam`` matches the whole value only, as Alertmanager's matchers do."""
    matcher = Matcher.parse("stream=~cam[0-9]")
    assert matcher.matches({"stream": "cam1"})
    assert not matcher.matches({"stream": "mycam1"})
    assert not matcher.matches({"stream": "cam12"})
    assert Matcher.parse("stream!~cam.*").matches({"stream": "bus"})
    assert Matcher.parse("missing=~").matches({})


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("stream=~(cam)\\1", "invalid escape sequence: \\1"),
        ("stream=~(?=cam).*", "invalid perl operator: (?="),
        ("stream!~.*(?<!test)", "invalid perl operator: (?<"),
    ],
)
def test_backtracking_syntax_is_refused_with_the_reason(text: str, why: str) -> None:
    """Backreferences and lookaround are refused, saying RE2 has none."""
    with pytest.raises(ValueError) as info:
        Matcher.parse(text)
    message = str(info.value)
    assert message.startswith(f"invalid regex in matcher {text!r}: {why}")
    assert message.endswith("(RE2 syntax: no backreferences, lookahead or lookbehind)")


def test_spaces_around_the_parts_are_trimmed() -> None:
    """Spaces around name, operator and value are trimmed in one pass, however many."""
    matcher = Matcher.parse("  app =~ " + " " * 20_000 + "live  ")
    assert Matcher.parse("app=" + " " * 50_000 + "\n  live").value == "live"
    assert (matcher.name, matcher.op, matcher.value) == ("app", "=~", "live")
    with pytest.raises(ValueError, match="invalid matcher"):
        Matcher.parse("app=live\nstream=x")

    def spaces_then_a_line_break() -> str:
        try:
            Matcher.parse("app=" + " " * 50_000 + "x\ny")
        except ValueError as exc:
            return str(exc)[-12:]
        return "parsed"

    assert in_child(spaces_then_a_line_break, 30) == "label!~regex"


def test_stored_silence_in_old_syntax_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    """A stored silence RE2 cannot read silences nothing and is logged once, not each tick."""
    old = Silence("0badc0de", ["stream=~(?!test).*"], 0.0, 10.0, "me", "", 0.0)
    good = Silence("600dc0de", ["stream=~cam.*"], 0.0, 10.0, "me", "", 0.0)
    with caplog.at_level(logging.WARNING, logger="omealert.notify.planner"):
        compiled = [compile_silences([old, good]) for _ in range(3)]
    assert all([s.id for s, _ in c] == ["600dc0de"] for c in compiled)
    told = [r.getMessage() for r in caplog.records]
    assert len(told) == 1 and told[0].startswith("silence 0badc0de matches nothing: ")
