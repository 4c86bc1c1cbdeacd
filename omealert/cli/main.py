"""The ``omealert`` command: a thin shell over the library that returns an exit code.

This is the only module that prints or chooses an exit code. Heavy imports (pydantic,
httpx, apprise) happen inside the commands, so ``omealert --version`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from .. import __version__
from .exitcode import ExitCode


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage; `check` needs 3 (2 is CRITICAL), so errors raise instead."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="omealert", description="Alerting rules engine for OvenMediaEngine.")
    p.add_argument("--version", action="version", version=f"omealert {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    v = sub.add_parser("validate", help="check config files; print every error as FILE:LINE:COL")
    v.add_argument("files", nargs="+", metavar="FILE")

    def state_arg(sp: argparse.ArgumentParser, help_text: str) -> None:
        sp.add_argument("--state", metavar="PATH", help=help_text)

    c = sub.add_parser("check", help="poll once and exit 0/1/2/3 like a Nagios plugin")
    c.add_argument("-c", "--config", required=True, metavar="CONFIG")
    state_arg(c, "share state between runs (full `for`, repeat and resolved semantics)")
    c.add_argument("--format", choices=("text", "json"), default="text")
    c.add_argument("--notify", action="store_true", help="send notifications (needs --state)")
    c.add_argument(
        "--window",
        default="5s",
        help="rules using rate/delta/*_over: poll twice this far apart (default 5s)",
    )

    w = sub.add_parser("watch", help="poll every interval, alert, notify, persist")
    w.add_argument("-c", "--config", required=True, metavar="CONFIG")
    state_arg(w, "state database (default: $OMEALERT_STATE or ~/.local/state/omealert/state.db)")
    w.add_argument(
        "--listen", metavar="HOST:PORT", help="serve the status page, /api/v1, /metrics, /healthz"
    )
    w.add_argument(
        "--metrics-targets",
        choices=("on", "off"),
        default="on",
        help="omealert_target_health: one /metrics series per stream (default on)",
    )
    w.add_argument("--log-format", choices=("text", "json"), default="text")
    w.add_argument("--log-level", default="INFO")
    w.add_argument(
        "--shard", metavar="K/N", help="poll only shard K of N of the fleet (overrides shard:)"
    )

    d = sub.add_parser("demo", help="a one-minute story against the built-in OME simulator")
    d.add_argument("--speed", type=float, default=1.0, help="run the story N times faster")
    d.add_argument("--hold", action="store_true", help="keep running (and the page open) after")
    d.add_argument("--listen", metavar="HOST:PORT", help="the status page (default: a free port)")
    d.add_argument(
        "--heartbeat", action="store_true", help="also show the dead man's switch's pings"
    )

    s = sub.add_parser("status", help="current alerts (pending, firing, silenced)")
    state_arg(s, "state database")
    s.add_argument("--format", choices=("text", "json"), default="text")

    h = sub.add_parser("history", help="transitions and deliveries")
    state_arg(h, "state database")
    h.add_argument("--since", default="1h", help="how far back (duration), default 1h")

    si = sub.add_parser("silence", help="mute notifications for matching alerts")
    ssub = si.add_subparsers(dest="silence_command", metavar="ACTION", parser_class=_Parser)
    sa = ssub.add_parser("add", help="add a silence; prints its ID last")
    sa.add_argument(
        "--matcher",
        "-m",
        action="append",
        required=True,
        help="label matcher: name=value, name!=value, name=~regex, name!~regex",
    )
    sa.add_argument("--for", dest="duration", default="1h", help="how long (duration)")
    sa.add_argument("--comment", default="")
    sa.add_argument("--author", default="")
    state_arg(sa, "state database")
    sl = ssub.add_parser("list", help="list silences")
    sl.add_argument("--all", action="store_true", help="include expired ones")
    state_arg(sl, "state database")
    se = ssub.add_parser("expire", help="end a silence now")
    se.add_argument("id")
    state_arg(se, "state database")
    from .acks import add_parsers as add_ack_parsers
    from .test import add_parsers

    add_parsers(sub, _Parser)
    add_ack_parsers(sub, _Parser)
    return p


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args_list = list(sys.argv[1:] if argv is None else argv)
    if _command_of(args_list) == "watch" and argv is None:
        # Before anything slow: a SIGHUP in the seconds of start-up must not end the
        # process. Only as the process's entry point: callers passing argv keep theirs.
        from .watch import catch_startup_signals

        catch_startup_signals()
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        print("run 'omealert --help' for usage", file=sys.stderr)
        if _command_of(args_list) != "check":
            return ExitCode.USAGE
        # A monitoring system shows a plugin's stdout: say UNKNOWN there too, not just exit 3.
        from .check import CheckResult, format_json, format_text

        detail = str(exc).split(": error: ", 1)[-1]
        result = CheckResult("UNKNOWN", reason=f"usage error: {detail}")
        as_json = "json" in _option_values(args_list, "--format")
        print(format_json(result) if as_json else format_text(result), file=out)
        return ExitCode.UNKNOWN
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(out)
        return ExitCode.USAGE
    from . import commands

    try:
        return int(commands.dispatch(args, out))
    except KeyboardInterrupt:
        return 130


def _command_of(args: Sequence[str]) -> str | None:
    """The subcommand named on a command line argparse refused (options before it skipped)."""
    for arg in args:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


def _option_values(args: Sequence[str], option: str) -> list[str]:
    values = []
    for i, arg in enumerate(args):
        if arg == option and i + 1 < len(args):
            values.append(args[i + 1])
        elif arg.startswith(option + "="):
            values.append(arg.split("=", 1)[1])
    return values


if __name__ == "__main__":
    raise SystemExit(main())
