"""Tokens of the condition language: numbers with their units, strings, names, operators.

Unit literals are resolved here, once: ``5m`` becomes 300 in the seconds family and
``1Mbps`` 1e6 in the bits/s family. The family (``dim``) travels with the token, so the
parser can tell a size compared with a bit-rate field from a comparison that makes sense.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..durations import parse_duration
from ..errors import ExprError
from .fields import Unit

KEYWORDS = frozenset({"and", "or", "not", "true", "false", "stale", "absent", "offset"})
CMP: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne,
}  # fmt: skip

# Literal units: (multiplier, divisor, dimension). Dimensions are Unit values, so a literal
# can be checked against the catalogue's unit of the field it is compared with.
SEC, BITS, BYTES = Unit.SECONDS.value, Unit.BITRATE.value, Unit.BYTES.value
BYTE_RATE = "bytes/s"  # rate() of a byte counter; not a catalogue unit
UNITS: dict[str, tuple[int, int, str | None]] = {
    "ms": (1, 1000, SEC), "s": (1, 1, SEC), "m": (60, 1, SEC), "h": (3600, 1, SEC),
    "d": (86400, 1, SEC), "w": (604800, 1, SEC),
    "bps": (1, 1, BITS), "kbps": (10**3, 1, BITS), "Kbps": (10**3, 1, BITS),
    "Mbps": (10**6, 1, BITS), "Gbps": (10**9, 1, BITS),
    "B": (1, 1, BYTES), "KB": (10**3, 1, BYTES), "kB": (10**3, 1, BYTES),
    "MB": (10**6, 1, BYTES), "GB": (10**9, 1, BYTES), "KiB": (2**10, 1, BYTES),
    "MiB": (2**20, 1, BYTES), "GiB": (2**30, 1, BYTES),
    "%": (1, 100, None),
}  # fmt: skip
_UNIT_WORDS = {"sec": "s", "secs": "s", "min": "m", "mins": "m", "hr": "h", "hrs": "h"}
_UNIT_LIST = (
    "use a duration (500ms, 30s, 5m, 1h, 1d, 1h30m), a bit rate (bps, kbps, Mbps, Gbps), "
    "a size (B, KB, MB, GB, KiB, MiB, GiB) or %"
)

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
class Tok:
    kind: str  # "num", "str", "name", "op" or "end"
    text: str
    start: int
    end: int
    value: Any = None
    dim: str | None = None


def tokens(text: str) -> Iterator[Tok]:
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
            yield Tok("name", m.group(), pos, m.end())
        elif m.group("op") is not None:
            yield Tok("op", m.group(), pos, m.end())
        pos = m.end()
    yield Tok("end", "", len(text), len(text))


def _string(text: str, start: int) -> Tok:
    quote, pos = text[start], start + 1
    out: list[str] = []
    while pos < len(text):
        ch = text[pos]
        if ch == quote:
            return Tok("str", text[start : pos + 1], start, pos + 1, "".join(out))
        if ch == "\\" and pos + 1 < len(text):
            pos += 1
            ch = text[pos]
        out.append(ch)
        pos += 1
    raise ExprError(f"unclosed string; add the closing {quote}", start)


#: the longest number literal read; a longer one is a slip, and past 4,300 digits Python's
#: int() refuses it with a ValueError that no config error would catch
_MAX_DIGITS = 40


def _number(digits: str, suffix: str | None, start: int, end: int) -> Tok:
    word = digits + (suffix or "")
    if len(digits) > _MAX_DIGITS:
        raise ExprError(f"a number of more than {_MAX_DIGITS} characters", start)
    is_int = digits.isdigit()
    duration = suffix is not None and (suffix not in UNITS or UNITS[suffix][2] == SEC)
    if not is_int and not duration and not math.isfinite(float(digits)):
        # inf would make `x < 1e999` always hold; durations say "too long" where they are used
        raise ExprError(f"{digits!r} is too large a number", start)
    if suffix is None:
        return Tok("num", word, start, end, int(digits) if is_int else float(digits))
    if suffix in UNITS:
        mul, div, dim = UNITS[suffix]
        value = int(digits) * mul if is_int and div == 1 else float(digits) * mul / div
        return Tok("num", word, start, end, value, dim)
    try:
        return Tok("num", word, start, end, parse_duration(word), SEC)  # compound: 1h30m
    except ValueError:
        pass
    folded = [u for u in UNITS if u.lower() == suffix.lower()]
    good = _UNIT_WORDS.get(suffix.lower()) or (folded[0] if len(folded) == 1 else None)
    hint = f"did you mean {digits}{good}?" if good else _UNIT_LIST
    raise ExprError(f"unknown unit {suffix!r} in {word!r}; {hint}", start)
