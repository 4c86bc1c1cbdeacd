"""StateStore: durable, atomic, shared between processes, and never the reason a watcher dies."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

import omealert.state.store
from omealert.errors import StateError
from omealert.state.db import SCHEMA_VERSION, default_state_path
from omealert.state.lock import RunLock
from omealert.state.records import AlertRecord, OutboxMessage, TransitionRecord
from omealert.state.store import StateStore

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, FakeClock's default start


def alert(target: str = "origin-1/default/app/s1", **kw: object) -> AlertRecord:
    fields: dict[str, object] = {
        "rule": "ingest-down",
        "target": target,
        "state": "firing",
        "active_since": T0,
        "fired_at": T0 + 30.25,
        "resolved_at": None,
        "keep_firing_since": None,
        "last_eval_at": T0 + 60.0,
        "value": 0.125,
        "labels": {"severity": "critical", "stream": target.rsplit("/", 1)[-1]},
        "notified": {"ops": T0 + 31.0},
        "identity": "3f2a9c",
        "summary": "s1 is down",
    }
    fields.update(kw)
    return AlertRecord(**fields)  # type: ignore[arg-type]


def message(created_at: float = T0, **kw: object) -> OutboxMessage:
    fields: dict[str, object] = {
        "id": None,
        "channel": "ops",
        "url_index": 0,
        "created_at": created_at,
        "next_attempt_at": created_at,
        "attempts": 0,
        "title": "[FIRING] ingest-down",
        "body": "s1 is down",
        "format": "text",
        "notify_type": "failure",
        "reason": "first_notification",
        "rule": "ingest-down",
        "targets": ["origin-1/default/app/s1"],
    }
    fields.update(kw)
    return OutboxMessage(**fields)  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "state.db"


@pytest.fixture
def store(db: Path) -> Iterator[StateStore]:
    with StateStore(db) as s:
        yield s


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection, standing in for another program touching the file."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        yield conn


# -- defaults -----------------------------------------------------------------------------


def test_default_path_prefers_env_then_xdg_then_home() -> None:
    """$OMEALERT_STATE wins, then $XDG_STATE_HOME, then ~/.local/state."""
    assert default_state_path({"OMEALERT_STATE": "/x/s.db", "XDG_STATE_HOME": "/xdg"}) == "/x/s.db"
    assert default_state_path({"XDG_STATE_HOME": "/xdg"}) == "/xdg/omealert/state.db"
    home = os.path.expanduser("~")
    assert default_state_path({}) == f"{home}/.local/state/omealert/state.db"


# -- round trips --------------------------------------------------------------------------


def test_alerts_round_trip_with_every_value_type(store: StateStore) -> None:
    """Every field of an AlertRecord, including each JSON value type, comes back equal."""
    records = [
        alert("a/v/app/f", value=1.5e-7),
        alert("a/v/app/s", value="offline", summary="ünïcode ✓"),
        alert("a/v/app/b", value=True, state="pending", fired_at=None, notified={}),
        alert("a/v/app/n", value=None, labels={}, keep_firing_since=T0 + 1, resolved_at=T0 + 2),
    ]
    store.save_tick(upsert=records)
    loaded = {r.target: r for r in store.load_alerts()}
    assert loaded == {r.target: r for r in records}
    assert loaded["a/v/app/b"].value is True


def test_upsert_replaces_and_delete_removes(store: StateStore) -> None:
    """A second tick updates an instance in place and deletes the one the caller dropped."""
    store.save_tick(upsert=[alert("t/1"), alert("t/2")])
    changed = alert("t/1", state="resolved", resolved_at=T0 + 90, notified={"ops": T0 + 91})
    store.save_tick(upsert=[changed], delete=[("ingest-down", "t/2")])
    assert store.load_alerts() == [changed]


def test_outbox_round_trip_assigns_increasing_ids(store: StateStore) -> None:
    """Queued messages come back whole, with the ids save_tick returned, in order."""
    msgs = [message(url_index=0), message(url_index=1, targets=["a", "b"], last_error="x")]
    ids = store.save_tick(outbox=msgs)
    assert len(ids) == 2 and ids[0] < ids[1]
    pending = store.pending_outbox()
    for msg, new_id in zip(msgs, ids, strict=True):
        msg.id = new_id
    assert pending == msgs


def test_meta_round_trip(store: StateStore) -> None:
    """Meta values written alone or with a tick are read back; unknown keys are None."""
    assert store.get_meta("config_hash") is None
    store.set_meta("config_hash", "abc")
    store.save_tick(meta={"last_tick": "123.5"})
    assert (store.get_meta("config_hash"), store.get_meta("last_tick")) == ("abc", "123.5")


def test_state_survives_reopen(db: Path) -> None:
    """What one StateStore saved, a new one on the same file reads (the restart case)."""
    with StateStore(db) as first:
        first.save_tick(upsert=[alert()], outbox=[message()], meta={"k": "v"})
        first.add_silence(["stream=s1"], T0, T0 + 60, "ops", "", T0)
    with StateStore(db) as second:
        assert second.load_alerts() == [alert()]
        assert [m.title for m in second.pending_outbox()] == [message().title]
        assert len(second.active_silences(T0)) == 1
        assert second.get_meta("k") == "v"


# -- atomicity ----------------------------------------------------------------------------


def test_failure_late_in_a_tick_leaves_nothing_written(db: Path, store: StateStore) -> None:
    """When the outbox insert (a later statement) fails, the alerts, transitions and meta of
    the same tick are rolled back too."""
    store.save_tick(upsert=[alert("t/old")], meta={"tick": "1"})
    with raw(db) as conn:
        conn.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'boom'); END"
        )
    tick = {
        "upsert": [alert("t/new"), alert("t/old", state="resolved")],
        "delete": [],
        "transitions": [TransitionRecord(T0, "ingest-down", "t/new", "inactive", "pending", 1.0)],
        "outbox": [message()],
        "meta": {"tick": "2"},
    }
    with pytest.raises(StateError, match="boom"):
        store.save_tick(**tick)  # type: ignore[arg-type]
    assert store.load_alerts() == [alert("t/old")]
    assert store.history(0) == []
    assert store.pending_outbox() == []
    assert store.get_meta("tick") == "1"
    with raw(db) as conn:
        conn.execute("DROP TRIGGER boom")
    assert len(store.save_tick(**tick)) == 1  # type: ignore[arg-type]
    assert [a.target for a in store.load_alerts()] == ["t/new", "t/old"]


# -- schema -------------------------------------------------------------------------------


def test_new_file_gets_schema_and_version_once(db: Path) -> None:
    """A new file is migrated to the current version, recorded once, and not re-migrated."""
    StateStore(db).close()
    StateStore(db).close()
    with raw(db) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version")]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert {"alerts", "outbox", "notification_log", "silences", "transitions", "meta"} <= tables
    assert journal == "wal"


def test_empty_existing_file_is_migrated(tmp_path: Path) -> None:
    """A zero-byte file (e.g. made by `touch`) is treated as a new database, not as corrupt."""
    db = tmp_path / "state.db"
    db.touch()
    with StateStore(db) as store:
        assert store.moved_aside is None
        store.save_tick(upsert=[alert()])
        assert len(store.load_alerts()) == 1


def test_newer_schema_is_refused_and_left_in_place(db: Path) -> None:
    """A file written by a newer omealert raises StateError and is not moved or changed."""
    StateStore(db).close()
    with raw(db) as conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 0)")
    before = db.read_bytes()
    with pytest.raises(StateError, match=r"schema version 99.*upgrade omealert"):
        StateStore(db)
    assert db.read_bytes() == before
    assert [p.name for p in db.parent.iterdir() if "corrupt" in p.name] == []


def test_foreign_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    """Pointing --state at some other program's database is an error, not a reason to move it."""
    db = tmp_path / "app.db"
    with raw(db) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    with pytest.raises(StateError, match="not an omealert state file"):
        StateStore(db)
    assert db.exists() and not list(tmp_path.glob("*.corrupt-*"))


# -- corruption ---------------------------------------------------------------------------


def assert_moved_aside(
    store: StateStore, caplog: pytest.LogCaptureFixture, original: bytes | None
) -> None:
    moved = store.moved_aside
    assert moved is not None and moved.name.startswith("state.db.corrupt-")
    if original is not None:
        assert moved.read_bytes() == original
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    line = errors[0].getMessage()
    assert str(moved) in line and "\n" not in line
    assert store.load_alerts() == []
    store.save_tick(upsert=[alert()])
    assert len(store.load_alerts()) == 1


def test_garbage_file_is_moved_aside_and_store_starts_empty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file that is not SQLite is renamed, named in one ERROR line, and replaced by a fresh DB."""
    db = tmp_path / "state.db"
    garbage = b"this is not a database\n" * 400
    db.write_bytes(garbage)
    with StateStore(db) as store:
        assert_moved_aside(store, caplog, garbage)


def test_damaged_page_is_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A valid header with a trashed b-tree page fails the watcher's quick_check at start and
    is moved aside."""
    db = tmp_path / "state.db"
    with StateStore(db) as store:
        store.save_tick(upsert=[alert(f"t/{i}", summary="x" * 100) for i in range(300)])
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    data[3 * page : 4 * page] = b"\xa5" * page
    db.write_bytes(bytes(data))
    with RunLock(db) as lock, StateStore(db, run_lock=lock) as store:
        assert_moved_aside(store, caplog, bytes(data))


def test_missing_table_counts_as_unreadable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file whose recorded version promises tables it lacks is moved aside, not half-used."""
    db = tmp_path / "state.db"
    StateStore(db).close()
    with raw(db) as conn:
        conn.execute("DROP TABLE outbox")
    with StateStore(db) as store:
        assert_moved_aside(store, caplog, None)
        assert store.pending_outbox() == []


def test_unusable_paths_are_clear_errors(tmp_path: Path) -> None:
    """A directory where the file should be, or a file where its directory should be, raises
    StateError naming the path, and nothing is moved."""
    with pytest.raises(StateError, match=f"cannot open state database {tmp_path}"):
        StateStore(tmp_path)
    assert tmp_path.is_dir()
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(StateError, match="cannot create the directory"):
        StateStore(blocker / "state.db")
    assert blocker.read_text() == "x"


# -- permissions, read-only, disk full ----------------------------------------------------


def test_files_are_owner_only_even_with_open_umask(tmp_path: Path) -> None:
    """The DB and its -wal/-shm are 0600 and a created parent dir 0700, whatever the umask."""
    db = tmp_path / "new" / "state.db"
    old = os.umask(0)
    try:
        with StateStore(db) as store:
            store.save_tick(upsert=[alert()])
            assert Path(f"{db}-wal").exists() and Path(f"{db}-shm").exists()
            assert {mode(db), mode(f"{db}-wal"), mode(f"{db}-shm")} == {0o600}
            assert mode(db.parent) == 0o700
    finally:
        os.umask(old)


def test_loose_permissions_on_an_existing_file_are_tightened(db: Path) -> None:
    """A file someone made world-readable loses its group/other bits on open."""
    StateStore(db).close()
    db.chmod(0o644)
    StateStore(db).close()
    assert mode(db) == 0o600


def make_read_only(path: Path) -> Callable[[], None]:
    """Make ``path`` unwritable for this process; returns the undo. Root needs chattr +i."""
    if os.geteuid() != 0:
        path.chmod(0o400)
        return lambda: path.chmod(0o600)
    chattr = shutil.which("chattr")
    done = chattr and subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode
    if not chattr or done != 0:
        pytest.skip("running as root without a usable `chattr +i`: file modes are not enforced")
    return lambda: subprocess.run([str(chattr), "-i", str(path)], check=True)


def test_read_only_file_loads_but_save_raises(db: Path) -> None:
    """On a read-only state file the store still loads, and saving raises StateError."""
    with StateStore(db) as store:
        store.save_tick(upsert=[alert()])
    undo = make_read_only(db)
    try:
        with StateStore(db) as store:
            assert store.load_alerts() == [alert()]
            with pytest.raises(StateError, match="readonly"):
                store.save_tick(upsert=[alert(state="resolved")])
            assert store.load_alerts() == [alert()]
    finally:
        undo()


def test_disk_full_raises_state_error_and_recovers(store: StateStore) -> None:
    """When the database cannot grow, save_tick raises StateError, keeps the old rows, and
    works again once space is back (SQLite's page cap is a real SQLITE_FULL)."""
    store.save_tick(upsert=[alert("t/0")])
    conn = store._conn  # the only way to make SQLite itself report "full" without a tiny fs
    assert conn is not None
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    big = [alert(f"t/{i}", summary="x" * 500) for i in range(200)]
    with pytest.raises(StateError, match="full"):
        store.save_tick(upsert=big)
    assert store.load_alerts() == [alert("t/0")]
    conn.execute("PRAGMA max_page_count = 1073741823")
    store.save_tick(upsert=big)
    assert len(store.load_alerts()) == 200


def test_closed_store_raises_state_error(db: Path) -> None:
    """Using a store after close is a StateError, not an obscure sqlite exception."""
    store = StateStore(db)
    store.close()
    store.close()
    with pytest.raises(StateError, match="closed"):
        store.load_alerts()


# -- concurrency --------------------------------------------------------------------------


def test_two_stores_on_one_file_see_each_others_writes(db: Path) -> None:
    """`omealert silence` and `status` can write and read while the watcher holds the file."""
    with StateStore(db) as watcher, StateStore(db) as cli:
        sil = cli.add_silence(["stream=~test.*"], T0, T0 + 3600, "ops", "maint", T0)
        assert [s.id for s in watcher.active_silences(T0 + 1)] == [sil.id]
        watcher.save_tick(upsert=[alert()], outbox=[message()])
        assert cli.load_alerts() == [alert()]
        assert cli.expire_silence(sil.id, T0 + 2)
        assert watcher.active_silences(T0 + 3) == []


def test_silence_added_by_another_process_is_seen(db: Path) -> None:
    """A real second Python process adds a silence while this one has the database open."""
    repo_root = Path(omealert.state.store.__file__).resolve().parents[2]
    code = (
        "import sys\n"
        "from omealert.state.store import StateStore\n"
        "with StateStore(sys.argv[1]) as s:\n"
        "    print(s.add_silence(['stream=~test.*'], 100.0, 1e12, 'cli', 'from child', 100.0).id)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    with StateStore(db) as watcher:
        watcher.save_tick(upsert=[alert()])
        done = subprocess.run(
            [sys.executable, "-c", code, str(db)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        active = watcher.active_silences(200.0)
        assert [(s.id, s.comment, s.matchers) for s in active] == [
            (done.stdout.strip(), "from child", ["stream=~test.*"])
        ]
        assert watcher.load_alerts() == [alert()]


def test_lock_held_too_long_is_a_state_error(db: Path) -> None:
    """A writer holding the lock past busy_timeout makes save_tick fail cleanly, then work."""
    StateStore(db).close()
    with StateStore(db, busy_timeout=0.05) as store, raw(db) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StateError, match="locked"):
            store.save_tick(upsert=[alert()])
        assert store.load_alerts() == []  # readers are not blocked by a WAL writer
        other.execute("COMMIT")
        store.save_tick(upsert=[alert()])
        assert store.load_alerts() == [alert()]


# -- silences -----------------------------------------------------------------------------


def test_silence_windows_and_listing(store: StateStore) -> None:
    """Active means started, not ended, not expired; listing hides ended ones unless asked."""
    now = T0 + 1000
    past = store.add_silence(["a=1"], T0, now - 1, "ops", "ended", T0)
    current = store.add_silence(["b=2", "c!=3"], now - 10, now + 10, "ops", "now", T0)
    future = store.add_silence(["d=4"], now + 100, now + 200, "ops", "later", T0)
    assert len(current.id) == 8 and int(current.id, 16) >= 0
    assert [s.id for s in store.active_silences(now)] == [current.id]
    assert [s.id for s in store.list_silences(now)] == [current.id, future.id]
    listed = store.list_silences(now, include_expired=True)
    assert [s.id for s in listed] == [past.id, current.id, future.id]
    assert listed[1] == current
    assert store.active_silences(now + 10) == []  # ends_at is exclusive


def test_expire_by_id_or_unique_prefix(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Expiry takes a full id or a unique prefix, refuses an ambiguous one, and reports misses."""
    ids = iter(["abcd0001", "abcd0001", "abcd0002", "ff000000"])
    monkeypatch.setattr("omealert.state.store.secrets.token_hex", lambda n: next(ids))
    a = store.add_silence(["x=1"], T0, T0 + 60, "ops", "", T0)
    b = store.add_silence(["x=2"], T0, T0 + 60, "ops", "", T0)  # collided once, got a new id
    c = store.add_silence(["x=3"], T0, T0 + 60, "ops", "", T0)
    assert (a.id, b.id, c.id) == ("abcd0001", "abcd0002", "ff000000")
    with pytest.raises(StateError, match=r"ambiguous.*abcd0001, abcd0002"):
        store.expire_silence("abcd", T0 + 1)
    assert store.expire_silence("FF", T0 + 1)
    assert store.expire_silence("abcd0002", T0 + 1)
    assert not store.expire_silence("abcd0002", T0 + 2)  # already expired
    assert not store.expire_silence("1234", T0 + 2)
    assert not store.expire_silence("", T0 + 2)
    assert not store.expire_silence("%", T0 + 2)
    assert store.expire_silence("abcd", T0 + 2)  # now unique
    assert store.active_silences(T0 + 3) == []
    expired = {s.id: s.expired_at for s in store.list_silences(T0 + 3, include_expired=True)}
    assert expired == {"abcd0001": T0 + 2, "abcd0002": T0 + 1, "ff000000": T0 + 1}


# -- outbox, delivery log, history ---------------------------------------------------------


def test_due_outbox_is_oldest_first_and_respects_time_and_limit(store: StateStore) -> None:
    """Only messages whose next attempt has come are due, in creation order, up to ``limit``."""
    ids = store.save_tick(
        outbox=[
            message(T0 + 2, title="m2"),
            message(T0 + 1, title="m1", next_attempt_at=T0 + 5),
            message(T0 + 0, title="m0", next_attempt_at=T0 + 50),
            message(T0 + 3, title="m3"),
        ]
    )
    assert [m.title for m in store.due_outbox(T0 + 10)] == ["m1", "m2", "m3"]
    assert [m.title for m in store.due_outbox(T0 + 10, limit=2)] == ["m1", "m2"]
    assert [m.title for m in store.due_outbox(T0 + 100)] == ["m0", "m1", "m2", "m3"]
    assert [m.id for m in store.pending_outbox()] == [ids[2], ids[1], ids[0], ids[3]]


def test_failure_bookkeeping_then_delivery(store: StateStore) -> None:
    """A failure bumps attempts and defers the message; delivery removes it and logs both."""
    (mid,) = store.save_tick(outbox=[message()])
    store.mark_failed(mid, T0 + 1, "HTTP 503", T0 + 6, "json://127.0.0.1")
    (msg,) = store.pending_outbox()
    assert (msg.attempts, msg.last_error, msg.next_attempt_at) == (1, "HTTP 503", T0 + 6)
    assert store.due_outbox(T0 + 5) == []
    store.mark_failed(mid, T0 + 6, "timeout", T0 + 16, "json://127.0.0.1")
    assert store.pending_outbox()[0].attempts == 2
    store.mark_delivered(mid, T0 + 16, "json://127.0.0.1")
    assert store.pending_outbox() == []
    log = store.history(T0)
    assert [(e.at, e.kind) for e in log] == [
        (T0 + 1, "failed"),
        (T0 + 6, "failed"),
        (T0 + 16, "sent"),
    ]
    assert all(e.channel == "ops" and e.rule == "ingest-down" for e in log)
    assert log[0].targets == ["origin-1/default/app/s1"]
    assert "attempt 1 failed: HTTP 503" in log[0].detail
    assert "json://127.0.0.1" in log[2].detail and "first_notification" in log[2].detail


def test_drop_is_logged_and_unknown_ids_are_ignored(
    store: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A dropped message leaves the outbox with a reason; settling it again changes nothing."""
    (mid,) = store.save_tick(outbox=[message()])
    store.mark_dropped(mid, T0 + 5, "older than 24h", "mailto://smtp.local")
    store.mark_delivered(mid, T0 + 6, "mailto://smtp.local")
    assert store.pending_outbox() == []
    (entry,) = store.history(T0)
    assert entry.kind == "dropped" and "older than 24h" in entry.detail
    assert any("no longer queued" in r.getMessage() for r in caplog.records)


def test_history_merges_transitions_and_sends_by_time(store: StateStore) -> None:
    """Transitions and delivery rows interleave by time; a transition precedes a send at the
    same instant; ``since`` filters and ``limit`` keeps the newest."""
    tr = [
        TransitionRecord(T0, "r", "t/1", "inactive", "pending", 3.5),
        TransitionRecord(T0 + 10, "r", "t/1", "pending", "firing", 4.0),
        TransitionRecord(T0 + 30, "r", "t/1", "firing", "resolved", None),
    ]
    (m1, m2) = store.save_tick(transitions=tr, outbox=[message(), message(url_index=1)])
    store.mark_delivered(m1, T0 + 10, "json://127.0.0.1")
    store.mark_failed(m2, T0 + 20, "refused", T0 + 40, "json://127.0.0.1")
    entries = store.history(T0)
    assert [(e.at, e.kind) for e in entries] == [
        (T0, "transition"),
        (T0 + 10, "transition"),
        (T0 + 10, "sent"),
        (T0 + 20, "failed"),
        (T0 + 30, "transition"),
    ]
    assert entries[0].detail == "inactive → pending (value 3.5)"
    assert entries[0].targets == ["t/1"]
    assert entries[4].detail == "firing → resolved"
    assert [e.at for e in store.history(T0 + 15)] == [T0 + 20, T0 + 30]
    assert [e.kind for e in store.history(T0, limit=2)] == ["failed", "transition"]


def test_prune_drops_old_history_and_long_ended_silences(store: StateStore) -> None:
    """Rows older than the cutoff go; newer rows, live silences and queued messages stay."""
    store.save_tick(
        transitions=[
            TransitionRecord(T0, "r", "t", "inactive", "pending", 1.0),
            TransitionRecord(T0 + 100, "r", "t", "pending", "firing", 1.0),
        ],
        outbox=[message()],
    )
    old = store.add_silence(["a=1"], T0, T0 + 10, "ops", "", T0)
    live = store.add_silence(["a=2"], T0, T0 + 1000, "ops", "", T0)
    store.prune(T0 + 50)
    assert [e.at for e in store.history(0)] == [T0 + 100]
    ids = [s.id for s in store.list_silences(T0, include_expired=True)]
    assert live.id in ids and old.id not in ids
    assert len(store.pending_outbox()) == 1
