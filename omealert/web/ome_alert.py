"""``POST /ome/alert/{server}``: OME's Alert module, heard by the watcher's listener.

Every request is checked before its body is believed: the server must be configured with a
key, ``X-OME-Signature`` must be the HMAC-SHA1 of the raw body under that key (compared in
constant time), the body must come within ``BODY_DEADLINE_S`` and ``MAX_BODY_BYTES``, and
only then is it parsed. The path names the server, and so the key: with one key per
server, a body signed for one server and replayed to another's path is refused. A body
seen a moment ago (OME retries a POST whose answer timed out) is answered 200 and ignored.

A refusal costs a bounded amount of work (at most one HMAC over 64 KiB) and logs one line
per reason per ``LOG_EVERY_S`` with a count of the ones it left out, so a flood of forged
requests cannot fill the log. Nothing here creates, resolves or silences an alert: an event
is handed to ``on_event``, which only records it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping

from aiohttp import hdrs, web

from ..metrics import Metrics
from ..ome.alert import SIGNATURE_HEADER, PayloadError, parse_event, signature_matches
from ..ome.events import Heard
from .listener import MAX_BODY_BYTES

log = logging.getLogger("omealert.web.ome_alert")

#: a body must have arrived this long after its head (the gate's deadline covers the head)
BODY_DEADLINE_S = 2.0
LOG_EVERY_S = 60.0
#: signatures remembered per server to answer OME's retries once
SEEN_BODIES = 256


class RateLimitedLog:
    """One warning per reason per ``every`` seconds; the rest are counted into the next."""

    def __init__(self, every: float = LOG_EVERY_S) -> None:
        self.every = every
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warn(self, reason: str, text: str) -> bool:
        """Log ``text`` unless ``reason`` was logged less than ``every`` ago; True if logged."""
        now = time.monotonic()
        last = self._last.get(reason)
        if last is not None and now - last < self.every:
            self._held[reason] = self._held.get(reason, 0) + 1
            return False
        self._last[reason] = now
        held = self._held.pop(reason, 0)
        more = f" (and {held} more since the last such line)" if held else ""
        log.warning("%s%s", text, more)
        return True


class AlertReceiver:
    """The two routes, the keys they check against, and where accepted events go."""

    def __init__(
        self,
        keys: Mapping[str, bytes],
        on_event: Callable[[Heard], None],
        metrics: Metrics,
        now: Callable[[], float] = time.time,
        *,
        body_deadline: float = BODY_DEADLINE_S,
    ) -> None:
        self.keys: Mapping[str, bytes] = dict(keys)
        self.on_event = on_event
        self.metrics = metrics
        self.now = now
        self.body_deadline = body_deadline
        self.refusals = RateLimitedLog()
        self._seen: dict[str, tuple[deque[str], set[str]]] = {}

    def install(self, app: web.Application) -> None:
        app.router.add_post("/ome/alert", self._handle)
        app.router.add_post("/ome/alert/{server}", self._handle)

    def set_keys(self, keys: Mapping[str, bytes]) -> None:
        """New keys after a reload; servers no longer configured are refused from now on."""
        self.keys = dict(keys)
        for name in [n for n in self._seen if n not in self.keys]:
            del self._seen[name]

    async def _handle(self, request: web.Request) -> web.Response:
        named = request.match_info.get("server")
        server = named if named is not None else self._only_server()
        if server is None or server not in self.keys:
            text = (
                "no such server configured for OME events"
                if named is not None
                else "more than one server: post to /ome/alert/{server}"
            )
            return self._refuse(request, "unknown_server", 404, text)
        signature = request.headers.get(SIGNATURE_HEADER)
        if signature is None:
            return self._refuse(request, "unsigned", 401, f"no {SIGNATURE_HEADER} header")
        length = request.content_length
        if length is not None and length > MAX_BODY_BYTES:
            return self._refuse(request, "too_large", 413, "body over 64 KiB")
        try:
            raw = await asyncio.wait_for(request.read(), self.body_deadline)
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(request, "too_large", 413, "body over 64 KiB")
        except TimeoutError:
            return self._refuse(request, "slow_body", 408, "the body came too slowly")
        if not signature_matches(self.keys[server], raw, signature):
            return self._refuse(request, "bad_signature", 401, "wrong signature")
        if self._seen_before(server, signature):
            self.metrics.ome_event_rejected("duplicate")
            return _json(200, "{}")
        try:
            event = parse_event(raw)
        except PayloadError as exc:
            return self._refuse(request, "malformed", 400, str(exc))
        self.metrics.ome_event(server, event.type)
        self.on_event(Heard(at=self.now(), server=server, event=event))
        return _json(200, "{}")

    def _only_server(self) -> str | None:
        return next(iter(self.keys)) if len(self.keys) == 1 else None

    def _seen_before(self, server: str, signature: str) -> bool:
        order, known = self._seen.setdefault(server, (deque(), set()))
        if signature in known:
            return True
        order.append(signature)
        known.add(signature)
        if len(order) > SEEN_BODIES:
            known.discard(order.popleft())
        return False

    def _refuse(self, request: web.Request, reason: str, status: int, text: str) -> web.Response:
        self.metrics.ome_event_rejected(reason)
        peer = request.remote or "?"
        self.refusals.warn(reason, f"OME event refused ({status}, {reason}) from {peer}: {text}")
        return _json(status, '{"error":"' + reason + '"}')


def _json(status: int, body: str) -> web.Response:
    # OME 0.18 logs a parse error for an answer that is not JSON, so every answer is JSON
    return web.Response(status=status, text=body, headers={hdrs.CONTENT_TYPE: "application/json"})
