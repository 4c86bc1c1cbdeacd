"""state_retention: a year of history is pruned in short transactions, and nothing newer changes."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from omealert.cli.main import main
from omealert.clock import FakeClock, SystemClock
from omealert.rules import ServerSpec
from omealert.runner import Runner
from omealert.simulator import Simulator
from omealert.state.records import AlertRecord, OutboxMessage
from omealert.state.retention import Pruner
from omealert.state.store import StateStore
from tests.helpers import rule, run_async, settings

DAY = 86400.0
RETENTION = 30 * DAY
YEAR_STEP = 120.0  # one transition every two minutes for a year: 262,800 rows


def fill_a_year(path: Path, now: float, step: float = YEAR_STEP) -> None:
    """Write a year of transitions and sends (every ``step`` and 10 ``step``), as a busy
    watcher would."""
    start = now - 365 * DAY + 60  # no row within a minute of a day boundary: the CLI's now moves
    steps = int(365 * DAY / step)
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO transitions (at, rule, target, from_state, to_state, value) "
            "VALUES (?,?,?,?,?,?)",
            (
                (start + i * step, "stalled", f"origin/default/live/cam{i % 40}",
                 ("pending", "firing")[i % 2], ("firing", "resolved")[i % 2], str(i % 7))
                for i in range(steps)
            ),
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO notification_log (at, kind, message_id, rule, targets, channel, "
            "service, reason, detail) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                (start + i * 10 * step, "sent", i, "stalled", '["origin/default/live/cam1"]',
                 "ops", "json://", "first_notification", f"'[FIRING] stalled' #{i}")
                for i in range(steps // 10)
            ),
        )  # fmt: skip
        conn.execute("COMMIT")


def oldest(db: Path) -> float:
    """The time of the oldest transition or log line left in the file."""
    with closing(sqlite3.connect(db)) as conn:
        row = conn.execute(
            "SELECT min(at) FROM (SELECT at FROM transitions UNION ALL "
            "SELECT at FROM notification_log)"
        ).fetchone()
    return float(row[0])


def alert(now: float) -> AlertRecord:
    return AlertRecord(
        "stalled", "origin/default/live/cam1", "firing", now - 600, now - 570, None, None,
        now - 10, 12.0, {"severity": "critical"}, {"ops": now - 570}, "id1", "cam1 stalled",
    )  # fmt: skip


def queued(at: float) -> OutboxMessage:
    return OutboxMessage(
        None, "ops", 0, at, at, 3, "[FIRING] stalled", "b", "text", "failure",
        "first_notification", "stalled", ["origin/default/live/cam1"],
    )  # fmt: skip


def cli(*argv: str) -> str:
    out = io.StringIO()
    assert main(list(argv), out=out) == 0
    return out.getvalue()


def status(db: Path) -> list[dict[str, object]]:
    """``omealert status`` as JSON, without the age column (it moves with the wall clock)."""
    rows: list[dict[str, object]] = json.loads(
        cli("status", "--state", str(db), "--format", "json")
    )
    for row in rows:
        row.pop("since")
    return rows


class CountingStore(StateStore):
    """Records each pruning transaction, so the test sees the prune happen batch by batch."""

    events: list[tuple[str, int]]

    def prune_batch(self, before: float, limit: int = 2000) -> int:
        removed = super().prune_batch(before, limit)
        self.events.append(("batch", removed))
        return removed


@run_async
async def test_a_year_of_history_is_pruned_in_short_transactions_and_recent_rows_stay(
    tmp_path: Path,
) -> None:
    """A year of transitions and log lines is cut to the retention in batches, while another
    process keeps writing between them; history, status and silences within it are unchanged."""
    db = tmp_path / "state.db"
    now = time.time()
    StateStore(db).close()
    fill_a_year(db, now)
    store = CountingStore(db)
    store.events = []
    store.save_tick(upsert=[alert(now)], outbox=[queued(now - 2 * DAY)])
    old = store.add_silence(["stream=cam1"], now - 90 * DAY, now - 80 * DAY, "ops", "", now)
    expired = store.add_silence(["stream=cam2"], now - 40 * DAY, now + DAY, "ops", "", now)
    store.expire_silence(expired.id, now - 35 * DAY)
    recent = store.add_silence(["stream=cam3"], now - 40 * DAY, now - 10 * DAY, "ops", "", now)
    live = store.add_silence(["stream=cam4"], now - DAY, now + DAY, "ops", "", now)
    within = store.history(now - RETENTION, limit=10**6)
    status_before = status(db)
    history_before = cli("history", "--state", str(db), "--since", "30d")
    assert len(within) > 20_000 and status_before != []
    with closing(sqlite3.connect(db)) as conn:
        old_rows = sum(
            conn.execute(
                f"SELECT count(*) FROM {table} WHERE at < ?", (now - RETENTION,)
            ).fetchone()[0]
            for table in ("transitions", "notification_log")
        )
    assert old_rows > 200_000

    # Another process writing (as `omealert silence add` would) all through the prune.
    pruning = threading.Event()
    done = threading.Event()
    lock = threading.Lock()

    def other_writer() -> None:
        with closing(sqlite3.connect(db, timeout=30, isolation_level=None)) as conn:
            pruning.wait(30)
            n = 0
            while not done.is_set():
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('writer', ?)", (str(n),))
                conn.execute("COMMIT")
                with lock:
                    store.events.append(("write", n))
                n += 1
                time.sleep(0.002)

    writer = threading.Thread(target=other_writer)
    writer.start()
    try:
        pruner = Pruner(store, clock=FakeClock(now), retention_s=lambda: RETENTION, batch=5000)
        pruning.set()
        removed = await pruner.prune_once()
    finally:
        done.set()
        writer.join()

    assert removed == old_rows + 2  # and the two silences that ended before the cutoff
    with lock:
        events = list(store.events)
    batches = [i for i, (kind, _) in enumerate(events) if kind == "batch"]
    assert len(batches) == pruner.batches == removed // 5000 + 1
    assert all(n <= 5000 for kind, n in events if kind == "batch")
    # The write lock was free between batches: the other process got in while pruning went on.
    writes_during = [i for i, (kind, _) in enumerate(events) if kind == "write"
                     and batches[0] < i < batches[-1]]  # fmt: skip
    assert len(writes_during) >= 5

    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        cutoff = now - RETENTION
        for table in ("transitions", "notification_log"):
            (left,) = conn.execute(
                f"SELECT count(*) FROM {table} WHERE at < ?", (cutoff,)
            ).fetchone()
            assert left == 0, table
    assert store.history(now - RETENTION, limit=10**6) == within
    assert status(db) == status_before
    assert cli("history", "--state", str(db), "--since", "30d") == history_before
    kept = {s.id for s in store.list_silences(now, include_expired=True)}
    assert kept == {recent.id, live.id} and old.id not in kept and expired.id not in kept
    assert len(store.pending_outbox()) == 1  # queued messages are never pruned
    store.close()


class StoppingStore(StateStore):
    """Asks the pruner to stop as soon as its first batch is in."""

    stop: asyncio.Event

    def prune_batch(self, before: float, limit: int = 2000) -> int:
        self.stop.set()
        return super().prune_batch(before, limit)


@run_async
async def test_prune_stops_between_batches_when_asked(tmp_path: Path) -> None:
    """A stop during a long prune ends it after the current batch; the rest waits its turn."""
    db = tmp_path / "state.db"
    now = time.time()
    StateStore(db).close()
    fill_a_year(db, now, step=600.0)
    with StoppingStore(db) as store:
        store.stop = asyncio.Event()
        pruner = Pruner(store, clock=FakeClock(now), retention_s=lambda: RETENTION, batch=1000)
        assert await pruner.prune_once(store.stop) == 1000
        assert pruner.batches == 1
        assert oldest(db) < now - 300 * DAY  # the rest is left for the next pass


@run_async
async def test_the_watcher_prunes_at_start_using_the_configured_retention(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``Runner.watch`` prunes a file full of old history right away, to ``state_retention``."""
    db = tmp_path / "state.db"
    now = time.time()
    StateStore(db).close()
    fill_a_year(db, now, step=1200.0)
    with Simulator() as sim:
        cfg = settings(
            rule("r", "webrtc publishers > 1"),
            servers=(ServerSpec("origin", sim.url),),
            interval_s=0.2,
            state_retention_s=7 * DAY,
        )
        store = StateStore(db)
        runner = Runner(cfg, clock=SystemClock(), store=store)
        stop = asyncio.Event()
        caplog.set_level(logging.INFO, "omealert.state")
        task = asyncio.create_task(runner.watch(stop))
        for _ in range(600):
            if any("pruned" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task
        store.close()
    assert oldest(db) >= now - 7 * DAY
    (line,) = [r.getMessage() for r in caplog.records if "pruned" in r.getMessage()]
    assert "older than 7d" in line


def test_check_with_state_prunes_its_file_too(tmp_path: Path) -> None:
    """A cron-run ``check --state`` keeps its file within ``state_retention`` as a watcher does."""
    db = tmp_path / "state.db"
    now = time.time()
    StateStore(db).close()
    fill_a_year(db, now, step=3600.0)
    with Simulator() as sim:
        cfg = tmp_path / "c.yaml"
        cfg.write_text(
            f"servers: [{{name: origin, url: '{sim.url}'}}]\nstate_retention: 10d\n"
            "rules: [{name: r, when: webrtc publishers > 1}]\n"
        )
        quiet = logging.getLogger("omealert")
        level = quiet.level
        try:
            main(["check", "-c", str(cfg), "--state", str(db)], out=io.StringIO())
        finally:
            quiet.setLevel(level)  # check silences omealert's logger for its process
    assert now - 10 * DAY - 60 <= oldest(db) <= now - 9 * DAY
