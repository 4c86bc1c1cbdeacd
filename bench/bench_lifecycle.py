"""What flap detection and server dependencies add to an engine tick, 100 rules × 10,000 streams.

Run by hand: ``.venv/bin/python bench/bench_lifecycle.py [--targets N] [--rules N]``.
The engine of ``bench_engine`` (5% of streams over thresholds, 1% changing per tick),
stepped with flap detection on and off, with one tick where every stream gets a new
``createdTime`` (an OME restart: every live alert records a change); then the dependency
book's update alone, with a parent server and no cause, and with the parent's API down
(every firing alert of the child held). Prints medians; the last line is the headline.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import build, hot_sets, poll

from omealert.engine.engine import Engine
from omealert.errors import SourceError, SourceErrorKind
from omealert.model import PollResult, Target
from omealert.rules import ServerSpec

T0 = 1_767_225_600.0
CREATED = datetime.fromtimestamp(T0 - 3600, UTC)


def polls(
    targets: list[Target], ticks: int, restart_at: int, rng: random.Random
) -> list[PollResult]:
    hot = hot_sets(targets, ticks, 0.01, rng)
    out = []
    for i in range(ticks):
        p = poll(targets, T0 + 10 * i, hot[i])
        created = datetime.fromtimestamp(T0 + 10 * i, UTC) if i >= restart_at else CREATED
        for sample in p.samples.values():
            sample.fields["createdTime"] = created
        out.append(p)
    return out


def engine_for(
    n_rules: int, n_targets: int, *, flapping: bool, parent: bool
) -> tuple[Engine, list[Target]]:
    engine, targets = build(n_rules, n_targets)
    s = engine.settings
    if not flapping:
        rules = tuple(dataclasses.replace(r, flapping=None) for r in s.rules)
        s = dataclasses.replace(
            s, rules=rules, api_down=dataclasses.replace(s.api_down, flapping=None)
        )
    if parent:
        servers = (
            ServerSpec("parent", "http://127.0.0.1:1"),
            ServerSpec("origin", "http://127.0.0.1:2", depends_on=("parent",)),
        )
        s = dataclasses.replace(s, servers=servers)
    return Engine(s), targets


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=100)
    ap.add_argument("--targets", type=int, default=10_000)
    ap.add_argument("--ticks", type=int, default=10)
    args = ap.parse_args()
    restart_at = args.ticks - 2
    rows = []
    for flapping in (False, True):
        engine, targets = engine_for(args.rules, args.targets, flapping=flapping, parent=False)
        times = []
        for p in polls(targets, args.ticks, restart_at, random.Random(7)):
            start = time.perf_counter()
            engine.step([p], p.at)
            engine.flapping.dump()
            times.append(time.perf_counter() - start)
        rows.append((flapping, statistics.median(times[1:restart_at]), times[restart_at]))
    print(f"engine step, {args.rules} rules × {args.targets} streams (seconds)")
    print(f"{'flapping':>8}  {'median tick':>11}  {'OME restart tick':>16}")
    for flapping, median, restart in rows:
        print(f"{'on' if flapping else 'off':>8}  {median:11.3f}  {restart:16.3f}")

    err = SourceError("parent", SourceErrorKind.UNREACHABLE, "/v1/vhosts", "refused")
    updates = {}
    for down in (False, True):
        engine, targets = engine_for(args.rules, args.targets, flapping=False, parent=True)
        times = []
        for p in polls(targets, args.ticks, args.ticks, random.Random(7)):
            parent = PollResult("parent", p.at, p.at, error=err if down else None)
            engine.step([p, parent], p.at)
            start = time.perf_counter()
            engine.dependencies.update(engine.instances(), [], p.at)
            engine.dependencies.dump()
            times.append(time.perf_counter() - start)
        updates[down] = (statistics.median(times[1:]), len(engine.dependencies.held))
    print("dependency update per tick (ms):")
    for down, (median, held) in updates.items():
        what = "parent's API down" if down else "no cause"
        print(f"  {what:>18}: {median * 1000:7.1f} ms, {held:,} alerts held")
    off, on = rows[0][1], rows[1][1]
    print(
        f"headline: flap detection adds {100 * (on - off) / off:.0f}% to a median tick "
        f"({(on - off) * 1000:.0f} ms); holding {updates[True][1]:,} alerts costs "
        f"{updates[True][0] * 1000:.0f} ms per tick"
    )


if __name__ == "__main__":
    main()
