"""Durable state in one SQLite file, so a restart neither forgets a timer nor repeats a send.

Everything a watcher must not lose lives here: alert instances with their timestamps, the
outbox of messages not yet delivered, the notification log and silences. One tick's changes
are written in one transaction, and a send is recorded in the same transaction that takes it
out of the outbox, so a crash at any point leaves either the old state or the new one.

WAL mode lets ``omealert status`` and ``omealert silence`` read and write while a watcher runs;
``busy_timeout`` makes short lock waits invisible. The file and its ``-wal``/``-shm`` sidecars
are owner-only (0600): alert text can name streams and servers. URLs never reach this module;
callers pass a safe service name such as ``json://127.0.0.1``.

Every sqlite failure (read-only file, disk full, lock held too long) surfaces as ``StateError``
and leaves the database as it was, so the caller can keep running from memory. A file that
was read-only when opened is opened again before the next write, so it is used again as soon
as it is writable (SQLite would otherwise keep the read-only handle for good).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import sqlite3
import stat
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from .errors import StateError

__all__ = [
    "DEFAULT_STATE_PATH",
    "SCHEMA_VERSION",
    "AlertRecord",
    "LogEntry",
    "OutboxMessage",
    "Silence",
    "StateStore",
    "TransitionRecord",
    "default_state_path",
]

JsonScalar = float | str | bool | None


def default_state_path(environ: Mapping[str, str] | None = None) -> str:
    """Where ``watch`` keeps state unless ``--state`` says otherwise (XDG base-dir spec)."""
    env = os.environ if environ is None else environ
    if env.get("OMEALERT_STATE"):
        return env["OMEALERT_STATE"]
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "omealert", "state.db")


DEFAULT_STATE_PATH: str = default_state_path()


@dataclass(slots=True)
class AlertRecord:
    """One (rule, target) instance as persisted; ``notified`` maps channel → last firing send."""

    rule: str
    target: str
    state: str
    active_since: float | None
    fired_at: float | None
    resolved_at: float | None
    keep_firing_since: float | None
    last_eval_at: float | None
    value: JsonScalar
    labels: dict[str, str]
    notified: dict[str, float]
    identity: str
    summary: str = ""


@dataclass(slots=True)
class TransitionRecord:
    """One state change of one instance, kept for ``omealert history``."""

    at: float
    rule: str
    target: str
    from_state: str
    to_state: str
    value: JsonScalar


@dataclass(slots=True)
class OutboxMessage:
    """A rendered message for one service of a channel, waiting until it is delivered or dropped."""

    id: int | None
    channel: str
    url_index: int
    created_at: float
    next_attempt_at: float
    attempts: int
    title: str
    body: str
    format: str
    notify_type: str
    reason: str
    rule: str
    targets: list[str]
    last_error: str = ""


@dataclass(slots=True)
class Silence:
    """Mutes notifications whose labels match every matcher while ``starts_at <= now < ends_at``."""

    id: str
    matchers: list[str]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    created_at: float
    expired_at: float | None = None


@dataclass(slots=True)
class LogEntry:
    """One line of history: a transition, or what happened to a message (sent/failed/dropped)."""

    at: float
    kind: str
    rule: str
    targets: list[str] = field(default_factory=list)
    channel: str = ""
    detail: str = ""


# Each entry upgrades the schema by one version; never edit a released entry, append a new one.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE alerts (
            rule TEXT NOT NULL, target TEXT NOT NULL, state TEXT NOT NULL,
            active_since REAL, fired_at REAL, resolved_at REAL, keep_firing_since REAL,
            last_eval_at REAL, value TEXT NOT NULL, labels TEXT NOT NULL, notified TEXT NOT NULL,
            identity TEXT NOT NULL, summary TEXT NOT NULL,
            PRIMARY KEY (rule, target)) WITHOUT ROWID""",
        """CREATE TABLE transitions (
            id INTEGER PRIMARY KEY, at REAL NOT NULL, rule TEXT NOT NULL, target TEXT NOT NULL,
            from_state TEXT NOT NULL, to_state TEXT NOT NULL, value TEXT NOT NULL)""",
        "CREATE INDEX transitions_at ON transitions (at)",
        # AUTOINCREMENT: an id named in the log must never be reused by a later message.
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL,
            url_index INTEGER NOT NULL, created_at REAL NOT NULL, next_attempt_at REAL NOT NULL,
            attempts INTEGER NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL,
            format TEXT NOT NULL, notify_type TEXT NOT NULL, reason TEXT NOT NULL,
            rule TEXT NOT NULL, targets TEXT NOT NULL, last_error TEXT NOT NULL)""",
        "CREATE INDEX outbox_due ON outbox (next_attempt_at)",
        """CREATE TABLE notification_log (
            id INTEGER PRIMARY KEY, at REAL NOT NULL, kind TEXT NOT NULL, message_id INTEGER,
            rule TEXT NOT NULL, targets TEXT NOT NULL, channel TEXT NOT NULL,
            service TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL)""",
        "CREATE INDEX notification_log_at ON notification_log (at)",
        """CREATE TABLE silences (
            id TEXT PRIMARY KEY, matchers TEXT NOT NULL, starts_at REAL NOT NULL,
            ends_at REAL NOT NULL, created_by TEXT NOT NULL, comment TEXT NOT NULL,
            created_at REAL NOT NULL, expired_at REAL)""",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)

_ALERT_COLS = (
    "rule, target, state, active_since, fired_at, resolved_at, keep_firing_since, last_eval_at, "
    "value, labels, notified, identity, summary"
)
_OUTBOX_COLS = (
    "id, channel, url_index, created_at, next_attempt_at, attempts, title, body, format, "
    "notify_type, reason, rule, targets, last_error"
)
_SILENCE_COLS = "id, matchers, starts_at, ends_at, created_by, comment, created_at, expired_at"
_UPSERT_ALERT = (
    f"INSERT INTO alerts ({_ALERT_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (rule, target) DO UPDATE SET state=excluded.state, "
    "active_since=excluded.active_since, fired_at=excluded.fired_at, "
    "resolved_at=excluded.resolved_at, keep_firing_since=excluded.keep_firing_since, "
    "last_eval_at=excluded.last_eval_at, value=excluded.value, labels=excluded.labels, "
    "notified=excluded.notified, identity=excluded.identity, summary=excluded.summary"
)
_INSERT_OUTBOX = f"INSERT INTO outbox ({_OUTBOX_COLS}) VALUES (NULL,?,?,?,?,?,?,?,?,?,?,?,?,?)"
# Columns each table must have for this code to read it; a file lacking them is unreadable.
_REQUIRED = {
    "alerts": _ALERT_COLS,
    "transitions": "id, at, rule, target, from_state, to_state, value",
    "outbox": _OUTBOX_COLS,
    "notification_log": "id, at, kind, message_id, rule, targets, channel, service, reason, detail",
    "silences": _SILENCE_COLS,
    "meta": "key, value",
}
_CORRUPT_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_HEX = re.compile(r"[0-9a-f]+")


class _Unreadable(Exception):
    """The file exists but cannot be read as our database; it will be moved aside."""


#: Compact JSON for the DB; one reused encoder is markedly faster than json.dumps per call.
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tighten(path: Path) -> None:
    """Drop group/other bits from an existing file; a deliberately read-only one stays so."""
    try:
        st = path.stat()
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
            path.chmod(st.st_mode & 0o700)
    except FileNotFoundError:
        pass


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


class StateStore:
    """The one place omealert keeps state between ticks and between processes."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        logger: logging.Logger | None = None,
        busy_timeout: float = 5.0,
    ) -> None:
        self.path = Path(path)
        self.moved_aside: Path | None = None
        self._log = logger or logging.getLogger(__name__)
        self._busy_timeout = busy_timeout
        self._lock = threading.RLock()  # notify may deliver from worker threads
        self._conn: sqlite3.Connection | None = None
        #: a write was refused as read-only: open a fresh connection before the next one
        self._reopen = False
        try:
            self._conn = self._open()
        except _Unreadable as exc:
            self.moved_aside = self._move_aside(str(exc))
            try:
                self._conn = self._open()
            except _Unreadable as again:
                raise StateError(
                    f"state database {self.path}: cannot start fresh: {again}"
                ) from None

    # -- opening ---------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        self._create_file()
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # guarded by self._lock
            )
        except sqlite3.Error as exc:
            raise StateError(f"cannot open state database {self.path}: {exc}") from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL fsyncs the WAL on every commit: a tick or a send recorded as done must
            # survive a power cut, or a restart would re-send it or forget a resolve.
            conn.execute("PRAGMA synchronous=FULL")
            check = conn.execute("PRAGMA quick_check(1)").fetchone()
            if check is None or check[0] != "ok":
                raise _Unreadable(f"integrity check failed: {check[0] if check else 'no answer'}")
            self._migrate(conn)
            self._verify(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF in _CORRUPT_CODES:
                raise _Unreadable(str(exc)) from None
            raise StateError(f"cannot open state database {self.path}: {exc}") from None
        except BaseException:
            conn.close()
            raise
        for suffix in ("-wal", "-shm"):
            _tighten(Path(f"{self.path}{suffix}"))
        return conn

    def _create_file(self) -> None:
        """Create the file 0600 before sqlite does, so it never exists with umask permissions."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StateError(
                f"cannot create the directory for state database {self.path}: {exc.strerror}"
            ) from None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            try:
                _tighten(self.path)
            except OSError as exc:
                self._log.warning("cannot restrict permissions of %s: %s", self.path, exc.strerror)
            return
        except OSError as exc:
            raise StateError(f"cannot create state database {self.path}: {exc.strerror}") from None
        try:
            os.fchmod(fd, 0o600)  # umask may have removed owner bits
        finally:
            os.close(fd)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        if self._version(conn) == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = self._version(conn)  # another process may have migrated meanwhile
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version - 1]:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?, ?)", (version, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise

    def _version(self, conn: sqlite3.Connection) -> int:
        tables = {
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not r[0].startswith("sqlite_")
        }
        if "schema_version" not in tables:
            if tables:
                raise StateError(
                    f"{self.path} is an SQLite database but not an omealert state file "
                    f"(tables: {', '.join(sorted(tables))}); refusing to touch it"
                )
            return 0
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        if row is None or type(row[0]) is not int or row[0] < 1:
            raise _Unreadable("schema_version holds no valid version")
        version: int = row[0]
        if version > SCHEMA_VERSION:
            raise StateError(
                f"state database {self.path} has schema version {version}, but this omealert "
                f"understands up to {SCHEMA_VERSION}; upgrade omealert or use another --state file"
            )
        return version

    def _verify(self, conn: sqlite3.Connection) -> None:
        for table, cols in _REQUIRED.items():
            have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
            missing = [c for c in cols.split(", ") if c not in have]
            if missing:
                raise _Unreadable(f"table {table} lacks {', '.join(missing)}")

    def _move_aside(self, reason: str) -> Path:
        reason = " ".join(reason.split())  # quick_check answers span lines; the log wants one
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        try:
            # The WAL may hold the newest pages; keep it beside the copy for forensics.
            for suffix in ("-wal", "-shm"):
                side = Path(f"{self.path}{suffix}")
                if side.exists():
                    side.rename(f"{target}{suffix}")
            self.path.rename(target)
        except OSError as exc:
            raise StateError(
                f"state database {self.path} is unreadable ({reason}) and cannot be moved "
                f"aside: {exc.strerror}"
            ) from None
        self._log.error(
            "state database %s is unreadable (%s); moved it aside to %s and starting empty",
            self.path,
            reason,
            target,
        )
        return target

    def _open_again(self, action: str) -> None:
        """Replace a connection that SQLite opened read-only; the old one stays on failure."""
        with self._lock:
            if self._conn is None:
                return  # closed: _use says so
            try:
                conn = self._open()
            except _Unreadable as exc:  # never moved aside while running: that is for a start
                raise StateError(f"state database {self.path}: cannot {action}: {exc}") from None
            self._conn.close()
            self._conn = conn
            self._reopen = False

    # -- plumbing --------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _use(self, action: str) -> Iterator[sqlite3.Connection]:
        """Serialise access and turn any sqlite or decoding failure into one clear StateError."""
        with self._lock:
            if self._conn is None:
                raise StateError(f"state database {self.path} is closed")
            try:
                yield self._conn
            except sqlite3.Error as exc:
                if getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_READONLY:
                    self._reopen = True
                hint = ""
                if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                    hint = f" (another process held it for over {self._busy_timeout:g}s)"
                raise StateError(
                    f"state database {self.path}: cannot {action}: {exc}{hint}"
                ) from None
            except ValueError as exc:  # JSON written by something else
                raise StateError(f"state database {self.path}: cannot {action}: {exc}") from None

    @contextmanager
    def _txn(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE takes the write lock up front so it cannot deadlock."""
        if self._reopen:
            self._open_again(action)
        with self._use(action) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # sqlite already rolled back after FULL/IOERR
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise

    # -- alerts ----------------------------------------------------------------------------

    def load_alerts(self) -> list[AlertRecord]:
        with self._use("load alerts") as conn:
            rows = conn.execute(f"SELECT {_ALERT_COLS} FROM alerts ORDER BY rule, target")
            return _alerts(rows.fetchall())

    def save_tick(
        self,
        *,
        upsert: Iterable[AlertRecord] = (),
        delete: Iterable[tuple[str, str]] = (),
        transitions: Iterable[TransitionRecord] = (),
        outbox: Iterable[OutboxMessage] = (),
        meta: Mapping[str, str] | None = None,
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
            )
            for m in outbox
        ]  # fmt: skip
        meta_rows = list((meta or {}).items())
        if not (alert_rows or delete_rows or transition_rows or outbox_rows or meta_rows):
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
        return ids

    # -- outbox and delivery ---------------------------------------------------------------

    def due_outbox(self, now: float, limit: int = 100) -> list[OutboxMessage]:
        """Messages whose next attempt is due, oldest first so a channel sees them in order."""
        with self._use("read the outbox") as conn:
            rows = conn.execute(
                f"SELECT {_OUTBOX_COLS} FROM outbox WHERE next_attempt_at <= ? "
                "ORDER BY created_at, id LIMIT ?",
                (now, limit),
            ).fetchall()
            return [self._message(r) for r in rows]

    def pending_outbox(self) -> list[OutboxMessage]:
        with self._use("read the outbox") as conn:
            rows = conn.execute(
                f"SELECT {_OUTBOX_COLS} FROM outbox ORDER BY created_at, id"
            ).fetchall()
            return [self._message(r) for r in rows]

    @staticmethod
    def _message(r: tuple[Any, ...]) -> OutboxMessage:
        msg = OutboxMessage(*r)
        msg.targets = json.loads(r[12])
        return msg

    def mark_delivered(self, msg_id: int, at: float, service: str) -> None:
        """Take the message out of the outbox and log the send, in one transaction."""
        with self._txn("record a delivery") as conn:
            if self._log_message(conn, msg_id, at, "sent", service, "delivered"):
                conn.execute("DELETE FROM outbox WHERE id = ?", (msg_id,))

    def mark_failed(
        self, msg_id: int, at: float, error: str, next_attempt_at: float, service: str
    ) -> None:
        with self._txn("record a failed delivery") as conn:
            row = conn.execute("SELECT attempts FROM outbox WHERE id = ?", (msg_id,)).fetchone()
            attempt = (row[0] + 1) if row else 0
            note = f"attempt {attempt} failed: {error}; next try {_utc(next_attempt_at)}"
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
    ) -> Silence:
        with self._txn("add a silence") as conn:
            while True:
                sid = secrets.token_hex(4)
                if not conn.execute("SELECT 1 FROM silences WHERE id = ?", (sid,)).fetchone():
                    break
            silence = Silence(sid, list(matchers), starts_at, ends_at, created_by, comment, now)
            conn.execute(
                f"INSERT INTO silences ({_SILENCE_COLS}) VALUES (?,?,?,?,?,?,?,NULL)",
                (sid, _dumps(silence.matchers), starts_at, ends_at, created_by, comment, now),
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
                f"SELECT {_SILENCE_COLS} FROM silences {where} ORDER BY starts_at, id", args
            ).fetchall()
            return [_silence(r) for r in rows]

    def expire_silence(self, silence_id: str, now: float) -> bool:
        """End a silence now, by id or unique id prefix; False if no live silence matches.

        An ambiguous prefix raises StateError listing the candidates rather than guessing.
        """
        prefix = silence_id.strip().lower()
        if not _HEX.fullmatch(prefix):
            return False
        with self._txn("expire a silence") as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM silences WHERE substr(id, 1, ?) = ? "
                    "AND expired_at IS NULL AND ends_at > ? ORDER BY id",
                    (len(prefix), prefix, now),
                )
            ]
            if len(ids) > 1:
                raise StateError(
                    f"silence id {silence_id!r} is ambiguous: matches {', '.join(ids)}"
                )
            if not ids:
                return False
            conn.execute("UPDATE silences SET expired_at = ? WHERE id = ?", (now, ids[0]))
            return True

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

    def prune(self, before: float) -> None:
        """Drop history and long-ended silences older than ``before`` so the file stays bounded."""
        with self._txn("prune old history") as conn:
            conn.execute("DELETE FROM transitions WHERE at < ?", (before,))
            conn.execute("DELETE FROM notification_log WHERE at < ?", (before,))
            conn.execute(
                "DELETE FROM silences WHERE min(ends_at, coalesce(expired_at, ends_at)) < ?",
                (before,),
            )
