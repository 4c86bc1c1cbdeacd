"""What makes a condition well-typed, and the message when it is not.

The parser (``lang.parse``) builds on ``Checker``: it owns the token cursor the messages
point into, and one check per kind of mistake (a timestamp used as a number, a size
compared with a bit-rate field, text left unquoted), each saying how to fix it.
"""

from __future__ import annotations

from ..errors import ExprError
from .fields import FieldLookupError, FieldType, Unit, resolve
from .lex import BITS, BYTE_RATE, BYTES, KEYWORDS, SEC, Tok, tokens
from .tree import Age, Field, Lit, Node
from .versions import is_release, release_key

_MAX_DEPTH = 32  # keeps parser, compiler and closures far from Python's recursion limit
_LITERAL_KIND = {SEC: "a duration", BITS: "a bit rate", BYTES: "a size"}
_EXAMPLE = {SEC: "30s", BITS: "1Mbps", BYTES: "1MB", BYTE_RATE: "1MB"}
KIND = {
    FieldType.NUMBER: "a number", FieldType.STRING: "text",
    FieldType.BOOL: "true/false", FieldType.TIME: "a timestamp",
}  # fmt: skip


class Checker:
    """The parser's token cursor and its checks; ``exprparse.Parser`` adds the grammar."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lexer = tokens(text)
        self.toks: list[Tok] = []
        self.i = 0
        self.nesting = 0

    # -- token helpers
    def peek(self, ahead: int = 0) -> Tok:
        want = self.i + ahead
        while len(self.toks) <= want and not (self.toks and self.toks[-1].kind == "end"):
            self.toks.append(next(self.lexer))
        return self.toks[min(want, len(self.toks) - 1)]

    def take(self) -> Tok:
        tok = self.peek()
        if tok.kind != "end":
            self.i += 1
        return tok

    def at(self, kind: str, *texts: str) -> bool:
        tok = self.peek()
        return tok.kind == kind and tok.text in texts

    def show(self, node: Node) -> str:
        src = self.text[node.start : node.end].strip()
        return src if len(src) <= 40 else src[:37] + "..."

    def enter(self, tok: Tok) -> None:
        self.nesting += 1
        if self.nesting > _MAX_DEPTH:
            raise ExprError(f"the condition nests deeper than {_MAX_DEPTH} levels", tok.start)

    def node_depth(self, tok: Tok, *children: Node) -> int:
        depth = 1 + max(c.depth for c in children)
        if depth > _MAX_DEPTH:
            raise ExprError(f"the condition nests deeper than {_MAX_DEPTH} levels", tok.start)
        return depth

    # -- checks
    def time_error(self, node: Node) -> ExprError:
        shown = self.show(node)
        return ExprError(
            f"{shown} is a timestamp; use '{shown} stale > 30s' or 'age({shown})' "
            "for its age in seconds",
            node.start,
        )

    def need_number(self, node: Node) -> None:
        if node.type is FieldType.TIME:
            raise self.time_error(node)
        if node.type is not FieldType.NUMBER:
            raise ExprError(f"{self.show(node)} is {KIND[node.type]}, not a number", node.start)

    def need_condition(self, node: Node) -> None:
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
            f"{shown} is {KIND[node.type]}, not a condition; compare it, e.g. '{example}'",
            node.start,
        )

    def check_compare(self, tok: Tok, left: Node, right: Node) -> None:
        for side in (left, right):
            if side.type is FieldType.TIME:
                raise self.time_error(side)
        if self.check_release(left, right):
            return
        if tok.text in ("==", "!="):
            if left.type is not right.type:
                raise ExprError(
                    f"cannot compare {KIND[left.type]} with {KIND[right.type]}", right.start
                )
            self.check_spelling(left, right)
            self.check_spelling(right, left)
        else:
            for side in (left, right):
                if side.type is not FieldType.NUMBER:
                    what = "text" if side.type is FieldType.STRING else "true/false values"
                    raise ExprError(f"{what} can only be compared with '==' or '!='", tok.start)
        if left.type is FieldType.NUMBER:
            self.check_units(left, right)
            self.check_units(right, left)

    def check_release(self, left: Node, right: Node) -> bool:
        """Whether ``<``/``>`` compare a release field with a release number; a literal that
        is not one (``"latest"``) is an error, since the comparison could never hold."""
        if not (is_release(left) or is_release(right)):
            return False
        for side in (left, right):
            if side.type is not FieldType.STRING:
                raise ExprError(f"cannot compare a release with {KIND[side.type]}", side.start)
            if isinstance(side, Lit) and release_key(side.value) is None:
                raise ExprError(
                    f'"{side.value}" is not a release number; write one like "0.20.5"',
                    side.start,
                )
        return True

    def check_spelling(self, field: Node, literal: Node) -> None:
        """Text is compared exactly, and OME writes ``Rtmp``, not ``RTMP``: a known value in
        another case would make the condition never hold, silently. Values OME may add
        later are let through."""
        if not isinstance(field, Field) or not isinstance(literal, Lit):
            return
        value = literal.value
        if not isinstance(value, str) or value in field.spec.spellings:
            return
        for spelling in field.spec.spellings:
            if spelling.casefold() == value.casefold():
                raise ExprError(
                    f'{self.show(field)} is never "{value}": OME writes "{spelling}" '
                    "(text comparisons are exact)",
                    literal.start,
                )

    def check_units(self, measured: Node, literal: Node) -> None:
        """A field compared with a literal of another unit family is almost surely a mistake."""
        have, lit = measured.dim, literal.dim
        if measured.origin != "measured" or literal.origin != "literal" or lit is None:
            return
        if not have or have == lit or (have == BYTE_RATE and lit == BYTES):
            return
        name = measured.label if isinstance(measured, Age) else self.show(measured)
        if have == BITS:
            msg = f"{name} is in bits/s; write a bit rate such as 5Mbps"
        elif have == BYTES and lit == BITS and isinstance(measured, Field):
            if measured.spec.counter:
                msg = f"{name} is a byte counter; compare rate({name}) * 8 with a bit rate"
            else:
                msg = (
                    f"{name} is in bytes (counted over the last ~1 s), not bits/s; multiply "
                    f"it by 8 ({name} * 8) or compare it with a size such as 250KB"
                )
        elif have == BYTES:
            msg = f"{name} is in bytes; write a size such as 5MB"
        elif have == BYTE_RATE and lit == BITS:
            msg = f"{name} is in bytes/s; write {name} * 8 to compare it with a bit rate"
        elif have == BYTE_RATE:
            msg = f"{name} is in bytes/s; compare it with a size per second such as 1MB"
        elif have == SEC:
            msg = f"{name} is in seconds; write a duration such as 30s"
        else:
            what = "a count" if have == Unit.COUNT.value else f"in {have}"
            msg = f"{name} is {what}; compare it with a plain number, not {_LITERAL_KIND[lit]}"
        raise ExprError(msg, literal.start)

    def quote_hint(self, left: Node) -> None:
        """``sourceType == Rtmp``: an unknown bare word next to text was meant as text."""
        tok, nxt = self.peek(), self.peek(1)
        if (
            tok.kind != "name"
            or tok.text in KEYWORDS
            or nxt.text in ("(", "publishers", "providers")
        ):
            return
        try:
            resolve(tok.text)
        except FieldLookupError:
            raise ExprError(
                f'to compare {self.show(left)} with text, quote it: "{tok.text}"', tok.start
            ) from None

    def expected_value(self, tok: Tok) -> ExprError:
        if self.i == 0:
            if tok.kind == "end":
                return ExprError("the condition is empty", 0)
            return ExprError(f"the condition must start with a value, not {tok.text!r}", tok.start)
        prev = self.toks[self.i - 1].text
        if tok.kind == "end":
            return ExprError(f"expected a value after {prev!r}", tok.start)
        return ExprError(f"expected a value after {prev!r}, not {tok.text!r}", tok.start)

    def unexpected(self, tok: Tok, *, in_group: bool) -> ExprError:
        if tok.text in (")", ","):
            return ExprError(f"unexpected {tok.text!r}", tok.start)
        low = tok.text.lower()
        if tok.kind == "name" and low != tok.text and low in KEYWORDS:
            return ExprError(f"write {low!r} in lower case", tok.start)
        wanted = "an operator, 'and', 'or'" + (" or ')'" if in_group else "")
        return ExprError(f"unexpected {tok.text!r}; expected {wanted}", tok.start)
