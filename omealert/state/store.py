"""Durable state in one SQLite file, so a restart neither forgets a timer nor repeats a send.

Everything a watcher must not lose lives here: alert instances with their timestamps, the
outbox of messages not yet delivered, the notification log and silences. One tick's changes
are written in one transaction, and a send is recorded in the same transaction that takes it
out of the outbox, so a crash at any point leaves either the old state or the new one.

URLs never reach this module; callers pass a safe service name such as ``json://127.0.0.1``.
Opening the file, its schema, permissions and failures are ``state.db``'s; the rows are
``state.records``'.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from .acks import PRUNE_CONDITION as ACK_PRUNE_CONDITION
from .acks import AckTable
from .db import ALERT_COLS, OUTBOX_COLS, SILENCE_COLS
from .ids import end_by_prefix
from .records import AlertRecord, LogEntry, OutboxMessage, Silence, TransitionRecord

__all__ = ["PRUNE_BATCH", "StateStore"]

_UPSERT_ALERT = (
    f"INSERT INTO alerts ({ALERT_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (rule, target) DO UPDATE SET state=excluded.state, "
    "active_since=excluded.active_since, fired_at=excluded.fired_at, "
    "resolved_at=excluded.resolved_at, keep_firing_since=excluded.keep_firing_since, "
    "last_eval_at=excluded.last_eval_at, value=excluded.value, labels=excluded.labels, "
    "notified=excluded.notified, identity=excluded.identity, summary=excluded.summary"
)
_INSERT_OUTBOX = f"INSERT INTO outbox ({OUTBOX_COLS}) VALUES (NULL,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
#: Rows per pruning transaction: a few milliseconds of write lock on an ordinary disk.
PRUNE_BATCH = 2000
#: What ``prune_batch`` deletes, table by table: each condition compares with the cutoff.
_PRUNABLE = (
    ("transitions", "at < ?"),
    ("notification_log", "at < ?"),
    ("silences", "min(ends_at, coalesce(expired_at, ends_at)) < ?"),
    ("acks", ACK_PRUNE_CONDITION),
    # a thread whose alert never resolved (its rule or channel went away) ages out
    ("slack_threads", "posted_at < ?"),
    ("slack_messages", "posted_at < ?"),
)

#: Compact JSON for the DB; one reused encoder is markedly faster than json.dumps per call.
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _alerts(rows: list[tuple[Any, ...]]) -> list[AlertRecord]:
    """Decode rows with one json.loads for all of them: per-call overhead dominates at 10k rows."""
    decoded = json.loads("[" + ",".join([f"[{r[8]},{r[9]},{r[10]}]" for r in rows]) + "]")
    if len(decoded) != len(rows) or any(len(d) != 3 for d in decoded):
        raise ValueError("an alert row holds malformed JSON")
    out = []
    for r, (value, labels, notified) in zip(rows, decoded, strict=True):
        rec = AlertRecord(*r)
        rec.value, rec.labels, rec.notified = value, labels, notified
        out.append(rec)
    return out


def _silence(r: tuple[Any, ...]) -> Silence:
    silence = Silence(*r)
    silence.matchers = json.loads(r[1])
    return silence


class StateStore(AckTable):
    """The one place omealert keeps state between ticks and between processes."""

    # -- alerts ----------------------------------------------------------------------------

    def load_alerts(self) -> list[AlertRecord]:
        with self._use("load alerts") as conn:
            rows = conn.execute(f"SELECT {ALERT_COLS} FROM alerts ORDER BY rule, target")
            return _alerts(rows.fetchall())

    def save_tick(
        self,
        *,
        upsert: Iterable[AlertRecord] = (),
        delete: Iterable[tuple[str, str]] = (),
        transitions: Iterable[TransitionRecord] = (),
        outbox: Iterable[OutboxMessage] = (),
        meta: Mapping[str, str] | None = None,
        acks_announced: Iterable[tuple[str, float]] = (),
    ) -> list[int]:
        """Write one tick atomically; returns the ids given to the new outbox messages, in order.

        Rows are encoded before the transaction starts, so the write lock is held only for I/O.
        A key both deleted and upserted ends up upserted.
        """
        dumps = _dumps
        alert_rows = [
            (
                a.rule, a.target, a.state, a.active_since, a.fired_at, a.resolved_at,
                a.keep_firing_since, a.last_eval_at, dumps(a.value), dumps(a.labels),
                dumps(a.notified), a.identity, a.summary,
            )
            for a in upsert
        ]  # fmt: skip
        delete_rows = list(delete)
        transition_rows = [
            (t.at, t.rule, t.target, t.from_state, t.to_state, dumps(t.value)) for t in transitions
        ]
        outbox_rows = [
            (
                m.channel, m.url_index, m.created_at, m.next_attempt_at, m.attempts, m.title,
                m.body, m.format, m.notify_type, m.reason, m.rule, dumps(m.targets), m.last_error,
                m.service_key,
            )
            for m in outbox
        ]  # fmt: skip
        meta_rows = list((meta or {}).items())
        announced = [(at, ack_id) for ack_id, at in acks_announced]
        if not (alert_rows or delete_rows or transition_rows or outbox_rows or meta_rows) and (
            not announced
        ):
            return []
        ids: list[int] = []
        with self._txn("save the tick") as conn:
            conn.executemany("DELETE FROM alerts WHERE rule = ? AND target = ?", delete_rows)
            conn.executemany(_UPSERT_ALERT, alert_rows)
            conn.executemany(
                "INSERT INTO transitions (at, rule, target, from_state, to_state, value) "
                "VALUES (?,?,?,?,?,?)",
                transition_rows,
            )
            for row in outbox_rows:
                new_id = conn.execute(_INSERT_OUTBOX, row).lastrowid
                assert new_id is not None
                ids.append(new_id)
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                meta_rows,
            )
            conn.executemany("UPDATE acks SET announced_at = ? WHERE id = ?", announced)
        return ids

    # -- outbox and delivery ---------------------------------------------------------------

    def due_outbox(self, now: float, limit: int = 100) -> list[OutboxMessage]:
        """Messages whose next attempt is due, oldest first so a channel sees them in order."""
        with self._use("read the outbox") as conn:
            rows = conn.execute(
                f"SELECT {OUTBOX_COLS} FROM outbox WHERE next_attempt_at <= ? "
                "ORDER BY created_at, id LIMIT ?",
                (now, limit),
            ).fetchall()
            return [self._message(r) for r in rows]

    def pending_outbox(self) -> list[OutboxMessage]:
        with self._use("read the outbox") as conn:
            rows = conn.execute(
                f"SELECT {OUTBOX_COLS} FROM outbox ORDER BY created_at, id"
            ).fetchall()
            return [self._message(r) for r in rows]

    @staticmethod
    def _message(r: tuple[Any, ...]) -> OutboxMessage:
        msg = OutboxMessage(*r)
        msg.targets = json.loads(r[12])
        return msg

    def set_service_key(self, msg_id: int, key: str) -> None:
        """Bind a message queued without a service key (an older version's) to its service."""
        with self._txn("bind a queued message to its service") as conn:
            conn.execute("UPDATE outbox SET service_key = ? WHERE id = ?", (key, msg_id))

    def mark_delivered(self, msg_id: int, at: float, service: str) -> None:
        """Take the message out of the outbox and log the send, in one transaction."""
        with self._txn("record a delivery") as conn:
            if self._log_message(conn, msg_id, at, "sent", service, "delivered"):
                conn.execute("DELETE FROM outbox WHERE id = ?", (msg_id,))

    def mark_failed(
        self,
        msg_id: int,
        at: float,
        error: str,
        next_attempt_at: float,
        service: str,
        reason: str = "",
    ) -> None:
        """Log a failed attempt; ``reason`` (a ``FailureReason``) leads its line in history."""
        with self._txn("record a failed delivery") as conn:
            row = conn.execute("SELECT attempts FROM outbox WHERE id = ?", (msg_id,)).fetchone()
            attempt = (row[0] + 1) if row else 0
            why = f" ({reason})" if reason else ""
            note = f"attempt {attempt} failed{why}: {error}; next try {_utc(next_attempt_at)}"
            if self._log_message(conn, msg_id, at, "failed", service, note):
                conn.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
                    "next_attempt_at = ? WHERE id = ?",
                    (error, next_attempt_at, msg_id),
                )

    def mark_dropped(self, msg_id: int, at: float, reason: str, service: str) -> None:
        with self._txn("record a dropped message") as conn:
            if self._log_message(conn, msg_id, at, "dropped", service, f"dropped: {reason}"):
                conn.execute("DELETE FROM outbox WHERE id = ?", (msg_id,))

    def _log_message(
        self, conn: sqlite3.Connection, msg_id: int, at: float, kind: str, service: str, note: str
    ) -> bool:
        row = conn.execute(
            "SELECT rule, targets, channel, reason, title FROM outbox WHERE id = ?", (msg_id,)
        ).fetchone()
        if row is None:
            # Another process (or an earlier call) already settled it; nothing left to record.
            self._log.warning("outbox message %d is no longer queued; not logging %s", msg_id, kind)
            return False
        rule, targets, channel, reason, title = row
        conn.execute(
            "INSERT INTO notification_log (at, kind, message_id, rule, targets, channel, service, "
            "reason, detail) VALUES (?,?,?,?,?,?,?,?,?)",
            (at, kind, msg_id, rule, targets, channel, service, reason,
             f"{title!r} ({reason}) via {service}: {note}"),
        )  # fmt: skip
        return True

    # -- silences --------------------------------------------------------------------------

    def add_silence(
        self,
        matchers: list[str],
        starts_at: float,
        ends_at: float,
        created_by: str,
        comment: str,
        now: float,
        kind: str = "silence",
    ) -> Silence:
        with self._txn("add a silence") as conn:
            while True:
                sid = secrets.token_hex(4)
                if not conn.execute("SELECT 1 FROM silences WHERE id = ?", (sid,)).fetchone():
                    break
            silence = Silence(
                sid, list(matchers), starts_at, ends_at, created_by, comment, now, None, kind
            )
            conn.execute(
                f"INSERT INTO silences ({SILENCE_COLS}) VALUES (?,?,?,?,?,?,?,NULL,?)",
                (sid, _dumps(silence.matchers), starts_at, ends_at, created_by, comment, now, kind),
            )
        return silence

    def list_silences(self, now: float, include_expired: bool = False) -> list[Silence]:
        """Current and future silences (plus ended ones if asked), by start time."""
        where = "" if include_expired else "WHERE expired_at IS NULL AND ends_at > ?"
        args: tuple[float, ...] = () if include_expired else (now,)
        return self._silences(where, args)

    def active_silences(self, now: float) -> list[Silence]:
        return self._silences(
            "WHERE expired_at IS NULL AND starts_at <= ? AND ? < ends_at", (now, now)
        )

    def _silences(self, where: str, args: tuple[float, ...]) -> list[Silence]:
        with self._use("read silences") as conn:
            rows = conn.execute(
                f"SELECT {SILENCE_COLS} FROM silences {where} ORDER BY starts_at, id", args
            ).fetchall()
            return [_silence(r) for r in rows]

    def expire_silence(self, silence_id: str, now: float) -> bool:
        """End a silence now, by id or unique id prefix; False if no live silence matches.

        An ambiguous prefix raises StateError listing the candidates rather than guessing.
        """
        with self._txn("expire a silence") as conn:
            live = "expired_at IS NULL AND ends_at > ?"
            return end_by_prefix(conn, "silences", live, "expired_at", "silence", silence_id, now)

    # -- history and meta ------------------------------------------------------------------

    def history(self, since: float, limit: int = 1000) -> list[LogEntry]:
        """Transitions and deliveries at or after ``since``, oldest first; the newest ``limit``.

        At equal times a transition sorts before the sends it caused.
        """
        with self._use("read history") as conn:
            trans = conn.execute(
                "SELECT at, id, rule, target, from_state, to_state, value FROM transitions "
                "WHERE at >= ? ORDER BY at DESC, id DESC LIMIT ?",
                (since, limit),
            ).fetchall()
            sends = conn.execute(
                "SELECT at, id, kind, rule, targets, channel, detail FROM notification_log "
                "WHERE at >= ? ORDER BY at DESC, id DESC LIMIT ?",
                (since, limit),
            ).fetchall()
            keyed: list[tuple[float, int, int, LogEntry]] = []
            for at, rid, rule, target, old, new, value in trans:
                detail = f"{old} → {new}" + ("" if value == "null" else f" (value {value})")
                keyed.append((at, 0, rid, LogEntry(at, "transition", rule, [target], "", detail)))
            for at, rid, kind, rule, targets, channel, detail in sends:
                entry = LogEntry(at, kind, rule, json.loads(targets), channel, detail)
                keyed.append((at, 1, rid, entry))
        keyed.sort(key=lambda k: k[:3])
        return [k[3] for k in keyed[-limit:]] if limit > 0 else []

    def get_meta(self, key: str) -> str | None:
        with self._use("read meta") as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.save_tick(meta={key: value})

    def prune(self, before: float, batch: int = PRUNE_BATCH) -> int:
        """Drop everything older than ``before``, ``batch`` rows per transaction; how many went."""
        total = 0
        while True:
            removed = self.prune_batch(before, batch)
            total += removed
            if removed < batch:
                return total

    def prune_batch(self, before: float, limit: int = PRUNE_BATCH) -> int:
        """Delete at most ``limit`` rows older than ``before`` in one short transaction.

        Transitions, then log lines, then silences that ended (or were expired) before the
        cutoff; queued messages are never touched (``delivery_max_age`` bounds those). Rows
        are picked through the ``at`` indexes, so a batch costs the same however much is left,
        and the write lock is held for one batch only: a tick or ``omealert silence`` waits
        at most that long. Returns how many rows went; fewer than ``limit`` means done.
        """
        removed = 0
        with self._txn("prune old history") as conn:
            for table, condition in _PRUNABLE:
                if removed >= limit:
                    break
                cur = conn.execute(
                    f"DELETE FROM {table} WHERE rowid IN "
                    f"(SELECT rowid FROM {table} WHERE {condition} LIMIT ?)",
                    (before, limit - removed),
                )
                removed += cur.rowcount
        return removed
