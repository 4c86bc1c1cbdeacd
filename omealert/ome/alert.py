"""Reading what OME's ``<Server><Alert>`` module POSTs: its signature, its payload, its codes.

OME signs the raw body (compact JSON with sorted keys) with HMAC-SHA1 under the configured
``<SecretKey>`` and sends the digest base64url-encoded without padding in ``X-OME-Signature``.
The signature is checked over the bytes exactly as received, before anything parses them:
re-serializing a body would change the bytes and an unsigned body is never worth parsing.

The payload always has a ``type`` and a non-empty ``messages`` list (recovery is one
``OK`` message, not an empty list); ``sourceUri`` (``#vhost#app/stream``) names the stream,
or ``parentSourceUri`` for transcoder events, which have no ``sourceUri``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

from ..lang.codes import (
    ALL_CODES,
    EVENT_TYPES,
    INGRESS_METRIC_CODES,
    OK_CODE,
    QUEUE_CODES,
    STATUS_CODES,
)
from ..lang.queuefields import EVENT_FIELDS
from ..model import Value
from .normalize import NormalizeError
from .queues import parse_queues

__all__ = [
    "ALL_CODES",
    "EVENT_TYPES",
    "INGRESS_METRIC_CODES",
    "OK_CODE",
    "QUEUE_CODES",
    "STATUS_CODES",
    "AlertEvent",
    "PayloadError",
    "Source",
    "parse_event",
    "parse_source_uri",
    "sign",
    "signature_matches",
]

SIGNATURE_HEADER = "X-OME-Signature"
#: a SHA-1 digest (20 bytes) in unpadded base64 is 27 characters; a longer header is refused
#: before any work is done on it
SIGNATURE_CHARS = 27
#: more messages than OME has codes, or a code longer than any of them, is not OME
MAX_MESSAGES = 64
MAX_CODE_CHARS = 64
MAX_URI_CHARS = 1024


class PayloadError(ValueError):
    """The body is signed but is not an Alert payload; the message says what is wrong."""


def sign(secret_key: bytes, raw_body: bytes) -> str:
    """``X-OME-Signature`` for ``raw_body``: what OME sends, what the simulator sends."""
    digest = hmac.new(secret_key, raw_body, hashlib.sha1).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def signature_matches(secret_key: bytes, raw_body: bytes, header: str | None) -> bool:
    """Whether ``header`` is OME's signature of ``raw_body``, compared in constant time."""
    if header is None or len(header) != SIGNATURE_CHARS:
        return False
    return hmac.compare_digest(
        sign(secret_key, raw_body).encode(), header.encode("ascii", "replace")
    )


@dataclass(frozen=True, slots=True)
class Source:
    """Where an event happened: ``#vhost#app/stream`` (or ``#vhost#app`` for a queue)."""

    vhost: str
    app: str
    stream: str | None = None

    def __str__(self) -> str:
        tail = f"/{self.stream}" if self.stream is not None else ""
        return f"{self.vhost}/{self.app}{tail}"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One Alert POST, reduced to what omealert acts on (the raw body is not kept)."""

    type: str
    codes: tuple[str, ...]
    #: the stream (or app) the event is about: ``sourceUri``, else ``parentSourceUri``
    source: Source | None
    #: the ``internalQueues`` entries of a congestion event, as sent (bounded by the body limit)
    queue_count: int = 0
    #: those queues' readings: (id, urn, numbers), what ``event.*`` queue fields read
    queues: tuple[tuple[int, str, dict[str, Value]], ...] = ()

    @property
    def recovered(self) -> bool:
        return self.codes == (OK_CODE,)


def parse_source_uri(text: str) -> Source | None:
    """``#vhost#app/stream`` or ``#vhost#app``; None if it is neither."""
    if len(text) > MAX_URI_CHARS or not text.startswith("#"):
        return None
    vhost, sep, rest = text[1:].partition("#")
    if not sep or not vhost or not rest:
        return None
    app, slash, stream = rest.partition("/")
    if not app or (slash and not stream) or "#" in rest:
        return None
    return Source(vhost, app, stream if slash else None)


def parse_event(raw_body: bytes) -> AlertEvent:
    """The event in a (verified) body; ``PayloadError`` says why it is not one."""
    try:
        data = json.loads(raw_body)
    except (ValueError, RecursionError) as exc:
        # ValueError covers UnicodeDecodeError and JSONDecodeError
        raise PayloadError(f"the body is not JSON: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise PayloadError("the body is not a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str) or not kind or len(kind) > MAX_CODE_CHARS:
        raise PayloadError("'type' is missing or not a short string")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages or len(messages) > MAX_MESSAGES:
        raise PayloadError(f"'messages' must be a list of 1 to {MAX_MESSAGES} messages")
    codes = []
    for message in messages:
        code = message.get("code") if isinstance(message, dict) else None
        if not isinstance(code, str) or not code or len(code) > MAX_CODE_CHARS:
            raise PayloadError("a message has no short string 'code'")
        codes.append(code)
    source = None
    for key in ("sourceUri", "parentSourceUri"):
        uri = data.get(key)
        if uri is None:
            continue
        source = parse_source_uri(uri) if isinstance(uri, str) else None
        if source is None:
            raise PayloadError(f"'{key}' is not #vhost#app or #vhost#app/stream")
        break
    queues = data.get("internalQueues")
    return AlertEvent(
        type=kind,
        codes=tuple(codes),
        source=source,
        queue_count=len(queues) if isinstance(queues, list) else 0,
        queues=_queues(queues) if queues is not None else (),
    )


def _queues(payload: object) -> tuple[tuple[int, str, dict[str, Value]], ...]:
    """``internalQueues``: the shape ``internals/queues`` answers, checked the same way."""
    try:
        found = parse_queues(payload, None)
    except NormalizeError as exc:
        raise PayloadError(f"'internalQueues' is not a list of OME's queues: {exc}") from None
    return tuple(
        (q.id, q.labels.get("urn", ""), {k: v for k, v in q.fields.items() if k in EVENT_FIELDS})
        for q in found
    )
