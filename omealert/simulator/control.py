"""The ``/_sim/<method>`` control endpoints: script a running simulator from another process.

``POST /_sim/<method>`` with a JSON object of keyword arguments calls that public method
of ``Simulator``; the benchmarks and the crash driver run the simulator as a subprocess
and drive it this way.  Control calls are not API requests: no auth, no faults, no log.
"""

from __future__ import annotations

import json
from typing import Any, Final

from .clock import ManualClock
from .reply import _dumps, _Reply
from .streams import _NotFound

#: Scripting methods reachable through ``POST /_sim/<method>``.
_CONTROL_METHODS: Final = frozenset(
    {"add_vhost", "add_app", "add_stream", "add_streams", "remove_stream", "remove_app",
     "remove_vhost", "set_viewers", "stall", "resume", "set_bitrate", "set_framerate", "restart",
     "set_token", "set_fault", "clear_faults", "reset_requests", "request_count",
     "set_clock_skew", "server_time", "set_quirks", "set_publishers", "start_push",
     "set_push_destination", "stop_push", "start_record", "fail_record", "stop_record",
     "set_alert_module", "alert_module_off", "alert_posts", "alert_flush", "set_congested"}
    | {"congest_queue", "relieve_queue", "relay_from", "break_relay", "mend_relay"}
)  # fmt: skip
_MANUAL_CLOCK_METHODS: Final = frozenset({"advance", "set_time"})


class _Control:
    """``Simulator``'s control endpoint (see ``_SimClock``)."""

    _manual: ManualClock | None

    def _control(self, method: str, name: str, body: bytes) -> _Reply:
        """``POST /_sim/<name>`` with a JSON object of keyword arguments calls ``name``."""

        def fail(text: str) -> _Reply:
            return _Reply(400, raw=_dumps({"error": text, "ok": False}))

        if method != "POST":
            return fail("use POST")
        allowed = _CONTROL_METHODS | (_MANUAL_CLOCK_METHODS if self._manual else frozenset())
        if name not in allowed:
            return fail(f"unknown or disallowed method: {name}")
        try:
            kwargs = json.loads(body) if body.strip() else {}
        except (ValueError, UnicodeDecodeError) as exc:
            return fail(f"body is not JSON: {exc}")
        if not isinstance(kwargs, dict):
            return fail("body must be a JSON object of keyword arguments")
        try:
            result = getattr(self, name)(**kwargs)
        except _NotFound as exc:
            return fail(exc.text)
        except Exception as exc:  # any scripting mistake is the caller's to see, not a crash
            return fail(f"{type(exc).__name__}: {exc}")
        answer: dict[str, Any] = {"ok": True}
        if result is not None:
            answer["result"] = result
        return _Reply(200, raw=_dumps(answer))
