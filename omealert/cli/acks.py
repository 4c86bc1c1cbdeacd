"""``omealert ack`` and ``omealert maintenance``: writes to the state file a watcher reads.

Both work while a watcher runs, as ``silence`` does: they add rows to the state file and
the watcher reads them at its next tick. An ack is bound to the alerts firing when it is
made (see ``state.acks``), so ``ack`` refuses a matcher that matches none of them.
A maintenance is a silence that says why (its comment, required) in ``status``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, TextIO

from ..durations import format_duration, parse_duration
from .exitcode import ExitCode

__all__ = ["add_parsers", "cmd_ack", "cmd_maintenance"]

#: the longest ack or maintenance, as for silences: the end stays a representable date
_MAX_S = 100 * 365 * 86400


def add_parsers(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``ack`` and ``maintenance``; each sets ``handler``."""

    def state(p: argparse.ArgumentParser, default: object = None) -> None:
        p.add_argument("--state", metavar="PATH", default=default, help="state database")

    def matchers(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--matcher",
            "-m",
            action="append",
            required=True,
            help="label matcher: name=value, name!=value, name=~regex, name!~regex",
        )

    a = sub.add_parser(
        "ack",
        help="acknowledge firing alerts: no repeats until they resolve (or --expire)",
        description="Acknowledge the alerts firing now that match every --matcher. They send "
        "no repeats; their resolve is still sent. 'ack list' and 'ack remove ID' manage them.",
    )
    asub = a.add_subparsers(dest="ack_command", metavar="ACTION", parser_class=parser_class)
    a.add_argument("--matcher", "-m", action="append", help="label matcher (repeatable)")
    a.add_argument("--rule", help="only alerts of this rule")
    a.add_argument("--comment", default="", help="what is being done about it")
    a.add_argument("--expire", metavar="DURATION", help="lift the ack after this long")
    a.add_argument("--by", default="", help="who acknowledges (default: $USER)")
    a.add_argument("--state", metavar="PATH", help="state database")
    al = asub.add_parser("list", help="list acknowledgements")
    al.add_argument("--all", action="store_true", help="include lifted and resolved ones")
    # SUPPRESS: an action's default must not overwrite a --state given before it
    state(al, argparse.SUPPRESS)
    ar = asub.add_parser("remove", help="lift an acknowledgement now")
    ar.add_argument("id")
    state(ar, argparse.SUPPRESS)
    a.set_defaults(handler=cmd_ack)

    m = sub.add_parser("maintenance", help="one-off maintenance: a silence that says why")
    msub = m.add_subparsers(dest="maintenance_command", metavar="ACTION", parser_class=parser_class)
    ma = msub.add_parser("add", help="start a maintenance now; prints its ID last")
    matchers(ma)
    ma.add_argument("--for", dest="duration", required=True, help="how long (duration)")
    ma.add_argument("--comment", required=True, help="why: shown by status and in resolves")
    ma.add_argument("--by", default="", help="who (default: $USER)")
    state(ma)
    ml = msub.add_parser("list", help="list maintenances")
    ml.add_argument("--all", action="store_true", help="include ended ones")
    state(ml)
    mr = msub.add_parser("remove", help="end a maintenance now")
    mr.add_argument("id")
    state(mr)
    m.set_defaults(handler=cmd_maintenance)


def _when(t: float | None) -> str:
    return "" if t is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(t)) + "Z"


def _duration(text: str, option: str, command: str) -> float | str:
    """Seconds, or the message for a usage error."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        return f"omealert {command}: {option}: {exc}"
    if seconds <= 0:
        return f"omealert {command}: {option} must be longer than 0s"
    if not seconds <= _MAX_S:
        return f"omealert {command}: {option} must be at most 100 years"
    return seconds


def cmd_ack(args: argparse.Namespace, out: TextIO) -> int:
    from .commands import _print_table, _store

    now = time.time()
    command = args.ack_command
    if command is None:
        return _ack_add(args, out, now)
    with _store(args) as store:
        if command == "remove":
            if store.remove_ack(args.id, now):
                print(f"removed {args.id}", file=out)
                return ExitCode.OK
            print(f"omealert ack remove: no active acknowledgement {args.id!r}", file=sys.stderr)
            return ExitCode.FAILURE
        firing = {
            (r.rule, r.target, r.fired_at) for r in store.load_alerts() if r.state == "firing"
        }
        acks = store.list_acks()
    rows = []
    for ack in acks:
        still = [e for e in ack.alerts if e in firing]
        if ack.removed_at is not None:
            state = "removed"
        elif ack.expires_at is not None and ack.expires_at <= now:
            state = "expired"
        else:
            state = "active" if still else "resolved"
        if state != "active" and not args.all:
            continue
        shown = still or ack.alerts
        alerts = ", ".join(f"{r} {t}" for r, t, _ in shown[:3])
        alerts += f" (+{len(shown) - 3})" if len(shown) > 3 else ""
        rows.append([ack.id, state, alerts, ack.created_by, _when(ack.expires_at), ack.comment])
    if not rows:
        print("no acknowledgements", file=out)
        return ExitCode.OK
    _print_table(["ID", "STATE", "ALERTS", "BY", "EXPIRES", "COMMENT"], rows, out)
    return ExitCode.OK


def _ack_add(args: argparse.Namespace, out: TextIO, now: float) -> int:
    from ..rules import Matcher, matches_all
    from .commands import _store

    if not args.matcher:
        print("omealert ack: say --matcher (which alerts), or list / remove ID", file=sys.stderr)
        return ExitCode.USAGE
    try:
        parsed = tuple(Matcher.parse(m) for m in args.matcher)
    except ValueError as exc:
        print(f"omealert ack: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    expires_at = None
    if args.expire is not None:
        seconds = _duration(args.expire, "--expire", "ack")
        if isinstance(seconds, str):
            print(seconds, file=sys.stderr)
            return ExitCode.USAGE
        expires_at = now + seconds
    texts = [str(m) for m in parsed]
    with _store(args) as store:
        episodes = [
            (r.rule, r.target, r.fired_at)
            for r in store.load_alerts()
            if r.state == "firing"
            and r.fired_at is not None
            and (args.rule is None or r.rule == args.rule)
            and matches_all(parsed, r.labels)
        ]
        if not episodes:
            scope = f" of rule {args.rule}" if args.rule else ""
            print(
                f"omealert ack: no firing alert{scope} matches {', '.join(texts)} "
                "(omealert status lists them); nothing acknowledged",
                file=sys.stderr,
            )
            return ExitCode.FAILURE
        by = args.by or os.environ.get("USER", "")
        ack = store.add_ack(
            matchers=texts,
            rule=args.rule or "",
            alerts=[(r, t, f) for r, t, f in episodes if f is not None],
            created_by=by,
            comment=args.comment,
            now=now,
            expires_at=expires_at,
        )
    until = f" for {format_duration(expires_at - now)}" if expires_at is not None else ""
    print(f"acknowledged {len(ack.alerts)} firing alert(s){until}:", file=out)
    for rule, target, _ in ack.alerts:
        print(f"  {rule} {target}", file=out)
    print(ack.id, file=out)
    return ExitCode.OK


def cmd_maintenance(args: argparse.Namespace, out: TextIO) -> int:
    from ..rules import Matcher
    from ..state.db import DEFAULT_STATE_PATH
    from ..state.store import StateStore
    from .commands import _print_table, _store

    command = args.maintenance_command
    now = time.time()
    if command is None:
        print("omealert maintenance: say add, list or remove", file=sys.stderr)
        return ExitCode.USAGE
    if command == "add":
        try:
            texts = [str(Matcher.parse(m)) for m in args.matcher]
        except ValueError as exc:
            print(f"omealert maintenance add: {exc}", file=sys.stderr)
            return ExitCode.USAGE
        seconds = _duration(args.duration, "--for", "maintenance add")
        if isinstance(seconds, str):
            print(seconds, file=sys.stderr)
            return ExitCode.USAGE
        if not args.comment.strip():
            print("omealert maintenance add: --comment must say why", file=sys.stderr)
            return ExitCode.USAGE
        by = args.by or os.environ.get("USER", "")
        path = args.state or DEFAULT_STATE_PATH
        with StateStore(path) as store:
            s = store.add_silence(
                texts, now, now + seconds, by, args.comment, now, kind="maintenance"
            )
        print(f"maintenance of {', '.join(texts)} until {_when(s.ends_at)}: {s.comment}", file=out)
        print(s.id, file=out)
        return ExitCode.OK
    with _store(args) as store:
        found = [
            s
            for s in store.list_silences(now, include_expired=command == "list" and args.all)
            if s.kind == "maintenance"
        ]
        if command == "remove":
            prefix = args.id.strip().lower()
            ids = [s.id for s in found if prefix and s.id.startswith(prefix)]
            if len(ids) == 1 and store.expire_silence(ids[0], now):
                print(f"ended {ids[0]}", file=out)
                return ExitCode.OK
            why = "is ambiguous" if len(ids) > 1 else "matches no active maintenance"
            print(f"omealert maintenance remove: {args.id!r} {why}", file=sys.stderr)
            return ExitCode.FAILURE
    if not found:
        print("no maintenance", file=out)
        return ExitCode.OK
    rows = [
        [
            s.id,
            "ended" if s.expired_at is not None or s.ends_at <= now else "active",
            ", ".join(s.matchers),
            _when(s.ends_at),
            s.created_by,
            s.comment,
        ]
        for s in found
    ]
    _print_table(["ID", "STATE", "MATCHERS", "ENDS", "BY", "COMMENT"], rows, out)
    return ExitCode.OK
