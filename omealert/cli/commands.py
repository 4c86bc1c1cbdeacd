"""What each ``omealert`` subcommand does; ``cli/main.py`` parses, this module acts."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..durations import format_duration, parse_duration
from ..errors import ConfigError, OmealertError, StateError
from .exitcode import ExitCode
from .ome_events import events_by_target, history_lines, status_lines

if TYPE_CHECKING:
    from ..rules import Settings
    from ..state.records import Silence
    from ..state.store import StateStore
    from .check import CheckResult

log = logging.getLogger("omealert")


def dispatch(args: argparse.Namespace, out: TextIO) -> int:
    handlers = {
        "validate": cmd_validate,
        "check": cmd_check,
        "watch": _watch_command,
        "demo": cmd_demo,
        "status": cmd_status,
        "history": cmd_history,
        "silence": cmd_silence,
    }
    handler = handlers.get(args.command) or getattr(args, "handler", None)
    if handler is None:
        print(f"omealert: unknown command {args.command!r}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        return int(handler(args, out))
    except StateError as exc:
        print(f"omealert: {exc}", file=sys.stderr)
        return ExitCode.UNKNOWN if args.command == "check" else ExitCode.FAILURE
    except OmealertError as exc:
        print(f"omealert: {exc}", file=sys.stderr)
        return ExitCode.UNKNOWN if args.command == "check" else ExitCode.FAILURE


# -- validate ------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    from ..config.load import load_config

    failed = False
    rules = 0
    for path in args.files:
        try:
            settings = load_config(path)
        except ConfigError as exc:
            failed = True
            for issue in exc.issues:
                print(str(issue), file=sys.stderr)
            continue
        rules += len(settings.rules)
    if failed:
        return ExitCode.FAILURE
    print(f"{len(args.files)} file(s) valid, {rules} rule(s)", file=out)
    return ExitCode.OK


# -- check ---------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    from .check import CheckResult, format_json, format_text

    def show(result: CheckResult) -> int:
        print(format_json(result) if args.format == "json" else format_text(result), file=out)
        return result.exit_code

    def unknown(reason: str) -> int:
        return show(CheckResult("UNKNOWN", reason=reason))

    from ..config.load import load_config

    try:
        settings = load_config(args.config, check_urls=args.notify)
    except ConfigError as exc:
        for issue in exc.issues:
            print(str(issue), file=sys.stderr)
        if not exc.issues:
            return unknown("config invalid")
        more = f" (and {len(exc.issues) - 1} more on stderr)" if len(exc.issues) > 1 else ""
        return unknown(f"config invalid: {exc.issues[0]}{more}")
    if args.notify and not args.state:
        return unknown("--notify needs --state (to remember what was already sent)")
    from .fleet import for_shard

    settings = for_shard(settings, None)  # a sharded config: this shard's servers, as watch
    try:
        window = parse_duration(args.window)
    except ValueError as exc:
        return unknown(f"--window: {exc}")
    if window <= 0:
        return unknown("--window must be longer than 0s: rate() needs two polls apart")
    # The verdict on stdout already names every problem; log lines would only repeat them.
    logging.getLogger("omealert").setLevel(logging.CRITICAL)
    try:
        result = asyncio.run(_check(settings, args.state, args.notify, window))
    except StateError as exc:
        print(f"omealert check: {exc}", file=sys.stderr)
        return unknown(f"state database unusable: {exc}")
    return show(result)


async def _check(settings: Settings, state: str | None, notify: bool, window: float) -> CheckResult:
    from ..clock import SystemClock
    from ..runner import Runner
    from ..state.lock import RunLock
    from ..state.store import StateStore
    from .check import instant, run_check

    clock = SystemClock()
    lock = RunLock(state) if state else None
    if lock is not None:
        lock.acquire()  # a slow cron run overlapping the next must not notify twice
    store = StateStore(state, run_lock=lock) if state else None
    deliverer = None
    if notify:
        from ..notify.delivery import Deliverer

        deliverer = Deliverer()
    try:
        # History never outlives one run, so rate() & co. always read the short sampled
        # window (lenient), with or without state.
        runner = Runner(
            settings if state else instant(settings),
            clock=clock,
            store=store,
            deliverer=deliverer,
            notify=notify,
            lenient_history=True,
        )
        if notify:
            from .fleet import attach_for_check

            attach_for_check(runner, clock)
        try:
            result = await run_check(
                settings, clock=clock, runner=runner, stateful=bool(state), window_s=window
            )
            outbox = runner.outbox
            if outbox is not None:
                await outbox.flush(30.0)
                result.notifications = {
                    "sent": dict(outbox.counters.sent),
                    "failed": dict(outbox.counters.failed),
                    "dropped": dict(outbox.counters.dropped),
                    "queued": len(outbox),
                }
            if runner.fleet is not None:
                from .fleet import flush_for_check

                posted = await flush_for_check(runner.fleet, 30.0)
                result.notifications = {**(result.notifications or {}), **posted}
            if store is not None:  # state_retention holds for a cron job's file too
                from ..state.retention import Pruner

                pruner = Pruner(store, clock=clock, retention_s=lambda: settings.state_retention_s)
                try:
                    await pruner.prune_once()
                except StateError as exc:  # a prune failing is no verdict, but is said
                    log.warning("cannot prune the state database: %s", exc)
            return result
        finally:
            await runner.aclose()
    finally:
        if store is not None:
            store.close()
        if lock is not None:
            lock.release()


def _watch_command(args: argparse.Namespace, out: TextIO) -> int:
    from .watch import cmd_watch

    return cmd_watch(args, out)


# -- demo ----------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from .demo import run_demo

    if not args.speed >= 1:
        print("omealert demo: --speed must be a number >= 1", file=sys.stderr)
        return ExitCode.USAGE
    from .watch import parse_listen

    listen = parse_listen(args.listen) if args.listen else None
    if args.listen and listen is None:
        print("omealert demo: --listen wants HOST:PORT, e.g. 127.0.0.1:8080", file=sys.stderr)
        return ExitCode.USAGE
    heartbeat = bool(getattr(args, "heartbeat", False))
    return run_demo(speed=args.speed, out=out, hold=args.hold, listen=listen, heartbeat=heartbeat)


# -- status, history, silence ---------------------------------------------------------------


def _store(args: argparse.Namespace) -> StateStore:
    from ..state.db import DEFAULT_STATE_PATH
    from ..state.store import StateStore

    path = args.state or DEFAULT_STATE_PATH
    if not Path(path).exists():
        raise StateError(f"no state database at {path} (is a watcher running with --state?)")
    return StateStore(path)


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    from ..engine.lifecycle import mark, stored_view
    from ..engine.summary import health_of, read_health, server_lines
    from ..notify.planner import compile_silences
    from ..notify.windows import Quiet
    from ..state.store import StateStore

    store = _store(args)
    assert isinstance(store, StateStore)
    now = time.time()
    with store:
        records = [r for r in store.load_alerts() if r.state in ("pending", "firing")]
        silences = store.active_silences(now)
        acks = store.live_acks(now)
        no_value = _no_value_lines(store.get_meta("no_value"))
        no_value += version_lines(store.get_meta("ome_versions"))
        health = read_health(store.get_meta("health"))
        from .fleet import shard_lines

        no_value += shard_lines(store.get_meta("shard"))
        heard = store.get_meta("ome_events")
        lifecycle = stored_view(store.get_meta("flapping"), store.get_meta("dependencies"))
    no_value = server_lines(health) + no_value
    no_value += status_lines(heard)
    said = events_by_target(heard)
    # a silence stored under an older regex syntax is reported, not a traceback
    quiet = Quiet.build(None, now, compile_silences(silences), acks)
    rows = []
    for r in sorted(records, key=lambda r: (r.state != "firing", r.rule, r.target)):
        why = quiet.view(r.rule, r.target, r.fired_at, r.labels)
        since = now - r.active_since if r.active_since else 0.0
        rows.append(
            {
                "state": r.state,
                "health": health_of(health, r.target),
                "rule": r.rule,
                "target": r.target,
                "severity": r.labels.get("severity", ""),
                "value": r.value,
                "since": format_duration(since),
                "silenced": why["silence"] is not None,
                "summary": r.summary,
                **why,
                "ome_events": said.get(r.target, []),
                **lifecycle.fields(r.rule, r.target),
            }
        )
    rows += lifecycle.between_flaps({(r.rule, r.target) for r in records})
    if args.format == "json":
        print(json.dumps(rows, default=str), file=out)
        return ExitCode.OK
    no_value = [*_maintenance_lines(silences), *no_value]
    if not rows:
        print("no pending or firing alerts", file=out)
        for line in no_value:
            print(line, file=out)
        return ExitCode.OK
    headers = ["STATE", "SEVERITY", "RULE", "TARGET", "HEALTH", "VALUE", "FOR", "SILENCED", "ACK"]
    table = [
        [
            str(row["state"]),
            str(row["severity"]),
            str(row["rule"]),
            str(row["target"]),
            str(row["health"]) or "–",
            _fmt_value(row["value"]),
            str(row["since"]),
            (row["silence"]["kind"].replace("silence", "yes") if row["silence"] else "")
            + mark(row),
            f"{row['ack']['by']}: {row['ack']['comment']}".rstrip(": ") if row["ack"] else "",
        ]
        for row in rows
    ]
    if not any(row["ack"] for row in rows):  # the column only when someone acknowledged
        headers, table = headers[:-1], [r[:-1] for r in table]
    _print_table(headers, table, out)
    for line in no_value:
        print(line, file=out)
    return ExitCode.OK


def _maintenance_lines(silences: list[Silence]) -> list[str]:
    """Each maintenance in force, with why: what ``maintenance add --comment`` said."""
    return [
        f"maintenance {s.id} of {', '.join(s.matchers)} until "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(s.ends_at))}Z"
        f"{' by ' + s.created_by if s.created_by else ''}: {s.comment}"
        for s in silences
        if s.kind == "maintenance"
    ]


def version_lines(raw: str | None) -> list[str]:
    """Each server's OME release as the watcher last learnt it, with what that means."""
    from ..ome.version import summary

    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return []
    if not isinstance(data, dict):
        return []
    return [summary(str(server), str(v)) for server, v in sorted(data.items())]


def _no_value_lines(raw: str | None) -> list[str]:
    """Rules that could not compute a value for some targets in the last tick."""
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return []
    lines = []
    for rule, info in sorted(data.items()):
        examples = ", ".join(info.get("examples", []))
        count = info.get("count", 0)
        lines.append(f"no value: {rule} could not be computed for {count} target(s): {examples}")
    return lines


def cmd_history(args: argparse.Namespace, out: TextIO) -> int:
    from ..state.store import StateStore

    try:
        since = parse_duration(args.since)
    except ValueError as exc:
        print(f"omealert history: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    store = _store(args)
    assert isinstance(store, StateStore)
    start = time.time() - since
    with store:
        entries = store.history(start)
        lines = history_lines(store.get_meta("ome_events"), start)
    for e in entries:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.at))
        where = f" → {e.channel}" if e.channel else ""
        targets = ", ".join(e.targets[:3]) + (" …" if len(e.targets) > 3 else "")
        lines.append((e.at, f"{stamp}Z {e.kind:<10} {e.rule} {targets}{where}: {e.detail}"))
    if not lines:
        print(f"nothing in the last {format_duration(since)}", file=out)
    for _, line in sorted(lines, key=lambda pair: pair[0]):
        print(line, file=out)
    return ExitCode.OK


#: the longest silence: the end stays a date every platform's time_t and datetime can hold
_MAX_SILENCE_S = 100 * 365 * 86400


def cmd_silence(args: argparse.Namespace, out: TextIO) -> int:
    from ..rules import Matcher
    from ..state.db import DEFAULT_STATE_PATH
    from ..state.store import StateStore

    if args.silence_command is None:
        print("omealert silence: say add, list or expire", file=sys.stderr)
        return ExitCode.USAGE
    now = time.time()
    path = args.state or DEFAULT_STATE_PATH
    if args.silence_command == "add":
        try:
            matchers = [str(Matcher.parse(m)) for m in args.matcher]
            duration = parse_duration(args.duration)
        except ValueError as exc:
            print(f"omealert silence add: {exc}", file=sys.stderr)
            return ExitCode.USAGE
        if duration <= 0:
            print("omealert silence add: --for must be longer than 0s", file=sys.stderr)
            return ExitCode.USAGE
        if not duration <= _MAX_SILENCE_S:  # also NaN and inf: 9…9s past float's range
            print("omealert silence add: --for must be at most 100 years", file=sys.stderr)
            return ExitCode.USAGE
        author = args.author or os.environ.get("USER", "")
        with StateStore(path) as store:
            silence = store.add_silence(matchers, now, now + duration, author, args.comment, now)
        until = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(silence.ends_at))
        print(f"silenced {', '.join(matchers)} until {until}Z", file=out)
        print(silence.id, file=out)
        return ExitCode.OK
    store = _store(args)
    assert isinstance(store, StateStore)
    with store:
        if args.silence_command == "list":
            silences = store.list_silences(now, include_expired=args.all)
            if not silences:
                print("no silences", file=out)
            rows = []
            for s in silences:
                ended = s.expired_at is not None or s.ends_at <= now
                rows.append(
                    [
                        s.id,
                        "expired" if ended else "active",
                        ", ".join(s.matchers),
                        time.strftime("%Y-%m-%d %H:%M", time.gmtime(s.ends_at)) + "Z",
                        s.created_by,
                        s.comment,
                    ]
                )
            if rows:
                _print_table(["ID", "STATE", "MATCHERS", "ENDS", "BY", "COMMENT"], rows, out)
            return ExitCode.OK
        if store.expire_silence(args.id, now):
            print(f"expired {args.id}", file=out)
            return ExitCode.OK
    print(f"omealert silence expire: no active silence {args.id!r}", file=sys.stderr)
    return ExitCode.FAILURE


def _fmt_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _print_table(headers: list[str], rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(), file=out)
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip(), file=out)
