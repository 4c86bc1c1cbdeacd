"""The grammar of conditions: recursive descent from tokens to a checked tree.

Precedence, loosest first: ``or``; ``and``; ``not``; comparisons (not chainable);
``+ -``; ``* /``; unary ``-``; postfix ``stale``; values (literals, fields, calls, groups).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from ..errors import ExprError
from ..model import Scope
from .baseline import EXAMPLES as _BASELINE_EXAMPLES
from .baseline import USAGE as _BASELINE_USAGE
from .baseline import baseline_call, offset, window_of
from .check import KIND, Checker
from .codes import ALL_CODES, OK_CODE
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
from .lex import BYTE_RATE, CMP, KEYWORDS, SEC, UNITS, Tok
from .tree import Age, Bin, Call, Field, Hist, Lit, Logic, Neg, Node, Not

#: (function, field path, window, quantile) a condition reads; what the history keeps
Use = tuple[str, str, float | None, float | None]

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
    "ome_alert": 'one code of OME\'s Alert module in quotes, e.g. ome_alert("INGRESS_BITRATE_LOW")',
}
_EXAMPLE_CALL = {
    "rate": "rate(totalBytesIn)", "delta": "delta(totalBytesIn, 5m)",
    "avg_over": "avg_over(avgThroughputIn, 5m)", "min_over": "min_over(avgThroughputIn, 5m)",
    "max_over": "max_over(avgThroughputIn, 5m)", "age": "age(lastRecvTime)", "abs": "abs(x)",
    "min": "min(a, b)", "max": "max(a, b)", "ome_alert": 'ome_alert("INGRESS_BITRATE_LOW")',
    **_BASELINE_EXAMPLES,
}  # fmt: skip
#: ``OK`` is never a state: OME sends it to clear the others
RULE_CODES = ALL_CODES - {OK_CODE}
#: Every function name, for docs and error hints.
FUNCTIONS = (*_HISTORY_USAGE, *_BASELINE_USAGE, *_PLAIN_USAGE)


class Parser(Checker):
    """Recursive descent that checks each node as it is built, so errors come left to right."""

    def __init__(self, text: str, scope: Scope) -> None:
        super().__init__(text)
        self.scope = scope
        self.offsets: dict[str, int] = {}
        #: which history function reads a field decides what the engine keeps of it
        self.rated: set[str] = set()
        self.valued: set[str] = set()
        self.max_window = 0.0
        self.uses: set[Use] = set()
        #: (function, window, offset of the window literal), checked against the interval
        self.windows: list[tuple[str, float, int]] = []

    # -- grammar
    def parse(self) -> Node:
        root = self.parse_or()
        tok = self.peek()
        if tok.kind != "end":
            raise self.unexpected(tok, in_group=False)
        self.need_condition(root)
        return root

    def parse_or(self) -> Node:
        return self.parse_logic("or", self.parse_and)

    def parse_and(self) -> Node:
        return self.parse_logic("and", self.parse_not)

    def parse_logic(self, word: str, operand: Callable[[], Node]) -> Node:
        first = operand()
        if not self.at("name", word):
            return first
        parts, op_tok = [first], self.peek()
        while self.at("name", word):
            self.take()
            self.need_condition(parts[-1])
            parts.append(operand())
        self.need_condition(parts[-1])
        return Logic(
            start=first.start, end=parts[-1].end, type=FieldType.BOOL, op=word, parts=parts,
            depth=self.node_depth(op_tok, *parts),
        )  # fmt: skip

    def parse_not(self) -> Node:
        if not self.at("name", "not"):
            return self.parse_cmp()
        tok = self.take()
        self.enter(tok)
        operand = self.parse_not()
        self.nesting -= 1
        self.need_condition(operand)
        return Not(
            start=tok.start, end=operand.end, type=FieldType.BOOL, operand=operand,
            depth=self.node_depth(tok, operand),
        )  # fmt: skip

    def parse_cmp(self) -> Node:
        left = self.parse_add()
        if not self.at("op", *CMP):
            return left
        tok = self.take()
        if tok.text in ("==", "!=") and left.type is FieldType.STRING:
            self.quote_hint(left)
        right = self.parse_add()
        if self.at("op", *CMP):
            raise ExprError(
                "comparisons cannot be chained; join them with 'and', e.g. 'a > 1 and a < 5'",
                self.peek().start,
            )
        self.check_compare(tok, left, right)
        return Bin(
            start=left.start, end=right.end, type=FieldType.BOOL, op=tok.text, left=left,
            right=right, depth=self.node_depth(tok, left, right),
        )  # fmt: skip

    def parse_add(self) -> Node:
        return self.parse_arith(("+", "-"), self.parse_mul)

    def parse_mul(self) -> Node:
        return self.parse_arith(("*", "/"), self.parse_unary)

    def parse_arith(self, ops: tuple[str, ...], operand: Callable[[], Node]) -> Node:
        left = operand()
        while self.at("op", *ops):
            tok = self.take()
            self.need_number(left)
            right = operand()
            self.need_number(right)
            left = Bin(
                start=left.start, end=right.end, type=FieldType.NUMBER, op=tok.text, left=left,
                right=right, depth=self.node_depth(tok, left, right),
            )  # fmt: skip
        return left

    def parse_unary(self) -> Node:
        if not self.at("op", "-"):
            return self.parse_postfix()
        tok = self.take()
        self.enter(tok)
        operand = self.parse_unary()
        self.nesting -= 1
        self.need_number(operand)
        return Neg(
            start=tok.start, end=operand.end, type=FieldType.NUMBER, dim=operand.dim,
            origin=operand.origin, operand=operand, depth=self.node_depth(tok, operand),
        )  # fmt: skip

    def parse_postfix(self) -> Node:
        node = self.parse_value()
        if self.at("name", "offset"):
            node = offset(self, node, self.take())
        if not self.at("name", "stale"):
            return node
        tok = self.take()
        if not (isinstance(node, Field) and node.type is FieldType.TIME):
            raise ExprError(
                f"'stale' goes after a timestamp field such as lastRecvTime; "
                f"{self.show(node)} is {KIND[node.type]}",
                tok.start,
            )
        return self.age(node, node.start, tok.end, f"the age of {self.show(node)}")

    def parse_value(self) -> Node:
        tok = self.peek()
        if tok.kind == "num":
            self.take()
            nxt = self.peek()
            if nxt.kind == "name" and nxt.text in UNITS:
                raise ExprError(
                    f"write the unit right after the number, without a space: {tok.text}{nxt.text}",
                    nxt.start,
                )
            return Lit(
                start=tok.start, end=tok.end, type=FieldType.NUMBER, dim=tok.dim,
                origin="literal", value=tok.value,
            )  # fmt: skip
        if tok.kind == "str":
            self.take()
            return Lit(
                start=tok.start, end=tok.end, type=FieldType.STRING, origin="literal",
                value=tok.value,
            )  # fmt: skip
        if tok.kind == "op" and tok.text == "(":
            return self.group()
        if tok.kind == "name":
            return self.name()
        raise self.expected_value(tok)

    def group(self) -> Node:
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

    def name(self) -> Node:
        tok = self.peek()
        word = tok.text
        if word in ("true", "false"):
            self.take()
            return Lit(
                start=tok.start, end=tok.end, type=FieldType.BOOL, origin="literal",
                value=word == "true",
            )  # fmt: skip
        if word == "absent":
            raise ExprError(
                "'absent' must be the whole condition: it fires when a name in 'match' "
                "is not listed",
                tok.start,
            )
        if word == "offset":
            raise ExprError(
                "'offset' goes after a field, e.g. 'viewers offset 1h' (its value 1h ago)",
                tok.start,
            )
        if word == "stale":
            raise ExprError(
                "'stale' goes after a timestamp field, e.g. 'lastRecvTime stale > 30s'",
                tok.start,
            )
        if word in KEYWORDS:
            raise self.expected_value(tok)
        if word.lower() in KEYWORDS:
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

    def shorthand(self) -> Node:
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

    def field(self, spec: FieldSpec, start: int, end: int) -> Field:
        if spec.refusal:
            raise ExprError(f"{self.text[start:end]} cannot be used: {spec.refusal}", start)
        if self.scope not in spec.scopes:
            where = [s.value for s in sorted(spec.scopes, key=lambda s: s.depth)]
            listed = ", ".join(where[:-1]) + " and " + where[-1] if len(where) > 1 else where[0]
            raise ExprError(
                f"{self.text[start:end]} is not reported at {self.scope.value} scope, "
                f"only at {listed} scope",
                start,
            )
        self.offsets.setdefault(spec.path, start)
        return Field(
            start=start, end=end, type=spec.type, dim=spec.unit.value, origin="measured",
            spec=spec,
        )  # fmt: skip

    def age(self, node: Field, start: int, end: int, label: str) -> Age:
        return Age(
            start=start, end=end, type=FieldType.NUMBER, dim=SEC, origin="measured",
            path=node.spec.path, label=label,
        )  # fmt: skip

    def call(self) -> Node:
        name_tok, lparen = self.take(), self.take()
        func = name_tok.text
        if func not in FUNCTIONS:
            close = difflib.get_close_matches(func, FUNCTIONS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "functions: " + ", ".join(FUNCTIONS)
            raise ExprError(f"unknown function {func!r}; {hint}", name_tok.start)
        self.enter(lparen)
        args: list[Node] = []
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
        if func in _BASELINE_USAGE:
            return baseline_call(self, name_tok, args, close_tok.end)
        return self.plain_call(name_tok, args, close_tok.end)

    def ome_alert(self, name_tok: Tok, args: list[Node], end: int) -> Node:
        """``ome_alert("CODE")``: true while OME's last Alert message for the target had CODE."""
        if len(args) != 1 or not (isinstance(args[0], Lit) and args[0].type is FieldType.STRING):
            raise ExprError(f"ome_alert() takes {_PLAIN_USAGE['ome_alert']}", name_tok.start)
        code = str(args[0].value)
        if code == OK_CODE:
            raise ExprError(
                'OK is how OME clears the other codes; write not ome_alert("CODE") instead',
                args[0].start,
            )
        if code not in RULE_CODES:
            close = difflib.get_close_matches(code.upper(), sorted(RULE_CODES), n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}?" if close else "see the README for the codes"
            raise ExprError(f"OME's Alert module has no code {code!r}; {hint}", args[0].start)
        return Call(
            start=name_tok.start, end=end, type=FieldType.BOOL, origin="measured",
            func="ome_alert", args=args,
        )  # fmt: skip

    def history_call(self, name_tok: Tok, args: list[Node], end: int) -> Node:
        func = name_tok.text
        if not (len(args) == 2 or (func == "rate" and len(args) == 1)):
            raise ExprError(f"{func}() takes {_HISTORY_USAGE[func]}", name_tok.start)
        target = args[0]
        if not isinstance(target, Field):
            raise ExprError(
                f"the first argument of {func}() must be a field name, not an expression",
                target.start,
            )
        spec, shown = target.spec, self.show(target)
        if spec.type is not FieldType.NUMBER:
            raise ExprError(
                f"{func}() needs a number field; {shown} is {KIND[spec.type]}", target.start
            )
        if func == "rate" and not spec.counter:
            raise ExprError(
                f"rate() needs a counter such as totalBytesIn; {shown} is not one, "
                f"so use delta({shown}, 5m) for its change over a window",
                target.start,
            )
        window: float | None = None
        if len(args) == 2:
            window = window_of(self, f"{func}()", args[1])
            self.max_window = max(self.max_window, window)
        (self.rated if func == "rate" else self.valued).add(spec.path)
        self.uses.add((func, spec.path, window, None))
        dim: str | None = spec.unit.value
        if func == "rate":
            dim = BYTE_RATE if spec.unit is Unit.BYTES else None
        return Hist(
            start=name_tok.start, end=end, type=FieldType.NUMBER, dim=dim, origin="measured",
            func=func, spec=spec, window=window,
        )  # fmt: skip

    def plain_call(self, name_tok: Tok, args: list[Node], end: int) -> Node:
        func = name_tok.text
        if func == "ome_alert":
            return self.ome_alert(name_tok, args, end)
        wanted = 1 if func in ("age", "abs") else 2
        if len(args) < wanted or (wanted == 1 and len(args) > 1):
            raise ExprError(f"{func}() takes {_PLAIN_USAGE[func]}", name_tok.start)
        if func == "age":
            target = args[0]
            if not (isinstance(target, Field) and target.type is FieldType.TIME):
                raise ExprError(
                    f"age() needs a timestamp field such as lastRecvTime; "
                    f"{self.show(target)} is {KIND[target.type]}",
                    target.start,
                )
            return self.age(target, name_tok.start, end, self.text[name_tok.start : end])
        for arg in args:
            self.need_number(arg)
        if func in ("min", "max") and len(args) == 2:
            first, second = args
            if second.origin == "literal" and second.dim == SEC and first.dim != SEC:
                raise ExprError(
                    f"{func}() compares values; for the {func}imum over a window write "
                    f"{func}_over({self.show(first)}, {self.show(second)})",
                    name_tok.start,
                )
        keep = func == "abs"  # abs keeps the unit, so `abs(x) > 5MB` is still checked
        return Call(
            start=name_tok.start, end=end, type=FieldType.NUMBER,
            dim=args[0].dim if keep else None, origin=args[0].origin if keep else "",
            func=func, args=args, depth=self.node_depth(name_tok, *args),
        )  # fmt: skip
