"""Release numbers as comparable values: ``version < "0.20.5"`` compares releases, not text.

Compared as text, ``"0.9.0" > "0.18.0"``; compared here, each dot-separated part is a
number, and missing trailing parts count as 0 (``"0.20"`` is ``"0.20.0"``). OME prints
``major.minor.micro`` (``main/main.h``); Enterprise builds add a fourth part (``0.18.2.1``).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from .tree import Field, Node

__all__ = ["RELEASE_PARTS", "is_release", "release_key"]

#: parts every key is padded to, so that ``0.20`` and ``0.20.0`` are equal
RELEASE_PARTS = 4
_RELEASE = re.compile(r"v?(\d{1,6}(?:\.\d{1,6}){0,3})")


@functools.lru_cache(maxsize=256)  # a fleet runs a handful of releases; queues ask per poll
def _release_key_of(text: str) -> tuple[int, ...] | None:
    match = _RELEASE.fullmatch(text.strip())
    if match is None:
        return None
    parts = [int(p) for p in match.group(1).split(".")]
    return tuple(parts + [0] * (RELEASE_PARTS - len(parts)))


def release_key(text: Any) -> tuple[int, ...] | None:
    """``"0.20.5"`` → ``(0, 20, 5, 0)``; ``None`` for anything that is not a release number."""
    if not isinstance(text, str):
        return None
    return _release_key_of(text)


def is_release(node: Node) -> bool:
    """Whether ``node`` reads a field holding a release number (``version``)."""
    return isinstance(node, Field) and node.spec.release
