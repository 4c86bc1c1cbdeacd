"""The simulator's own throughput: how many requests per second one connection gets answered.

Run by hand: ``.venv/bin/python bench/bench_simulator.py [--seconds 3] [--rounds 3]``.

The simulator runs in its own process (``_common.SimProcess``) with 100 streams. A raw
socket in this process sends stream-stats GETs over one keep-alive connection, one at a
time and then pipelined in batches of 64, and reads each answer by its Content-Length.
The client side is deliberately thin (no HTTP library), so the figure is mostly the
simulator's: request parsing, routing, the JSON body and the write.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import SimProcess, machine, median, table

AUTH = b"Authorization: Basic b21lLWFjY2Vzcy10b2tlbg==\r\n"
PATH = b"/v1/stats/current/vhosts/default/apps/app0/streams/s00042"
REQUEST = b"GET " + PATH + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + AUTH + b"\r\n"


class Reader:
    """Answers read off one socket by their Content-Length."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def answer(self) -> None:
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                at = self.buf.find(b"Content-Length: ", 0, end) + 16
                length = int(self.buf[at : self.buf.find(b"\r\n", at)])
                if len(self.buf) >= end + 4 + length:
                    if not self.buf.startswith(b"HTTP/1.1 200 "):
                        raise RuntimeError(self.buf[:200].decode("latin-1"))
                    self.buf = self.buf[end + 4 + length :]
                    return
            chunk = self.sock.recv(262144)
            if not chunk:
                raise RuntimeError("the simulator closed the connection")
            self.buf += chunk


def rate(port: int, seconds: float, batch: int) -> float:
    """Requests answered per second over one connection, ``batch`` in flight at a time."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle wait on a batch
        reader = Reader(sock)
        done = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            sock.sendall(REQUEST * batch)
            for _ in range(batch):
                reader.answer()
            done += batch
        return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    with SimProcess(streams=100) as sim:
        port = int(sim.url.rsplit(":", 1)[1])
        rate(port, 0.5, 1)  # warm up
        one: list[float] = []
        piped: list[float] = []
        for _ in range(args.rounds):
            one.append(rate(port, args.seconds, 1))
            piped.append(rate(port, args.seconds, 64))
    rows = [
        ("one at a time", median(one), min(one), max(one)),
        ("pipelined x64", median(piped), min(piped), max(piped)),
    ]
    print(table(["requests/s", "median", "min", "max"], rows))
    print(f"headline: {median(one):,.0f} req/s one at a time, {median(piped):,.0f} pipelined")


if __name__ == "__main__":
    main()
