"""Turn OME's stats and stream-info answers into the flat field map of a ``Sample``.

OME's open-source ``/v1`` stats put every metric at the top level; Enterprise ``/v2`` splits
them into ``providers`` (ingest) and ``publishers`` (egress). Rules are written against one
shape, the v2 one, so a v1 answer is moved into it here: the same traffic gives the same
fields whichever API served it, except ``providers.connections.*``, which only v2 counts.

Everything a rule compares is checked here, once: numbers are numbers (stream-info bitrates
arrive as JSON strings from OME 0.18.0 and are coerced), times are timezone-aware datetimes.
A value of the wrong type raises ``NormalizeError`` naming the field, which the client turns
into a ``bad_response`` for that request instead of letting a ``TypeError`` escape later.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..lang.fields import FIELDS, PUBLISHER_PROTOCOLS, VIEWER_PROTOCOLS, FieldType
from ..model import Value

__all__ = [
    "NormalizeError",
    "normalize_info",
    "normalize_stats",
    "parse_time",
]


class NormalizeError(ValueError):
    """An answer that does not fit OME's schema; ``field`` is the dotted path at fault."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


#: Where each v1 key lands in the v2 shape. ``createdTime``/``lastUpdatedTime`` stay on top.
_V1_HOME = {
    "createdTime": "",
    "lastUpdatedTime": "",
    "lastRecvTime": "providers",
    "totalBytesIn": "providers",
    "avgThroughputIn": "providers",
    "lastThroughputIn": "providers",
    "maxThroughputIn": "providers",
    "connections": "publishers",
    "totalConnections": "publishers",
    "maxTotalConnections": "publishers",
    "maxTotalConnectionTime": "publishers",
    "lastSentTime": "publishers",
    "totalBytesOut": "publishers",
    "avgThroughputOut": "publishers",
    "lastThroughputOut": "publishers",
    "maxThroughputOut": "publishers",
}
_GROUPS = ("providers", "publishers")
_REQUIRED = "createdTime"  # every release and every level prints it
_CONNECTIONS = "connections"  # in a plan: an object of per-protocol counts


def _plan(path: str) -> tuple[str, FieldType | str] | None:
    if path.endswith(".connections"):
        return path, _CONNECTIONS
    spec = FIELDS.get(path)
    return None if spec is None else (path, spec.type)


#: Each v1 key's v2 path and how to convert its value, worked out once: a poll of 10,000
#: streams normalizes 10,000 answers, and per-key lookups were a third of the client's CPU.
_V1_PLAN = {
    key: plan for key, home in _V1_HOME.items() if (plan := _plan(f"{home}.{key}" if home else key))
}
_PUBLISHER_PATHS = tuple(f"publishers.connections.{p}" for p in PUBLISHER_PROTOCOLS)
_VIEWER_PATHS = tuple(f"publishers.connections.{p}" for p in VIEWER_PROTOCOLS)


def parse_time(text: object, field: str = "time") -> datetime:
    """An OME timestamp (``2026-01-01T09:00:00.000+09:00``) as an aware datetime.

    OME prints the server's local time with its offset and never ``Z``; releases before
    0.13.0 wrote ``+0900``, which ``fromisoformat`` also reads. A time without an offset
    cannot be compared with another clock, so it is refused rather than guessed.
    """
    if not isinstance(text, str):
        raise NormalizeError(field, f"expected a time string, got {_kind(text)}")
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise NormalizeError(field, f"not an ISO-8601 time: {_clip(text)}") from None
    if parsed.tzinfo is None:
        raise NormalizeError(field, f"time without a UTC offset: {_clip(text)}")
    return parsed


def normalize_stats(payload: object) -> dict[str, Value]:
    """The ``response`` of a ``stats/current`` call (v1 or v2) as flat v2 paths.

    Every known publisher connection key is present (0 when this OME release does not
    print it); unknown connection keys are kept so a newer release loses nothing.
    ``publishers.viewers`` is the sum of the audience protocols. Negative counts, which an
    OME bookkeeping bug can produce, are passed on unchanged.
    """
    if not isinstance(payload, Mapping):
        raise NormalizeError("response", f"expected a stats object, got {_kind(payload)}")
    if _REQUIRED not in payload:
        raise NormalizeError(_REQUIRED, "missing from the stats object")
    is_v2 = any(g in payload for g in _GROUPS)
    out: dict[str, Value] = {}
    if is_v2:
        for key in ("createdTime", "lastUpdatedTime"):
            if key in payload:
                _put(out, key, payload[key])
        for group in _GROUPS:
            body = payload.get(group, {})
            if not isinstance(body, Mapping):
                raise NormalizeError(group, f"expected an object, got {_kind(body)}")
            for key, value in body.items():
                _put(out, f"{group}.{key}", value)
    else:
        for key, value in payload.items():
            plan = _V1_PLAN.get(key)
            if plan is None:
                continue
            if plan[1] is FieldType.NUMBER and type(value) is int:
                out[plan[0]] = value  # most of a stats answer: no call needed
            else:
                _store(out, plan[0], plan[1], value)
    for path in _PUBLISHER_PATHS:
        if path not in out:
            out[path] = 0
    viewers: int | float = 0
    for path in _VIEWER_PATHS:
        count = out[path]
        viewers += count if type(count) is int else _number(path, count)
    out["publishers.viewers"] = viewers
    return out


def normalize_info(payload: object) -> dict[str, Value]:
    """The ``response`` of stream info as ``sourceType``, ``sourceUrl``, ``video.*``, ``audio.*``
    and ``createdTime`` (the stream's age decides which measured values are real yet).

    Only the input is read, and of it only the first video and the first audio track, which
    is what an ingest rule is about. Keys outside the field catalogue (``maxWidth``,
    ``timebase`` …) are skipped.
    """
    if not isinstance(payload, Mapping):
        raise NormalizeError("response", f"expected a stream info object, got {_kind(payload)}")
    source = payload.get("input")
    if not isinstance(source, Mapping):
        raise NormalizeError("input", f"expected an object, got {_kind(source)}")
    out: dict[str, Value] = {}
    for key in ("sourceType", "sourceUrl"):
        if key in source:
            out[key] = _convert(key, FieldType.STRING, source[key])
    if "createdTime" in source:  # the stream's age, for rules that read stream info alone
        out["createdTime"] = parse_time(source["createdTime"], "input.createdTime")
    tracks = source.get("tracks", [])
    if not isinstance(tracks, list):
        raise NormalizeError("input.tracks", f"expected a list, got {_kind(tracks)}")
    for kind in ("video", "audio"):
        track = _first_track(tracks, kind)
        if track is None:
            continue
        for key, value in track.items():
            path = f"{kind}.{key}"
            spec = FIELDS.get(path)
            if spec is not None:
                out[path] = _convert(path, spec.type, value)
    return out


def _first_track(tracks: list[Any], kind: str) -> Mapping[str, Any] | None:
    for index, track in enumerate(tracks):
        if not isinstance(track, Mapping):
            raise NormalizeError(
                f"input.tracks[{index}]", f"expected an object, got {_kind(track)}"
            )
        body = track.get(kind)
        type_ = track.get("type")
        if body is None or (isinstance(type_, str) and type_.lower() != kind):
            continue
        if not isinstance(body, Mapping):
            raise NormalizeError(f"{kind}", f"expected an object, got {_kind(body)}")
        if str(body.get("codec", "")).upper() in _IMAGE_CODECS:
            continue  # a thumbnail rendition (ome-beyond-stats.md §6.1), no video of the stream
        return body
    return None


#: codecs of OME's image renditions, typed ``Video`` in stream info
_IMAGE_CODECS = frozenset({"JPEG", "PNG", "WEBP"})


def _put(out: dict[str, Value], path: str, value: object) -> None:
    """Store one stats value under ``path``, converting by the catalogue's type."""
    plan = _plan(path)
    if plan is not None:  # otherwise a key newer or older than the catalogue: nothing reads it
        _store(out, path, plan[1], value)


def _store(out: dict[str, Value], path: str, kind: FieldType | str, value: object) -> None:
    # The common cases first: an integer counter, a well-formed timestamp.
    if kind is FieldType.NUMBER and type(value) is int:
        out[path] = value
    elif kind is FieldType.TIME and type(value) is str and (fast := _iso(value)) is not None:
        out[path] = fast
    elif kind == _CONNECTIONS:
        if not isinstance(value, Mapping):
            raise NormalizeError(path, f"expected an object, got {_kind(value)}")
        for proto, count in value.items():
            sub = f"{path}.{proto}"
            out[sub] = count if type(count) is int else _number(sub, count)
    else:
        assert isinstance(kind, FieldType)
        out[path] = _convert(path, kind, value)


def _iso(text: str) -> datetime | None:
    """``text`` as an aware datetime if it is one as it stands; ``parse_time`` does the rest."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _convert(path: str, ftype: FieldType, value: object) -> Value:
    if ftype is FieldType.NUMBER:
        return _number(path, value)
    if ftype is FieldType.TIME:
        return parse_time(value, path)
    if ftype is FieldType.BOOL:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise NormalizeError(path, f"expected true or false, got {_kind(value)}")
    if isinstance(value, str):
        return value
    raise NormalizeError(path, f"expected a string, got {_kind(value)}")


def _number(path: str, value: object) -> int | float:
    """A JSON number, or a string holding one (OME 0.18.0 prints stream-info bitrates so)."""
    if isinstance(value, bool):
        raise NormalizeError(path, "expected a number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NormalizeError(path, "expected a finite number")
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            raise NormalizeError(path, f"expected a number, got {_clip(value)}") from None
        if not math.isfinite(number):
            raise NormalizeError(path, "expected a finite number")
        return number
    raise NormalizeError(path, f"expected a number, got {_kind(value)}")


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {_clip(value)}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _clip(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")
