"""The config keys of flap detection and server dependencies: defaults, overrides, errors."""

from __future__ import annotations

import pytest

from omealert.config.load import load_config_text
from omealert.errors import ConfigError
from omealert.rules import FlapSpec, Settings

SERVERS = """\
servers:
  - name: origin-1
    url: http://127.0.0.1:8081
  - name: edge-1
    url: http://127.0.0.1:8082
    depends_on: [origin-1]
"""
RULE = "rules:\n  - name: r\n    when: viewers > 1\n"


def load(text: str) -> Settings:
    return load_config_text(text, "t.yaml", {})


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text)
    return [str(i) for i in info.value.issues]


def test_flapping_is_on_by_default_with_icingas_numbers() -> None:
    """A rule and ome-api-down without a flapping key detect flapping with 20/30%/25%."""
    s = load(SERVERS + RULE)
    assert s.rules[0].flapping == FlapSpec(window=20, high=0.30, low=0.25)
    assert s.api_down.flapping == FlapSpec()
    assert s.dependency_grace_s == 120.0
    assert s.servers[1].depends_on == ("origin-1",) and s.servers[0].depends_on == ()


def test_flapping_set_in_defaults_rule_and_api_down() -> None:
    """defaults.flapping is inherited; a rule's own and `false` win; percentages are shares."""
    text = SERVERS + "defaults:\n  flapping: {window: 10, high: 50%, low: 20%}\n"
    text += "ome_api_down:\n  flapping: false\ndependency_grace: 30s\n"
    text += RULE + "  - name: q\n    when: viewers > 2\n    flapping: {high: 40%}\n"
    text += "  - name: quiet\n    when: viewers > 3\n    flapping: false\n"
    s = load(text)
    assert s.rules[0].flapping == FlapSpec(window=10, high=0.5, low=0.2)
    assert s.rules[1].flapping == FlapSpec(window=20, high=0.4, low=0.25)
    assert s.rules[2].flapping is None
    assert s.api_down.flapping is None
    assert s.dependency_grace_s == 30.0


def test_bad_flapping_values_point_at_their_key() -> None:
    """A bare number, a share over 100%, low above high and a tiny window: each at FILE:LINE:COL."""
    text = SERVERS + RULE + "    flapping: {window: 1, high: 30, low: 150%}\n"
    text += "  - name: q\n    when: viewers > 2\n    flapping: {high: 20%, low: 30%}\n"
    assert errors_of(text) == [
        "t.yaml:10:24: window must be at least 2",
        "t.yaml:10:33: write a percentage such as 30%, not a bare number (30)",
        "t.yaml:10:42: low must be above 0% and at most 100% (got 150%)",
        "t.yaml:13:15: low (30%) must not be above high (20%)",
    ]


def test_depends_on_unknown_self_and_cycles_are_errors_at_the_entry() -> None:
    """Unknown names get a suggestion; a server on itself and a cycle are refused where written."""
    text = SERVERS.replace("[origin-1]", "[orgin-1, edge-1]")
    text += "  - name: mid\n    url: http://127.0.0.1:8083\n    depends_on: [top]\n"
    text += "  - name: top\n    url: http://127.0.0.1:8084\n    depends_on: [mid]\n"
    assert errors_of(text) == [
        "t.yaml:6:18: unknown server 'orgin-1' in depends_on — did you mean 'origin-1'?",
        "t.yaml:6:27: server 'edge-1' cannot depend on itself",
        "t.yaml:12:18: depends_on makes a cycle: mid → top → mid",
    ]


def test_dependency_cause_is_read_from_the_rule() -> None:
    """dependency_cause: true/false overrides the detection; leaving it out keeps None."""
    text = SERVERS + RULE + "    dependency_cause: true\n"
    text += "  - name: q\n    when: lastRecvTime stale > 5s\n    dependency_cause: false\n"
    text += "  - name: auto\n    when: lastRecvTime stale > 5s\n"
    s = load(text)
    assert [r.dependency_cause for r in s.rules] == [True, False, None]
