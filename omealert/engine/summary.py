"""The health states as the state file keeps them for ``omealert status``.

``status`` runs in another process and reads only the state file: each tick the watcher
writes its servers' and apps' states, and the streams that are not healthy (at most
``MAX_LISTED``, worst first: the page has the rest), as one JSON value.
"""

from __future__ import annotations

import json
from typing import Any

from .health import RANK, Health, HealthBook, TargetHealth

MAX_LISTED = 1000


def _row(h: TargetHealth) -> dict[str, Any]:
    row: dict[str, Any] = {"state": h.state.value, "reason": h.reason, "since": h.since}
    if h.counts:
        row["counts"] = h.counts
    return row


def health_json(book: HealthBook) -> str:
    """Servers, apps, and the unhealthy streams by key, as ``status`` reads them back."""
    problems = [h for h in book.streams.values() if h.state is not Health.HEALTHY]
    problems.sort(key=lambda h: (-RANK[h.state], h.target))
    data = {
        "servers": {name: _row(h) for name, h in sorted(book.servers.items())},
        "apps": {h.target.key: _row(h) for h in book.apps.values()},
        "streams": {h.target.key: _row(h) for h in problems[:MAX_LISTED]},
        "streams_total": len(book.streams),
    }
    return json.dumps(data, sort_keys=True)


def read_health(raw: str | None) -> dict[str, Any]:
    """What ``health_json`` wrote; an empty or unreadable value reads as nothing known."""
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def health_of(data: dict[str, Any], key: str) -> str:
    """The health ``status`` shows for an alert's target key: the stream's, the app's, the
    server's; a listed stream not among the unhealthy ones is healthy; "" if not known."""
    from ..model import Target

    target = Target.from_key(key)
    base = Target(target.server, target.vhost, target.app, target.stream)
    for table, at in (("streams", base.key), ("apps", base.key), ("servers", base.server)):
        row = data.get(table, {}).get(at) if isinstance(data.get(table), dict) else None
        if isinstance(row, dict):
            return str(row.get("state", ""))
    server = (
        data.get("servers", {}).get(base.server) if isinstance(data.get("servers"), dict) else None
    )
    if base.stream is not None and isinstance(server, dict) and server.get("state") != "unknown":
        return Health.HEALTHY.value
    return ""


def server_lines(data: dict[str, Any]) -> list[str]:
    """``health: origin stalled (1 of 120 streams stalled)``, one per server."""
    servers = data.get("servers")
    if not isinstance(servers, dict):
        return []
    lines = []
    for name, row in sorted(servers.items()):
        if isinstance(row, dict):
            reason = f" ({row['reason']})" if row.get("reason") else ""
            lines.append(f"health: {name} {row.get('state', '')}{reason}")
    return lines
