"""The simulator as OME's ``<Server><Alert>`` module: signed POSTs when its streams change.

``set_alert_module(url, secret_key, ...)`` turns it on, with the rules of ``<Rules>``:
``min_bitrate``/``max_bitrate`` (bits/s, as OME compares the video+audio total),
``min_framerate``/``max_framerate``, ``long_key_frame_interval`` (over 4 s) and
``stream_status`` (``<StreamStatus/>``, 0.19+: created and deleted). What is sent follows
what OME does (``ome-beyond-stats.md`` §5.2):

- the whole current list of codes is sent whenever it changes, video rules before the
  bitrate; a list that empties is sent as one ``OK``;
- a stream that ends while in alarm gets **no** ``OK`` (its key is dropped), only
  ``INGRESS_STREAM_DELETED`` when ``stream_status`` is on;
- a stall sends nothing: OME's averages move only when frames arrive, so a silent
  encoder never trips a rule;
- ``set_congested`` sends 0.18's ``INTERNAL_QUEUE`` form: one global key, no ``sourceUri``,
  every queue listed, and its ``OK`` does arrive.

Bodies are compact JSON with sorted keys, signed with HMAC-SHA1 over those exact bytes
(base64url, no padding, in ``X-OME-Signature``), and sent with OME 0.18's headers in its
order by one sender thread (as OME 0.20+ has), so a slow receiver never slows the
simulator's API. The queue is bounded; what does not fit is counted as dropped. The
descriptions of the metric codes are OME 0.18's; those of the status codes are not from a
capture.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import queue
import threading
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from .faults import _Faults
from .reply import _dumps
from .streams import _Stream

#: POSTs waiting for the sender; more are dropped (and counted), never buffered without end
MAX_QUEUED = 10_000
#: outcomes kept for ``alert_posts``
POST_LOG = 1000
OK = {"code": "OK", "description": "The current status is good"}
CONGESTED = {
    "code": "INTERNAL_QUEUE_CONGESTION",
    "description": "Internal queue(s) is currently congested",
}


def ome_signature(secret_key: bytes, body: bytes) -> str:
    """What OME puts in ``X-OME-Signature``."""
    digest = hmac.new(secret_key, body, hashlib.sha1).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class _Sender:
    """One thread POSTing queued bodies to ``url``, one connection per POST."""

    def __init__(self, url: str, secret_key: bytes, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("the alert URL must be http://host[:port]/path")
        self.host, self.port = parts.hostname, parts.port or 80
        self.host_header = parts.netloc
        self.path = parts.path or "/"
        self.key = secret_key
        self.timeout = timeout
        self.queue: queue.Queue[bytes | None] = queue.Queue(MAX_QUEUED)
        self.log: deque[dict[str, Any]] = deque(maxlen=POST_LOG)
        self.dropped = 0
        self.thread = threading.Thread(target=self._run, name="sim-alert", daemon=True)
        self.thread.start()

    def put(self, body: bytes) -> None:
        try:
            self.queue.put_nowait(body)
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join(self.timeout + 5)

    def _run(self) -> None:
        while (body := self.queue.get()) is not None:
            try:
                self.log.append(self._post(body))
            finally:
                self.queue.task_done()
        self.queue.task_done()

    def _post(self, body: bytes) -> dict[str, Any]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.putrequest("POST", self.path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Content-Length", str(len(body)))
            conn.putheader("Host", self.host_header)
            conn.putheader("Content-Type", "application/json")
            conn.putheader("X-OME-Signature", ome_signature(self.key, body))
            conn.putheader("Accept", "application/json")
            conn.putheader("User-Agent", "OvenMediaEngine")
            conn.endheaders(body)
            reply = conn.getresponse()
            reply.read()
            return {"body": body.decode(), "status": reply.status, "error": None}
        except OSError as exc:  # OME 0.18 does not retry; the event is lost
            return {"body": body.decode(), "status": None, "error": type(exc).__name__}
        finally:
            conn.close()


class _AlertModule(_Faults):
    """``Simulator``'s Alert module (see the module docstring)."""

    _alert: _Sender | None = None
    _alert_rules: dict[str, Any]
    _alert_codes: dict[tuple[str, str, str], tuple[str, ...]]
    _alert_congested = False

    def set_alert_module(
        self,
        url: str,
        secret_key: str,
        *,
        timeout: float = 3.0,
        stream_status: bool = False,
        min_bitrate: int | None = None,
        max_bitrate: int | None = None,
        min_framerate: float | None = None,
        max_framerate: float | None = None,
        long_key_frame_interval: bool = False,
    ) -> None:
        """Send signed Alert POSTs to ``url`` from now on (replacing an earlier set-up)."""
        sender = _Sender(url, secret_key.encode(), float(timeout))
        self.alert_module_off()
        with self._lock:
            self._alert = sender
            self._alert_rules = {
                "stream_status": stream_status,
                "min_bitrate": min_bitrate,
                "max_bitrate": max_bitrate,
                "min_framerate": min_framerate,
                "max_framerate": max_framerate,
                "long_key_frame_interval": long_key_frame_interval,
            }
            self._alert_codes = {}
            self._alert_congested = False

    def alert_module_off(self) -> None:
        """Stop sending; POSTs still queued are sent first."""
        with self._lock:
            sender, self._alert = self._alert, None
        if sender is not None:
            sender.close()

    def alert_posts(self) -> list[dict[str, Any]]:
        """What was POSTed so far: each body, and the status answered (or the error)."""
        sender = self._alert
        return list(sender.log) if sender is not None else []

    def alert_flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued POST is sent; False if ``timeout`` ran out first."""
        sender = self._alert
        if sender is None:
            return True
        done = threading.Event()

        def wait() -> None:
            sender.queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def set_congested(self, congested: bool) -> None:
        """Internal queues congest (or drain): 0.18's global INTERNAL_QUEUE event."""
        with self._lock:
            if self._alert is None or congested == self._alert_congested:
                self._alert_congested = congested
                return
            self._alert_congested = congested
            body = {
                # 0.18 lists every queue, as ``internals/queues`` answers at that moment
                "internalQueues": self._queues_answer(self._now()),
                "messages": [CONGESTED if congested else OK],
                "type": "INTERNAL_QUEUE",
            }
            self._alert.put(_dumps(body))

    # -- the scripting methods that change what OME would alert on ------------------------

    def add_streams(self, vhost: str, app: str, names: Any, **kwargs: Any) -> None:
        names = list(names)
        super().add_streams(vhost, app, names, **kwargs)
        with self._lock:
            for name in names:
                if self._alert_rules_get("stream_status"):
                    self._send_stream(vhost, app, name, [_status("INGRESS_STREAM_CREATED")])
                self._evaluate(vhost, app, name)

    def remove_stream(self, vhost: str, app: str, stream: str) -> None:
        with self._lock:
            body = self._stream_body(vhost, app, stream, [_status("INGRESS_STREAM_DELETED")])
        super().remove_stream(vhost, app, stream)
        self._ended([(vhost, app, stream, body)])

    def remove_app(self, vhost: str, app: str) -> None:
        with self._lock:
            gone = self._bodies(vhost, app)
        super().remove_app(vhost, app)
        self._ended(gone)

    def remove_vhost(self, vhost: str) -> None:
        with self._lock:
            apps = list(self._vhosts[vhost].apps) if vhost in self._vhosts else []
            gone = [g for a in apps for g in self._bodies(vhost, a)]
        super().remove_vhost(vhost)
        self._ended(gone)

    def set_bitrate(self, vhost: str, app: str, stream: str, bits_per_second: int) -> None:
        super().set_bitrate(vhost, app, stream, bits_per_second)
        with self._lock:
            self._evaluate(vhost, app, stream)

    def set_framerate(self, vhost: str, app: str, stream: str, fps: float) -> None:
        super().set_framerate(vhost, app, stream, fps)
        with self._lock:
            self._evaluate(vhost, app, stream)

    # -- building and sending (under self._lock) ------------------------------------------

    def _alert_rules_get(self, name: str) -> Any:
        return self._alert_rules.get(name) if self._alert is not None else None

    def _bodies(self, vhost: str, app: str) -> list[tuple[str, str, str, bytes | None]]:
        node = self._vhosts.get(vhost)
        streams = list(node.apps[app].streams) if node is not None and app in node.apps else []
        deleted = [_status("INGRESS_STREAM_DELETED")]
        return [(vhost, app, s, self._stream_body(vhost, app, s, deleted)) for s in streams]

    def _ended(self, gone: list[tuple[str, str, str, bytes | None]]) -> None:
        """Streams that ended: their alarm keys dropped silently, DELETED sent if asked."""
        with self._lock:
            for vhost, app, stream, body in gone:
                if self._alert is None:
                    return
                self._alert_codes.pop((vhost, app, stream), None)
                if body is not None and self._alert_rules_get("stream_status"):
                    self._alert.put(body)

    def _stream_body(
        self, vhost: str, app: str, stream: str, messages: list[dict[str, str]]
    ) -> bytes | None:
        node = self._vhosts.get(vhost)
        app_node = node.apps.get(app) if node is not None else None
        s = app_node.streams.get(stream) if app_node is not None else None
        if self._alert is None or s is None:
            return None  # the caller's own lookup says what is missing
        info = self._stream_info(s, self._now())["input"]
        body = {
            "messages": messages,
            "sourceInfo": {**info, "name": s.name},
            "sourceUri": f"#{vhost}#{app}/{stream}",
            "type": "INGRESS",
        }
        return _dumps(body)

    def _send_stream(
        self, vhost: str, app: str, stream: str, messages: list[dict[str, str]]
    ) -> None:
        body = self._stream_body(vhost, app, stream, messages)
        if body is not None and self._alert is not None:
            self._alert.put(body)

    def _evaluate(self, vhost: str, app: str, stream: str) -> None:
        """The rules on ``stream`` now; a changed list of codes is sent, an emptied one as OK."""
        if self._alert is None:
            return
        s = self._vhosts[vhost].apps[app].streams[stream]
        if s.stalled:
            return  # OME's averages do not move without frames
        messages = _verdicts(s, self._alert_rules)
        key = (vhost, app, stream)
        before = self._alert_codes.get(key, ())
        codes = tuple(m["code"] for m in messages)
        if codes == before:
            return
        if codes:
            self._alert_codes[key] = codes
            self._send_stream(vhost, app, stream, messages)
        else:
            del self._alert_codes[key]
            self._send_stream(vhost, app, stream, [OK])


def _verdicts(s: _Stream, rules: dict[str, Any]) -> list[dict[str, str]]:
    """OME's messages for ``s`` under ``rules``: video rules first, then the bitrate."""
    out = []
    fps = s.framerate
    low, high = rules.get("min_framerate"), rules.get("max_framerate")
    if low is not None and fps < low:
        out.append(_metric("INGRESS_FRAMERATE_LOW", f"framerate ({fps:.0f} fps) is lower", low))
    if high is not None and fps > high:
        out.append(_metric("INGRESS_FRAMERATE_HIGH", f"framerate ({fps:.0f} fps) is higher", high))
    if rules.get("long_key_frame_interval") and fps > 0 and s.key_frame_interval / fps > 4.0:
        seconds = s.key_frame_interval / fps
        out.append(
            {
                "code": "INGRESS_LONG_KEY_FRAME_INTERVAL",
                "description": f"The ingress stream's current keyframe interval ({seconds:.1f} "
                "seconds) is too long. Please use a keyframe interval of 4.0 seconds or less",
            }
        )
    total = s.bitrate + (s.audio_bitrate or 0)
    low, high = rules.get("min_bitrate"), rules.get("max_bitrate")
    if low is not None and total < low:
        out.append(_metric("INGRESS_BITRATE_LOW", f"bitrate ({total} bps) is lower", low, "bps"))
    if high is not None and total > high:
        out.append(_metric("INGRESS_BITRATE_HIGH", f"bitrate ({total} bps) is higher", high, "bps"))
    return out


def _metric(code: str, what: str, limit: float, unit: str = "fps") -> dict[str, str]:
    kind = what.split(" ", 1)[0]
    return {
        "code": code,
        "description": f"The ingress stream's current {what} than the configured {kind} "
        f"({limit:.0f} {unit})",
    }


def _status(code: str) -> dict[str, str]:
    what = code.rsplit("_", 1)[1].lower()
    return {"code": code, "description": f"The ingress stream has been {what}"}
