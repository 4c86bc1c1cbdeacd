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

from omealert.engine.engine import Engine
from omealert.model import PollResult, Sample, Target
from omealert.state.persist import to_record
from omealert.state.store import StateStore
from tests.helpers import rule, settings

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


def hot_sets(
    targets: list[Target], ticks: int, churn: float, rng: random.Random
) -> list[set[Target]]:
    """5% of streams over the thresholds; each tick ``churn`` of all streams swap in or out."""
    hot = set(rng.sample(targets, len(targets) // 20))
    out = []
    for _ in range(ticks):
        out.append(set(hot))
        n = int(len(targets) * churn / 2)
        leaving = rng.sample(sorted(hot), min(n, len(hot)))
        cold = [t for t in targets if t not in hot]
        hot.difference_update(leaving)
        hot.update(rng.sample(cold, min(n, len(cold))))
    return out


def poll(targets: list[Target], at: float, hot_now: set[Target]) -> PollResult:
    result = PollResult("origin", at, at)
    created = datetime.fromtimestamp(at - 3600, UTC)
    fresh = datetime.fromtimestamp(at - 1, UTC)
    stale = datetime.fromtimestamp(at - 60, UTC)
    for t in targets:
        hot = t in hot_now
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
    ap.add_argument("--ticks", type=int, default=6)
    ap.add_argument("--churn", type=float, default=0.01, help="share of streams changing per tick")
    args = ap.parse_args()
    rng = random.Random(7)
    engine, targets = build(args.rules, args.targets)
    t0 = 1_767_225_600.0
    hot = hot_sets(targets, args.ticks, args.churn, rng)
    polls = [poll(targets, t0 + 10 * i, hot[i]) for i in range(args.ticks)]
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
    steady = sorted(r[2] for r in rows[1:] or rows)
    median = steady[len(steady) // 2]
    print(f"headline: {median:,.0f} rule-target evaluations/s, median of ticks 1.. "
          f"(churn {args.churn:.0%} of streams per tick; target ≥ 1,000,000)")  # fmt: skip


if __name__ == "__main__":
    main()
