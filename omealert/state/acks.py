"""Acknowledgements in the state file: who took which firing alerts in hand, and until when.

An ack is bound, when it is made, to the alert *episodes* that fire then: each is named by
(rule, target, fired_at). A later firing of the same rule on the same target has another
``fired_at``, so it is a new alert and is not acknowledged; a sticky ack (no expiry) simply
stops mattering once its episodes have resolved. Like silences, acks are rows that
``omealert ack`` writes and a running watcher reads every tick, so they work while it runs.

``AckView`` is the one shape ``status``, ``check --format json`` (and a status page) show.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .db import ACK_COLS, StateDB
from .ids import end_by_prefix

__all__ = ["Ack", "AckTable", "AlertEpisode", "ack_index", "ack_view"]

#: (rule, target key, fired_at): one firing of one alert.
AlertEpisode = tuple[str, str, float]


@dataclass(slots=True)
class Ack:
    """One acknowledgement, as stored."""

    id: str
    matchers: list[str]
    rule: str  # "" when not limited to one rule
    alerts: list[AlertEpisode]
    created_by: str
    comment: str
    created_at: float
    expires_at: float | None = None
    removed_at: float | None = None
    announced_at: float | None = None

    def live(self, now: float) -> bool:
        """Still in force: not removed and not expired (its alerts may have resolved)."""
        return self.removed_at is None and (self.expires_at is None or now < self.expires_at)


def _ack(row: tuple[Any, ...]) -> Ack:
    ack = Ack(*row)
    ack.matchers = json.loads(row[1])
    ack.alerts = [(str(r), str(t), float(f)) for r, t, f in json.loads(row[3])]
    return ack


def ack_index(acks: Iterable[Ack], now: float) -> dict[AlertEpisode, Ack]:
    """The episodes live acks cover, each with its newest ack."""
    out: dict[AlertEpisode, Ack] = {}
    for ack in sorted(acks, key=lambda a: a.created_at):
        if ack.live(now):
            for episode in ack.alerts:
                out[episode] = ack
    return out


def ack_view(ack: Ack | None) -> dict[str, Any] | None:
    """Who acknowledged an alert, when and why, as plain JSON values (None: nobody)."""
    if ack is None:
        return None
    return {
        "id": ack.id,
        "by": ack.created_by,
        "comment": ack.comment,
        "at": ack.created_at,
        "expires_at": ack.expires_at,
    }


class AckTable(StateDB):
    """The ``acks`` table; ``StateStore`` inherits these beside its other tables."""

    def add_ack(
        self,
        *,
        matchers: Sequence[str],
        rule: str,
        alerts: Sequence[AlertEpisode],
        created_by: str,
        comment: str,
        now: float,
        expires_at: float | None,
    ) -> Ack:
        with self._txn("add an acknowledgement") as conn:
            while True:
                aid = secrets.token_hex(4)
                if not conn.execute("SELECT 1 FROM acks WHERE id = ?", (aid,)).fetchone():
                    break
            ack = Ack(aid, list(matchers), rule, list(alerts), created_by, comment, now, expires_at)
            conn.execute(
                f"INSERT INTO acks ({ACK_COLS}) VALUES (?,?,?,?,?,?,?,?,NULL,NULL)",
                (
                    aid, json.dumps(ack.matchers), rule, json.dumps(ack.alerts), created_by,
                    comment, now, expires_at,
                ),
            )  # fmt: skip
        return ack

    def list_acks(self) -> list[Ack]:
        """Every stored ack, oldest first (pruning bounds how many there are)."""
        with self._use("read acknowledgements") as conn:
            rows = conn.execute(f"SELECT {ACK_COLS} FROM acks ORDER BY created_at, id")
            return [_ack(r) for r in rows.fetchall()]

    def live_acks(self, now: float) -> list[Ack]:
        """The acks in force at ``now``, which the planner reads every tick."""
        with self._use("read acknowledgements") as conn:
            rows = conn.execute(
                f"SELECT {ACK_COLS} FROM acks WHERE removed_at IS NULL "
                "AND (expires_at IS NULL OR expires_at > ?) ORDER BY created_at, id",
                (now,),
            )
            return [_ack(r) for r in rows.fetchall()]

    def remove_ack(self, ack_id: str, now: float) -> bool:
        """End an ack now, by id or unique id prefix; False if no live ack matches."""
        with self._txn("remove an acknowledgement") as conn:
            live = "removed_at IS NULL AND (expires_at IS NULL OR expires_at > ?)"
            return end_by_prefix(conn, "acks", live, "removed_at", "ack", ack_id, now)


#: What ``prune_batch`` may delete of acks: removed or expired before the cutoff, or
#: sticky ones made before it whose alerts no longer fire.
PRUNE_CONDITION = (
    "coalesce(removed_at, expires_at, created_at) < ? AND (removed_at IS NOT NULL "
    "OR expires_at IS NOT NULL OR NOT EXISTS (SELECT 1 FROM alerts a, json_each(acks.alerts) j "
    "WHERE a.state = 'firing' AND a.rule = json_extract(j.value, '$[0]') "
    "AND a.target = json_extract(j.value, '$[1]') "
    "AND a.fired_at = json_extract(j.value, '$[2]')))"
)
