"""The ``--listen`` server: aiohttp.web (what omealert uses) against Starlette under uvicorn.

Run by hand: ``.venv/bin/python bench/bench_listen.py [--requests 3000] [--concurrency 16]``
(Starlette and uvicorn are bench-only: ``pip install starlette uvicorn httptools``).

Each server runs in its own process; the load comes from another: ``wrk`` when installed
(``apt-get install wrk``; 5 s per run), else this process with httpx (which is then the
bottleneck more than the servers). ``--concurrency`` requests are in flight, first over
kept-alive connections, then with a new connection per request (as a scraper that does
not keep them), on ``/healthz``: the same trivial handler in both, so what differs is the
server. Reported per server: the time its imports add to a process that has the watcher's
own loaded, its RSS once serving and after the load, and the latency (p50/p99) and rate.
Then what writing ``/metrics`` costs (the library's ``generate_latest``) for 1 and for 50
OME servers' series: the listener reuses a scrape while nothing changed, so this is paid
at most once per change or per second.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import shutil
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


def filled_metrics(servers: int = 3) -> object:
    from omealert.metrics import Metrics
    from omealert.model import PollResult

    metrics = Metrics()
    metrics.channels = ("hook", "mail")
    polls = [
        PollResult(f"origin{i:02d}", 0.0, 0.0, requests=40, duration=0.02) for i in range(servers)
    ]
    metrics.observe_tick(polls, 0.2, [])
    return metrics


def render_ms(servers: int, runs: int = 50) -> float:
    metrics = filled_metrics(servers)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        metrics.render()  # type: ignore[attr-defined]
        times.append(time.perf_counter() - t)
    return median(times) * 1000


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
                reply = await client.get("/healthz")
                latencies.append(time.perf_counter() - t)
                assert reply.status_code == 200, reply.status_code

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def wrk(port: int, concurrency: int, keep_alive: bool) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, requests/s) from one 5 s ``wrk`` run on ``/healthz``."""
    cmd = ["wrk", "-t1", f"-c{concurrency}", "-d5s", "--latency"]
    if not keep_alive:
        cmd += ["-H", "Connection: close"]
    out = subprocess.run(
        [*cmd, f"http://127.0.0.1:{port}/healthz"], capture_output=True, text=True, check=True
    ).stdout

    def ms(label: str) -> float:
        value = next(line.split()[1] for line in out.splitlines() if line.strip().startswith(label))
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
        unit = value.lstrip("0123456789.")
        return float(value[: -len(unit)]) * scale[unit]

    rate = next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec"))
    return ms("50%"), ms("99%"), float(rate)


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
                if shutil.which("wrk"):
                    p50, p99, rate = wrk(info["port"], args.concurrency, keep_alive)
                else:
                    t = time.perf_counter()
                    lat = asyncio.run(
                        load(info["port"], args.requests, args.concurrency, keep_alive)
                    )
                    rate = len(lat) / (time.perf_counter() - t)
                    p50, p99 = median(lat) * 1000, percentile(lat, 99) * 1000
                rows.append(
                    [
                        f"{kind} ({'keep-alive' if keep_alive else 'new connection'})",
                        f"{info['import_ms']:.0f}",
                        f"{idle / 1024:.1f}",
                        f"{rss_kib(proc.pid) / 1024:.1f}",
                        f"{p50:.2f}",
                        f"{p99:.2f}",
                        f"{rate:.0f}",
                    ]
                )
        finally:
            proc.terminate()
            proc.wait()
    heads = ["server", "import ms", "RSS MiB", "RSS after", "p50 ms", "p99 ms", "req/s"]
    print(table(heads, rows))
    one, fifty = render_ms(1), render_ms(50)
    print(f"writing /metrics: {one:.2f} ms for 1 OME server, {fifty:.2f} ms for 50")
    print("headline: " + "; ".join(f"{r[0]} p50 {r[4]} ms, {r[6]} req/s" for r in rows))


if __name__ == "__main__":
    main()
