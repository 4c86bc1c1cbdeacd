"""``omealert watch``: the long-running watcher, its signals, reloads and metrics endpoint.

Signals are caught from the first moment of ``watch`` (``catch_startup_signals``, called by
the CLI before it parses anything else), not only once the event loop runs: start-up
imports and loads for a second or two, and SIGHUP's default action would end the process
in that time. ``asyncio`` is imported inside the functions for the same reason: it alone
takes tens of milliseconds to import, and this module is imported first.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, TextIO

from ..durations import format_duration
from ..errors import ConfigError, StateError
from .exitcode import ExitCode

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable
    from types import FrameType

    from ..metrics import Metrics
    from ..model import Target
    from ..ome.events import EventBook, Heard
    from ..rules import Settings
    from ..web.listener import Listener
    from ..web.ome_alert import AlertReceiver

log = logging.getLogger("omealert")

#: How long SIGTERM waits for deliveries before exiting; what is left stays queued on disk.
SHUTDOWN_FLUSH_S = 5.0
#: How often the config file is checked for changes, and how long a change must stay put
#: before it is read (an editor or config tool may still be writing it).
FILE_CHECK_S = 1.0
FILE_SETTLE_S = 0.25

#: (mtime, size, inode): a rewrite in place and a rename over the file both change it.
FileSignature = tuple[int, int, int] | None


def parse_listen(text: str) -> tuple[str, int] | None:
    """``HOST:PORT``, ``:PORT``, ``PORT`` or ``[v6]:PORT``; no host means loopback."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or int(port) > 65535:
        return None
    return host or "127.0.0.1", int(port)


def raise_open_file_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit, as servers do: clients of ``--listen`` and
    the OME pools share the descriptors, and 1024 (the usual soft default) is soon reached."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:  # e.g. macOS refuses an unlimited soft limit
        log.debug("open-file limit stays at %d: %s", soft, exc)


class StartupSignals:
    """SIGTERM, SIGINT and SIGHUP caught while ``watch`` starts, until its loop takes over.

    A stop asked for during start-up is carried out once start-up is done: the watcher
    then exits 0 without a tick, instead of dying mid-import with a traceback. A SIGHUP
    before the config is read asks for nothing the coming load will not do anyway, so it
    is dropped; one that arrives once the file is being read (``arm``) may have been
    meant for an edit that load missed, and makes one reload after start-up.
    """

    def __init__(self) -> None:
        self.stop = False
        self.reload = False
        self._armed = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hangup)

    def arm(self) -> None:
        """The config file is about to be read: from now on a SIGHUP means "reload"."""
        self._armed = True

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop = True

    def _on_hangup(self, signum: int, frame: FrameType | None) -> None:
        if self._armed:
            self.reload = True

    def hand_over(
        self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event, reload: asyncio.Event
    ) -> None:
        """Install the loop's handlers, then replay what was caught before them.

        Python runs a pending signal's handler before ``signal.signal`` replaces it, so a
        signal arriving at any point is seen by exactly one of the two sets of handlers.
        """
        _loop_handlers(loop, stop, reload)
        if self.stop:
            log.info("stop requested during start-up; stopping")
            stop.set()
        if self.reload:
            log.info("SIGHUP during start-up; reloading the config")
            reload.set()


_startup: StartupSignals | None = None


def catch_startup_signals() -> StartupSignals:
    """Catch SIGTERM, SIGINT and SIGHUP until the watcher's loop runs (once per process)."""
    global _startup
    if _startup is None:
        _startup = StartupSignals()
        _startup.install()
    return _startup


def _loop_handlers(
    loop: asyncio.AbstractEventLoop, stop: asyncio.Event, reload: asyncio.Event
) -> None:
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload.set)


def cmd_watch(args: argparse.Namespace, out: TextIO) -> int:
    startup = catch_startup_signals()  # the CLI did so already; this covers other callers
    import asyncio

    from .. import logsetup
    from ..config.load import load_config

    logsetup.configure(args.log_format, args.log_level)
    raise_open_file_limit()
    listen = None
    if args.listen:
        listen = parse_listen(args.listen)
        if listen is None:
            log.error("--listen wants HOST:PORT, e.g. 127.0.0.1:9464")
            return ExitCode.USAGE
    from .fleet import for_shard, shard_option

    try:
        shard = shard_option(getattr(args, "shard", None))
    except ValueError as exc:
        log.error("--shard: %s", exc)
        return ExitCode.USAGE
    # The file as it is before it is read: an edit from now on is one to reload.
    seen = _signature(args.config)
    startup.arm()
    try:
        full = load_config(args.config)
    except ConfigError as exc:
        log.error("config invalid: %s", "; ".join(str(i) for i in exc.issues))
        return ExitCode.FAILURE
    settings = for_shard(full, shard)
    from .fleet import describe_shard

    if describe_shard(full, settings):
        log.info("%s", describe_shard(full, settings))
    code, unfinished = asyncio.run(
        _watch(
            settings,
            args.config,
            args.state,
            listen,
            startup=startup,
            seen=seen,
            shard=shard,
            target_metrics=getattr(args, "metrics_targets", "on") == "on",
        )
    )
    # Closing the loop put the default actions back; state is saved by now, so a late
    # SIGTERM or SIGHUP has nothing left to do and must not turn exit 0 into a kill.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    if unfinished:
        # apprise's worker threads cannot be interrupted, and the interpreter would wait for
        # them (up to the socket timeouts) before exiting. State is saved and the database
        # closed, and those messages are still queued on disk: nothing is lost by leaving now.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def event_keys(settings: Settings) -> dict[str, bytes]:
    """The servers whose OME Alert events are heard, with the key each one signs with."""
    return {
        s.name: s.ome_events_key.encode() for s in settings.servers if s.ome_events_key is not None
    }


def _hear_events(
    settings: Settings,
    server: Listener,
    metrics: Metrics,
    book: EventBook,
    look: Callable[[str, Target | None], None],
) -> AlertReceiver:
    """The ``/ome/alert`` routes on ``server`` (refusing every request while no key is set)."""
    from ..ome.events import stream_of
    from ..web.ome_alert import AlertReceiver

    def heard(event: Heard) -> None:
        book.record(event)
        look(event.server, stream_of(event))

    receiver = AlertReceiver(event_keys(settings), heard, metrics)
    receiver.install(server.app)
    return receiver


async def _watch(
    settings: Settings,
    config_path: str,
    state: str | None,
    listen: tuple[str, int] | None,
    *,
    startup: StartupSignals | None = None,
    seen: FileSignature = None,
    target_metrics: bool = True,
    shard: tuple[int, int] | None = None,
) -> tuple[int, int]:
    """Run until SIGTERM/SIGINT; returns (exit code, sends still in flight at exit).

    ``startup`` holds the signals caught before the loop ran; ``seen`` is the config
    file's signature from before ``settings`` were read from it (None: take it now).
    """
    import asyncio

    from ..clock import SystemClock
    from ..metrics import Metrics
    from ..notify.delivery import Deliverer
    from ..runner import Runner
    from ..state.db import DEFAULT_STATE_PATH
    from ..state.lock import RunLock
    from ..state.store import StateStore

    path = state or DEFAULT_STATE_PATH
    lock = RunLock(path)  # held until the process exits
    try:
        lock.acquire()
        store = StateStore(path, run_lock=lock)  # the one evaluating: checked, moved aside
    except StateError as exc:
        log.error("cannot use the state database: %s", exc)
        return ExitCode.FAILURE, 0
    metrics = Metrics()
    metrics.channels = tuple(settings.channels)
    from ..ome.events import EventBook

    events = EventBook()
    runner = Runner(
        settings,
        clock=SystemClock(),
        store=store,
        deliverer=Deliverer(),
        metrics=metrics,
        events=events,
        health=listen is not None,
    )
    from .fleet import attach, for_shard

    attach(runner, metrics, runner.clock)
    if runner.outbox is not None:
        box = runner.outbox
        metrics.delivery = lambda: (
            dict(box.counters.sent),
            dict(box.counters.failed_reasons),
            dict(box.counters.dropped),
            dict(box.counters.deferred),
        )
    server = None
    receiver = None
    if listen is None and event_keys(settings):
        log.warning("ome_events is configured but not --listen: OME's events will not be heard")
    if listen is not None:
        from ..web.listener import Listener

        server = Listener(metrics, listen[0], listen[1])
        receiver = _hear_events(settings, server, metrics, events, runner.look)
        from ..web.site import install_site

        install_site(server, runner, target_metrics=target_metrics)
        try:
            await server.start()
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            log.error("cannot serve /metrics on %s:%d: %s", listen[0], listen[1], reason)
            await runner.aclose()
            store.close()
            return ExitCode.FAILURE, 0
        log.info(
            "serving /metrics and /healthz%s on %s:%d",
            " and /ome/alert" if event_keys(settings) else "",
            server.host,
            server.port,
        )
        log.info("status page: http://%s/", _host_port(server.host, server.port))

    stop = asyncio.Event()
    reload_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    if startup is not None:
        startup.hand_over(loop, stop, reload_requested)
    else:
        _loop_handlers(loop, stop, reload_requested)
    # The file as it was when its config was last read: a SIGHUP after editing it and the
    # file check noticing the same edit must make one reload, not two.
    if seen is None:
        seen = _signature(config_path)

    async def watch_file() -> None:
        nonlocal seen
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FILE_CHECK_S)
            current = _signature(config_path)
            if current == seen or stop.is_set():
                continue
            # Let a save in progress finish, so a half-written file is not reported as broken.
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), FILE_SETTLE_S)
                settled = _signature(config_path)
                if settled == current or stop.is_set():
                    break
                current = settled
            if current != seen:
                seen = current
                log.info("config file changed; reloading")
                reload_requested.set()

    async def on_reload(r: Runner) -> None:
        nonlocal seen
        from ..config.load import load_config

        seen = _signature(config_path)
        try:
            new = for_shard(load_config(config_path), shard)
        except ConfigError as exc:
            metrics.reloaded(ok=False)
            log.error(
                "reload failed, keeping the running config: %s",
                "; ".join(str(i) for i in exc.issues),
            )
            return
        await r.reload(new)
        if receiver is not None:
            receiver.set_keys(event_keys(new))
        events.forget(frozenset(s.name for s in new.servers))
        metrics.channels = tuple(new.channels)
        metrics.reloaded(ok=True)
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
        await runner.watch(
            stop,
            reload_requested=reload_requested,
            on_reload=on_reload,
            flush_timeout=SHUTDOWN_FLUSH_S,
        )
    finally:
        stop.set()
        await watcher
        if server is not None:
            await server.stop()
        store.close()
    if runner.unfinished_sends:
        log.warning(
            "exiting without waiting for %d unfinished delivery attempt(s); "
            "their messages stay queued for the next start",
            runner.unfinished_sends,
        )
    log.info("stopped")
    return ExitCode.OK, runner.unfinished_sends


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _signature(path: str) -> FileSignature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
