"""Where a template's work is counted: its filters, its calls and its compiled tree.

``notify.bounds`` says what a render may cost; this module puts the meter on every door:

- each filter is wrapped: one step per use, its arguments measured, the size of its result
  worked out from its arguments *before* it runs when an argument decides it (the width of
  ``center``, the indent of ``indent``, the separator of ``join``, ``replace``'s new text),
  and the result measured after;
- method calls on strings get the same (``'x'.center(10**9)`` is refused, not allocated),
  and the few string and integer methods that only multiply text are not reachable at all;
- the compiled tree is rewritten once, at compile time, so that every ``for`` loop counts
  its iterations, every ``~`` checks what it joins, and literal text written inside loops,
  macros and ``set`` blocks pays for itself as it is produced.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable, Iterator
from typing import Any

from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.visitor import NodeTransformer

from .bounds import (
    MAX_RANGE,
    TemplateLimit,
    budget,
    check_percent_format,
    counted,
    need,
    size_of,
)

__all__ = [
    "UNREACHABLE_METHODS",
    "BoundCalls",
    "Literal",
    "bound_tree",
    "check_call",
    "check_value",
    "guard_filter",
    "template_range",
]

#: Methods that exist only to multiply or re-encode text; a template has no use for them.
UNREACHABLE_METHODS = {
    str: frozenset({"encode", "translate", "maketrans", "expandtabs"}),
    int: frozenset({"to_bytes", "from_bytes"}),
}


def check_value(value: Any, what: str = "value") -> int:
    """``value``'s size, refusing it if it is over ``MAX_VALUE``."""
    size = size_of(value)
    need(size, what)
    return size


def template_range(*args: int) -> range:
    """``range`` for templates, at most ``MAX_RANGE`` items."""
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise TemplateLimit(f"range over {MAX_RANGE} items in template")
    return rng


# -- what a result will need, from the arguments -------------------------------------------


def _lines(s: str) -> int:
    return s.count("\n") + 1


def _width(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        need(value, what)


def _pre_center(a: dict[str, Any]) -> None:
    _width(a.get("width"), "center width")


def _pre_indent(a: dict[str, Any]) -> None:
    s, width = a.get("s"), a.get("width", 4)
    if not isinstance(s, str):
        return
    per_line = len(width) if isinstance(width, str) else width
    if isinstance(per_line, int):
        _width(per_line, "indent width")
        need(len(s) + _lines(s) * per_line, "indented text")


def _pre_wordwrap(a: dict[str, Any]) -> None:
    s, width, wrap = a.get("s"), a.get("width", 79), a.get("wrapstring")
    _width(width, "wordwrap width")
    if isinstance(s, str) and isinstance(width, int) and width > 0:
        # each wrapped line but the last of a paragraph is over half the width
        lines = _lines(s) + 2 * len(s) // width + 1
        need(len(s) + lines * len(wrap if isinstance(wrap, str) else "\n"), "wrapped text")


def _pre_join(a: dict[str, Any]) -> None:
    items = a.get("value")
    if items is None or isinstance(items, str):
        return
    a["value"] = items = list(counted(items))
    sep = a.get("d", "")
    total = sum(check_value(i) for i in items)
    need(total + len(sep if isinstance(sep, str) else "") * len(items), "joined text")


def _pre_replace(a: dict[str, Any]) -> None:
    s, old, new, count = a.get("s"), a.get("old"), a.get("new"), a.get("count")
    if isinstance(s, str) and isinstance(old, str) and isinstance(new, str):
        _need_replaced(s, old, new, count)


def _need_replaced(s: str, old: str, new: str, count: Any) -> None:
    hits = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    need(len(s) + hits * max(0, len(new) - len(old)), "replaced text")


def _pre_count(name: str) -> Callable[[dict[str, Any]], None]:
    def check(a: dict[str, Any]) -> None:
        _width(a.get(name), f"{name} count")

    return check


def _pre_round(a: dict[str, Any]) -> None:
    precision = a.get("precision", 0)
    if isinstance(precision, int) and abs(precision) > 100:
        raise TemplateLimit("round precision over 100 in template")


def _pre_tojson(a: dict[str, Any]) -> None:
    indent = a.get("indent")
    size = len(indent) if isinstance(indent, str) else indent
    if isinstance(size, int) and size > 100:
        raise TemplateLimit("tojson indent over 100 in template")


def _pre_format(a: dict[str, Any]) -> None:
    if isinstance(a.get("value"), str):
        check_percent_format(a["value"])


_PRECHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "center": _pre_center,
    "indent": _pre_indent,
    "wordwrap": _pre_wordwrap,
    "join": _pre_join,
    "replace": _pre_replace,
    "batch": _pre_count("linecount"),
    "slice": _pre_count("slices"),
    "round": _pre_round,
    "tojson": _pre_tojson,
    "format": _pre_format,
}


_PASSED_NAMES = frozenset({"environment", "env", "eval_ctx", "context", "ctx"})


def guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` as a template filter that pays for itself and cannot build a huge value."""
    signature = inspect.signature(func)
    passes_first = getattr(func, "jinja_pass_arg", None) is not None
    # Jinja's async-capable filters take the context argument in a wrapper whose signature
    # (followed to the plain function) does not list it: bind without it then.
    params = list(signature.parameters)
    binds_first = passes_first and bool(params) and params[0] in _PASSED_NAMES
    precheck = _PRECHECKS.get(name)

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget().step()
        for arg in (*args[1 if passes_first else 0 :], *kwargs.values()):
            check_value(arg, f"{name} argument")
        if precheck is not None:
            first = args[:1] if passes_first and not binds_first else ()
            try:
                bound = signature.bind(*args[len(first) :], **kwargs)
            except TypeError:
                pass  # the filter itself says what is wrong with its arguments
            else:
                precheck(bound.arguments)
                args, kwargs = (*first, *bound.args), bound.kwargs
        result = func(*args, **kwargs)
        if isinstance(result, str | list | tuple | dict):
            budget().spend(check_value(result, f"{name} result"))
        return result

    return guarded


# -- method calls ----------------------------------------------------------------------------


def check_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a call from a template whose result would be over the cap, before it runs."""
    budget().step()
    for arg in (*args, *kwargs.values()):
        check_value(arg, "call argument")
    if not isinstance(obj, types.BuiltinMethodType) or not isinstance(obj.__self__, str):
        return
    s, method = obj.__self__, obj.__name__
    if method in ("center", "ljust", "rjust", "zfill") and args:
        _width(args[0], f"{method} width")
    elif method == "join" and args:
        items = list(counted(args[0]))
        total = sum(check_value(i) for i in items)
        need(total + len(s) * len(items), "joined text")
    elif method == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        if isinstance(old, str) and isinstance(new, str):
            _need_replaced(s, old, new, args[2] if len(args) > 2 else kwargs.get("count"))


# -- the compiled tree -------------------------------------------------------------------------


class Literal(str):
    """Template text the operator wrote, on its way out: ``finalize`` passes it unescaped."""

    __slots__ = ()


class BoundCalls(Extension):
    """The calls the rewritten tree makes. A template cannot name them: they are reachable
    only through ``ExtensionAttribute`` nodes, which only this module's rewrite creates (a
    filter, by contrast, could be reached by name through ``map('...')``)."""

    identifier = "omealert.bounds"

    def steps(self, items: Any) -> Iterator[Any]:
        return counted(items)

    def literal(self, text: str) -> Literal:
        budget().spend(len(text))
        return Literal(text)

    def checked(self, value: Any) -> Any:
        budget().spend(check_value(value, "joined text"))
        return value


def _call(method: str, node: nodes.Node) -> nodes.Call:
    attr = nodes.ExtensionAttribute(BoundCalls.identifier, method, lineno=node.lineno)
    return nodes.Call(attr, [node], [], None, None, lineno=node.lineno)


class _Bound(NodeTransformer):
    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _call("steps", node.iter)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [
            _call("literal", nodes.Const(n.data, lineno=n.lineno))
            if isinstance(n, nodes.TemplateData)
            else n
            for n in node.nodes
        ]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [_call("checked", n) for n in node.nodes]
        return _call("checked", node)


def bound_tree(tree: nodes.Template) -> nodes.Template:
    """``tree`` rewritten so that its loops, joins and literal text are counted."""
    out = _Bound().visit(tree)
    assert isinstance(out, nodes.Template)
    return out
