"""OME's last Alert events per target, as ``status`` and ``history`` show them.

The watcher saves them in the state file (``ome_events`` meta, written by the runner from
``EventBook.shown``): the last 3 events of each of the 256 sources per server heard from
most recently. A file written by an older watcher, or damaged, shows none.
"""

from __future__ import annotations

import json
import time

__all__ = ["events_by_target", "history_lines", "status_lines"]

#: sources listed by the text ``status`` (the JSON output has every one of them)
STATUS_TARGETS = 20


def _rows(raw: str | None) -> list[tuple[str, list[tuple[float, str, list[str]]]]]:
    try:
        data = json.loads(raw) if raw else []
    except ValueError:
        return []
    out = []
    for row in data if isinstance(data, list) else ():
        if not isinstance(row, dict) or not isinstance(row.get("target"), str):
            continue
        events = []
        for e in row.get("events") or ():
            if isinstance(e, dict) and isinstance(e.get("at"), int | float):
                codes = [str(c) for c in e.get("codes") or ()]
                events.append((float(e["at"]), str(e.get("type", "")), codes))
        out.append((row["target"], events))
    return out


def _stamp(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at)) + "Z"


def events_by_target(raw: str | None) -> dict[str, list[dict[str, object]]]:
    """target key → its last events (oldest first), for ``status --format json``."""
    return {
        target: [{"at": at, "type": kind, "codes": codes} for at, kind, codes in events]
        for target, events in _rows(raw)
    }


def status_lines(raw: str | None) -> list[str]:
    """A few lines: the targets OME spoke of most recently, each with its last events."""
    rows = _rows(raw)
    if not rows:
        return []
    lines = ["last OME events (newest target first):"]
    for target, events in rows[:STATUS_TARGETS]:
        said = "; ".join(f"{_stamp(at)} {kind} {','.join(codes)}" for at, kind, codes in events)
        lines.append(f"  {target}: {said}")
    if len(rows) > STATUS_TARGETS:
        lines.append(f"  … and {len(rows) - STATUS_TARGETS} more target(s) (--format json)")
    return lines


def history_lines(raw: str | None, since: float) -> list[tuple[float, str]]:
    """(time, line) of each saved event since ``since``, to merge into ``history``."""
    return [
        (at, f"{_stamp(at)} {'ome-event':<10} {kind} {target}: {','.join(codes)}")
        for target, events in _rows(raw)
        for at, kind, codes in events
        if at >= since
    ]
