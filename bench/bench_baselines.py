"""Baselines: RSS and the evaluate step with three 1-hour baselines on 10,000 streams.

Run by hand: ``.venv/bin/python bench/bench_baselines.py [--streams 10000] [--interval 10]``.

Two runs of the engine alone (``Engine.step``: recording history and evaluating every
rule, which is the tick's evaluate step), each in a process of its own so its RSS is
nobody else's, over the same synthetic polls: 10,000 streams whose bitrate, input
throughput and viewers wander, and whose ``createdTime`` moves now and then (a reconnect).

* **avg 5m**: the same three rules with each baseline function replaced by
  ``avg_over(x, 5m)`` (four calls a stream, as below): the reference.
* **baselines 1h**: the same rules with 1-hour ``median_over``, ``median_over - 3 *
  stddev_over`` and ``quantile_over`` (the worst case: a quantile sketch for each field).

Each run does one hour and ten minutes of ticks (what a 1-hour window needs to fill, plus
the minutes that show it stays flat). RSS comes from one process per set of rules; the
step times from a third process that steps both engines over the same polls, taking turns
going first, so the shared machine's drift falls on both alike. They are the mean over the
last 30 minutes, whose ticks all read full windows; the worst tick is shown too.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

START = 1_767_225_600.0
RULES = {
    "avg 5m": [
        "video.bitrateLatest < 50% * avg_over(video.bitrateLatest, 5m)",
        "avgThroughputIn < avg_over(avgThroughputIn, 5m) - 3 * avg_over(avgThroughputIn, 5m)",
        "viewers < 40% * avg_over(viewers, 5m) and viewers > 100",
    ],
    "baselines 1h": [
        "video.bitrateLatest < 50% * median_over(video.bitrateLatest, 1h)",
        "avgThroughputIn < median_over(avgThroughputIn, 1h) - 3 * stddev_over(avgThroughputIn, 1h)",
        "viewers < 40% * quantile_over(0.9, viewers, 1h) and viewers > 100",
    ],
}


def rss_mib() -> tuple[float, float]:
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def polls(streams: int, interval: float, ticks: int) -> Iterator[Any]:
    """The same synthetic polls for every run: bitrates, throughputs and viewers that
    wander around each stream's own level, and now and then a reconnect."""
    from omealert.model import PollResult, Sample, Target

    targets = [Target("origin", "default", f"app{i % 5}", f"s{i:05d}") for i in range(streams)]
    rng = random.Random(7)
    base = [(rng.uniform(0.8e6, 6e6), rng.uniform(10, 5000)) for _ in targets]
    created = [START - 3600.0] * streams
    for tick in range(ticks):
        at = START + tick * interval
        poll = PollResult("origin", at, at)
        for i, target in enumerate(targets):
            bitrate, viewers = base[i]
            if rng.random() < 0.0005:
                created[i] = at  # a reconnect
            fields = {
                "createdTime": datetime.fromtimestamp(created[i], UTC),
                "video.bitrateLatest": bitrate * rng.uniform(0.9, 1.1),
                "providers.avgThroughputIn": bitrate * rng.uniform(0.95, 1.05),
                "publishers.viewers": int(viewers * rng.uniform(0.97, 1.03)),
            }
            poll.samples[target] = Sample(target, fields, at, at)  # type: ignore[arg-type]
            poll.listed.add(target)
        yield poll


def engine_for(mode: str) -> Any:
    from omealert.engine.engine import Engine
    from tests.helpers import rule, settings

    return Engine(settings(*(rule(f"r{i}", text) for i, text in enumerate(RULES[mode]))))


def memory_worker(mode: str, streams: int, interval: float, ticks: int) -> None:
    """One engine alone in this process: its RSS along the way, one JSON line each."""
    engine = engine_for(mode)
    for tick, poll in enumerate(polls(streams, interval, ticks)):
        engine.step([poll], poll.at)
        del poll
        if tick in (0, ticks // 2, ticks - 1):
            gc.collect()
            rss, peak = rss_mib()
            line = {"tick": tick, "minutes": tick * interval / 60, "rss": rss, "peak": peak,
                    "points": engine.history.points()}  # fmt: skip
            print(json.dumps(line), flush=True)


def timing_worker(streams: int, interval: float, ticks: int) -> None:
    """Both engines over the same polls, taking turns going first each tick, so a busy
    minute of the shared machine slows both alike; the mean over the last 30 minutes."""
    engines = {mode: engine_for(mode) for mode in RULES}
    times: dict[str, list[float]] = {mode: [] for mode in RULES}
    for tick, poll in enumerate(polls(streams, interval, ticks)):
        order = list(RULES) if tick % 2 else list(reversed(RULES))
        for mode in order:
            begin = time.perf_counter()
            engines[mode].step([poll], poll.at)
            times[mode].append(time.perf_counter() - begin)
    keep = int(1800 / interval)
    out = {m: {"mean": sum(t[-keep:]) / keep, "worst": max(t[-keep:])} for m, t in times.items()}
    print(json.dumps(out), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=10_000)
    ap.add_argument("--interval", type=float, default=10.0, help="poll interval, seconds")
    ap.add_argument("--minutes", type=float, default=70.0, help="simulated time per run")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    ticks = int(args.minutes * 60 / args.interval) + 1
    if args.worker == "timing":
        timing_worker(args.streams, args.interval, ticks)
        return
    if args.worker:
        memory_worker(args.worker, args.streams, args.interval, ticks)
        return
    from _common import ROOT, machine

    common = ["--streams", str(args.streams), "--interval", str(args.interval)]
    common += ["--minutes", str(args.minutes)]
    started = time.perf_counter()
    outputs = {}
    for worker in [*RULES, "timing"]:  # one at a time: the timing has the machine to itself
        cmd = [sys.executable, __file__, "--worker", worker, *common]
        run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
        outputs[worker] = [json.loads(line) for line in run.stdout.splitlines()]
        print(f"  {worker}: done after {time.perf_counter() - started:.0f} s", file=sys.stderr)
    timing = outputs["timing"][0]
    print(f"machine: {machine()}")
    print(f"baselines: {args.streams:,} streams, interval {args.interval:g} s, {ticks} ticks")
    heads = ("RSS MiB", "peak MiB", "points", "step ms", "worst ms")
    print(f"{'rules':<14} " + " ".join(f"{h:>{len(h) + 1}}" for h in heads))
    for mode in RULES:
        last, t = outputs[mode][-1], timing[mode]
        print(f"{mode:<14} {last['rss']:8.0f} {last['peak']:9.0f} {last['points']:11,} "
              f"{t['mean'] * 1000:8.1f} {t['worst'] * 1000:9.1f}")  # fmt: skip
    for mode in RULES:
        marks = ", ".join(f"{p['minutes']:.0f} min {p['rss']:.0f}" for p in outputs[mode])
        print(f"  RSS MiB of {mode} along the way: {marks}")
    ratio = timing["baselines 1h"]["mean"] / timing["avg 5m"]["mean"]
    rss = outputs["baselines 1h"][-1]["rss"]
    print(f"headline: three 1-hour baselines: RSS {rss:.0f} MiB (target ≤ 250 MB = 238 MiB), "
          f"evaluate step {ratio:.2f}× avg_over(x, 5m) alone (target ≤ 1.5×)")  # fmt: skip


if __name__ == "__main__":
    main()
