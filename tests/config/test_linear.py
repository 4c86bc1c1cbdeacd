"""Config text is read in time linear in its length: no pattern rescans what it has read."""

from __future__ import annotations

from omealert.config.load import load_config_text
from omealert.errors import ConfigError
from tests.helpers import in_child

SERVER = "servers:\n  - name: origin-1\n    url: http://127.0.0.1:8081\n"


def issues(text: str) -> list[str]:
    try:
        load_config_text(text, "t.yaml", {})
    except ConfigError as exc:
        return [str(i) for i in exc.issues]
    return []


def test_many_unclosed_references_are_read_once() -> None:
    """20,000 unclosed ``${a:-`` in one value are reported, not rescanned 20,000 times."""
    text = (
        SERVER
        + "rules:\n  - name: r\n    when: viewers > 1\n    summary: '"
        + "${a:-" * 20_000
        + "'\n"
    )
    found = in_child(lambda: issues(text), 30)
    malformed = "malformed ${...}: write ${NAME} or ${NAME:-default}"
    assert found[:2] == [f"t.yaml:7:15: {malformed}", f"t.yaml:7:20: {malformed}"]
    assert found[10:] == ["t.yaml:7:65: and 19990 more ${...} problems in this value"]


def test_defaults_keep_dollars_but_do_not_nest() -> None:
    """A default may hold ``$``; a reference inside a default is an error, not half-read."""
    text = (
        SERVER + "rules:\n  - name: r\n    when: viewers > 1\n    summary: '${A:-x$y} ${A:-${B}}'\n"
    )
    assert issues(text) == [
        "t.yaml:7:25: malformed ${...}: write ${NAME} or ${NAME:-default}",
        "t.yaml:7:30: environment variable 'B' is not set (write ${B:-default} to give a default)",
    ]
    rules = "rules:\n  - name: r\n    when: viewers > 1\n    summary: '${A:-x$y}'\n"
    assert load_config_text(SERVER + rules, "t.yaml", {}).rules[0].summary == "x$y"
