"""Label matchers (``stream=cam-7``, ``app=~"live|pro"``) as silences, acks, routes and
inhibit rules write them, with regexes run by RE2 in linear time.

Why apart from rules.py: every stage that quiets or routes an alert matches labels, and
none of them needs the rest of a loaded config to do it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

__all__ = ["Matcher", "compile_label_regex", "matches_all"]


@cache
def _re2() -> tuple[Any, Any]:
    """RE2 and its options, loaded on first use (a command without regexes never pays)."""
    import re2

    options = re2.Options()
    options.log_errors = False  # the error comes back as an exception; no C++ log line
    return re2, options


#: What RE2 leaves out of Python's syntax, said whenever a pattern is refused.
RE2_HINT = "RE2 syntax: no backreferences, lookahead or lookbehind"


@lru_cache(maxsize=1024)  # silences are matched every tick, and RE2 keeps no cache of its own
def compile_label_regex(pattern: str) -> Any:
    """``pattern`` compiled by RE2, which matches in time linear in the text.

    Python's ``re`` backtracks: ``(a+)+$`` against a long label value would hold the loop
    for ever. RE2 (the engine of Alertmanager's matchers) refuses the constructs that need
    backtracking instead; ValueError says what is wrong with the pattern.
    """
    re2, options = _re2()
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        why = exc.args[0] if exc.args else "invalid pattern"
        if isinstance(why, bytes):
            why = why.decode("utf-8", "replace")
        if why.startswith(("invalid perl operator", "invalid escape sequence")):
            why = f"{why} ({RE2_HINT})"
        raise ValueError(why) from None


@dataclass(frozen=True, slots=True)
class Matcher:
    """A label matcher like Alertmanager's: ``name=value``, ``!=``, ``=~regex``, ``!~regex``.

    A missing label matches as the empty string. Regexes are RE2, anchored at both ends.
    """

    name: str
    op: str  # "=", "!=", "=~", "!~"
    value: str
    regex: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            object.__setattr__(self, "regex", compile_label_regex(self.value))

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = self.regex.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """Parse ``stream=~test.*``; raises ValueError naming what is wrong."""
        # The value is everything after the operator, stripped afterwards: a pattern that
        # trimmed it itself would rescan runs of spaces from each position inside them.
        m = _MATCHER.fullmatch(text.strip())
        if not m or "\n" in m.group(3).strip():
            raise ValueError(
                f"invalid matcher {text!r}: expected label=value, label!=value, "
                "label=~regex or label!~regex"
            )
        name, op, value = m.group(1), m.group(2), m.group(3).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        try:
            return cls(name, op, value)
        except ValueError as exc:
            raise ValueError(f"invalid regex in matcher {text!r}: {exc}") from None


_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)(.*)", re.DOTALL)


def matches_all(matchers: tuple[Matcher, ...], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)
