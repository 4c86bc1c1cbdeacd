"""Planner alone with silences, acks and a mute time interval: one tick's plan, 10,000 firing.

Run by hand: ``.venv/bin/python bench/bench_quiet.py [--targets N]``. Every instance is
already notified (the steady state of a long incident): the plan decides, per instance and
channel, whether a repeat is due, silenced, acknowledged or muted. Prints the best plan
time for a config without any of them and with all three.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omealert.config.time_intervals import NamedInterval, TimeIntervalModel
from omealert.engine.engine import Engine
from omealert.notify.planner import Planner
from omealert.rules import ChannelSpec
from omealert.state.acks import Ack
from omealert.state.records import Silence
from tests.helpers import poll, rule, settings

T0 = 1_767_225_600.0


def run(n: int, quiet: bool) -> float:
    intervals = {}
    if quiet:
        night = TimeIntervalModel.model_validate(
            {"times": [{"start_time": "22:00", "end_time": "24:00"}], "location": "Europe/Berlin"}
        )
        intervals = {"night": NamedInterval("night", (night,))}
    hi = rule(
        "hi",
        "webrtc publishers > 500",
        channels=("ops", "mail"),
        repeat_interval_s=3600.0,
        mute_time_intervals=("night",) if quiet else (),
    )
    s = settings(
        hi,
        channels={
            "ops": ChannelSpec("ops", ("json://127.0.0.1:9/ops",)),
            "mail": ChannelSpec("mail", ("json://127.0.0.1:9/mail",)),
        },
        time_intervals=intervals,
    )
    engine, planner = Engine(s), Planner(s)
    targets = {f"default/app/s{i:05d}": {"publishers.connections.webrtc": 600} for i in range(n)}
    transitions = engine.step([poll(T0, targets)], T0)
    planner.plan(engine, transitions, T0)
    silences: list[Silence] = []
    acks: list[Ack] = []
    if quiet:
        silences = [Silence("s1", ["stream=~s0.*"], T0, T0 + 9e5, "me", "", T0)]
        episodes = [("hi", f"origin/default/app/s{i:05d}", T0) for i in range(0, n, 4)]
        acks = [Ack("a1", ["stream=~s.*"], "", episodes, "me", "", T0, None, None, T0)]
    times = []
    for k in range(1, 16):
        now = T0 + k * 60
        transitions = engine.step([poll(now, targets)], now)
        started = time.perf_counter()
        planner.plan(engine, transitions, now, silences, acks)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=10_000)
    n = parser.parse_args().targets
    plain, quiet = run(n, False), run(n, True)
    print(f"{n} firing instances x 2 channels, plan() per tick (best of 15):")
    print(f"  no silence/ack/interval: {plain * 1000:7.1f} ms")
    print(f"  silence + acks + mute:   {quiet * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
