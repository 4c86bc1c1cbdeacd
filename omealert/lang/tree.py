"""The typed tree a condition is parsed into, between the parser and the compiler.

Each node carries its type and physical unit, so checks happen while the tree is built
and the compiler never has to ask what a node means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .fields import FieldSpec, FieldType


@dataclass(slots=True, kw_only=True)
class Node:
    start: int
    end: int
    type: FieldType
    dim: str | None = None  # physical unit, for checks against literal units
    origin: str = ""  # "measured" (a field, its age or history), "literal", or "" (derived)
    depth: int = 1


@dataclass(slots=True, kw_only=True)
class Lit(Node):
    value: Any


@dataclass(slots=True, kw_only=True)
class Field(Node):
    spec: FieldSpec


@dataclass(slots=True, kw_only=True)
class Age(Node):
    path: str
    label: str  # how messages name it: "the age of lastRecvTime" or "age(lastRecvTime)"


@dataclass(slots=True, kw_only=True)
class Hist(Node):
    func: str
    spec: FieldSpec
    window: float | None
    q: float | None = None  # quantile_over's quantile


@dataclass(slots=True, kw_only=True)
class Call(Node):
    func: str  # abs, min, max
    args: list[Node]


@dataclass(slots=True, kw_only=True)
class Neg(Node):
    operand: Node


@dataclass(slots=True, kw_only=True)
class Not(Node):
    operand: Node


@dataclass(slots=True, kw_only=True)
class Bin(Node):
    op: str  # arithmetic or comparison operator
    left: Node
    right: Node


@dataclass(slots=True, kw_only=True)
class Logic(Node):
    op: str  # "and" / "or"
    parts: list[Node]
