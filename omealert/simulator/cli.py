"""``python -m omealert.simulator``: a stand-alone simulator for benchmarks and manual runs.

``python -m omealert.simulator --port 8081 --streams 100`` serves 100 streams and prints
its base URL; ``POST /_sim/<method>`` with a JSON object of keyword arguments scripts it
from elsewhere.  ``main`` lives here rather than in ``__main__.py`` so that importing the
package never imports ``__main__`` (``runpy`` warns when it finds it already imported).
"""

from __future__ import annotations

import argparse
import signal
import threading

from .clock import ManualClock
from .quirks import QUIRK_KINDS
from .server import Simulator


def main(argv: list[str] | None = None) -> int:
    """Serve K streams until SIGTERM/SIGINT; prints the base URL on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m omealert.simulator",
        description="Serve a simulated OvenMediaEngine REST API on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to bind (0: any free port)")
    parser.add_argument("--streams", type=int, default=1, help="number of streams to ingest")
    parser.add_argument("--vhost", default="default")
    parser.add_argument("--app", default="app")
    parser.add_argument("--token", default="ome-access-token", help="the API access token")
    parser.add_argument("--bitrate", type=int, default=2_500_000, help="bits/s per stream")
    parser.add_argument("--viewers", type=int, default=0, help="webrtc viewers per stream")
    parser.add_argument("--tz-offset", default="+00:00")
    parser.add_argument("--enterprise", action="store_true", help="also serve /v2 stats")
    parser.add_argument("--date-header", action="store_true", help="send a Date header")
    parser.add_argument(
        "--quirks",
        default="",
        metavar="LIST",
        help="comma-separated OME 0.18 quirks: first_second, partial_window (default: none)",
    )
    parser.add_argument(
        "--manual-clock",
        type=float,
        metavar="EPOCH",
        help="run on a manual clock starting at EPOCH (POST /_sim/advance moves it)",
    )
    args = parser.parse_args(argv)
    quirks = [q for q in args.quirks.split(",") if q]
    if unknown := sorted(set(quirks) - QUIRK_KINDS):
        parser.error(f"unknown quirk(s) {unknown}; use {sorted(QUIRK_KINDS)}")
    clock: ManualClock | None = None
    if args.manual_clock is not None:
        clock = ManualClock(args.manual_clock)
    sim = Simulator(
        clock=clock,
        access_token=args.token,
        tz_offset=args.tz_offset,
        send_date_header=args.date_header,
        enterprise=args.enterprise,
        port=args.port,
        request_log_limit=100_000,
        quirks=quirks,
    )
    sim.add_app(args.vhost, args.app)
    viewers = {"webrtc": args.viewers} if args.viewers else None
    names = [f"stream{i}" for i in range(1, args.streams + 1)]
    sim.add_streams(args.vhost, args.app, names, bitrate=args.bitrate, viewers=viewers)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sim.start()
    print(sim.url, flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        sim.stop()
    return 0
