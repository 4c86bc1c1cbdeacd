"""The baseline functions of the condition language: a target's own normal, from its history.

``median_over(x, w)``, ``quantile_over(q, x, w)``, ``stddev_over(x, w)``, ``changes(x, w)``,
``resets(x, w)`` and the postfix ``x offset w``. They are checked here rather than in
``lang.parse``, which only routes to them, so each mistake gets a message of its own
(``q`` outside 0–1, a counter-only function on a gauge, a window that is no duration).
The engine's history answers them (``engine.history``); this module only builds
``Hist`` nodes and records which (function, field, window) the condition reads.
"""

from __future__ import annotations

import math
from typing import Protocol

from ..errors import ExprError
from .check import KIND
from .fields import FieldType, Unit
from .lex import SEC, Tok
from .tree import Field, Hist, Lit, Node


class Parser(Protocol):
    """What of ``lang.parse.Parser`` these checks use (a Protocol: parse imports us)."""

    windows: list[tuple[str, float, int]]
    uses: set[tuple[str, str, float | None, float | None]]

    def show(self, node: Node) -> str: ...
    def parse_value(self) -> Node: ...


USAGE = {
    "median_over": "a field and a window, e.g. median_over(video.bitrateLatest, 1h)",
    "quantile_over": "a quantile between 0 and 1, a field and a window, "
    "e.g. quantile_over(0.9, viewers, 30m)",
    "stddev_over": "a field and a window, e.g. stddev_over(avgThroughputIn, 30m)",
    "changes": "a field and a window, e.g. changes(createdTime, 1h)",
    "resets": "a counter field and a window, e.g. resets(totalBytesIn, 1h)",
}
EXAMPLES = {
    "median_over": "median_over(video.bitrateLatest, 1h)",
    "quantile_over": "quantile_over(0.9, viewers, 30m)",
    "stddev_over": "stddev_over(avgThroughputIn, 30m)",
    "changes": "changes(createdTime, 1h)",
    "resets": "resets(totalBytesIn, 1h)",
}
#: field types each function reads: changes() counts any change of a number, a timestamp
#: (``createdTime``: a reconnect) or a flag; the others need numbers
_TYPES = {"changes": (FieldType.NUMBER, FieldType.TIME, FieldType.BOOL)}


def window_of(parser: Parser, func: str, arg: Node) -> float:
    """The window literal of ``func``, in seconds; shorter than the interval is checked later."""
    if not (isinstance(arg, Lit) and arg.dim == SEC):
        raise ExprError(f"the window of {func} must be a duration such as 5m", arg.start)
    window = float(arg.value)
    if window <= 0:
        raise ExprError(f"the window of {func} must be longer than 0", arg.start)
    if not math.isfinite(window):
        raise ExprError(f"the window of {func} is too long", arg.start)
    parser.windows.append((func, window, arg.start))
    return window


def baseline_call(parser: Parser, name_tok: Tok, args: list[Node], end: int) -> Hist:
    """A checked call of one of ``USAGE``'s functions."""
    func = name_tok.text
    wanted = 3 if func == "quantile_over" else 2
    if len(args) != wanted:
        raise ExprError(f"{func}() takes {USAGE[func]}", name_tok.start)
    q: float | None = None
    if func == "quantile_over":
        q = _quantile(parser, args.pop(0))
    target, window_arg = args
    if not isinstance(target, Field):
        raise ExprError(
            f"the first {'field' if q is not None else 'argument'} of {func}() must be a "
            "field name, not an expression",
            target.start,
        )
    spec, shown = target.spec, parser.show(target)
    types = _TYPES.get(func, (FieldType.NUMBER,))
    if spec.type not in types:
        need = "a number, timestamp or true/false field" if len(types) > 1 else "a number field"
        raise ExprError(f"{func}() needs {need}; {shown} is {KIND[spec.type]}", target.start)
    if func == "resets" and not spec.counter:
        raise ExprError(
            f"resets() counts restarts of a counter such as totalBytesIn; {shown} is not "
            f"one, so use changes({shown}, …) to count its changes",
            target.start,
        )
    window = window_of(parser, f"{func}()", window_arg)
    parser.uses.add((func, spec.path, window, q))
    counts = func in ("changes", "resets")
    return Hist(
        start=name_tok.start, end=end, type=FieldType.NUMBER,
        dim=Unit.COUNT.value if counts else spec.unit.value, origin="measured",
        func=func, spec=spec, window=window, q=q,
    )  # fmt: skip


def _quantile(parser: Parser, arg: Node) -> float:
    if not (isinstance(arg, Lit) and arg.type is FieldType.NUMBER and arg.dim is None):
        raise ExprError(
            "the first argument of quantile_over() is the quantile, a plain number between "
            "0 and 1 such as 0.9 (or 90%)",
            arg.start,
        )
    q = float(arg.value)
    if not 0 <= q <= 1:
        percent = q in range(2, 101)
        hint = f"; for the {arg.value:g}th percentile write {q / 100:g}" if percent else ""
        raise ExprError(f"the quantile must be between 0 and 1, not {arg.value:g}{hint}", arg.start)
    return q


def offset(parser: Parser, node: Node, tok: Tok) -> Hist:
    """``x offset w``: the value ``x`` had ``w`` ago; ``tok`` is the ``offset`` keyword."""
    if not (isinstance(node, Field) and node.type is FieldType.NUMBER):
        what = KIND[node.type] if not isinstance(node, Field) else KIND[node.spec.type]
        raise ExprError(
            "'offset' goes after a number field, e.g. 'viewers offset 1h'; "
            f"{parser.show(node)} is {what if isinstance(node, Field) else 'an expression'}",
            tok.start,
        )
    arg = parser.parse_value()
    window = window_of(parser, "offset", arg)
    parser.uses.add(("offset", node.spec.path, window, None))
    return Hist(
        start=node.start, end=arg.end, type=FieldType.NUMBER, dim=node.dim, origin="measured",
        func="offset", spec=node.spec, window=window,
    )  # fmt: skip
