"""How numbers and times read on the page: Jinja filters, no state."""

from __future__ import annotations

import time
from typing import Any

from markupsafe import Markup, escape

from ..durations import format_duration

#: a word and an icon with each state, so colour is never the only signal
ICONS = {
    "healthy": "✔",
    "degraded": "▲",
    "failing": "✖",
    "stalled": "‖",
    "offline": "○",
    "unknown": "?",
}


def age(seconds: float | None) -> str:
    """``42s``, ``3m``, ``2h5m``, ``3d``: how long ago, or for how long."""
    if seconds is None:
        return "–"
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h{s % 3600 // 60}m"
    return f"{s // 86400}d"


def bitrate(bits: Any) -> str:
    """Bits per second as ``850 kb/s`` or ``2.4 Mb/s``."""
    if not isinstance(bits, int | float) or isinstance(bits, bool):
        return "–"
    for unit, size in (("Gb/s", 1e9), ("Mb/s", 1e6), ("kb/s", 1e3)):
        if bits >= size:
            return f"{bits / size:.1f} {unit}"
    return f"{bits:.0f} b/s"


def count(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "–"
    return f"{value:,.0f}"


def utc(at: float | None) -> str:
    """``2026-01-01 12:03:10Z``."""
    if at is None:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(at))


def shown(value: Any) -> str:
    """An alert's value as text: numbers short, the rest as they are (escaped by Jinja)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "–" if value is None else str(value)


def path(text: str) -> Markup:
    """``a/b/c`` escaped, with a line-break chance after each ``/`` (narrow screens)."""
    return Markup("/<wbr>").join(escape(part) for part in str(text).split("/"))


FILTERS = {
    "path": path,
    "duration": format_duration,
    "age": age,
    "bitrate": bitrate,
    "count": count,
    "utc": utc,
    "shown": shown,
}
