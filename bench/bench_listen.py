"""The ``--listen`` server: aiohttp.web (what omealert uses) against Starlette under uvicorn.

Run by hand: ``.venv/bin/python bench/bench_listen.py [--requests 3000] [--concurrency 16]``
(Starlette and uvicorn are bench-only: ``pip install starlette uvicorn httptools``).

Each server runs in its own process, serving the same ``Metrics`` registry (one poll of 50
servers' worth of series observed) at ``/metrics``; the load comes from this process with
httpx, ``--concurrency`` requests in flight, first over kept-alive connections, then with a
new connection per request (as a scraper that does not keep them). Reported per server: the
time its imports add to a process that has the watcher's own loaded, its RSS once serving
and after the load, and the latency (p50/p99) and rate of ``GET /metrics``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import ROOT, machine, median, percentile, table

KINDS = ("aiohttp", "uvicorn")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# -- the server side (a child process) ------------------------------------------------------


def filled_metrics() -> object:
    from omealert.metrics import Metrics
    from omealert.model import PollResult

    metrics = Metrics()
    metrics.channels = ("hook", "mail")
    polls = [PollResult(f"origin{i:02d}", 0.0, 0.0, requests=40, duration=0.02) for i in range(50)]
    metrics.observe_tick(polls, 0.2, [])
    return metrics


async def serve(kind: str) -> None:
    for loaded in ("omealert.cli.watch", "omealert.runner", "omealert.notify.delivery"):
        importlib.import_module(loaded)  # what a watcher has loaded before --listen

    started = time.perf_counter()
    if kind == "aiohttp":
        from omealert.web.listener import Listener

        imported = time.perf_counter() - started
        listener = Listener(filled_metrics())  # type: ignore[arg-type]
        await listener.start()
        port = listener.port
    else:
        import uvicorn
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        from starlette.applications import Starlette
        from starlette.responses import PlainTextResponse, Response
        from starlette.routing import Route

        imported = time.perf_counter() - started
        metrics = filled_metrics()

        async def healthz(request: object) -> PlainTextResponse:
            return PlainTextResponse("ok\n")

        async def scrape(request: object) -> Response:
            body = generate_latest(metrics.registry)  # type: ignore[attr-defined]
            return Response(body, media_type=CONTENT_TYPE_LATEST)

        app = Starlette(routes=[Route("/healthz", healthz), Route("/metrics", scrape)])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off"
        )
        server = uvicorn.Server(config)
        # serve(), not startup(): uvicorn's parts need its own _serve to set them up (this
        # child owns its signals; a watcher would have to give its own up to uvicorn)
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(json.dumps({"port": port, "import_ms": imported * 1000}), flush=True)
        await task
        return
    print(json.dumps({"port": port, "import_ms": imported * 1000}), flush=True)
    await asyncio.Event().wait()


# -- the load side (this process) -----------------------------------------------------------


async def load(port: int, requests: int, concurrency: int, keep_alive: bool) -> list[float]:
    import httpx

    limits = httpx.Limits(max_keepalive_connections=concurrency if keep_alive else 0)
    latencies: list[float] = []
    todo = iter(range(requests))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:

        async def worker() -> None:
            for _ in todo:
                t = time.perf_counter()
                reply = await client.get("/metrics")
                latencies.append(time.perf_counter() - t)
                assert reply.status_code == 200, reply.status_code

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", choices=KINDS)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return
    print(machine())
    rows = []
    for kind in KINDS:
        cmd = [sys.executable, __file__, "--serve", kind]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            info = json.loads(proc.stdout.readline())
            idle = rss_kib(proc.pid)
            for keep_alive in (True, False):
                t = time.perf_counter()
                lat = asyncio.run(load(info["port"], args.requests, args.concurrency, keep_alive))
                rate = len(lat) / (time.perf_counter() - t)
                rows.append(
                    [
                        f"{kind} ({'keep-alive' if keep_alive else 'new connection'})",
                        f"{info['import_ms']:.0f}",
                        f"{idle / 1024:.1f}",
                        f"{rss_kib(proc.pid) / 1024:.1f}",
                        f"{median(lat) * 1000:.2f}",
                        f"{percentile(lat, 99) * 1000:.2f}",
                        f"{rate:.0f}",
                    ]
                )
        finally:
            proc.terminate()
            proc.wait()
    heads = ["server", "import ms", "RSS MiB", "RSS after", "p50 ms", "p99 ms", "req/s"]
    print(table(heads, rows))
    print("headline: " + "; ".join(f"{r[0]} p50 {r[4]} ms, {r[6]} req/s" for r in rows))


if __name__ == "__main__":
    main()
