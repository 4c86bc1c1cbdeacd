"""Poll cycle at scale: one ``watch`` tick against the floor, and requests against an exporter.

Run by hand: ``.venv/bin/python bench/bench_poll.py [--streams 10000] [--apps 5] [--rounds 5]``.

1. **Tick versus floor.** The simulator (its own process) serves 10,000 streams spread over
   several apps. One omealert tick — discover, fetch every stream's stats, evaluate 20
   rules, persist to SQLite — is timed against the floor: bare aiohttp with keep-alive,
   fetching and JSON-decoding the same URLs with the same concurrency. Since the client
   speaks HTTP itself (``ome.wire``), the same walk over bare ``ome.wire`` is timed too: the
   tick's time beyond it is omealert's own work. Rounds rotate which goes first, and the
   figure is the median of the per-round ratios, because on a shared 2-core machine only
   side-by-side ratios mean anything.
2. **Requests per tick** for these stats-only rules, counted by the simulator, against the
   community Prometheus-exporter pattern (list everything, then stream info *and* stats of
   every stream on every poll).

``--transports`` also times one client poll over each HTTP stack the client can use
(``ome.wire``, httpx's own transport, httpx over ``httpx-aiohttp`` when installed); with the
floor, that is the measurement behind the client's default. aiohttp is needed only here.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import httpx
from _common import TOKEN, SimProcess, Stopwatch, machine, median, table

from omealert.clock import SystemClock
from omealert.config.load import load_config_text
from omealert.ome.client import OmeClient
from omealert.ome.plan import plan_polls
from omealert.ome.wire import WireGetter
from omealert.rules import Settings
from omealert.runner import Runner
from omealert.state.store import StateStore

#: Twenty stream rules that read stats only: thresholds, staleness, sums, history windows.
RULES = [
    ("ingest-stalled", "lastRecvTime stale > 30s", None),
    ("input-throughput-low", "avgThroughputIn < 500kbps", None),
    ("webrtc-viewers-high", "webrtc publishers > 500", "default/*/*"),
    ("connections-high", "totalConnections > 1000", None),
    ("peak-connections-high", "maxTotalConnections > 2000", None),
    ("output-high", "avgThroughputOut > 900Mbps", None),
    ("ingest-rate-low", "rate(totalBytesIn, 1m) < 10kB", None),
    ("throughput-collapse", "rate(totalBytesOut, 1m) < 100kB and viewers > 10", None),
    ("llhls-viewers-high", "llhls publishers > 300", "default/app1/*"),
    ("hlsv3-viewers-high", "hlsv3 publishers > 300", None),
    ("viewers-high", "viewers > 800", None),
    ("last-second-low", "lastThroughputIn < 1kB", None),
    ("peak-input-high", "maxThroughputIn > 50Mbps", None),
    ("output-stalled", "lastSentTime stale > 30s and viewers > 0", None),
    ("srt-viewers-high", "srt publishers > 100", None),
    ("push-many", "push publishers > 10", None),
    ("realtime-viewers-high", "webrtc publishers + llhls publishers > 1000", None),
    ("app2-input-low", "avgThroughputIn < 1Mbps", "default/app2/*"),
    ("ingest-delta-low", "delta(totalBytesIn, 1m) < 1kB", None),
    ("input-average-low", "avg_over(avgThroughputIn, 5m) < 800kbps", None),
]


def config_text(url: str, concurrency: int) -> str:
    lines = [
        "servers:",
        "  - name: origin",
        f"    url: {url}",
        f"    access_token: {TOKEN}",
        f"    max_in_flight: {concurrency}",
        "    timeout: 30s",
        "interval: 10s",
        "rules:",
    ]
    for name, when, match in RULES:
        lines += [f"  - name: {name}", f"    when: {when}"]
        if match:
            lines.append(f'    match: "{match}"')
    return "\n".join(lines) + "\n"


# -- the floors and the exporter pattern: bare aiohttp, bare omewire ---------------------------

HEADERS = {  # the very headers omealert sends, so all sides make the same requests
    "Accept": "application/json",
    "User-Agent": "omealert",
    "Authorization": "Basic " + base64.b64encode(TOKEN.encode()).decode(),
}

Fetch = Callable[[str], Awaitable[bytes]]


async def walk(fetch: Fetch, concurrency: int, *, with_info: bool = False) -> int:
    """List vhosts → apps → streams, then GET (and JSON-decode) every stream's stats.

    ``with_info`` adds each stream's info as well: the exporter pattern. Returns the number
    of requests made.
    """
    gate = asyncio.Semaphore(concurrency)
    count = 0

    async def get(path: str) -> Any:
        nonlocal count
        async with gate:
            count += 1
            return json.loads(await fetch(path))["response"]

    vhosts = await get("/v1/vhosts")
    apps_of = await asyncio.gather(*(get(f"/v1/vhosts/{v}/apps") for v in vhosts))
    apps = [(v, a) for v, names in zip(vhosts, apps_of, strict=True) for a in names]
    streams_of = await asyncio.gather(*(get(f"/v1/vhosts/{v}/apps/{a}/streams") for v, a in apps))
    paths = []
    for (v, a), names in zip(apps, streams_of, strict=True):
        for name in names:
            paths.append(f"/v1/stats/current/vhosts/{v}/apps/{a}/streams/{name}")
            if with_info:
                paths.append(f"/v1/vhosts/{v}/apps/{a}/streams/{name}")
    await asyncio.gather(*(get(p) for p in paths))
    return count


async def bare_poll(url: str, concurrency: int, *, with_info: bool = False) -> int:
    """The issue's floor: plain aiohttp with keep-alive, a fresh session per poll."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=HEADERS) as session:

        async def fetch(path: str) -> bytes:
            async with session.get(url + path) as reply:
                return await reply.read()

        return await walk(fetch, concurrency, with_info=with_info)


async def wire_poll(url: str, concurrency: int) -> int:
    """omealert's own HTTP stack with nothing on top: what the tick costs beyond it is
    omealert's own work (envelopes, normalizing, evaluating, persisting)."""
    getter = WireGetter(url, HEADERS, concurrency, True, 30.0)
    try:

        async def fetch(path: str) -> bytes:
            return (await getter.get(path)).body

        return await walk(fetch, concurrency)
    finally:
        await getter.aclose()


# -- omealert ----------------------------------------------------------------------------------


async def tick(runner: Runner) -> tuple[float, float, float, int, float]:
    """One tick: (wall, cpu, poll seconds, requests, seconds in the garbage collector)."""
    with Stopwatch() as sw:
        report = await runner.tick()
    poll = report.polls[0]
    if poll.error is not None:
        raise RuntimeError(f"the tick failed: {poll.error}")
    return sw.wall, sw.cpu, poll.duration, poll.requests, sw.gc


async def transports(settings: Settings) -> list[tuple[str, float, int]]:
    """One client poll over each HTTP stack: (name, seconds, requests)."""
    stacks: list[tuple[str, httpx.AsyncBaseTransport | None]] = [
        ("omewire (omealert's default)", None),
        ("httpx, its own async transport", httpx.AsyncHTTPTransport()),
    ]
    try:
        from httpx_aiohttp import AiohttpTransport

        stacks.append(("httpx over httpx-aiohttp", AiohttpTransport()))
    except ImportError:
        print("(httpx-aiohttp is not installed: skipped)")
    server = settings.servers[0]
    plan = plan_polls(settings.rules, server.name)
    out = []
    for name, transport in stacks:
        async with OmeClient(server, clock=SystemClock(), transport=transport) as client:
            await client.poll(plan)  # connections up, caches warm
            with Stopwatch() as sw:
                result = await client.poll(plan)
        out.append((name, sw.wall, result.requests))
    return out


async def run(args: argparse.Namespace) -> None:
    with SimProcess(args.streams, args.apps) as sim, tempfile.TemporaryDirectory() as tmp:
        settings = load_config_text(config_text(sim.url, args.concurrency), "bench.yaml", env={})
        store = StateStore(Path(tmp) / "state.db")
        runner = Runner(settings, clock=SystemClock(), store=store)
        try:
            # warm-up: connections, first instances written, caches filled
            await tick(runner)
            await bare_poll(sim.url, args.concurrency)
            await wire_poll(sim.url, args.concurrency)
            runs: dict[str, list[tuple[float, float, int, float]]] = {"floor": [], "wire": []}
            ticks: list[tuple[float, float, float, int, float]] = []
            ratios: list[float] = []
            over_wire: list[float] = []
            sides = ["floor", "wire", "tick"]
            for i in range(args.rounds):
                for which in sides[i % 3 :] + sides[: i % 3]:  # each goes first in turn
                    if which == "tick":
                        ticks.append(await tick(runner))
                        continue
                    poll = bare_poll if which == "floor" else wire_poll
                    with Stopwatch() as sw:
                        n = await poll(sim.url, args.concurrency)
                    runs[which].append((sw.wall, sw.cpu, n, sw.gc))
                ratios.append(ticks[-1][0] / runs["floor"][-1][0])
                over_wire.append(ticks[-1][0] / runs["wire"][-1][0])

            sim.control("reset_requests")
            await runner.tick()
            ours = sim.control("request_count")
            sim.control("reset_requests")
            with Stopwatch() as exporter:
                await bare_poll(sim.url, args.concurrency, with_info=True)
            theirs = sim.control("request_count")
            stacks = await transports(settings) if args.transports else []
        finally:
            await runner.aclose()
            store.close()

    floors, wires = runs["floor"], runs["wire"]
    floor_wall = median([f[0] for f in floors])
    wire_wall = median([w[0] for w in wires])
    tick_wall = median([t[0] for t in ticks])
    poll_wall = median([t[2] for t in ticks])
    rows: list[list[object]] = [
        ["floor: bare aiohttp", floor_wall, floors[-1][2], floors[-1][2] / floor_wall,
         median([f[1] for f in floors]), median([f[3] for f in floors]), 1.0],
        ["bare omewire", wire_wall, wires[-1][2], wires[-1][2] / wire_wall,
         median([w[1] for w in wires]), median([w[3] for w in wires]), wire_wall / floor_wall],
        ["omealert tick", tick_wall, ticks[-1][3], ticks[-1][3] / tick_wall,
         median([t[1] for t in ticks]), median([t[4] for t in ticks]), tick_wall / floor_wall],
        ["  of which the poll", poll_wall, "", "", "", "", poll_wall / floor_wall],
        ["  evaluate + persist", tick_wall - poll_wall, "", "", "", "", ""],
    ]  # fmt: skip
    print(f"machine: {machine()}")
    print(
        f"poll cycle: {args.streams:,} streams in {args.apps} apps, {len(RULES)} rules, "
        f"{args.concurrency} requests in flight, {args.rounds} rounds (medians)"
    )
    print(table(["", "wall s", "requests", "req/s", "cpu s", "gc s", "× floor"], rows))
    print("per round, tick s / floor s / bare omewire s:", "  ".join(
        f"{t[0]:.2f}/{f[0]:.2f}/{w[0]:.2f}"
        for t, f, w in zip(ticks, floors, wires, strict=True)))  # fmt: skip
    print()
    print(
        table(
            ["requests per poll", "requests", "× exporter", "wall s"],
            [
                ["exporter pattern: list + info + stats", theirs, 1.0, exporter.wall],
                ["omealert, stats-only rules", ours, ours / theirs, ""],
            ],
        )
    )
    if stacks:
        print()
        base = stacks[0][1]
        print(
            table(
                ["client poll over", "wall s", "req/s", "× omewire"],
                [[n, w, r / w, w / base] for n, w, r in stacks],
            )
        )
    print()
    print(
        f"headline: tick = {median(ratios):.2f}× floor (target ≤ 1.3×), "
        f"{median(over_wire):.2f}× bare omewire; "
        f"requests = {ours / theirs:.2f}× the exporter pattern (target ≈ 0.5×)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=10_000)
    ap.add_argument("--apps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=16, help="max_in_flight, both sides")
    ap.add_argument("--transports", action="store_true", help="also compare HTTP stacks")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
