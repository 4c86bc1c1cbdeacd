"""The condition language of rules: parsed and checked once at load, then run as closures.

A condition such as ``webrtc publishers > 500`` or ``lastRecvTime stale > 30s`` is
tokenized, parsed by recursive descent into a small typed tree, checked (types, units,
scopes) while it is built, and finally turned into nested closures. ``evaluate`` only
calls those closures: no re-parsing, no name lookups, and never ``eval`` of user text.

Precedence, loosest first: ``or``; ``and``; ``not``; comparisons (not chainable);
``+ -``; ``* /``; unary ``-``; postfix ``stale``; values (literals, fields, calls, groups).

Missing data is a third truth value, ``None``: it propagates through arithmetic and
comparisons, ``None and False`` is ``False`` and ``None or True`` is ``True``. That lets
the engine tell "condition false" from "cannot tell yet" (a field not reported, too
little history, a division by zero).
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from .durations import parse_duration
from .errors import ExprError
from .fields import (
    FIELDS,
    PROVIDER_PROTOCOLS,
    PUBLISHER_PROTOCOLS,
    FieldLookupError,
    FieldSpec,
    FieldType,
    Unit,
    resolve,
)
from .model import Sample, Scope, Target, Value

__all__ = ["FUNCTIONS", "Condition", "HistoryView", "compile_condition"]


class HistoryView(Protocol):
    """Past samples of one target, kept by the engine; each method returns None if too few."""

    def rate(self, path: str, window: float | None) -> float | None: ...
    def delta(self, path: str, window: float) -> float | None: ...
    def avg_over(self, path: str, window: float) -> float | None: ...
    def min_over(self, path: str, window: float) -> float | None: ...
    def max_over(self, path: str, window: float) -> float | None: ...


_Fn = Callable[[Mapping[str, Value], float, HistoryView | None], Any]
AlertValue = float | str | bool | None
_Result = tuple[bool | None, AlertValue]

_HISTORY_USAGE = {
    "rate": "a counter field and an optional window, e.g. rate(totalBytesIn) or "
    "rate(totalBytesIn, 1m)",
    "delta": "a field and a window, e.g. delta(totalBytesIn, 5m)",
    "avg_over": "a field and a window, e.g. avg_over(avgThroughputIn, 5m)",
    "min_over": "a field and a window, e.g. min_over(avgThroughputIn, 5m)",
    "max_over": "a field and a window, e.g. max_over(avgThroughputIn, 5m)",
}
_PLAIN_USAGE = {
    "age": "one timestamp field, e.g. age(lastRecvTime)",
    "abs": "one value, e.g. abs(x)",
    "min": "two or more values, e.g. min(a, b)",
    "max": "two or more values, e.g. max(a, b)",
}
_EXAMPLE_CALL = {
    "rate": "rate(totalBytesIn)", "delta": "delta(totalBytesIn, 5m)",
    "avg_over": "avg_over(avgThroughputIn, 5m)", "min_over": "min_over(avgThroughputIn, 5m)",
    "max_over": "max_over(avgThroughputIn, 5m)", "age": "age(lastRecvTime)", "abs": "abs(x)",
    "min": "min(a, b)", "max": "max(a, b)",
}  # fmt: skip
#: Every function name, for docs and error hints.
FUNCTIONS = (*_HISTORY_USAGE, *_PLAIN_USAGE)
_KEYWORDS = frozenset({"and", "or", "not", "true", "false", "stale", "absent"})
_CMP: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne,
}  # fmt: skip
_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
}  # fmt: skip
_MAX_DEPTH = 32  # keeps parser, compiler and closures far from Python's recursion limit

# Literal units: (multiplier, divisor, dimension). Dimensions are Unit values, so a literal
# can be checked against the catalogue's unit of the field it is compared with.
_SEC, _BITS, _BYTES = Unit.SECONDS.value, Unit.BITRATE.value, Unit.BYTES.value
_BYTE_RATE = "bytes/s"  # rate() of a byte counter; not a catalogue unit
_UNITS: dict[str, tuple[int, int, str | None]] = {
    "ms": (1, 1000, _SEC), "s": (1, 1, _SEC), "m": (60, 1, _SEC), "h": (3600, 1, _SEC),
    "d": (86400, 1, _SEC), "w": (604800, 1, _SEC),
    "bps": (1, 1, _BITS), "kbps": (10**3, 1, _BITS), "Kbps": (10**3, 1, _BITS),
    "Mbps": (10**6, 1, _BITS), "Gbps": (10**9, 1, _BITS),
    "B": (1, 1, _BYTES), "KB": (10**3, 1, _BYTES), "kB": (10**3, 1, _BYTES),
    "MB": (10**6, 1, _BYTES), "GB": (10**9, 1, _BYTES), "KiB": (2**10, 1, _BYTES),
    "MiB": (2**20, 1, _BYTES), "GiB": (2**30, 1, _BYTES),
    "%": (1, 100, None),
}  # fmt: skip
_UNIT_WORDS = {"sec": "s", "secs": "s", "min": "m", "mins": "m", "hr": "h", "hrs": "h"}
_UNIT_LIST = (
    "use a duration (500ms, 30s, 5m, 1h, 1d, 1h30m), a bit rate (bps, kbps, Mbps, Gbps), "
    "a size (B, KB, MB, GB, KiB, MiB, GiB) or %"
)
_LITERAL_KIND = {_SEC: "a duration", _BITS: "a bit rate", _BYTES: "a size"}
_EXAMPLE = {_SEC: "30s", _BITS: "1Mbps", _BYTES: "1MB", _BYTE_RATE: "1MB"}
_KIND = {
    FieldType.NUMBER: "a number", FieldType.STRING: "text",
    FieldType.BOOL: "true/false", FieldType.TIME: "a timestamp",
}  # fmt: skip

# ---------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<num>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)(?P<suffix>[A-Za-z_%][A-Za-z0-9_.%]*)?"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
    r"|(?P<op>>=|<=|==|!=|[<>+\-*/(),])"
)
_BAD_CHAR = {
    "=": "use '==' to compare",
    "&": "use 'and' instead of '&'",
    "|": "use 'or' instead of '|'",
    "!": "use 'not' instead of '!'",
    "%": "'%' goes right after a number, e.g. 50%",
}


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # "num", "str", "name", "op" or "end"
    text: str
    start: int
    end: int
    value: Any = None
    dim: str | None = None


def _tokens(text: str) -> Iterator[_Tok]:
    """Lazily, so a bad character further right never hides an earlier mistake."""
    pos = 0
    while pos < len(text):
        ch = text[pos]
        if ch in "\"'":
            tok = _string(text, pos)
            yield tok
            pos = tok.end
            continue
        m = _TOKEN.match(text, pos)
        if m is None:
            hint = _BAD_CHAR.get(ch)
            raise ExprError(hint or f"unexpected character {ch!r}", pos)
        if m.group("num") is not None:
            yield _number(m.group("num"), m.group("suffix"), pos, m.end())
        elif m.group("name") is not None:
            yield _Tok("name", m.group(), pos, m.end())
        elif m.group("op") is not None:
            yield _Tok("op", m.group(), pos, m.end())
        pos = m.end()
    yield _Tok("end", "", len(text), len(text))


def _string(text: str, start: int) -> _Tok:
    quote, pos = text[start], start + 1
    out: list[str] = []
    while pos < len(text):
        ch = text[pos]
        if ch == quote:
            return _Tok("str", text[start : pos + 1], start, pos + 1, "".join(out))
        if ch == "\\" and pos + 1 < len(text):
            pos += 1
            ch = text[pos]
        out.append(ch)
        pos += 1
    raise ExprError(f"unclosed string; add the closing {quote}", start)


def _number(digits: str, suffix: str | None, start: int, end: int) -> _Tok:
    word = digits + (suffix or "")
    is_int = digits.isdigit()
    if suffix is None:
        return _Tok("num", word, start, end, int(digits) if is_int else float(digits))
    if suffix in _UNITS:
        mul, div, dim = _UNITS[suffix]
        value = int(digits) * mul if is_int and div == 1 else float(digits) * mul / div
        return _Tok("num", word, start, end, value, dim)
    try:
        return _Tok("num", word, start, end, parse_duration(word), _SEC)  # compound: 1h30m
    except ValueError:
        pass
    folded = [u for u in _UNITS if u.lower() == suffix.lower()]
    good = _UNIT_WORDS.get(suffix.lower()) or (folded[0] if len(folded) == 1 else None)
    hint = f"did you mean {digits}{good}?" if good else _UNIT_LIST
    raise ExprError(f"unknown unit {suffix!r} in {word!r}; {hint}", start)


# ------------------------------------------------------------------------------ tree


@dataclass(slots=True, kw_only=True)
class _Node:
    start: int
    end: int
    type: FieldType
    dim: str | None = None  # physical unit, for checks against literal units
    origin: str = ""  # "measured" (a field, its age or history), "literal", or "" (derived)
    depth: int = 1


@dataclass(slots=True, kw_only=True)
class _Lit(_Node):
    value: Any


@dataclass(slots=True, kw_only=True)
class _Field(_Node):
    spec: FieldSpec


@dataclass(slots=True, kw_only=True)
class _Age(_Node):
    path: str
    label: str  # how messages name it: "the age of lastRecvTime" or "age(lastRecvTime)"


@dataclass(slots=True, kw_only=True)
class _Hist(_Node):
    func: str
    spec: FieldSpec
    window: float | None


@dataclass(slots=True, kw_only=True)
class _Call(_Node):
    func: str  # abs, min, max
    args: list[_Node]


@dataclass(slots=True, kw_only=True)
class _Neg(_Node):
    operand: _Node


@dataclass(slots=True, kw_only=True)
class _Not(_Node):
    operand: _Node


@dataclass(slots=True, kw_only=True)
class _Bin(_Node):
    op: str  # arithmetic or comparison operator
    left: _Node
    right: _Node


@dataclass(slots=True, kw_only=True)
class _Logic(_Node):
    op: str  # "and" / "or"
    parts: list[_Node]


# ---------------------------------------------------------------------------- parser


class _Parser:
    """Recursive descent that checks each node as it is built, so errors come left to right."""

    def __init__(self, text: str, scope: Scope) -> None:
        self.text = text
        self.scope = scope
        self.lexer = _tokens(text)
        self.toks: list[_Tok] = []
        self.i = 0
        self.nesting = 0
        self.offsets: dict[str, int] = {}
        self.history: set[str] = set()
        self.max_window = 0.0

    # -- token helpers
    def peek(self, ahead: int = 0) -> _Tok:
        want = self.i + ahead
        while len(self.toks) <= want and not (self.toks and self.toks[-1].kind == "end"):
            self.toks.append(next(self.lexer))
        return self.toks[min(want, len(self.toks) - 1)]

    def take(self) -> _Tok:
        tok = self.peek()
        if tok.kind != "end":
            self.i += 1
        return tok

    def at(self, kind: str, *texts: str) -> bool:
        tok = self.peek()
        return tok.kind == kind and tok.text in texts

    def show(self, node: _Node) -> str:
        src = self.text[node.start : node.end].strip()
        return src if len(src) <= 40 else src[:37] + "..."

    def enter(self, tok: _Tok) -> None:
        self.nesting += 1
        if self.nesting > _MAX_DEPTH:
            raise ExprError(f"the condition nests deeper than {_MAX_DEPTH} levels", tok.start)

    def node_depth(self, tok: _Tok, *children: _Node) -> int:
        depth = 1 + max(c.depth for c in children)
        if depth > _MAX_DEPTH:
            raise ExprError(f"the condition nests deeper than {_MAX_DEPTH} levels", tok.start)
        return depth

    # -- grammar
    def parse(self) -> _Node:
        root = self.parse_or()
        tok = self.peek()
        if tok.kind != "end":
            raise self.unexpected(tok, in_group=False)
        self.need_condition(root)
        return root

    def parse_or(self) -> _Node:
        return self.parse_logic("or", self.parse_and)

    def parse_and(self) -> _Node:
        return self.parse_logic("and", self.parse_not)

    def parse_logic(self, word: str, operand: Callable[[], _Node]) -> _Node:
        first = operand()
        if not self.at("name", word):
            return first
        parts, op_tok = [first], self.peek()
        while self.at("name", word):
            self.take()
            self.need_condition(parts[-1])
            parts.append(operand())
        self.need_condition(parts[-1])
        return _Logic(
            start=first.start, end=parts[-1].end, type=FieldType.BOOL, op=word, parts=parts,
            depth=self.node_depth(op_tok, *parts),
        )  # fmt: skip

    def parse_not(self) -> _Node:
        if not self.at("name", "not"):
            return self.parse_cmp()
        tok = self.take()
        self.enter(tok)
        operand = self.parse_not()
        self.nesting -= 1
        self.need_condition(operand)
        return _Not(
            start=tok.start, end=operand.end, type=FieldType.BOOL, operand=operand,
            depth=self.node_depth(tok, operand),
        )  # fmt: skip

    def parse_cmp(self) -> _Node:
        left = self.parse_add()
        if not self.at("op", *_CMP):
            return left
        tok = self.take()
        if tok.text in ("==", "!=") and left.type is FieldType.STRING:
            self.quote_hint(left)
        right = self.parse_add()
        if self.at("op", *_CMP):
            raise ExprError(
                "comparisons cannot be chained; join them with 'and', e.g. 'a > 1 and a < 5'",
                self.peek().start,
            )
        self.check_compare(tok, left, right)
        return _Bin(
            start=left.start, end=right.end, type=FieldType.BOOL, op=tok.text, left=left,
            right=right, depth=self.node_depth(tok, left, right),
        )  # fmt: skip

    def parse_add(self) -> _Node:
        return self.parse_arith(("+", "-"), self.parse_mul)

    def parse_mul(self) -> _Node:
        return self.parse_arith(("*", "/"), self.parse_unary)

    def parse_arith(self, ops: tuple[str, ...], operand: Callable[[], _Node]) -> _Node:
        left = operand()
        while self.at("op", *ops):
            tok = self.take()
            self.need_number(left)
            right = operand()
            self.need_number(right)
            left = _Bin(
                start=left.start, end=right.end, type=FieldType.NUMBER, op=tok.text, left=left,
                right=right, depth=self.node_depth(tok, left, right),
            )  # fmt: skip
        return left

    def parse_unary(self) -> _Node:
        if not self.at("op", "-"):
            return self.parse_postfix()
        tok = self.take()
        self.enter(tok)
        operand = self.parse_unary()
        self.nesting -= 1
        self.need_number(operand)
        return _Neg(
            start=tok.start, end=operand.end, type=FieldType.NUMBER, dim=operand.dim,
            origin=operand.origin, operand=operand, depth=self.node_depth(tok, operand),
        )  # fmt: skip

    def parse_postfix(self) -> _Node:
        node = self.parse_value()
        if not self.at("name", "stale"):
            return node
        tok = self.take()
        if not (isinstance(node, _Field) and node.type is FieldType.TIME):
            raise ExprError(
                f"'stale' goes after a timestamp field such as lastRecvTime; "
                f"{self.show(node)} is {_KIND[node.type]}",
                tok.start,
            )
        return self.age(node, node.start, tok.end, f"the age of {self.show(node)}")

    def parse_value(self) -> _Node:
        tok = self.peek()
        if tok.kind == "num":
            self.take()
            nxt = self.peek()
            if nxt.kind == "name" and nxt.text in _UNITS:
                raise ExprError(
                    f"write the unit right after the number, without a space: {tok.text}{nxt.text}",
                    nxt.start,
                )
            return _Lit(
                start=tok.start, end=tok.end, type=FieldType.NUMBER, dim=tok.dim,
                origin="literal", value=tok.value,
            )  # fmt: skip
        if tok.kind == "str":
            self.take()
            return _Lit(
                start=tok.start, end=tok.end, type=FieldType.STRING, origin="literal",
                value=tok.value,
            )  # fmt: skip
        if tok.kind == "op" and tok.text == "(":
            return self.group()
        if tok.kind == "name":
            return self.name()
        raise self.expected_value(tok)

    def group(self) -> _Node:
        lparen = self.take()
        self.enter(lparen)
        inner = self.parse_or()
        tok = self.peek()
        if tok.kind == "end":
            raise ExprError("unclosed '('", lparen.start)
        if not (tok.kind == "op" and tok.text == ")"):
            raise self.unexpected(tok, in_group=True)
        self.take()
        self.nesting -= 1
        inner.start, inner.end = lparen.start, tok.end
        return inner

    def name(self) -> _Node:
        tok = self.peek()
        word = tok.text
        if word in ("true", "false"):
            self.take()
            return _Lit(
                start=tok.start, end=tok.end, type=FieldType.BOOL, origin="literal",
                value=word == "true",
            )  # fmt: skip
        if word == "absent":
            raise ExprError(
                "'absent' must be the whole condition: it fires when a name in 'match' "
                "is not listed",
                tok.start,
            )
        if word == "stale":
            raise ExprError(
                "'stale' goes after a timestamp field, e.g. 'lastRecvTime stale > 30s'",
                tok.start,
            )
        if word in _KEYWORDS:
            raise self.expected_value(tok)
        if word.lower() in _KEYWORDS:
            raise ExprError(f"write {word.lower()!r} in lower case", tok.start)
        nxt = self.peek(1)
        if nxt.kind == "op" and nxt.text == "(":
            return self.call()
        if word in FUNCTIONS:
            raise ExprError(f"{word} is a function; call it like {_EXAMPLE_CALL[word]}", tok.start)
        if nxt.kind == "name" and nxt.text in ("publishers", "providers") and "." not in word:
            return self.shorthand()
        self.take()
        try:
            spec = resolve(word)
        except FieldLookupError as exc:
            raise ExprError(str(exc), tok.start) from None
        return self.field(spec, tok.start, tok.end)

    def shorthand(self) -> _Node:
        """``webrtc publishers`` means ``publishers.connections.webrtc``."""
        proto_tok, side_tok = self.take(), self.take()
        side = side_tok.text
        protocols = PUBLISHER_PROTOCOLS if side == "publishers" else PROVIDER_PROTOCOLS
        proto = proto_tok.text.lower()  # people write WebRTC or LLHLS; OME's keys are lower
        if proto not in protocols:
            close = difflib.get_close_matches(proto, protocols, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "use one of: " + ", ".join(protocols)
            raise ExprError(
                f"unknown {side[:-1]} protocol {proto_tok.text!r}; {hint}", proto_tok.start
            )
        return self.field(FIELDS[f"{side}.connections.{proto}"], proto_tok.start, side_tok.end)

    def field(self, spec: FieldSpec, start: int, end: int) -> _Field:
        if self.scope not in spec.scopes:
            where = [s.value for s in sorted(spec.scopes, key=lambda s: s.depth)]
            listed = ", ".join(where[:-1]) + " and " + where[-1] if len(where) > 1 else where[0]
            raise ExprError(
                f"{self.text[start:end]} is not reported at {self.scope.value} scope, "
                f"only at {listed} scope",
                start,
            )
        self.offsets.setdefault(spec.path, start)
        return _Field(
            start=start, end=end, type=spec.type, dim=spec.unit.value, origin="measured",
            spec=spec,
        )  # fmt: skip

    def age(self, node: _Field, start: int, end: int, label: str) -> _Age:
        return _Age(
            start=start, end=end, type=FieldType.NUMBER, dim=_SEC, origin="measured",
            path=node.spec.path, label=label,
        )  # fmt: skip

    def call(self) -> _Node:
        name_tok, lparen = self.take(), self.take()
        func = name_tok.text
        if func not in FUNCTIONS:
            close = difflib.get_close_matches(func, FUNCTIONS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "functions: " + ", ".join(FUNCTIONS)
            raise ExprError(f"unknown function {func!r}; {hint}", name_tok.start)
        self.enter(lparen)
        args: list[_Node] = []
        if self.at("op", ")"):
            close_tok = self.take()
        else:
            while True:
                args.append(self.parse_or())
                close_tok = self.peek()
                if close_tok.kind == "op" and close_tok.text in ",)":
                    self.take()
                    if close_tok.text == ")":
                        break
                    continue
                if close_tok.kind == "end":
                    raise ExprError("unclosed '('", lparen.start)
                raise ExprError(
                    f"expected ',' or ')' after an argument of {func}(), not {close_tok.text!r}",
                    close_tok.start,
                )
        self.nesting -= 1
        if func in _HISTORY_USAGE:
            return self.history_call(name_tok, args, close_tok.end)
        return self.plain_call(name_tok, args, close_tok.end)

    def history_call(self, name_tok: _Tok, args: list[_Node], end: int) -> _Node:
        func = name_tok.text
        if not (len(args) == 2 or (func == "rate" and len(args) == 1)):
            raise ExprError(f"{func}() takes {_HISTORY_USAGE[func]}", name_tok.start)
        target = args[0]
        if not isinstance(target, _Field):
            raise ExprError(
                f"the first argument of {func}() must be a field name, not an expression",
                target.start,
            )
        spec, shown = target.spec, self.show(target)
        if spec.type is not FieldType.NUMBER:
            raise ExprError(
                f"{func}() needs a number field; {shown} is {_KIND[spec.type]}", target.start
            )
        if func == "rate" and not spec.counter:
            raise ExprError(
                f"rate() needs a counter such as totalBytesIn; {shown} is not one, "
                f"so use delta({shown}, 5m) for its change over a window",
                target.start,
            )
        window: float | None = None
        if len(args) == 2:
            arg = args[1]
            if not (isinstance(arg, _Lit) and arg.dim == _SEC):
                raise ExprError(f"the window of {func}() must be a duration such as 5m", arg.start)
            window = float(arg.value)
            if window <= 0:
                raise ExprError(f"the window of {func}() must be longer than 0", arg.start)
            if not math.isfinite(window):
                raise ExprError(f"the window of {func}() is too long", arg.start)
            self.max_window = max(self.max_window, window)
        self.history.add(spec.path)
        dim: str | None = spec.unit.value
        if func == "rate":
            dim = _BYTE_RATE if spec.unit is Unit.BYTES else None
        return _Hist(
            start=name_tok.start, end=end, type=FieldType.NUMBER, dim=dim, origin="measured",
            func=func, spec=spec, window=window,
        )  # fmt: skip

    def plain_call(self, name_tok: _Tok, args: list[_Node], end: int) -> _Node:
        func = name_tok.text
        wanted = 1 if func in ("age", "abs") else 2
        if len(args) < wanted or (wanted == 1 and len(args) > 1):
            raise ExprError(f"{func}() takes {_PLAIN_USAGE[func]}", name_tok.start)
        if func == "age":
            target = args[0]
            if not (isinstance(target, _Field) and target.type is FieldType.TIME):
                raise ExprError(
                    f"age() needs a timestamp field such as lastRecvTime; "
                    f"{self.show(target)} is {_KIND[target.type]}",
                    target.start,
                )
            return self.age(target, name_tok.start, end, self.text[name_tok.start : end])
        for arg in args:
            self.need_number(arg)
        if func in ("min", "max") and len(args) == 2:
            first, second = args
            if second.origin == "literal" and second.dim == _SEC and first.dim != _SEC:
                raise ExprError(
                    f"{func}() compares values; for the {func}imum over a window write "
                    f"{func}_over({self.show(first)}, {self.show(second)})",
                    name_tok.start,
                )
        keep = func == "abs"  # abs keeps the unit, so `abs(x) > 5MB` is still checked
        return _Call(
            start=name_tok.start, end=end, type=FieldType.NUMBER,
            dim=args[0].dim if keep else None, origin=args[0].origin if keep else "",
            func=func, args=args, depth=self.node_depth(name_tok, *args),
        )  # fmt: skip

    # -- checks
    def time_error(self, node: _Node) -> ExprError:
        shown = self.show(node)
        return ExprError(
            f"{shown} is a timestamp; use '{shown} stale > 30s' or 'age({shown})' "
            "for its age in seconds",
            node.start,
        )

    def need_number(self, node: _Node) -> None:
        if node.type is FieldType.TIME:
            raise self.time_error(node)
        if node.type is not FieldType.NUMBER:
            raise ExprError(f"{self.show(node)} is {_KIND[node.type]}, not a number", node.start)

    def need_condition(self, node: _Node) -> None:
        if node.type is FieldType.BOOL:
            return
        if node.type is FieldType.TIME:
            raise self.time_error(node)
        shown = self.show(node)
        if node.type is FieldType.STRING:
            example = f'{shown} == "..."'
        else:
            example = f"{shown} > {_EXAMPLE.get(node.dim or '', '0')}"
        raise ExprError(
            f"{shown} is {_KIND[node.type]}, not a condition; compare it, e.g. '{example}'",
            node.start,
        )

    def check_compare(self, tok: _Tok, left: _Node, right: _Node) -> None:
        for side in (left, right):
            if side.type is FieldType.TIME:
                raise self.time_error(side)
        if tok.text in ("==", "!="):
            if left.type is not right.type:
                raise ExprError(
                    f"cannot compare {_KIND[left.type]} with {_KIND[right.type]}", right.start
                )
        else:
            for side in (left, right):
                if side.type is not FieldType.NUMBER:
                    what = "text" if side.type is FieldType.STRING else "true/false values"
                    raise ExprError(f"{what} can only be compared with '==' or '!='", tok.start)
        if left.type is FieldType.NUMBER:
            self.check_units(left, right)
            self.check_units(right, left)

    def check_units(self, measured: _Node, literal: _Node) -> None:
        """A field compared with a literal of another unit family is almost surely a mistake."""
        have, lit = measured.dim, literal.dim
        if measured.origin != "measured" or literal.origin != "literal" or lit is None:
            return
        if not have or have == lit or (have == _BYTE_RATE and lit == _BYTES):
            return
        name = measured.label if isinstance(measured, _Age) else self.show(measured)
        if have == _BITS:
            msg = f"{name} is in bits/s; write a bit rate such as 5Mbps"
        elif have == _BYTES and lit == _BITS and isinstance(measured, _Field):
            if measured.spec.counter:
                msg = f"{name} is a byte counter; compare rate({name}) * 8 with a bit rate"
            else:
                msg = (
                    f"{name} is in bytes (counted over the last ~1 s), not bits/s; multiply "
                    f"it by 8 ({name} * 8) or compare it with a size such as 250KB"
                )
        elif have == _BYTES:
            msg = f"{name} is in bytes; write a size such as 5MB"
        elif have == _BYTE_RATE and lit == _BITS:
            msg = f"{name} is in bytes/s; write {name} * 8 to compare it with a bit rate"
        elif have == _BYTE_RATE:
            msg = f"{name} is in bytes/s; compare it with a size per second such as 1MB"
        elif have == _SEC:
            msg = f"{name} is in seconds; write a duration such as 30s"
        else:
            what = "a count" if have == Unit.COUNT.value else f"in {have}"
            msg = f"{name} is {what}; compare it with a plain number, not {_LITERAL_KIND[lit]}"
        raise ExprError(msg, literal.start)

    def quote_hint(self, left: _Node) -> None:
        """``sourceType == Rtmp``: an unknown bare word next to text was meant as text."""
        tok, nxt = self.peek(), self.peek(1)
        if (
            tok.kind != "name"
            or tok.text in _KEYWORDS
            or nxt.text in ("(", "publishers", "providers")
        ):
            return
        try:
            resolve(tok.text)
        except FieldLookupError:
            raise ExprError(
                f'to compare {self.show(left)} with text, quote it: "{tok.text}"', tok.start
            ) from None

    def expected_value(self, tok: _Tok) -> ExprError:
        if self.i == 0:
            if tok.kind == "end":
                return ExprError("the condition is empty", 0)
            return ExprError(f"the condition must start with a value, not {tok.text!r}", tok.start)
        prev = self.toks[self.i - 1].text
        if tok.kind == "end":
            return ExprError(f"expected a value after {prev!r}", tok.start)
        return ExprError(f"expected a value after {prev!r}, not {tok.text!r}", tok.start)

    def unexpected(self, tok: _Tok, *, in_group: bool) -> ExprError:
        if tok.text in (")", ","):
            return ExprError(f"unexpected {tok.text!r}", tok.start)
        low = tok.text.lower()
        if tok.kind == "name" and low != tok.text and low in _KEYWORDS:
            return ExprError(f"write {low!r} in lower case", tok.start)
        wanted = "an operator, 'and', 'or'" + (" or ')'" if in_group else "")
        return ExprError(f"unexpected {tok.text!r}; expected {wanted}", tok.start)


# -------------------------------------------------------------------------- compiler


def _compile(node: _Node) -> _Fn:
    """Turn a checked tree into closures; everything resolvable is resolved here, once."""
    if isinstance(node, _Lit):
        const = node.value
        return lambda f, n, h: const
    if isinstance(node, _Field):
        path = node.spec.path
        if node.spec.missing_is_zero:
            return lambda f, n, h: f.get(path, 0)
        return lambda f, n, h: f.get(path)
    if isinstance(node, _Age):
        return _compile_age(node.path)
    if isinstance(node, _Hist):
        return _compile_history(node.func, node.spec.path, node.window)
    if isinstance(node, _Neg | _Not):
        return _compile_unary(node)
    if isinstance(node, _Call):
        return _compile_call(node.func, [_compile(a) for a in node.args])
    if isinstance(node, _Logic):
        return _compile_logic(node.op, [_compile(p) for p in node.parts])
    assert isinstance(node, _Bin)
    return _compile_binary(node.op, _compile(node.left), _compile(node.right))


def _compile_age(path: str) -> _Fn:
    def age(f: Mapping[str, Value], n: float, h: HistoryView | None) -> float | None:
        v = f.get(path)
        return n - v.timestamp() if isinstance(v, datetime) else None

    return age


def _compile_history(func: str, path: str, window: float | None) -> _Fn:
    call = operator.methodcaller(func, path, window)
    return lambda f, n, h: None if h is None else call(h)


def _compile_unary(node: _Neg | _Not) -> _Fn:
    inner = _compile(node.operand)
    if isinstance(node, _Neg):

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
    fn = _CMP.get(op) or _ARITH[op]

    def binary(f: Mapping[str, Value], n: float, h: HistoryView | None) -> Any:
        a = left(f, n, h)
        if a is None:
            return None
        b = right(f, n, h)
        return None if b is None else fn(a, b)

    return binary


def _value_node(node: _Node) -> _Node:
    """Where the alert's value comes from: the left side of the first comparison.

    A constant on the left (``500 < webrtc publishers``) would make a useless value, so
    then the right side is taken. A bare boolean condition's value is that boolean.
    """
    while isinstance(node, _Logic | _Not):
        node = node.parts[0] if isinstance(node, _Logic) else node.operand
    if isinstance(node, _Bin) and node.op in _CMP:
        if node.left.origin == "literal" and node.right.origin != "literal":
            return node.right
        return node.left
    return node


_NOTHING: _Result = (None, None)


def _root(node: _Node) -> Callable[[Mapping[str, Value], float, HistoryView | None], _Result]:
    """One closure returning ``(holds, value)``; the common shapes get a flat fast path."""
    if isinstance(node, _Bin) and node.op in _CMP and _value_node(node) is node.left:
        op, left, right = _CMP[node.op], node.left, node.right
        if isinstance(left, _Field) and isinstance(right, _Lit):
            path, const = left.spec.path, right.value
            default = 0 if left.spec.missing_is_zero else None

            def field_vs_const(f: Mapping[str, Value], n: float, h: HistoryView | None) -> Any:
                a = f.get(path, default)
                return _NOTHING if a is None else (op(a, const), a)

            return field_vs_const
        lhs, rhs = _compile(left), _compile(right)

        def compare(f: Mapping[str, Value], n: float, h: HistoryView | None) -> Any:
            a = lhs(f, n, h)
            if a is None:
                return _NOTHING
            b = rhs(f, n, h)
            return (None, a) if b is None else (op(a, b), a)

        return compare
    holds, value_node = _compile(node), _value_node(node)
    if value_node is node:

        def bare(f: Mapping[str, Value], n: float, h: HistoryView | None) -> _Result:
            v = holds(f, n, h)
            return v, v

        return bare
    value = _compile(value_node)
    return lambda f, n, h: (holds(f, n, h), value(f, n, h))


# ------------------------------------------------------------------------------- API


def _absent(f: Mapping[str, Value], n: float, h: HistoryView | None) -> _Result:
    return False, None  # a target with a sample is present; the engine decides absence


class Condition:
    """A compiled condition: what it reads (for request planning) and how to evaluate it."""

    __slots__ = (
        "_run",
        "field_offsets",
        "fields",
        "history_fields",
        "is_absent",
        "max_window",
        "scope",
        "text",
    )

    def __init__(
        self,
        text: str,
        scope: Scope,
        run: Callable[[Mapping[str, Value], float, HistoryView | None], _Result],
        *,
        is_absent: bool = False,
        field_offsets: dict[str, int] | None = None,
        history_fields: frozenset[str] = frozenset(),
        max_window: float = 0.0,
    ) -> None:
        self.text = text
        self.scope = scope
        self.is_absent = is_absent
        self.field_offsets: dict[str, int] = field_offsets or {}
        self.fields = frozenset(self.field_offsets)
        self.history_fields = history_fields
        self.max_window = max_window
        self._run = run

    def evaluate(
        self, fields: Mapping[str, Value], server_now: float, history: HistoryView | None
    ) -> _Result:
        """``(holds, value)``; ``holds`` is None when there is no data to decide.

        A value of the wrong type from the source (text where a number belongs) or an
        overflow is "no data" too, rather than an exception in the middle of a tick.
        """
        try:
            return self._run(fields, server_now, history)
        except (TypeError, ArithmeticError):
            return _NOTHING

    def holding(
        self,
        samples: Iterable[Sample],
        history_for: Callable[[Target], HistoryView] | None = None,
        unknown: list[Sample] | None = None,
    ) -> list[tuple[Sample, AlertValue]]:
        """The samples for which the condition holds, with their values, in one tight loop.

        The engine's hot path: thousands of quiet streams per rule per tick, where the cost
        of a Python call per evaluation would dominate. Same semantics as ``evaluate``.
        Samples with no value (missing field, too little history) go to ``unknown``.
        """
        run = self._run
        out: list[tuple[Sample, AlertValue]] = []
        append = out.append
        for sample in samples:
            history = history_for(sample.target) if history_for is not None else None
            try:
                holds, value = run(sample.fields, sample.server_now, history)
            except (TypeError, ArithmeticError):
                holds = None
            if holds:
                append((sample, value))
            elif holds is None and unknown is not None:
                unknown.append(sample)
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Condition):
            return NotImplemented
        return (self.text, self.scope) == (other.text, other.scope)

    def __hash__(self) -> int:
        return hash((self.text, self.scope))

    def __repr__(self) -> str:
        return f"Condition({self.text!r}, scope={self.scope.value})"


def compile_condition(text: str, scope: Scope) -> Condition:
    """Parse, check and compile ``text`` for rules of ``scope``; raises ExprError."""
    if text.strip() == "absent":
        return Condition(text, scope, _absent, is_absent=True)
    parser = _Parser(text, scope)
    root = parser.parse()
    return Condition(
        text,
        scope,
        _root(root),
        field_offsets=dict(parser.offsets),
        history_fields=frozenset(parser.history),
        max_window=parser.max_window,
    )
