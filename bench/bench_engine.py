"""Engine alone: rule-target evaluations per second, 100 rules × 10,000 targets.

Run by hand: ``.venv/bin/python bench/bench_engine.py [--targets N] [--rules N]``.
Prints a small table and, last, the headline figure. Every tick moves some streams
across thresholds so state transitions are part of what is measured. Also measures
the SQLite write of a tick with every instance dirty, and the load on restart.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omealert.engine import Engine  # noqa: E402
from omealert.model import PollResult, Sample, Target  # noqa: E402
from omealert.persist import to_record  # noqa: E402
from omealert.state import StateStore  # noqa: E402
from tests.helpers import rule, settings  # noqa: E402

CONDITIONS = [
    "webrtc publishers > {n}",
    "totalConnections > {n}",
    "lastRecvTime stale > 30s",
    "avgThroughputIn < 500kbps",
    "llhls publishers + webrtc publishers > {n}",
]


def build(n_rules: int, n_targets: int) -> tuple[Engine, list[Target]]:
    rules = []
    for i in range(n_rules):
        text = CONDITIONS[i % len(CONDITIONS)].format(n=400 + i)
        rules.append(rule(f"r{i:03d}", text, for_s=20 if i % 3 == 0 else 0))
    targets = [Target("origin", "default", f"app{i % 8}", f"s{i:05d}") for i in range(n_targets)]
    return Engine(settings(*rules)), targets


def poll(targets: list[Target], at: float, rng: random.Random) -> PollResult:
    result = PollResult("origin", at, at)
    created = datetime.fromtimestamp(at - 3600, UTC)
    fresh = datetime.fromtimestamp(at - 1, UTC)
    stale = datetime.fromtimestamp(at - 60, UTC)
    for t in targets:
        hot = rng.random() < 0.05  # 5% of streams over the thresholds this tick
        fields = {
            "createdTime": created,
            "providers.lastRecvTime": stale if hot else fresh,
            "providers.avgThroughputIn": 300_000 if hot else 2_500_000,
            "publishers.connections.webrtc": 900 if hot else 10,
            "publishers.connections.llhls": 5,
            "publishers.totalConnections": 905 if hot else 15,
        }
        result.samples[t] = Sample(t, fields, at, at)  # type: ignore[arg-type]
        result.listed.add(t)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=100)
    ap.add_argument("--targets", type=int, default=10_000)
    ap.add_argument("--ticks", type=int, default=5)
    args = ap.parse_args()
    rng = random.Random(7)
    engine, targets = build(args.rules, args.targets)
    t0 = 1_767_225_600.0
    polls = [poll(targets, t0 + 10 * i, rng) for i in range(args.ticks)]
    evals = args.rules * args.targets
    rows = []
    transitions = 0
    for i, p in enumerate(polls):
        start = time.perf_counter()
        out = engine.step([p], p.at)
        elapsed = time.perf_counter() - start
        transitions += len(out)
        rows.append((i, elapsed, evals / elapsed, len(out)))
    print(f"engine: {args.rules} rules × {args.targets} targets = {evals:,} evaluations per tick")
    print(f"{'tick':>4}  {'seconds':>8}  {'evals/s':>12}  {'transitions':>11}")
    for i, elapsed, rate, n in rows:
        print(f"{i:>4}  {elapsed:8.3f}  {rate:12,.0f}  {n:11,}")
    instances = list(engine.instances())
    with tempfile.TemporaryDirectory() as tmp:
        store = StateStore(Path(tmp) / "state.db")
        records = [to_record(i) for i in instances]
        start = time.perf_counter()
        store.save_tick(upsert=records)
        write = time.perf_counter() - start
        store.close()
        start = time.perf_counter()
        store = StateStore(Path(tmp) / "state.db")
        loaded = store.load_alerts()
        load = time.perf_counter() - start
        store.close()
    print(f"state: write {len(records):,} instances {write * 1000:.0f} ms; "
          f"open+load {len(loaded):,} {load * 1000:.0f} ms")  # fmt: skip
    best = max(r[2] for r in rows[1:] or rows)
    print(f"headline: {best:,.0f} rule-target evaluations/s (target ≥ 1,000,000)")


if __name__ == "__main__":
    main()
