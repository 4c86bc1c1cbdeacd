"""Pydantic's validation errors, reworded for operators and placed at a FILE:LINE:COL.

Pydantic says "Input should be a valid list"; an operator wants "expected a list of
servers, got text" on the line where the text is. The wording tables below know what each
place in the file should hold. Values are never echoed where they could be secrets: a
message says what *kind* of value was found, except for enum-like fields (severity, scope)
whose values are never secret and where the typo itself is the useful part.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from ..errors import ConfigIssue
from .yamlsource import YamlSource

__all__ = ["describe", "suggest", "translate"]

#: What a value at a path should be, for "expected X, got Y" messages. ``*`` is any list
#: index or mapping key.
_NOUNS: dict[tuple[str, ...], str] = {
    (): "a mapping of settings (servers:, rules:, channels:, ...)",
    ("servers",): "a list of servers",
    ("servers", "*"): "a server: a mapping with name: and url:",
    ("channels",): "a mapping of channel names to channels",
    ("channels", "*"): "a channel: a mapping with urls:",
    ("channels", "*", "urls"): "a list of apprise URLs",
    ("channels", "*", "urls", "*"): "an apprise URL",
    ("rules",): "a list of rules",
    ("rules", "*"): "a rule: a mapping with name: and when:",
    ("rules", "*", "match"): "a glob or a list of globs",
    ("rules", "*", "match", "*"): "a glob such as default/*/*",
    ("rules", "*", "labels"): "a mapping of label names to values",
    ("rules", "*", "labels", "*"): "a label value",
    ("rules", "*", "when"): "a condition such as 'webrtc publishers > 500'",
    ("rules", "*", "resolve_when"): "a condition",
    ("defaults",): "a mapping of rule defaults",
    ("routes",): "a list of routes",
    ("routes", "*"): "a route: a mapping with matchers: or severity:, and channels:",
    ("inhibit",): "a list of inhibit rules",
    ("inhibit", "*"): "an inhibit rule: a mapping with source:, target: and equal:",
    ("ome_api_down",): "a mapping of settings for the ome-api-down alert",
}
#: The same, by the last key, for lists that appear in several places.
_LIST_NOUNS = {
    "channels": ("a list of channel names", "a channel name"),
    "servers": ("a list of server names", "a server name"),
    "group_by": ("a list of label names", "a label name"),
    "equal": ("a list of label names", "a label name"),
    "matchers": ("a list of matchers such as severity=critical", "a matcher"),
    "source": ("a list of matchers such as rule=ome-api-down", "a matcher"),
    "target": ("a list of matchers such as rule!=ome-api-down", "a matcher"),
}
_TOO_SHORT = {
    ("servers",): "list at least one server to poll",
    ("channels", "*", "urls"): "a channel needs at least one URL",
    ("routes", "*", "channels"): "a route needs at least one channel",
    ("inhibit", "*", "source"): "an inhibit rule needs at least one source matcher",
    ("inhibit", "*", "target"): "an inhibit rule needs at least one target matcher",
}
_TYPE_NOUNS = {
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "string_type": "text",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
}


def describe(value: object) -> str:
    """The kind of a YAML value, for messages that must not echo it (it may be a secret)."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def translate(src: YamlSource, err: Any, root: type[BaseModel]) -> ConfigIssue:
    """One pydantic error (an item of ``ValidationError.errors()``) as a ConfigIssue."""
    loc: tuple[str | int, ...] = tuple(err["loc"])
    kind: str = err["type"]
    path, at_key = src.locate(loc)
    pattern, model = _walk(root, loc)
    name = next((p for p in reversed(loc) if isinstance(p, str) and p != "[key]"), "")
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if not loc and value is None:
        message = "the file is empty: a config needs at least a servers: list"
    elif kind == "missing":
        message = f"missing required key '{loc[-1]}'"
    elif kind == "extra_forbidden":
        allowed = _keys_of(model)
        message = f"unknown key '{loc[-1]}'" + suggest(str(loc[-1]), allowed, "expected one of")
        at_key = True
    elif kind in ("enum", "literal_error"):
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        if isinstance(value, str):
            message = f"invalid {name} '{value}'" + suggest(value, expected, "expected one of")
        else:
            message = f"{name} must be one of {', '.join(expected)}; got {describe(value)}"
    elif kind in ("value_error", "assertion_error"):
        message = str(ctx.get("error", err["msg"]))
        if message.startswith("must "):
            message = f"{name} {message}"
    elif kind == "too_short":
        message = _TOO_SHORT.get(pattern, f"{name} must not be empty")
    elif kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        word = "at least" if kind == "greater_than_equal" else "more than"
        message = f"{name} must be {word} {bound}"
    elif kind in _TYPE_NOUNS:
        noun = _noun(pattern) or _TYPE_NOUNS[kind]
        message = f"expected {noun}, got {describe(value)}"
        if kind == "string_type" and isinstance(value, int | float):
            message += " (put it in quotes)"
    else:
        message = str(err["msg"])
    line, col = src.position(path, key=at_key)
    return ConfigIssue(src.filename, line, col, message)


def _noun(pattern: tuple[str, ...]) -> str | None:
    if pattern in _NOUNS:
        return _NOUNS[pattern]
    if pattern and pattern[-1] in _LIST_NOUNS:
        return _LIST_NOUNS[pattern[-1]][0]
    if len(pattern) >= 2 and pattern[-1] == "*" and pattern[-2] in _LIST_NOUNS:
        return _LIST_NOUNS[pattern[-2]][1]
    return None


def _walk(
    root: type[BaseModel], loc: tuple[str | int, ...]
) -> tuple[tuple[str, ...], type[BaseModel] | None]:
    """Follow ``loc`` through the model types: the path with indexes and mapping keys as
    ``*``, and the model that holds the last element (to list its keys)."""
    tp: Any = root
    pattern: list[str] = []
    holder: type[BaseModel] | None = root
    for i, part in enumerate(loc):
        if part == "[key]":
            break
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            holder = tp if i == len(loc) - 1 else None
            field = next(
                (f for n, f in tp.model_fields.items() if (f.alias or n) == part),
                None,
            )
            pattern.append(str(part))
            tp = field.annotation if field is not None else None
        elif getattr(tp, "__origin__", None) in (list, dict):
            pattern.append("*")
            tp = tp.__args__[-1]
        else:
            pattern.append(str(part))
            tp = None
    if isinstance(holder, type) and loc and loc[-1] != "[key]":
        return tuple(pattern), holder
    return tuple(pattern), None


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated[...]`` and ``X | None`` down to X."""
    for _ in range(5):
        args = getattr(tp, "__args__", ())
        if getattr(tp, "__metadata__", None) is not None:
            tp = tp.__origin__
        elif type(None) in args and len(args) == 2:
            tp = next(a for a in args if a is not type(None))
        else:
            break
    return tp


def _keys_of(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


def suggest(word: str, choices: Sequence[str], label: str) -> str:
    """`` — did you mean 'x'?`` for a near miss, else `` (label: a, b, c)``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if close:
        return f" — did you mean '{close[0]}'?"
    if choices:
        return f" ({label}: {', '.join(choices)})"
    return ""
