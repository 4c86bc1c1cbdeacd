"""Read an app's pushes (``:pushes``) and records (``:records``) into samples, keys left out.

Shapes and meanings are ``ome-beyond-stats.md`` §1.2 and §2.2, checked against a real OME
0.18: compact objects, keys left out when OME has nothing to say (a record in ``ready``
has no byte, time or sequence keys; those read as no value, never 0), and an unset time
printed as the Unix epoch in the server's zone (no value too).

A push is named by its destination, never by OME's ``id`` (StreamMap pushes get a new
random one each time their stream returns) and never by its stream key: OME hands the key
out in plain text in ``streamKey``, and some operators put it in ``url``. ``destination``
is the scheme, host and path of ``url`` with the key taken out (an RTMP URL without a
``streamKey`` ends in the key: that last segment goes); a short digest of the whole URL
and key tells two pushes to one destination apart. Nothing here keeps ``url`` or
``streamKey`` once the destination is made, so no message, label or page can show them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..model import Scope, Value
from .normalize import NormalizeError, parse_time

__all__ = ["Output", "destination", "normalize_outputs", "scrub_pushes"]

_RTMP = frozenset({"rtmp", "rtmps", "rtmpt", "rtmpe"})


@dataclass(frozen=True, slots=True)
class Output:
    """One push or record of an app: its stream, its leaf name, labels and fields."""

    stream: str
    leaf: str
    labels: dict[str, str]
    fields: dict[str, Value]


def destination(url: str, stream_key: str = "") -> str:
    """Scheme, host and path of a push's ``url``, with neither the key nor credentials."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(unreadable url)"
    netloc = host if port is None else f"{host}:{port}"
    if ":" in host:
        netloc = f"[{host}]" if port is None else f"[{host}]:{port}"
    segments = [s for s in parts.path.split("/") if s]
    if stream_key:
        segments = [s for s in segments if stream_key not in s]
    elif parts.scheme.lower() in _RTMP and len(segments) >= 2:
        segments = segments[:-1]  # rtmp://host/app/<key>: the stream name is the key
    path = "".join(f"/{s}" for s in segments)
    return f"{parts.scheme.lower()}://{netloc}{path}"


@functools.lru_cache(maxsize=1 << 14)
def _leaf(url: str, stream_key: str) -> str:
    """A push's name: cached, since every poll names the same pushes again (a third of the
    cost of reading a push was parsing its URL and hashing it)."""
    recorded = _RECORDED.fullmatch(stream_key)  # scrubbed by ``record``: its digest
    digest = recorded.group(1) if recorded else _digest(url, stream_key)
    return f"{destination(url, stream_key)}#{digest}"


#: the stream key ``scrub_pushes`` leaves in a recording: ``***`` and the push's digest
_RECORDED = re.compile(r"\*\*\*([0-9a-f]{8})")


def _digest(url: str, stream_key: str) -> str:
    """Eight hex digits of the URL and key: tells pushes apart, gives neither away."""
    return hashlib.sha256(f"{url}\0{stream_key}".encode()).hexdigest()[:8]


def normalize_outputs(scope: Scope, payload: object, live: Set[str]) -> list[Output]:
    """The ``response`` of ``:pushes`` or ``:records``; ``live`` holds the app's listed streams."""
    if not isinstance(payload, list):
        raise NormalizeError("response", f"expected a list of {scope.value}s")
    out: list[Output] = []
    for index, item in enumerate(payload):
        where = f"response[{index}]"
        if not isinstance(item, Mapping):
            raise NormalizeError(where, "expected an object")
        out.append(_push(item, where, live) if scope is Scope.PUSH else _record(item, where, live))
    return out


def _push(item: Mapping[str, object], where: str, live: Set[str]) -> Output:
    stream, ident = _stream_name(item, where), _text(item, "id", where)
    url, key = _text(item, "url", where), item.get("streamKey", "")
    key = key if isinstance(key, str) else ""
    fields: dict[str, Value] = {"stream_live": stream in live}
    fields["state"] = _text(item, "state", where)
    if isinstance(item.get("protocol"), str):
        fields["protocol"] = str(item["protocol"]).lower()
    totals = "totalsentBytes" if "totalsentBytes" in item else "totalSentBytes"
    for name, path in (("sentBytes", "sentBytes"), (totals, "totalsentBytes"),
                       ("sequence", "sequence")):  # fmt: skip
        if name in item:
            fields[path] = _count(item[name], f"{where}.{name}")
    if "sentTime" in item:
        fields["sentTime"] = _count(item["sentTime"], f"{where}.sentTime") / 1000
    _times(item, where, fields, ("createdTime", "startTime"))
    if isinstance(item.get("isConfig"), bool):
        fields["isConfig"] = bool(item["isConfig"])
    return Output(stream, _leaf(url, key), {"push_id": ident}, fields)


def _record(item: Mapping[str, object], where: str, live: Set[str]) -> Output:
    stream, ident = _stream_name(item, where), _text(item, "id", where)
    fields: dict[str, Value] = {"stream_live": stream in live}
    fields["state"] = _text(item, "state", where)
    for name in ("recordBytes", "totalRecordBytes", "sequence"):
        if name in item:
            fields[name] = _count(item[name], f"{where}.{name}")
    for name in ("recordTime", "totalRecordTime"):
        if name in item:
            fields[name] = _count(item[name], f"{where}.{name}") / 1000
    _times(item, where, fields, ("createdTime", "startTime", "finishTime"))
    if isinstance(item.get("isConfig"), bool):
        fields["isConfig"] = bool(item["isConfig"])
    # The user's filePath template names a recording across StreamMap re-creations;
    # without one, the id (which an API record keeps) is all there is.
    file_path = item.get("filePath")
    leaf = file_path if isinstance(file_path, str) and file_path else ident
    return Output(stream, leaf, {"record_id": ident}, fields)


def _stream_name(item: Mapping[str, object], where: str) -> str:
    stream = item.get("stream")
    if not isinstance(stream, Mapping) or not isinstance(stream.get("name"), str):
        raise NormalizeError(f"{where}.stream.name", "expected the stream's name")
    return str(stream["name"])


def _text(item: Mapping[str, object], name: str, where: str) -> str:
    value = item.get(name)
    if not isinstance(value, str):
        raise NormalizeError(f"{where}.{name}", "expected a string")
    return value


def _count(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise NormalizeError(path, "expected an integer")
    return value


def _times(
    item: Mapping[str, object], where: str, fields: dict[str, Value], names: tuple[str, ...]
) -> None:
    """Timestamps that are set; OME prints an unset one as the epoch in its own zone."""
    for name in names:
        if name in item:
            when = parse_time(item[name], f"{where}.{name}")
            if when.timestamp() != 0:
                fields[name] = when


def scrub_pushes(body: bytes) -> bytes:
    """A ``:pushes`` answer without its stream keys, for what ``record`` stores.

    ``streamKey`` becomes ``***`` plus the push's digest, also for a push whose key is in
    its ``url`` (a replay names each push as the live poll did, and pushes that differed
    only by key stay apart), and ``url`` becomes its ``destination``. An answer that is
    not a list of pushes is kept as it is: it holds no push to give away.
    """
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):  # not JSON (UnicodeDecodeError is a ValueError)
        return body
    pushes = envelope.get("response") if isinstance(envelope, dict) else None
    if not isinstance(pushes, list):
        return body
    for push in pushes:
        if not isinstance(push, dict) or not isinstance(push.get("url"), str):
            continue
        url, key = push["url"], push.get("streamKey", "")
        key = key if isinstance(key, str) else ""
        push["url"] = destination(url, key)
        push["streamKey"] = f"***{_digest(url, key)}"
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()
