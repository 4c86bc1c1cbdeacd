"""What the status page costs the watcher's loop: a health tick and a page render at scale.

Builds the health of N streams from synthetic polls (no network: this is the page's own
CPU, not the poll's), then times ``HealthBook.observe`` (once per tick), ``GET /`` (first
page of 100 rows, problems first, with sparklines), a filtered ``GET /`` and
``GET /api/v1/streams`` through aiohttp's request objects. Run:
``.venv/bin/python bench/bench_page.py [N ...]``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from aiohttp.test_utils import make_mocked_request

from omealert.clock import FakeClock
from omealert.engine.engine import Engine
from omealert.engine.health import HealthBook
from omealert.model import PollResult, Sample, Target
from omealert.rules import Settings
from omealert.web.api import StatusApi
from omealert.web.page import StatusPages


def polls(n: int, at: float, stalled: int) -> PollResult:
    poll = PollResult("origin", at, at)
    poll.listed.add(Target("origin"))
    for i in range(n):
        t = Target("origin", "default", f"app{i % 20}", f"stream{i:05d}")
        poll.listed.update({t, t.parent()})  # type: ignore[arg-type]
        recv = at - (60 if i < stalled else 0.5)
        fields: dict[str, Any] = {
            "providers.lastRecvTime": datetime.fromtimestamp(recv, UTC),
            "providers.avgThroughputIn": 2_500_000 + i,
            "publishers.viewers": i % 50,
        }
        poll.samples[t] = Sample(t, fields, at, at)
    return poll


def timed(fn: Any, repeat: int = 5) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs) * 1000


def measure(n: int) -> tuple[float, float, float, float]:
    """(observe, GET /, GET /?q=, GET /api/v1/streams) in ms for ``n`` streams."""
    clock = FakeClock()
    book = HealthBook(["origin"], 10.0)
    settings = Settings("x", (), 10.0, (), {})
    for _ in range(60):  # a full sparkline of history
        book.observe([polls(n, clock.now(), n // 100)], [], frozenset(), clock.now())
        clock.advance(10)
    runner = SimpleNamespace(
        health=book, engine=Engine(settings), settings=settings, store=None, clock=clock
    )
    pages = StatusPages(runner)  # type: ignore[arg-type]
    api = StatusApi(pages)
    poll = polls(n, clock.now(), n // 100)
    observe = timed(lambda: book.observe([poll], [], frozenset(), clock.now()))
    loop = asyncio.new_event_loop()

    def get(handler: Any, path: str) -> None:
        loop.run_until_complete(handler(make_mocked_request("GET", path)))

    page = timed(lambda: get(pages.index, "/"))
    query = timed(lambda: get(pages.index, "/?q=stream0004"))
    whole = timed(lambda: get(api.streams, "/api/v1/streams"))
    loop.close()
    return observe, page, query, whole


def main(sizes: list[int]) -> None:
    print(f"{'streams':>8} {'observe ms':>11} {'GET / ms':>9} {'GET /?q ms':>11} {'api ms':>8}")
    for n in sizes:
        observe, page, query, whole = measure(n)
        print(f"{n:>8} {observe:>11.1f} {page:>9.1f} {query:>11.1f} {whole:>8.1f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1_000, 10_000])
