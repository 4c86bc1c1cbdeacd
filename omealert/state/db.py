"""The SQLite file under ``StateStore``: where it lives, its schema, and opening it safely.

WAL mode lets ``omealert status`` and ``omealert silence`` read and write while a watcher runs;
``busy_timeout`` makes short lock waits invisible. The file and its ``-wal``/``-shm`` sidecars
are owner-only (0600): alert text can name streams and servers.

Every sqlite failure (read-only file, disk full, lock held too long) surfaces as ``StateError``
and leaves the database as it was, so the caller can keep running from memory. A file that
was read-only when opened is opened again before the next write, so it is used again as soon
as it is writable (SQLite would otherwise keep the read-only handle for good).

The process evaluating with the file (``watch``, ``check --state``: it holds the run lock and
says so with ``run_lock``) runs ``PRAGMA quick_check`` once when it opens the file, and moves a
file that is not a readable omealert database aside to ``*.corrupt-<time>`` and starts a new
one. ``status``, ``history`` and ``silence`` skip the check (it reads the whole file) and
never move aside a file whose run lock another process holds: a watcher would go on writing
into the moved file and lose it all at its next start. They stop with a clear error instead.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Self

from ..errors import StateError
from .lock import RunLock

__all__ = [
    "ACK_COLS",
    "ALERT_COLS",
    "DEFAULT_STATE_PATH",
    "OUTBOX_COLS",
    "SCHEMA_VERSION",
    "SILENCE_COLS",
    "StateDB",
    "default_state_path",
]


def default_state_path(environ: Mapping[str, str] | None = None) -> str:
    """Where ``watch`` keeps state unless ``--state`` says otherwise (XDG base-dir spec)."""
    env = os.environ if environ is None else environ
    if env.get("OMEALERT_STATE"):
        return env["OMEALERT_STATE"]
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "omealert", "state.db")


DEFAULT_STATE_PATH: str = default_state_path()

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
    # 2: a queued message names its service by a hash of the URL, not by its position in
    # the channel's list; rows queued before it get theirs when a watcher next loads them.
    ("ALTER TABLE outbox ADD COLUMN service_key TEXT NOT NULL DEFAULT ''",),
    # 3: acknowledgements, and one-off maintenance as a kind of silence (``state.acks``).
    (
        "ALTER TABLE silences ADD COLUMN kind TEXT NOT NULL DEFAULT 'silence'",
        """CREATE TABLE acks (
            id TEXT PRIMARY KEY, matchers TEXT NOT NULL, rule TEXT NOT NULL,
            alerts TEXT NOT NULL, created_by TEXT NOT NULL, comment TEXT NOT NULL,
            created_at REAL NOT NULL, expires_at REAL, removed_at REAL, announced_at REAL)""",
    ),
    # 4: Slack messages posted through the Web API (their ts), and which alerts each one's
    # thread is about, so replies and edits find it after a restart (state/threads.py).
    (
        """CREATE TABLE slack_messages (
            channel TEXT NOT NULL, service_key TEXT NOT NULL, ts TEXT NOT NULL,
            slack_channel TEXT NOT NULL, posted_at REAL NOT NULL, text TEXT NOT NULL,
            PRIMARY KEY (channel, service_key, ts))""",
        "CREATE INDEX slack_messages_posted ON slack_messages (posted_at)",
        """CREATE TABLE slack_threads (
            channel TEXT NOT NULL, service_key TEXT NOT NULL, rule TEXT NOT NULL,
            target TEXT NOT NULL, ts TEXT NOT NULL, posted_at REAL NOT NULL, resolved_at REAL,
            PRIMARY KEY (channel, service_key, rule, target))""",
        "CREATE INDEX slack_threads_posted ON slack_threads (posted_at)",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)

ALERT_COLS = (
    "rule, target, state, active_since, fired_at, resolved_at, keep_firing_since, last_eval_at, "
    "value, labels, notified, identity, summary"
)
OUTBOX_COLS = (
    "id, channel, url_index, created_at, next_attempt_at, attempts, title, body, format, "
    "notify_type, reason, rule, targets, last_error, service_key"
)
SILENCE_COLS = "id, matchers, starts_at, ends_at, created_by, comment, created_at, expired_at, kind"
ACK_COLS = (
    "id, matchers, rule, alerts, created_by, comment, created_at, expires_at, removed_at, "
    "announced_at"
)
# Columns each table must have for this code to read it; a file lacking them is unreadable.
_REQUIRED = {
    "alerts": ALERT_COLS,
    "transitions": "id, at, rule, target, from_state, to_state, value",
    "outbox": OUTBOX_COLS,
    "notification_log": "id, at, kind, message_id, rule, targets, channel, service, reason, detail",
    "silences": SILENCE_COLS,
    "acks": ACK_COLS,
    "meta": "key, value",
    "slack_messages": "channel, service_key, ts, slack_channel, posted_at, text",
    "slack_threads": "channel, service_key, rule, target, ts, posted_at, resolved_at",
}
_CORRUPT_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


class _Unreadable(Exception):
    """The file exists but cannot be read as our database; it will be moved aside."""


def _tighten(path: Path) -> None:
    """Drop group/other bits from an existing file; a deliberately read-only one stays so."""
    try:
        st = path.stat()
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
            path.chmod(st.st_mode & 0o700)
    except FileNotFoundError:
        pass


class StateDB:
    """One connection to the state file, opened, migrated and checked; ``StateStore`` builds
    its reads and writes on ``_use`` and ``_txn``."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        logger: logging.Logger | None = None,
        busy_timeout: float = 5.0,
        run_lock: RunLock | None = None,
    ) -> None:
        """``run_lock``: the lock this process holds on the file, as the one evaluating with
        it; only then is the file checked in full, and moved aside without asking."""
        self.path = Path(path)
        self.moved_aside: Path | None = None
        # one logger for the whole store, named as before opening moved out of state.py
        self._log = logger or logging.getLogger("omealert.state")
        self._busy_timeout = busy_timeout
        self._lock = threading.RLock()  # notify may deliver from worker threads
        self._conn: sqlite3.Connection | None = None
        #: a write was refused as read-only: open a fresh connection before the next one
        self._reopen = False
        owner = run_lock is not None and run_lock.held
        try:
            self._conn = self._open(check=owner)
        except _Unreadable as exc:
            self._start_fresh(str(exc), owner)

    def _start_fresh(self, reason: str, owner: bool) -> None:
        """Move the unreadable file aside and open a new one; only with the run lock held."""
        lock = None
        if not owner:
            lock = RunLock(self.path)
            if not lock.try_acquire():
                raise StateError(
                    f"state database {self.path} is unreadable ({' '.join(reason.split())}), and "
                    f"the omealert process holding {lock.path} ({lock.holder()}) has it open: "
                    "not moving it aside under it. Stop that process; a watcher moves the file "
                    "aside itself when it starts again"
                )
        try:
            self.moved_aside = self._move_aside(reason)
            try:
                self._conn = self._open(check=False)
            except _Unreadable as again:
                raise StateError(
                    f"state database {self.path}: cannot start fresh: {again}"
                ) from None
        finally:
            if lock is not None:
                lock.release()

    # -- opening ---------------------------------------------------------------------------

    def _open(self, *, check: bool) -> sqlite3.Connection:
        """Connect, migrate and verify; ``check`` adds ``quick_check``, which reads every page."""
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
            if check:
                found = conn.execute("PRAGMA quick_check(1)").fetchone()
                if found is None or found[0] != "ok":
                    answer = found[0] if found else "no answer"
                    raise _Unreadable(f"integrity check failed: {answer}")
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
                conn = self._open(check=False)
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

    def __enter__(self) -> Self:
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
