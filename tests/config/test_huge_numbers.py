"""Numbers too large for Python's int()/float() in a config are config errors, not tracebacks."""

from __future__ import annotations

import pytest

from omealert.config.load import load_config_text
from omealert.errors import ConfigError

SERVER = "servers:\n  - name: origin-1\n    url: http://127.0.0.1:8081\n"


def issues(text: str) -> list[str]:
    try:
        load_config_text(text, "t.yaml", {})
    except ConfigError as exc:
        return [str(i) for i in exc.issues]
    return []


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        ("1" * 5_000, "a number of more than 40 characters"),  # int() raised ValueError
        ("1" * 41, "a number of more than 40 characters"),
        ("1e99999", "'1e99999' is too large a number"),  # was inf: a rule that always fired
        ("2e400Mbps", "'2e400' is too large a number"),
    ],
)
def test_a_huge_number_in_a_condition_is_an_error_at_its_column(literal: str, message: str) -> None:
    """A number literal too long or too large is refused at its FILE:LINE:COL."""
    text = SERVER + f"rules:\n  - name: r\n    when: avgThroughputIn < {literal}\n"
    found = issues(text)
    assert len(found) == 1
    assert found[0].startswith("t.yaml:6:")
    assert message in found[0]


def test_an_ordinary_number_in_a_condition_still_reads() -> None:
    """Forty digits and a finite exponent are numbers as before."""
    text = (
        SERVER
        + f"rules:\n  - name: r\n    when: totalBytesIn > {'9' * 40} or avgThroughputIn > 1e300\n"
    )
    assert issues(text) == []


def test_a_bare_number_too_large_for_a_float_as_a_duration_is_an_error() -> None:
    """``for: 0xfff…`` (5,000 hex digits) says a duration needs a unit; float() overflowed."""
    text = SERVER + "rules:\n  - name: r\n    when: viewers > 1\n    for: 0x" + "f" * 5_000 + "\n"
    assert issues(text) == [
        "t.yaml:7:10: a bare number is not a duration: write it with a unit, e.g. 30s"
    ]


def test_a_huge_number_as_a_label_value_says_to_quote_it() -> None:
    """``team: 0xfff…`` is refused with a hint, not int()'s own max-str-digits message."""
    text = SERVER + "rules:\n  - name: r\n    when: viewers > 1\n    labels: {team: 0x"
    text += "f" * 5_000 + "}\n"
    assert issues(text) == ["t.yaml:7:20: a number this large as a label value: put it in quotes"]


def test_a_long_base60_number_is_an_error_not_a_quadratic_int() -> None:
    """``interval: 59:59:…`` (YAML 1.1 base 60) is refused at its place, not built part by part."""
    text = "interval: " + ":".join(["59"] * 20_000) + "\n" + SERVER
    assert "t.yaml:1:11: this value is not a valid !!int: too many ':' parts" in issues(text)


def test_a_short_base60_number_still_reads_as_yaml_says() -> None:
    """``1:30`` stays what YAML 1.1 makes of it (90), so no existing config changes meaning."""
    from omealert.config.yamlsource import parse_yaml

    assert parse_yaml("x: 1:30\n", "t.yaml", {}).data == {"x": 90}


def test_max_in_flight_has_a_ceiling() -> None:
    """``max_in_flight: 10000000`` would open that many sockets and tasks: refused at its place."""
    found = issues(SERVER + "    max_in_flight: 10000000\n")
    assert len(found) == 1 and found[0].startswith("t.yaml:4:20:") and "1024" in found[0]
