"""Ending a silence or an acknowledgement by its id or a unique prefix of it, as the
``silence expire`` and ``ack remove`` commands take them.

Why shared: both tables name rows by random hex ids that people shorten, and both must
refuse an ambiguous prefix the same way rather than guess.
"""

from __future__ import annotations

import re
import sqlite3

from ..errors import StateError

__all__ = ["end_by_prefix"]

_HEX = re.compile(r"[0-9a-f]+")


def end_by_prefix(
    conn: sqlite3.Connection,
    table: str,
    live: str,
    end_column: str,
    noun: str,
    given: str,
    now: float,
) -> bool:
    """Set ``end_column`` to ``now`` on the one live row whose id starts with ``given``.

    ``live`` is the SQL condition of a row still in force, with one ``?`` for ``now``.
    False when no live row matches; StateError naming the candidates when several do.
    """
    prefix = given.strip().lower()
    if not _HEX.fullmatch(prefix):
        return False
    ids = [
        r[0]
        for r in conn.execute(
            f"SELECT id FROM {table} WHERE substr(id, 1, ?) = ? AND {live} ORDER BY id",
            (len(prefix), prefix, now),
        )
    ]
    if len(ids) > 1:
        raise StateError(f"{noun} id {given!r} is ambiguous: matches {', '.join(ids)}")
    if not ids:
        return False
    conn.execute(f"UPDATE {table} SET {end_column} = ? WHERE id = ?", (now, ids[0]))
    return True
