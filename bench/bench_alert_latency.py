"""Time to alert: from the moment an ingest stalls to the moment the webhook receives the message.

Run by hand: ``.venv/bin/python bench/bench_alert_latency.py [--trials 25] [--streams 1000]``.

Three processes, as in production: the simulator (1,000 streams, real clock), a real
``omealert watch`` with a 1 s interval and a ``json://`` channel, and this script, which
runs the HTTP receiver, stalls one stream at a random moment, and notes when the FIRING
message for that stream arrives. Both times are read from the same system clock.

The rule is ``lastRecvTime stale > 2s``: OME's ``lastRecvTime`` simply stops moving when an
encoder hangs, so a stall can only be told from a healthy stream once it is older than
some threshold, and that threshold plays the part of ``for``. The threshold must exceed
one poll's own duration (the newest timestamp of a poll sets the server clock), hence 2 s.
The target is therefore p95 ≤ threshold + interval + 250 ms = 3.25 s. The first alert of
the run also loads apprise in the watcher; it is a warm-up and not counted.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import ROOT, TOKEN, SimProcess, machine, median, percentile, table

THRESHOLD_S = 2.0
INTERVAL_S = 1.0


class Receiver:
    """An HTTP endpoint on 127.0.0.1 that notes the arrival time of every message's title."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
                arrived = time.time()
                self.send_response(200)
                self.end_headers()
                try:
                    title = str(json.loads(body).get("title", ""))
                except ValueError:
                    return
                with receiver._cond:
                    receiver.arrivals.setdefault(title, arrived)
                    receiver._cond.notify_all()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def wait(self, title: str, timeout: float) -> float | None:
        with self._cond:
            self._cond.wait_for(lambda: title in self.arrivals, timeout)
            return self.arrivals.get(title)


def config(url: str, port: int) -> str:
    return f"""\
servers:
  - name: origin
    url: {url}
    access_token: {TOKEN}
interval: {INTERVAL_S:g}s
channels:
  hook:
    urls: ["json://127.0.0.1:{port}/alerts"]
    title: "{{{{ status }}}} {{{{ rule }}}} {{{{ target }}}}"
defaults:
  channels: [hook]
rules:
  - name: ingest-stalled
    when: lastRecvTime stale > {THRESHOLD_S:g}s
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=25)
    ap.add_argument("--streams", type=int, default=1000)
    args = ap.parse_args()
    rng = random.Random(4)
    latencies: list[float] = []
    warmup: float | None = None
    with (
        SimProcess(args.streams, 2) as sim,
        Receiver() as receiver,
        tempfile.TemporaryDirectory() as tmp,
    ):
        path = Path(tmp) / "watch.yaml"
        path.write_text(config(sim.url, receiver.port))
        cmd = [sys.executable, "-m", "omealert", "watch", "-c", str(path)]
        cmd += ["--state", str(Path(tmp) / "state.db"), "--log-level", "WARNING"]
        log = open(Path(tmp) / "watch.log", "w")  # noqa: SIM115 - closed below
        watcher = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 30
            while sim.control("request_count") < 2 * args.streams and time.time() < deadline:
                time.sleep(0.2)  # until two polls have gone by
            streams = [(app, s) for app, names in sim.layout() for s in names]
            rng.shuffle(streams)
            for trial in range(args.trials + 1):
                app, stream = streams[trial]
                time.sleep(rng.uniform(0.5, 1.5))  # a random phase against the poll
                stalled = time.time()
                sim.control("stall", vhost="default", app=app, stream=stream)
                title = f"firing ingest-stalled origin/default/{app}/{stream}"
                arrived = receiver.wait(title, timeout=30)
                sim.control("resume", vhost="default", app=app, stream=stream)
                if arrived is None:
                    print(f"trial {trial}: no message within 30 s", file=sys.stderr)
                    continue
                if trial == 0:
                    warmup = arrived - stalled
                else:
                    latencies.append(arrived - stalled)
        finally:
            watcher.terminate()
            watcher.wait(timeout=30)
            log.close()
        if watcher.returncode not in (0, -15):
            print((Path(tmp) / "watch.log").read_text()[-2000:], file=sys.stderr)

    target = THRESHOLD_S + INTERVAL_S + 0.25
    beyond = [x - THRESHOLD_S for x in latencies]
    print(f"machine: {machine()}")
    print(
        f"time to alert: {args.streams:,} streams, interval {INTERVAL_S:g} s, rule "
        f"'lastRecvTime stale > {THRESHOLD_S:g}s', {len(latencies)} trials (seconds)"
    )
    rows = [
        ["stall → message", min(latencies), median(latencies), percentile(latencies, 95),
         max(latencies)],
        ["  minus the 2 s threshold", min(beyond), median(beyond), percentile(beyond, 95),
         max(beyond)],
    ]  # fmt: skip
    print(table(["", "min", "p50", "p95", "max"], rows))
    if warmup is not None:
        print(f"first alert of the run (loads apprise, not counted): {warmup:.3f} s")
    print()
    p95 = percentile(latencies, 95)
    print(
        f"headline: p50 {median(latencies):.2f} s, p95 {p95:.2f} s from stall to receipt "
        f"(target ≤ {target:.2f} s = threshold {THRESHOLD_S:g} s + interval {INTERVAL_S:g} s "
        f"+ 250 ms)"
    )


if __name__ == "__main__":
    main()
