"""Parsers for ``omealert test``, ``record`` and ``replay`` (rule tests and backtests).

Only argparse is imported here so ``omealert --version`` stays fast; each handler imports
what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO


def add_parsers(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register the subcommands; each sets ``handler`` to a function ``(args, out) -> int``."""
    t = sub.add_parser(
        "test",
        help="run rule unit tests on simulated time (exit 0 pass, 1 fail, 3 invalid file)",
        description="Run rule unit tests. FILE is a test file, or a folder searched for "
        "*.test.yaml files. Exit 0 when all pass, 1 when any fails, 3 when a test file "
        "(or its config or recording) is invalid.",
    )
    t.add_argument("files", nargs="+", metavar="FILE")
    t.add_argument("--junit", metavar="OUT.xml", help="also write a JUnit XML report")
    t.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="REGEX",
        help="run only tests whose name matches (repeatable)",
    )
    t.set_defaults(handler=cmd_test)

    r = sub.add_parser(
        "record",
        help="record every answer of the configured servers, for replay and rule tests",
    )
    r.add_argument("-c", "--config", required=True, metavar="CONFIG")
    r.add_argument("--out", required=True, metavar="FILE", help="gzip JSON Lines, e.g. x.jsonl.gz")
    r.add_argument(
        "--duration",
        metavar="DURATION",
        help="the time the recording covers, first round to last, e.g. 10m (default: until Ctrl-C)",
    )
    r.add_argument(
        "--only-needed",
        action="store_true",
        help="fetch only what the config's rules read (default: every stats and stream info)",
    )
    r.set_defaults(handler=cmd_record)

    p = sub.add_parser(
        "replay",
        help="evaluate the rules over a recording; print transitions and messages (backtest)",
    )
    p.add_argument("-c", "--config", required=True, metavar="CONFIG")
    p.add_argument("file", metavar="FILE", help="a recording made by `omealert record`")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(handler=cmd_replay)


def _print_issues(exc: Any) -> None:
    for issue in exc.issues:
        print(str(issue), file=sys.stderr)


def cmd_test(args: argparse.Namespace, out: TextIO) -> int:
    import re
    from pathlib import Path

    from ..ruletest.report import junit_xml, run_paths
    from .exitcode import ExitCode

    patterns = []
    for text in args.run:
        try:
            patterns.append(re.compile(text))
        except re.error as exc:
            print(f"omealert test: invalid --run regex {text!r}: {exc}", file=sys.stderr)
            return ExitCode.USAGE
    summary = run_paths(args.files, patterns, out, sys.stderr)
    if args.junit:
        try:
            Path(args.junit).write_text(junit_xml(summary), encoding="utf-8")
        except OSError as exc:
            print(f"omealert test: cannot write {args.junit}: {exc.strerror}", file=sys.stderr)
            return ExitCode.UNKNOWN
    return summary.exit_code


def cmd_record(args: argparse.Namespace, out: TextIO) -> int:
    import asyncio
    import contextlib
    import signal

    from ..clock import SystemClock
    from ..config.load import load_config
    from ..durations import parse_duration
    from ..errors import ConfigError
    from ..recording.record import record

    duration: float | None = None
    if args.duration is not None:
        try:
            duration = parse_duration(args.duration)
        except ValueError as exc:
            print(f"omealert record: --duration: {exc}", file=sys.stderr)
            return 2
    try:
        settings = load_config(args.config)
    except ConfigError as exc:
        _print_issues(exc)
        return 1
    progress = sys.stderr if sys.stderr.isatty() else None

    async def run() -> Any:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        return await record(
            settings,
            args.out,
            clock=SystemClock(),
            duration_s=duration,
            stop=stop,
            progress=progress,
            only_needed=args.only_needed,
        )

    try:
        summary = asyncio.run(run())
    except OSError as exc:
        print(f"omealert record: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(
        f"recorded {summary.ticks} round(s), {summary.responses} answer(s) to {summary.path}"
        + (f"; {summary.errors} poll(s) failed" if summary.errors else ""),
        file=out,
    )
    return 0


def cmd_replay(args: argparse.Namespace, out: TextIO) -> int:
    import asyncio

    from ..config.load import load_config
    from ..errors import ConfigError
    from ..recording.replay import replay

    try:
        settings = load_config(args.config)
    except ConfigError as exc:
        _print_issues(exc)
        return 1
    asyncio.run(replay(settings, args.file, out, fmt=args.format))
    return 0
