"""Time to alert with OME's events: from a stream's deletion to the webhook message.

Run by hand: ``.venv/bin/python bench/bench_event_latency.py [--trials 20] [--streams 100]``.

Three processes, as in production: the simulator (real clock) acting as OME's Alert module
(``set_alert_module``, ``<StreamStatus/>`` on), a real ``omealert watch --listen`` with a
**10 s** interval, ``ome_events`` and a ``json://`` channel, and this script, which runs the
HTTP receiver, deletes one stream at a random moment, and notes when the FIRING message of
an ``absent`` rule for that stream arrives. The simulator POSTs ``INGRESS_STREAM_DELETED``
as it deletes the stream; the watcher polls the server at once and the poll's listing
(not the event) fires the rule. Both times are read from the same system clock.

``--no-events`` runs the same trials without the Alert module: the figure to compare with
(about half the interval on average, up to the whole interval). The target with events is
p95 ≤ 300 ms. The first alert of the run also loads apprise; it is not counted.
"""

from __future__ import annotations

import argparse
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import ROOT, TOKEN, SimProcess, machine, median, percentile, table
from bench_alert_latency import Receiver

INTERVAL_S = 10.0
KEY = "bench-alert-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(url: str, port: int, names: list[str]) -> str:
    match = ", ".join(f'"{n}"' for n in names)
    return f"""\
servers:
  - name: origin
    url: {url}
    access_token: {TOKEN}
interval: {INTERVAL_S:g}s
ome_events:
  secret_key: {KEY}
channels:
  hook:
    urls: ["json://127.0.0.1:{port}/alerts"]
    title: "{{{{ status }}}} {{{{ rule }}}} {{{{ target }}}}"
defaults:
  channels: [hook]
rules:
  - name: gone
    when: absent
    match: [{match}]
"""


def early_polls(port: int) -> str:
    """The watcher's own count of its early polls, by kind (targeted or whole server)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    found = [
        line.split("{", 1)[1].replace("} ", " = ")
        for line in text.splitlines()
        if line.startswith("omealert_event_polls_total{")
    ]
    ticks = [line for line in text.splitlines() if line.startswith("omealert_ticks_total ")]
    return ", ".join(found + [t.replace("omealert_ticks_total", "ticks =") for t in ticks])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--no-events", action="store_true", help="without OME's Alert module")
    args = ap.parse_args()
    rng = random.Random(16)
    latencies: list[float] = []
    warmup: float | None = None
    polls = ""
    with (
        SimProcess(args.streams, 2) as sim,
        Receiver() as receiver,
        tempfile.TemporaryDirectory() as tmp,
    ):
        streams = [(app, s) for app, names in sim.layout() for s in names]
        rng.shuffle(streams)
        chosen = streams[: args.trials + 1]
        listen = free_port()
        path = Path(tmp) / "watch.yaml"
        names = [f"default/{app}/{s}" for app, s in chosen]
        path.write_text(config(sim.url, receiver.port, names))
        if not args.no_events:
            url = f"http://127.0.0.1:{listen}/ome/alert"
            sim.control("set_alert_module", url=url, secret_key=KEY, stream_status=True)
        cmd = [sys.executable, "-m", "omealert", "watch", "-c", str(path)]
        cmd += ["--state", str(Path(tmp) / "state.db"), "--log-level", "WARNING"]
        cmd += ["--listen", f"127.0.0.1:{listen}"]
        log = open(Path(tmp) / "watch.log", "w")  # noqa: SIM115 - closed below
        watcher = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 30
            while sim.control("request_count") < 1 and time.time() < deadline:
                time.sleep(0.2)  # until the first poll has gone by
            time.sleep(1.0)
            for trial, (app, stream) in enumerate(chosen):
                time.sleep(rng.uniform(0.5, 1.5))  # a random phase against the schedule
                deleted = time.time()
                sim.control("remove_stream", vhost="default", app=app, stream=stream)
                title = f"firing gone origin/default/{app}/{stream}"
                arrived = receiver.wait(title, timeout=2 * INTERVAL_S + 5)
                if arrived is None:
                    print(f"trial {trial}: no message in time", file=sys.stderr)
                    continue
                if trial == 0:
                    warmup = arrived - deleted
                else:
                    latencies.append(arrived - deleted)
            polls = early_polls(listen)
        finally:
            watcher.terminate()
            watcher.wait(timeout=30)
            log.close()
        if watcher.returncode not in (0, -15):
            print((Path(tmp) / "watch.log").read_text()[-2000:], file=sys.stderr)

    how = "without events" if args.no_events else "with OME's events"
    print(f"machine: {machine()}")
    print(
        f"deletion → message, {how}: {args.streams:,} streams, interval {INTERVAL_S:g} s, "
        f"rule 'absent', {len(latencies)} trials (seconds)"
    )
    rows = [["deleted → message", min(latencies), median(latencies),
             percentile(latencies, 95), max(latencies)]]  # fmt: skip
    print(table(["", "min", "p50", "p95", "max"], rows))
    if warmup is not None:
        print(f"first alert of the run (loads apprise, not counted): {warmup:.3f} s")
    print(f"early polls: {polls or 'none'}")
    print(f"headline: p50 {median(latencies):.3f} s, p95 {percentile(latencies, 95):.3f} s")


if __name__ == "__main__":
    main()
