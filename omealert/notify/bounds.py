"""What one render of an operator template may cost, counted while it runs.

A template is operator code, and a slip in it (a loop in a loop, a width of ``10**9``, a
string doubled in a namespace) must not hold the event loop or fill memory before any cap
on the finished output could apply. So a render carries a ``Budget``, and every way a
template can do work draws on it as it happens:

- *steps*: each loop iteration and each call (macros, methods, filters) costs one, so
  nested loops and recursive macros stop at ``MAX_STEPS`` whatever they print;
- *work*: each character a template prints, writes as literal text (inside macros and
  ``set`` blocks too) or builds into a value costs one, so the total allocated over a
  render stays under ``MAX_WORK``;
- *values*: nothing the template builds (a string, a list, a formatted number) may be
  larger than ``MAX_VALUE``, and this is checked *before* the operation allocates it:
  widths, repeat counts, ``range`` sizes and big-integer sizes are refused up front.

Exceeding any of them raises ``TemplateLimit``, which the renderer treats like any other
template failure: the message goes out with the default text and a line naming the
template. Nothing here looks at OME data except to measure it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from string import Formatter
from typing import Any

__all__ = [
    "MAX_INT_BITS",
    "MAX_OUTPUT",
    "MAX_RANGE",
    "MAX_STEPS",
    "MAX_VALUE",
    "MAX_WORK",
    "Budget",
    "TemplateLimit",
    "budget",
    "check_format",
    "check_int_power",
    "check_int_product",
    "check_percent_format",
    "counted",
    "need",
    "size_of",
    "within",
]

#: Characters a rendered template may produce; more is a template failure.
MAX_OUTPUT = 64 * 1024
#: Characters (or items) one value built by a template may hold.
MAX_VALUE = 64 * 1024
#: Items a ``range()`` in a template may have.
MAX_RANGE = 10_000
#: Loop iterations plus calls in one render.
MAX_STEPS = 100_000
#: Characters printed, written and built in one render, all counted.
MAX_WORK = 10_000_000
#: Bits an integer built by a template may have (about 2,500 decimal digits).
MAX_INT_BITS = 8_192


class TemplateLimit(Exception):
    """A render went over one of the limits above; the message says which."""


@dataclass(slots=True)
class Budget:
    """What is left of one render's steps and work."""

    steps: int = MAX_STEPS
    work: int = MAX_WORK

    def step(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise TemplateLimit(f"more than {MAX_STEPS} loop iterations and calls")

    def spend(self, chars: int) -> None:
        self.work -= chars
        if self.work < 0:
            raise TemplateLimit(f"more than {MAX_WORK} characters of work")


_current: ContextVar[Budget | None] = ContextVar("omealert_template_budget", default=None)


def budget() -> Budget:
    """The running render's budget.

    Outside a render there is none, and whatever asked fails: a render that forgot its
    budget must not run unmetered. (Jinja folding constants at compile time asks too; it
    takes the failure as "not a constant" and leaves the work to the metered render.)
    """
    b = _current.get()
    if b is None:
        raise RuntimeError("template work outside a metered render")
    return b


class within:
    """``with within(Budget()):`` runs a render against that budget."""

    def __init__(self, b: Budget) -> None:
        self._budget = b
        self._token: Any = None

    def __enter__(self) -> Budget:
        self._token = _current.set(self._budget)
        return self._budget

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)


def need(size: int, what: str) -> None:
    """Refuse an operation whose result could hold more than ``MAX_VALUE`` characters."""
    if size > MAX_VALUE:
        raise TemplateLimit(f"{what} over {MAX_VALUE} characters in template")


_CONTAINERS = (list, tuple, set, frozenset, dict)


def size_of(value: Any) -> int:
    """About how many characters ``value`` prints as, stopping once past ``MAX_VALUE``.

    Strings count their length, containers their contents (a list of one string repeated
    60,000 times prints as 60,000 copies), integers their digits, anything else one. The
    walk itself is work, and is paid for.
    """
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, int):
        return value.bit_length() // 3 + 1
    if not isinstance(value, _CONTAINERS):
        return 1
    total = 0
    visited = 0
    stack: list[Any] = [value]
    while stack and total <= MAX_VALUE:
        v = stack.pop()
        visited += 1
        if isinstance(v, str | bytes):
            total += len(v) + 2
        elif isinstance(v, int):
            total += v.bit_length() // 3 + 1
        elif isinstance(v, dict):
            total += 2 + 2 * len(v)
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, _CONTAINERS):
            total += 2 + len(v)
            stack.extend(v)
        else:
            total += 1
    budget().spend(visited)
    return total


def counted(items: Iterable[Any]) -> Iterator[Any]:
    """``items``, charging one step for each (what a template's ``for`` loops over)."""
    b = budget()
    for item in items:
        b.step()
        yield item


# -- sizes decided before the operation allocates ------------------------------------------


def check_int_product(left: int, right: int) -> None:
    if left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise TemplateLimit(f"integer over {MAX_INT_BITS} bits in template")


def check_int_power(base: int, exponent: int) -> None:
    if exponent > 0 and abs(base) > 1 and (base.bit_length() - 1) * exponent > MAX_INT_BITS:
        raise TemplateLimit(f"integer over {MAX_INT_BITS} bits in template")


def check_format(fmt: str) -> None:
    """Refuse a ``str.format`` string whose widths and precisions add up past the cap.

    Nested fields (``{:{width}}``) are refused outright: their width is not in the text.
    """
    total = 0
    try:
        fields = list(Formatter().parse(fmt))
    except ValueError:
        return  # Python refuses it too, with its own message
    for _, field, spec, _ in fields:
        if field is None or not spec:
            continue
        if "{" in spec:
            raise TemplateLimit("nested format fields are not allowed in templates")
        total += _numbers_in(spec)
    need(total, "formatted text")


def check_percent_format(fmt: str) -> None:
    """The same for ``%`` formatting (the ``format`` filter and the ``%`` operator).

    Walks the string once: each ``%`` conversion's flags, width and precision are read by
    hand, so no pattern can rescan a long run of them. A ``*`` width is refused.
    """
    total = 0
    i = fmt.find("%")
    n = len(fmt)
    while 0 <= i < n - 1:
        j = i + 1
        if fmt[j] == "%":
            i = fmt.find("%", j + 1)
            continue
        if fmt[j] == "(":  # a mapping key; Python lets it nest parentheses
            depth = 1
            j += 1
            while j < n and depth:
                if fmt[j] == "(":
                    depth += 1
                elif fmt[j] == ")":
                    depth -= 1
                j += 1
        while j < n and fmt[j] in "#0- +":
            j += 1
        for _ in range(2):  # width, then precision after a "."
            start = j
            while j < n and fmt[j].isdigit():
                j += 1
            if j < n and fmt[j] == "*":
                raise TemplateLimit("a '*' width is not allowed in templates")
            if j > start:
                total += int(fmt[start:j]) if j - start < 8 else MAX_VALUE + 1
            if j < n and fmt[j] == ".":
                j += 1
            else:
                break
        i = fmt.find("%", j)
    need(total, "formatted text")


def _numbers_in(spec: str) -> int:
    """The sum of the digit runs of a format spec: its width and precision, at most."""
    total = 0
    run = ""
    for ch in spec + " ":
        if ch.isdigit():
            run += ch
            if len(run) > 7:
                return MAX_VALUE + 1
        elif run:
            total += int(run)
            run = ""
    return total
