"""``omealert watch``: the long-running watcher, its signals, reloads and metrics endpoint."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from typing import TYPE_CHECKING, TextIO

from .cli import ExitCode
from .durations import format_duration
from .errors import ConfigError

if TYPE_CHECKING:
    from .rules import Settings

log = logging.getLogger("omealert")


def cmd_watch(args: argparse.Namespace, out: TextIO) -> int:
    from . import logsetup
    from .config import load_config

    logsetup.configure(args.log_format, args.log_level)
    try:
        settings = load_config(args.config)
    except ConfigError as exc:
        log.error("config invalid: %s", "; ".join(str(i) for i in exc.issues))
        return ExitCode.FAILURE
    listen = None
    if args.listen:
        host, _, port = args.listen.rpartition(":")
        if not port.isdigit():
            log.error("--listen wants HOST:PORT, e.g. 127.0.0.1:9464")
            return ExitCode.USAGE
        listen = (host or "127.0.0.1", int(port))
    return asyncio.run(_watch(settings, args.config, args.state, listen))


async def _watch(
    settings: Settings, config_path: str, state: str | None, listen: tuple[str, int] | None
) -> int:
    from .clock import SystemClock
    from .config import load_config
    from .delivery import Deliverer
    from .metrics import Metrics, MetricsServer
    from .runner import Runner
    from .state import DEFAULT_STATE_PATH, StateStore

    path = state or DEFAULT_STATE_PATH
    store = StateStore(path)
    metrics = Metrics()
    runner = Runner(
        settings, clock=SystemClock(), store=store, deliverer=Deliverer(), metrics=metrics
    )
    if runner.outbox is not None:
        box = runner.outbox
        metrics.delivery = lambda: (
            dict(box.counters.sent),
            dict(box.counters.failed),
            dict(box.counters.dropped),
        )
    stop = asyncio.Event()
    reload_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload_requested.set)
    server = None
    if listen is not None:
        server = MetricsServer(metrics, listen[0], listen[1])
        await server.start()
        log.info("serving /metrics and /healthz on %s:%d", server.host, server.port)
    mtime = _mtime(config_path)

    async def watch_file() -> None:
        nonlocal mtime
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            current = _mtime(config_path)
            if current != mtime:
                mtime = current
                reload_requested.set()

    async def on_reload(r: Runner) -> None:
        try:
            new = load_config(config_path)
        except ConfigError as exc:
            metrics.reloads_failed += 1
            metrics.last_reload_ok = 0
            log.error(
                "reload failed, keeping the running config: %s",
                "; ".join(str(i) for i in exc.issues),
            )
            return
        await r.reload(new)
        metrics.reloads_ok += 1
        metrics.last_reload_ok = 1
        log.info("config reloaded: %d rule(s), %d server(s)", len(new.rules), len(new.servers))

    watcher = asyncio.create_task(watch_file())
    log.info(
        "watching %d server(s) with %d rule(s) every %s; state in %s",
        len(settings.servers),
        len(settings.rules),
        format_duration(settings.interval_s),
        path,
    )
    try:
        await runner.watch(stop, reload_requested=reload_requested, on_reload=on_reload)
    finally:
        stop.set()
        await watcher
        if server is not None:
            await server.stop()
        store.close()
    log.info("stopped")
    return ExitCode.OK


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None
