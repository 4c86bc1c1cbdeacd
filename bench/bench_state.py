"""The state file over a year: pruning it to ``state_retention``, and what a CLI open costs.

Run by hand: ``.venv/bin/python bench/bench_state.py [--per-day 720] [--batch 2000]``.

A file gets a year of transitions (``--per-day`` of them a day; 720 is one every two
minutes) and a tenth as many notification-log lines. Then:

* one pruning pass down to 30 days, as the watcher runs it (``Pruner.prune_once``), timing
  every batch transaction including its commit;
* meanwhile a second process takes the write lock over and over (``BEGIN IMMEDIATE``, one
  row, ``COMMIT``), as ``omealert silence add`` would, and reports how long it waited;
* opening the file as a CLI command does (no ``quick_check``) and as a watcher does (with
  it), on the full year and on the pruned file.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import machine, median, percentile, table

from omealert.clock import FakeClock
from omealert.state.lock import RunLock
from omealert.state.retention import Pruner
from omealert.state.store import StateStore

DAY = 86400.0


def fill(path: Path, now: float, per_day: int) -> int:
    step = DAY / per_day
    start = now - 365 * DAY
    n = 365 * per_day
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO transitions (at, rule, target, from_state, to_state, value) "
            "VALUES (?,?,?,?,?,?)",
            ((start + i * step, "stalled", f"origin/default/live/cam{i % 400}", "pending",
              "firing", "12.5") for i in range(n)),
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO notification_log (at, kind, message_id, rule, targets, channel, "
            "service, reason, detail) VALUES (?,?,?,?,?,?,?,?,?)",
            ((start + i * 10 * step, "sent", i, "stalled", '["origin/default/live/cam1"]', "ops",
              "json://", "first_notification", "'[FIRING] stalled' via ops[0] (json://)")
             for i in range(n // 10)),
        )  # fmt: skip
        conn.execute("COMMIT")
    return n + n // 10


def writer(path: str, started: Any, stop: Any, out: Any) -> None:
    """Another process taking the write lock every 5 ms; sends back how long each wait was."""
    waits = []
    with closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as conn:
        started.set()
        n = 0
        while not stop.is_set():
            t = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            waits.append(time.perf_counter() - t)
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('bench', ?)", (str(n),))
            conn.execute("COMMIT")
            n += 1
            time.sleep(0.005)
    out.put(waits)


class TimedStore(StateStore):
    """Times each pruning transaction, commit included."""

    batch_times: list[float]

    def prune_batch(self, before: float, limit: int = 2000) -> int:
        t = time.perf_counter()
        removed = super().prune_batch(before, limit)
        self.batch_times.append(time.perf_counter() - t)
        return removed


def open_time(path: Path, *, watcher: bool) -> float:
    t = time.perf_counter()
    if watcher:
        with RunLock(path) as lock, StateStore(path, run_lock=lock) as store:
            store.load_alerts()
    else:
        with StateStore(path) as store:
            store.load_alerts()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-day", type=int, default=720)
    ap.add_argument("--batch", type=int, default=2000)
    args = ap.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", "/tmp")) as tmp:
        db = Path(tmp) / "state.db"
        now = time.time()
        StateStore(db).close()
        t = time.perf_counter()
        rows = fill(db, now, args.per_day)
        print(f"filled {rows:,} rows in {time.perf_counter() - t:.1f}s; "
              f"{db.stat().st_size / 1e6:.1f} MB")  # fmt: skip
        opens_year = [(open_time(db, watcher=False), open_time(db, watcher=True)) for _ in range(3)]

        ctx = mp.get_context("spawn")
        started, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
        proc = ctx.Process(target=writer, args=(str(db), started, stop, out))
        proc.start()
        started.wait(30)
        store = TimedStore(db)
        store.batch_times = []
        pruner = Pruner(store, clock=FakeClock(now), retention_s=lambda: 30 * DAY, batch=args.batch)
        t = time.perf_counter()
        removed = asyncio.run(pruner.prune_once())
        elapsed = time.perf_counter() - t
        stop.set()
        waits = out.get(timeout=30)
        proc.join(30)
        store.close()
        opens_pruned = [
            (open_time(db, watcher=False), open_time(db, watcher=True)) for _ in range(3)
        ]

    ms = [b * 1000 for b in store.batch_times]
    wait_ms = [w * 1000 for w in waits]
    print(table(
        ["figure", "p50 ms", "p95 ms", "max ms", "count"],
        [
            ["prune batch (txn + commit)", median(ms), percentile(ms, 95), max(ms), len(ms)],
            ["other process: wait for write lock", median(wait_ms), percentile(wait_ms, 95),
             max(wait_ms), len(wait_ms)],
        ],
    ))  # fmt: skip
    print(table(
        ["open + load alerts", "CLI (no quick_check) ms", "watcher (quick_check) ms"],
        [
            ["a year of history", median([a for a, _ in opens_year]) * 1000,
             median([b for _, b in opens_year]) * 1000],
            ["pruned to 30 days", median([a for a, _ in opens_pruned]) * 1000,
             median([b for _, b in opens_pruned]) * 1000],
        ],
    ))  # fmt: skip
    print(
        f"headline: pruned {removed:,} rows in {elapsed:.2f}s, {len(ms)} transactions of "
        f"p95 {percentile(ms, 95):.1f} ms; another writer waited at most {max(wait_ms):.1f} ms"
    )


if __name__ == "__main__":
    main()
