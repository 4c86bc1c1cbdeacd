"""Three shards against one watcher over the same fleet: throughput per core and the tick.

Run by hand: ``.venv/bin/python bench/bench_shards.py [--streams 30000] [--rounds 3]``.

Three simulators (each its own process) serve ``--streams`` streams between them. One
watcher's tick (``Runner.tick()`` with SQLite state, the 20 stats rules of ``bench_poll``)
polls all three; then each of the three shards (``shard: K/3``, server names chosen so
that each shard owns one) ticks alone, as it would on a machine of its own. Reported: the
wall and CPU seconds of each tick, streams per second per core (streams ÷ CPU seconds), and
the fleet's tick with three shards (the slowest shard, since they run in parallel on
separate machines). Rounds rotate which goes first; the figures are medians.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import TOKEN, SimProcess, Stopwatch, machine, median, table
from bench_poll import RULES

from omealert.clock import SystemClock
from omealert.config.load import load_config_text
from omealert.ome.shard import owner, shard_servers
from omealert.rules import Settings, ShardSpec
from omealert.runner import Runner
from omealert.state.store import StateStore

SHARDS = 3


def server_names() -> list[str]:
    """One name per shard: ``origin-N`` for the first N that each shard owns."""
    names: dict[int, str] = {}
    i = 0
    while len(names) < SHARDS:
        names.setdefault(owner(f"origin-{i}", SHARDS), f"origin-{i}")
        i += 1
    return [names[k] for k in range(SHARDS)]


def config_text(urls: list[str]) -> str:
    lines = ["servers:"]
    for name, url in zip(server_names(), urls, strict=True):
        lines += [f"  - name: {name}", f"    url: {url}", f"    access_token: {TOKEN}"]
        lines += ["    timeout: 30s", "    poll_timeout: 120s"]
    lines += ["interval: 10s", "rules:"]
    for name, when, match in RULES:
        lines += [f"  - name: {name}", f"    when: {when}"]
        if match:
            lines.append(f'    match: "{match}"')
    return "\n".join(lines) + "\n"


async def timed(runner: Runner) -> tuple[float, float]:
    with Stopwatch() as sw:
        report = await runner.tick()
    failed = [p for p in report.polls if p.error is not None]
    if failed:
        raise RuntimeError(f"the tick failed: {failed[0].error}")
    return sw.wall, sw.cpu


async def run(args: argparse.Namespace) -> None:
    per = args.streams // SHARDS
    sims = [SimProcess(per, 5) for _ in range(SHARDS)]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for sim in sims:
                sim.start()
            full = load_config_text(config_text([s.url for s in sims]), "bench.yaml", env={})
            shards: list[Settings] = [
                shard_servers(replace(full, shard=ShardSpec(k, SHARDS))) for k in range(SHARDS)
            ]
            assert all(len(s.servers) == 1 for s in shards)
            stores = [StateStore(Path(tmp) / f"{k}.db") for k in range(SHARDS + 1)]
            runners = [Runner(full, clock=SystemClock(), store=stores[0])]
            runners += [
                Runner(s, clock=SystemClock(), store=stores[k + 1]) for k, s in enumerate(shards)
            ]
            for r in runners:  # warm-up: connections, instances written, caches filled
                await timed(r)
            results: list[list[tuple[float, float]]] = [[] for _ in runners]
            for i in range(args.rounds):
                order = list(range(len(runners)))
                order = order[i % len(order) :] + order[: i % len(order)]
                for j in order:
                    results[j].append(await timed(runners[j]))
            for r in runners:
                await r.aclose()
            for s in stores:
                s.close()
        finally:
            for sim in sims:
                sim.stop()

    walls = [median([w for w, _ in res]) for res in results]
    cpus = [median([c for _, c in res]) for res in results]
    rows: list[list[object]] = [
        ["1 watcher, 3 servers", args.streams, walls[0], cpus[0], args.streams / cpus[0]]
    ]
    for k in range(SHARDS):
        rows.append([f"shard {k}/3, 1 server", per, walls[k + 1], cpus[k + 1], per / cpus[k + 1]])
    fleet_tick = max(walls[1:])
    print(f"machine: {machine()}")
    print(
        f"{args.streams:,} streams on {SHARDS} simulators (5 apps each), {len(RULES)} rules, "
        f"{args.rounds} rounds (medians); each shard ticks alone"
    )
    print(table(["", "streams", "tick wall s", "tick cpu s", "streams/s/core"], rows))
    shard_rate = median([per / c for c in cpus[1:]])
    print()
    print(
        f"headline: at {args.streams:,} streams one watcher ticks in {walls[0]:.2f} s, three "
        f"shards in {fleet_tick:.2f} s ({walls[0] / fleet_tick:.2f}× faster); streams/s/core "
        f"{args.streams / cpus[0]:,.0f} (1 watcher) vs {shard_rate:,.0f} (a shard)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=30_000)
    ap.add_argument("--rounds", type=int, default=3)
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
