"""Memory: resident size of a watcher tracking 10,000 streams with 10 minutes of rate history.

Run by hand: ``.venv/bin/python bench/bench_memory.py [--streams 10000] [--interval 10]``.

The watcher runs in a process of its own (this script with ``--worker``) so its RSS is
nobody else's: a ``Runner`` with a fake clock, SQLite state, and rules whose ``rate()``
windows are 10 minutes long, polling a simulator (another process) that runs on a manual
clock. Each tick moves both clocks on by the interval, so the history fills in minutes of
benchmark time instead of real ones. The watcher keeps one window of points; the script
runs one and a half windows of simulated time, reading RSS from ``/proc/self/status`` along
the way, so that a flat end shows nothing else grows.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import ROOT, TOKEN, SimProcess, machine, table

START = 1_767_225_600.0
WINDOW = "10m"


def config(url: str, interval: float) -> str:
    return f"""\
servers:
  - name: origin
    url: {url}
    access_token: {TOKEN}
    timeout: 30s
interval: {interval:g}s
rules:
  - name: ingest-rate-low
    when: rate(totalBytesIn, {WINDOW}) < 10kB
  - name: output-collapse
    when: rate(totalBytesOut, {WINDOW}) < 100kB and viewers > 10
  - name: ingest-stalled
    when: lastRecvTime stale > 30s
  - name: input-throughput-low
    when: avgThroughputIn < 500kbps
  - name: viewers-high
    when: webrtc publishers > 500
"""


def rss_mib() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MiB."""
    status = Path("/proc/self/status").read_text()
    values = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


async def worker(url: str, interval: float, ticks: int) -> None:
    """The watcher: print one JSON line per measurement point."""
    from omealert.clock import FakeClock
    from omealert.config.load import load_config_text
    from omealert.runner import Runner
    from omealert.state.store import StateStore

    def report(label: str, tick: int, runner: Runner | None) -> None:
        gc.collect()
        rss, peak = rss_mib()
        series = points = instances = 0
        if runner is not None:
            history = runner.engine.history
            series = history.series()
            points = history.points()
            instances = sum(1 for _ in runner.engine.instances())
        line = {"label": label, "tick": tick, "rss": rss, "peak": peak, "series": series,
                "points": points, "instances": instances}  # fmt: skip
        print(json.dumps(line), flush=True)

    settings = load_config_text(config(url, interval), "memory.yaml", env={})
    report("imports and config loaded", 0, None)
    with tempfile.TemporaryDirectory() as tmp:
        clock = FakeClock(START)
        store = StateStore(Path(tmp) / "state.db")
        runner = Runner(settings, clock=clock, store=store)
        marks = {1, 10, ticks // 2, ticks}
        try:
            for tick in range(1, ticks + 1):
                result = await runner.tick()
                if result.polls[0].error is not None:
                    raise RuntimeError(str(result.polls[0].error))
                del result  # as `watch` does: one tick's samples alive at a time
                if tick in marks:
                    minutes = (tick - 1) * interval / 60
                    report(f"after {tick} ticks ({minutes:.1f} min of history)", tick, runner)
                clock.advance(interval)
                _advance(url, interval)
        finally:
            await runner.aclose()
            store.close()


def _advance(url: str, seconds: float) -> None:
    import urllib.request

    body = json.dumps({"seconds": seconds}).encode()
    request = urllib.request.Request(f"{url}/_sim/advance", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=30) as reply:
        reply.read()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=10_000)
    ap.add_argument("--apps", type=int, default=5)
    ap.add_argument("--interval", type=float, default=10.0, help="poll interval, seconds")
    ap.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    ap.add_argument("--ticks", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        asyncio.run(worker(args.worker, args.interval, args.ticks))
        return
    # the watcher keeps one window of points: run half a window more to show it stays flat
    ticks = int(1.5 * 600 / args.interval) + 2
    rows = []
    started = time.perf_counter()
    with SimProcess(args.streams, args.apps, manual_clock=START) as sim:
        cmd = [sys.executable, __file__, "--worker", sim.url, "--interval", str(args.interval)]
        cmd += ["--ticks", str(ticks)]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            point = json.loads(line)
            print(f"  {point['label']}: {point['rss']:.0f} MiB", file=sys.stderr, flush=True)
            rows.append(point)
        if proc.wait() != 0:
            raise SystemExit("the watcher failed")
    print(f"machine: {machine()}")
    print(
        f"memory: {args.streams:,} streams, interval {args.interval:g} s, rate() windows of "
        f"{WINDOW} (one window kept), {ticks} ticks in {time.perf_counter() - started:.0f} s"
    )
    header = ["watcher process", "RSS MiB", "peak MiB", "instances", "series", "points"]
    keys = ["label", "rss", "peak", "instances", "series", "points"]
    print(table(header, [[r[k] for k in keys] for r in rows]))
    last, first = rows[-1], rows[1]
    grown = (last["rss"] - first["rss"]) * 1024 * 1024
    per_point = grown / max(1, last["points"] - first["points"])
    print(f"growth after the first tick: {per_point:.0f} bytes per history point")
    print()
    print(
        f"headline: watcher RSS {last['rss']:.0f} MiB (peak {last['peak']:.0f} MiB) for "
        f"{args.streams:,} streams with {WINDOW} rate windows (target ≤ 150 MB = 143 MiB)"
    )


if __name__ == "__main__":
    main()
