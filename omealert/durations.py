"""Durations as operators write them (``500ms``, ``30s``, ``1h30m``) and as people read them."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ValueError with a hint when it is not a duration.

    A bare ``0`` is accepted because ``for: 0`` is what people type for "no delay".
    """
    s = text.strip()
    if s == "0":
        return 0.0
    if not _WHOLE.fullmatch(s):
        raise ValueError(
            f"invalid duration {text!r}: use a number with a unit, e.g. 500ms, 30s, 5m, 1h, 1h30m"
        )
    return sum(float(n) * _UNITS[u] for n, u in _PART.findall(s))


def format_duration(seconds: float) -> str:
    """Human form in Prometheus' humanizeDuration style: ``1d 2h 3m 4s``, ``45s``, ``250ms``."""
    if seconds != seconds:  # NaN
        return "NaN"
    sign = "-" if seconds < 0 else ""
    v = abs(seconds)
    if v == 0:
        return "0s"
    if v < 1:
        for unit, scale in (("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
            if v >= scale:
                return f"{sign}{v / scale:.4g}{unit}"
        return f"{sign}{v:.4g}s"
    if v < 60:
        return f"{sign}{v:.4g}s"
    total = int(v)
    days, rem = divmod(total, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    parts: list[str] = []
    if days:
        parts.append(f"{days}d")
    if days or hours:
        parts.append(f"{hours}h")
    if days or hours or minutes:
        parts.append(f"{minutes}m")
    parts.append(f"{secs}s")
    return sign + " ".join(parts)


def format_offset(seconds: float) -> str:
    """``90`` → ``1m30s``: compact, and readable back by ``parse_duration``."""
    if seconds < 0:
        return "-" + format_offset(-seconds)
    whole = int(seconds)
    rest = round(seconds - whole, 3)
    if whole == 0 and rest == 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size:
            out += f"{whole // size}{unit}"
            whole %= size
    if whole or rest:
        secs = whole + rest
        out += f"{secs:g}s" if rest else f"{whole}s"
    return out
