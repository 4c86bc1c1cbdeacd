"""A stand-in for the part of Slack's Web API omealert uses, on 127.0.0.1, for real clients.

It answers ``chat.postMessage`` and ``chat.update`` the way Slack does (HTTP 200 with
``{"ok": true, "channel": "C…", "ts": "…"}``, or ``{"ok": false, "error": "invalid_auth"}``
and friends), checks the bot token in the ``Authorization`` header, knows which channels
exist, and can answer HTTP 429 with ``Retry-After``. ``slack_sdk`` is pointed at it through
its ``base_url`` (``slack_api.api_url`` in a config). It keeps every message with its thread
and its edits, so a test asserts on what a person would see in the channel.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl

LOOPBACK = "127.0.0.1"
TOKEN = "xoxb-test-TOKEN-5ec2e7"


@dataclass
class Posted:
    """One message in the stand-in's channel: its text now, and every text it had."""

    channel: str
    ts: str
    text: str
    thread_ts: str | None
    edits: list[str] = field(default_factory=list)


class SlackStandIn:
    """``chat.postMessage`` and ``chat.update`` on loopback; ``api_url`` is its base URL."""

    def __init__(self, *, token: str = TOKEN, channels: dict[str, str] | None = None) -> None:
        self.token = token
        #: channel name → id; a post may name either, an update needs the id
        self.channels = channels or {"#ops": "C0OPS"}
        self._lock = threading.Condition()
        self.messages: list[Posted] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._limited = 0
        self._retry_after = 1
        self._limited_method = ""
        self._delay = 0.0
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        server = ThreadingHTTPServer((LOOPBACK, self.port), _Handler)
        server.daemon_threads = False
        server.block_on_close = True
        server.standin = self  # type: ignore[attr-defined]
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="slack-standin"
        )
        self._thread.start()

    def stop(self) -> None:
        self._release.set()  # a held answer goes out now, so no handler outlives the test
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._server.server_close()
            self._server = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/api/"

    # behaviour ---------------------------------------------------------------

    def rate_limit(self, requests: int, retry_after: int, method: str = "") -> None:
        """Answer the next ``requests`` calls (of ``method`` only, if given) with HTTP 429
        and ``Retry-After``."""
        with self._lock:
            self._limited, self._retry_after = requests, retry_after
            self._limited_method = method

    def hold(self, seconds: float) -> None:
        """Keep each answer back ``seconds`` (until ``stop``), like a Slack that hangs."""
        self._delay = seconds

    # what a person sees --------------------------------------------------------

    def top_level(self) -> list[Posted]:
        with self._lock:
            return [m for m in self.messages if m.thread_ts is None]

    def replies(self, ts: str) -> list[Posted]:
        with self._lock:
            return [m for m in self.messages if m.thread_ts == ts]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        """True once ``predicate(self)`` holds; False when ``timeout`` passes first."""
        with self._lock:
            return self._lock.wait_for(lambda: predicate(self), timeout)

    # the API -----------------------------------------------------------------

    def answer(self, method: str, auth: str, args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.calls.append((method, dict(args)))
            try:
                return self._answer(method, auth, args)
            finally:
                self._lock.notify_all()

    def _answer(self, method: str, auth: str, args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self._limited > 0 and self._limited_method in ("", method):
            self._limited -= 1
            return 429, {"ok": False, "error": "ratelimited"}
        if not auth.startswith("Bearer "):
            return 200, {"ok": False, "error": "not_authed"}
        if auth != f"Bearer {self.token}":
            return 200, {"ok": False, "error": "invalid_auth"}
        channel = str(args.get("channel", ""))
        cid = self.channels.get(channel, channel if channel in self.channels.values() else "")
        if not cid:
            return 200, {"ok": False, "error": "channel_not_found"}
        if method == "chat.postMessage":
            thread = args.get("thread_ts")
            if thread is not None and not any(m.ts == thread for m in self.messages):
                return 200, {"ok": False, "error": "thread_not_found"}
            ts = f"{1_700_000_000 + len(self.messages)}.{len(self.messages):06d}"
            self.messages.append(Posted(cid, ts, str(args.get("text", "")), thread))
            return 200, {"ok": True, "channel": cid, "ts": ts, "message": {"text": args["text"]}}
        if method == "chat.update":
            if channel != cid:  # Slack wants the id here, not the name
                return 200, {"ok": False, "error": "channel_not_found"}
            for m in self.messages:
                if m.ts == args.get("ts") and m.channel == cid:
                    m.text = str(args.get("text", ""))
                    m.edits.append(m.text)
                    return 200, {"ok": True, "channel": cid, "ts": m.ts, "text": m.text}
            return 200, {"ok": False, "error": "message_not_found"}
        return 404, {"ok": False, "error": "unknown_method"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    timeout = 10

    def do_POST(self) -> None:
        standin: SlackStandIn = self.server.standin  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8") if length else ""
        if "json" in (self.headers.get("Content-Type") or ""):
            args = json.loads(raw or "{}")
        else:
            args = dict(parse_qsl(raw))
        method = self.path.rsplit("/", 1)[-1]
        if standin._delay > 0:
            standin._release.wait(standin._delay)
        status, body = standin.answer(method, self.headers.get("Authorization", ""), args)
        payload = json.dumps(body).encode()
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", str(standin._retry_after))
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        # the client may have given up already (its deadline): nothing left to tell it
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass
