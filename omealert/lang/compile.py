"""A checked condition tree turned into closures: the code that runs for every sample.

Missing data is a third truth value, ``None``: it propagates through arithmetic and
comparisons, ``None and False`` is ``False`` and ``None or True`` is ``True``. That lets
the engine tell "condition false" from "cannot tell yet" (a field not reported, too
little history, a division by zero).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from ..model import Value
from .codes import FIELD_PREFIX
from .fields import FieldType
from .lex import CMP
from .tree import Age, Bin, Call, Field, Hist, Lit, Logic, Neg, Node, Not
from .versions import is_release, release_key


class HistoryView(Protocol):
    """Past samples of one target, kept by the engine; each method returns None if too few."""

    def rate(self, path: str, window: float | None) -> float | None: ...
    def delta(self, path: str, window: float) -> float | None: ...
    def avg_over(self, path: str, window: float) -> float | None: ...
    def min_over(self, path: str, window: float) -> float | None: ...
    def max_over(self, path: str, window: float) -> float | None: ...
    def median_over(self, path: str, window: float) -> float | None: ...
    def quantile_over(self, q: float, path: str, window: float) -> float | None: ...
    def stddev_over(self, path: str, window: float) -> float | None: ...
    def changes(self, path: str, window: float) -> float | None: ...
    def resets(self, path: str, window: float) -> float | None: ...
    def offset(self, path: str, window: float) -> float | None: ...


_Fn = Callable[[Mapping[str, Value], float, HistoryView | None], Any]
AlertValue = float | str | bool | None
Result = tuple[bool | None, AlertValue]
_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
}  # fmt: skip


def _compile(node: Node) -> _Fn:
    """Turn a checked tree into closures; everything resolvable is resolved here, once."""
    if isinstance(node, Lit):
        const = node.value
        return lambda f, n, h: const
    if isinstance(node, Field):
        path = node.spec.path
        if node.spec.missing_is_zero:
            return lambda f, n, h: f.get(path, 0)
        return lambda f, n, h: f.get(path)
    if isinstance(node, Age):
        return _compile_age(node.path)
    if isinstance(node, Hist):
        call = history_caller(node)
        return lambda f, n, h: None if h is None else call(h)
    if isinstance(node, Neg | Not):
        return _compile_unary(node)
    if isinstance(node, Call) and node.func == "ome_alert":
        key = FIELD_PREFIX + str(node.args[0].value)  # type: ignore[attr-defined]
        return lambda f, n, h: f.get(key, False)
    if isinstance(node, Call):
        return _compile_call(node.func, [_compile(a) for a in node.args])
    if isinstance(node, Logic):
        return _compile_logic(node.op, [_compile(p) for p in node.parts])
    assert isinstance(node, Bin)
    if node.op in CMP and (is_release(node.left) or is_release(node.right)):
        return _compile_binary(node.op, _as_release(node.left), _as_release(node.right))
    return _compile_binary(node.op, _compile(node.left), _compile(node.right))


def _as_release(node: Node) -> _Fn:
    """``node``'s text as a comparable release key; no value when it is not a release."""
    inner = _compile(node)
    return lambda f, n, h: release_key(inner(f, n, h))


def _compile_age(path: str) -> _Fn:
    def age(f: Mapping[str, Value], n: float, h: HistoryView | None) -> float | None:
        v = f.get(path)
        return n - v.timestamp() if isinstance(v, datetime) else None

    return age


def history_caller(node: Hist) -> Callable[[HistoryView], float | None]:
    """The question ``node`` asks a target's history, as one call."""
    if node.q is not None:
        return operator.methodcaller(node.func, node.q, node.spec.path, node.window)
    return operator.methodcaller(node.func, node.spec.path, node.window)


def _compile_unary(node: Neg | Not) -> _Fn:
    inner = _compile(node.operand)
    if isinstance(node, Neg):

        def neg(f: Mapping[str, Value], n: float, h: HistoryView | None) -> Any:
            v = inner(f, n, h)
            return None if v is None else -v

        return neg

    def not_(f: Mapping[str, Value], n: float, h: HistoryView | None) -> bool | None:
        v = inner(f, n, h)
        return None if v is None else not v

    return not_


def _compile_call(func: str, args: list[_Fn]) -> _Fn:
    if func == "abs":
        (inner,) = args

        def abs_(f: Mapping[str, Value], n: float, h: HistoryView | None) -> Any:
            v = inner(f, n, h)
            return None if v is None else abs(v)

        return abs_
    pick = min if func == "min" else max

    def extreme(f: Mapping[str, Value], n: float, h: HistoryView | None) -> Any:
        values = [a(f, n, h) for a in args]
        return None if None in values else pick(values)

    return extreme


def _compile_logic(op: str, parts: list[_Fn]) -> _Fn:
    # `decider` settles the result on its own; None only makes the result unknown.
    decider: bool = op == "or"

    def logic(f: Mapping[str, Value], n: float, h: HistoryView | None) -> Any:
        unknown = False
        for part in parts:
            v = part(f, n, h)
            if v is None:
                unknown = True
            elif v is decider:
                return decider
        return None if unknown else not decider

    return logic


def _compile_binary(op: str, left: _Fn, right: _Fn) -> _Fn:
    if op == "/":

        def divide(f: Mapping[str, Value], n: float, h: HistoryView | None) -> Any:
            a = left(f, n, h)
            if a is None:
                return None
            b = right(f, n, h)
            return None if b is None or b == 0 else a / b

        return divide
    fn = CMP.get(op) or _ARITH[op]

    def binary(f: Mapping[str, Value], n: float, h: HistoryView | None) -> Any:
        a = left(f, n, h)
        if a is None:
            return None
        b = right(f, n, h)
        return None if b is None else fn(a, b)

    return binary


def _value_node(node: Node) -> Node:
    """Where the alert's value comes from: the left side of the first comparison.

    A constant on the left (``500 < webrtc publishers``) would make a useless value, so
    then the right side is taken. A bare boolean condition's value is that boolean.
    """
    while isinstance(node, Logic | Not):
        node = node.parts[0] if isinstance(node, Logic) else node.operand
    if isinstance(node, Bin) and node.op in CMP:
        if node.left.origin == "literal" and node.right.origin != "literal":
            return node.right
        return node.left
    return node


def value_unit(root: Node) -> str | None:
    """The unit of the alert's value (``_value_node``), for messages; None without one."""
    node = _value_node(root)
    if node.type is not FieldType.NUMBER:
        return None
    return node.dim or None


NOTHING: Result = (None, None)


def compile_root(node: Node) -> Callable[[Mapping[str, Value], float, HistoryView | None], Result]:
    """One closure returning ``(holds, value)``; the common shapes get a flat fast path."""
    if isinstance(node, Bin) and node.op in CMP and _value_node(node) is node.left:
        op, left, right = CMP[node.op], node.left, node.right
        if isinstance(left, Field) and isinstance(right, Lit) and not left.spec.release:
            path, const = left.spec.path, right.value
            default = 0 if left.spec.missing_is_zero else None

            def field_vs_const(f: Mapping[str, Value], n: float, h: HistoryView | None) -> Any:
                a = f.get(path, default)
                return NOTHING if a is None else (op(a, const), a)

            return field_vs_const
        lhs, rhs = _compile(left), _compile(right)
        if is_release(left) or is_release(right):
            holds = _compile(node)  # compares release keys; the value stays the text

            def releases(f: Mapping[str, Value], n: float, h: HistoryView | None) -> Any:
                a = lhs(f, n, h)
                return NOTHING if a is None else (holds(f, n, h), a)

            return releases

        def compare(f: Mapping[str, Value], n: float, h: HistoryView | None) -> Any:
            a = lhs(f, n, h)
            if a is None:
                return NOTHING
            b = rhs(f, n, h)
            return (None, a) if b is None else (op(a, b), a)

        return compare
    holds, value_node = _compile(node), _value_node(node)
    if value_node is node:

        def bare(f: Mapping[str, Value], n: float, h: HistoryView | None) -> Result:
            v = holds(f, n, h)
            return v, v

        return bare
    value = _compile(value_node)
    return lambda f, n, h: (holds(f, n, h), value(f, n, h))
