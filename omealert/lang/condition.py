"""The condition language of rules: parsed and checked once at load, then run as closures.

A condition such as ``webrtc publishers > 500`` or ``lastRecvTime stale > 30s`` is
tokenized, parsed by recursive descent into a small typed tree, checked (types, units,
scopes) while it is built, and finally turned into nested closures. ``evaluate`` only
calls those closures: no re-parsing, no name lookups, and never ``eval`` of user text.

Each stage has its module, in the order they run: ``lang.lex`` (tokens, unit literals),
``lang.parse`` (the grammar) building ``lang.tree`` nodes checked by ``lang.check``, and
``lang.compile`` (the closures and what ``None`` means), plus ``lang.batch`` (whole-list
loops for the commonest shapes). This module is their API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from ..durations import format_duration
from ..errors import ExprError
from ..model import Sample, Scope, Target, Value
from .batch import BatchFn, compile_batch
from .compile import NOTHING, AlertValue, HistoryView, Result, compile_root, value_unit
from .parse import FUNCTIONS, Parser, Use

__all__ = ["FUNCTIONS", "Condition", "HistoryView", "compile_condition"]


def _absent(f: Mapping[str, Value], n: float, h: HistoryView | None) -> Result:
    return False, None  # a target with a sample is present; the engine decides absence


class Condition:
    """A compiled condition: what it reads (for request planning) and how to evaluate it."""

    __slots__ = (
        "_batch",
        "_run",
        "field_offsets",
        "fields",
        "history_fields",
        "history_uses",
        "is_absent",
        "max_window",
        "rate_fields",
        "scope",
        "text",
        "value_fields",
        "value_unit",
    )

    def __init__(
        self,
        text: str,
        scope: Scope,
        run: Callable[[Mapping[str, Value], float, HistoryView | None], Result],
        *,
        is_absent: bool = False,
        field_offsets: dict[str, int] | None = None,
        rate_fields: frozenset[str] = frozenset(),
        value_fields: frozenset[str] = frozenset(),
        max_window: float = 0.0,
        batch: BatchFn | None = None,
        value_unit: str | None = None,
        history_uses: frozenset[Use] = frozenset(),
    ) -> None:
        self.text = text
        #: the unit of the alert's value (``fields.Unit`` values, or ``bytes/s`` for the
        #: rate of a byte counter); None when it has none, e.g. a count or a derived number
        self.value_unit = value_unit
        self.scope = scope
        self.is_absent = is_absent
        self.field_offsets: dict[str, int] = field_offsets or {}
        self.fields = frozenset(self.field_offsets)
        #: read by rate() / by delta() and *_over(): the history keeps each what it needs
        self.rate_fields = rate_fields
        self.value_fields = value_fields
        self.history_fields = rate_fields | value_fields | {u[1] for u in history_uses}
        self.max_window = max_window
        #: every (function, field, window, quantile) read: what the history keeps, and how
        self.history_uses = history_uses
        self._run = run
        self._batch = batch

    def evaluate(
        self, fields: Mapping[str, Value], server_now: float, history: HistoryView | None
    ) -> Result:
        """``(holds, value)``; ``holds`` is None when there is no data to decide.

        A value of the wrong type from the source (text where a number belongs) or an
        overflow is "no data" too, rather than an exception in the middle of a tick.
        """
        try:
            return self._run(fields, server_now, history)
        except (TypeError, ArithmeticError):
            return NOTHING

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
        if self._batch is not None:
            return self._batch(samples, history_for, unknown)
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


def compile_condition(text: str, scope: Scope, interval: float | None = None) -> Condition:
    """Parse, check and compile ``text`` for rules of ``scope``; raises ExprError.

    With the poll ``interval``, a window shorter than it is an error: no window could
    ever hold two points, so the condition would never have a value.
    """
    if text.strip() == "absent":
        return Condition(text, scope, _absent, is_absent=True)
    parser = Parser(text, scope)
    root = parser.parse()
    for func, window, at in parser.windows:
        if interval is not None and window < interval:
            raise ExprError(
                f"the window of {func} ({format_duration(window)}) is shorter than the "
                f"interval between polls ({format_duration(interval)}); "
                f"use {format_duration(interval * 3)} or more",
                at,
            )
    return Condition(
        text,
        scope,
        compile_root(root),
        field_offsets=dict(parser.offsets),
        rate_fields=frozenset(parser.rated),
        value_fields=frozenset(parser.valued),
        max_window=parser.max_window,
        batch=compile_batch(root),
        value_unit=value_unit(root),
        history_uses=frozenset(parser.uses),
    )
