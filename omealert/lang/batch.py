"""Whole-list loops for the commonest condition shapes, so the hot path makes no call per sample.

``field > 500``, ``lastRecvTime stale > 30s`` and ``rate(totalBytesIn, 1m) < 10kB`` are
most of what operators write. For those, ``Condition.holding`` runs one of these loops over
all of a rule's samples instead of calling the compiled closures once per sample: same
results as the closures (a missing field, a value of the wrong type or too little history
is "no value") in less than half the time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..model import Sample, Target
from .compile import history_caller
from .lex import CMP
from .tree import Age, Bin, Field, Hist, Lit, Node

if TYPE_CHECKING:
    from .compile import AlertValue, HistoryView

HistoryFor = Callable[[Target], "HistoryView"]
#: ``(samples, history_for, unknown) -> [(sample, value)]`` for the samples that hold.
BatchFn = Callable[
    [Iterable[Sample], "HistoryFor | None", "list[Sample] | None"],
    "list[tuple[Sample, AlertValue]]",
]


def compile_batch(node: Node) -> BatchFn | None:
    """A loop for ``field``, ``age`` or a history function ``<op> constant``; else None."""
    if not (isinstance(node, Bin) and node.op in CMP and isinstance(node.right, Lit)):
        return None
    op: Callable[[Any, Any], bool] = CMP[node.op]
    const = node.right.value
    left = node.left
    if isinstance(left, Field) and left.spec.release:
        return None  # compared as release numbers, not as text: the closures do that
    if isinstance(left, Field):
        return _field_loop(left.spec.path, 0 if left.spec.missing_is_zero else None, op, const)
    if isinstance(left, Age):
        return _age_loop(left.path, op, const)
    if isinstance(left, Hist):
        return _history_loop(history_caller(left), op, const)
    return None


def _field_loop(
    path: str, default: int | None, op: Callable[[Any, Any], bool], const: Any
) -> BatchFn:
    def field_vs_const(
        samples: Iterable[Sample], history_for: HistoryFor | None, unknown: list[Sample] | None
    ) -> list[tuple[Sample, AlertValue]]:
        out: list[tuple[Sample, AlertValue]] = []
        for sample in samples:
            a: Any = sample.fields.get(path, default)
            if a is not None:
                try:
                    if op(a, const):
                        out.append((sample, a))
                    continue
                except TypeError:
                    pass
            if unknown is not None:
                unknown.append(sample)
        return out

    return field_vs_const


def _age_loop(path: str, op: Callable[[Any, Any], bool], const: Any) -> BatchFn:
    def age_vs_const(
        samples: Iterable[Sample], history_for: HistoryFor | None, unknown: list[Sample] | None
    ) -> list[tuple[Sample, AlertValue]]:
        out: list[tuple[Sample, AlertValue]] = []
        for sample in samples:
            stamp = sample.fields.get(path)
            if isinstance(stamp, datetime):
                a = sample.server_now - stamp.timestamp()
                if op(a, const):
                    out.append((sample, a))
            elif unknown is not None:
                unknown.append(sample)
        return out

    return age_vs_const


def _history_loop(
    ask: Callable[[HistoryView], float | None], op: Callable[[Any, Any], bool], const: Any
) -> BatchFn:
    def history_vs_const(
        samples: Iterable[Sample], history_for: HistoryFor | None, unknown: list[Sample] | None
    ) -> list[tuple[Sample, AlertValue]]:
        out: list[tuple[Sample, AlertValue]] = []
        for sample in samples:
            a = None if history_for is None else ask(history_for(sample.target))
            if a is None:
                if unknown is not None:
                    unknown.append(sample)
            elif op(a, const):
                out.append((sample, a))
        return out

    return history_vs_const
