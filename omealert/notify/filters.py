"""The number filters templates use, and the number types that print through them.

Filters (all accept ints, floats, numeric strings and, for ``timestamp``, datetimes; a value
that is not a number comes back unchanged as text):

==============  ======================================  =================================
filter          example                                 Prometheus equivalent
==============  ======================================  =================================
duration        ``3723 → 1h 2m 3s``                     humanizeDuration
humanize        ``1234567 → 1.235M``, ``0.012 → 12m``   humanize
humanize1024    ``1048576 → 1Mi``, ``1536 → 1.5ki``     humanize1024
percentage      ``0.256 → 25.6%``                       humanizePercentage
timestamp       ``1767225609 → 2026-01-01 00:00:09 UTC`` (humanizeTimestamp, simpler form)
bytes           ``1500000 → 1.5 MB`` (decimal units)    —
bitrate         ``2500000 → 2.5 Mbps``                  —
==============  ======================================  =================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from ..durations import format_duration

__all__ = [
    "FILTERS",
    "Epoch",
    "Seconds",
    "as_float",
    "bitrate",
    "bytes_",
    "duration",
    "g4",
    "humanize",
    "humanize1024",
    "percentage",
    "timestamp",
]


def as_float(value: Any) -> float | None:
    """The number in ``value``, or None when it is not one (so filters can pass it through)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def g4(v: float) -> str:
    """Go's ``%.4g``: what Prometheus prints, including ``+Inf``/``-Inf``/``NaN``."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return f"{v:.4g}"


def humanize(value: Any) -> str:
    """SI prefixes with four significant digits, as Prometheus' ``humanize``.

    ``1234567 → 1.235M``, ``0.12 → 120m``, ``0.012 → 12m``, ``0 → 0``. Values of at least 1
    use k M G T P E Z Y, smaller ones m u n p f a z y.
    """
    v = as_float(value)
    if v is None:
        return str(value)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return g4(v)
    prefix = ""
    if abs(v) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
    else:
        for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
            if abs(v) >= 1:
                break
            prefix, v = p, v * 1000
    return g4(v) + prefix


def humanize1024(value: Any) -> str:
    """Binary prefixes, as Prometheus' ``humanize1024``: ``1048576 → 1Mi``, ``1536 → 1.5ki``.

    Prometheus spells the first prefix ``ki`` (lower case) and leaves values with
    ``|v| <= 1`` alone (``0.12 → 0.12``); both are kept so alerts read the same in both tools.
    """
    v = as_float(value)
    if v is None:
        return str(value)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix, v = p, v / 1024
    return g4(v) + prefix


def percentage(value: Any) -> str:
    """A ratio as a percentage with four significant digits: ``0.256 → 25.6%``."""
    v = as_float(value)
    if v is None:
        return str(value)
    return g4(v * 100) + "%"


def duration(value: Any) -> str:
    """Seconds as people read them: ``3723 → 1h 2m 3s``, ``45 → 45s``, ``0.25 → 250ms``."""
    v = as_float(value)
    if v is None:
        return str(value)
    if math.isinf(v):
        return g4(v)
    return format_duration(v)


def _scaled(value: Any, units: Sequence[str]) -> str:
    v = as_float(value)
    if v is None:
        return str(value)
    if math.isnan(v) or math.isinf(v):
        return f"{g4(v)} {units[0]}"
    unit = units[0]
    for u in units[1:]:
        if abs(v) < 1000:
            break
        unit, v = u, v / 1000
    return f"{g4(v)} {unit}"


def bytes_(value: Any) -> str:
    """A byte count in decimal (SI) units: ``1500000 → 1.5 MB``, ``950 → 950 B``."""
    return _scaled(value, ("B", "kB", "MB", "GB", "TB", "PB", "EB"))


def bitrate(value: Any) -> str:
    """Bits per second: ``2500000 → 2.5 Mbps``, ``800000 → 800 kbps``, ``950 → 950 bps``."""
    return _scaled(value, ("bps", "kbps", "Mbps", "Gbps", "Tbps"))


def timestamp(value: Any) -> str:
    """An epoch (seconds) or datetime as ``2026-01-01 00:00:09 UTC``.

    Prometheus' ``humanizeTimestamp`` prints Go's ``2026-01-01 00:00:09.5 +0000 UTC``; alert
    readers do not need the fraction or the redundant offset, so this prints whole seconds.
    """
    if isinstance(value, datetime):
        dt = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    else:
        v = as_float(value)
        if v is None:
            return str(value)
        if math.isnan(v) or math.isinf(v):
            return g4(v)
        try:
            dt = datetime.fromtimestamp(v, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return g4(v)
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


FILTERS: dict[str, Callable[[Any], str]] = {
    "duration": duration,
    "humanize": humanize,
    "humanize1024": humanize1024,
    "percentage": percentage,
    "timestamp": timestamp,
    "bytes": bytes_,
    "bitrate": bitrate,
}


class Seconds(float):
    """A duration that prints as ``5m 0s`` but still compares and adds as a number."""

    def __str__(self) -> str:
        return duration(float(self))


class Epoch(float):
    """A point in time that prints as ``2026-01-01 00:00:09 UTC`` but stays a number."""

    def __str__(self) -> str:
        return timestamp(float(self))
