"""``K/N``, the shard a watcher is (``--shard`` and ``shard:``), read and checked.

Why its own module: the config model, the fleet specs and the CLI all read it, and it
imports nothing of theirs.
"""

from __future__ import annotations

import re

__all__ = ["MAX_SHARDS", "parse_shard"]

#: More shards than this is a typo, not a fleet.
MAX_SHARDS = 1024


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` → ``(K, N)``; ValueError says what is wrong."""
    m = re.fullmatch(r"\s*(\d{1,4})\s*/\s*(\d{1,4})\s*", text)
    if not m:
        raise ValueError(f"shard {text!r} is not K/N (e.g. 0/3: the first of three shards)")
    index, count = int(m.group(1)), int(m.group(2))
    if not 1 <= count <= MAX_SHARDS:
        raise ValueError(f"shard count must be 1 to {MAX_SHARDS}, got {count}")
    if index >= count:
        raise ValueError(f"shard {index}/{count}: K must be below N (shards are 0 to {count - 1})")
    return index, count
