"""Faults on cue: slow, failing, garbled, oversized and vanishing answers, and dropped sockets.

A fault picks requests by path and counts them down; it replaces the answer before
authentication, delays it, or reshapes whatever the normal answer would have been.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .api import _NOT_FOUND, _ROUTES, _V2_ROUTES, _Api
from .reply import _dumps, _error, _ok, _Reply
from .streams import _stream_not_found

#: What ``set_fault`` understands; see ``Simulator.set_fault``.
FAULT_KINDS: Final = frozenset(
    {"slow", "500", "html", "garbage", "truncated", "wrong_shape", "wrong_types", "huge", "drop",
     "vanish", "shutting_down", "hang"}
)  # fmt: skip

_HUGE_BYTES: Final = 20 * 1024 * 1024
_NGINX_502: Final = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
_GARBAGE: Final = b"\x00\xffOME<<this is not JSON>>\xfe{{{"


@dataclass(slots=True)
class _Fault:
    kind: str
    path: str | None
    times: int | None
    delay: float


def _mangle_types(value: Any, in_object: bool = False) -> Any:
    """Turn every number (and numeric string inside objects) into ``"n/a"``."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return "n/a"
    if isinstance(value, dict):
        return {k: _mangle_types(v, True) for k, v in value.items()}
    if isinstance(value, list):
        return [_mangle_types(v) for v in value]
    if isinstance(value, str) and value.startswith("\x00"):
        return "n/a"  # a C float, see _c_float
    if in_object and isinstance(value, str) and value.lstrip("-").replace(".", "", 1).isdigit():
        return "n/a"
    return value


def _vanish_text(path: str) -> str:
    """The narrowest resource 404 for ``path``: what OME says when the object just went away."""
    for pattern, _name in reversed(_ROUTES + _V2_ROUTES):
        match = pattern.fullmatch(path)
        if match is None or not match.groups():
            continue
        names = match.groups()
        if "/streams/" in path and len(names) == 3:
            return _stream_not_found(*names)
        if len(names) >= 2:
            return f"Could not find the application: [{names[0]}/{names[1]}]"
        return f"Could not find the virtual host: [{names[0]}]"
    return _NOT_FOUND


class _Faults(_Api):
    """``Simulator``'s fault scripting and the request path that applies it (see ``_SimClock``)."""

    _faults: list[_Fault]
    _huge_padding: bytes | None
    _requests: deque[tuple[str, str]]

    def set_fault(
        self,
        kind: str,
        *,
        path: str | None = None,
        times: int | None = None,
        delay: float = 0.0,
    ) -> None:
        """Make API requests misbehave.

        ``path`` is a substring of the request path (None: every API path); ``times`` how
        many matching requests are affected (None: until ``clear_faults``); ``delay`` the
        real seconds a ``"slow"`` reply waits.  When several faults match, the one set
        first applies.  Faults hit every method and are applied before authentication,
        except that ``slow`` delays, and ``truncated``/``wrong_types``/``huge`` reshape,
        whatever the normal answer would have been.

        Two are what OME 0.18 does when stopped (SIGTERM): ``shutting_down`` is its last
        30-200 ms, when ``/v1/vhosts`` answers ``200 []`` and everything below it 404
        "Could not find the virtual host" (``/v1/stats/current`` still answers); ``hang``
        accepts the request and never answers, as OME did on 1 of 4 stops (``stop()``
        is the other ending: connection refused).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; use one of {sorted(FAULT_KINDS)}")
        if times is not None and int(times) < 1:
            raise ValueError("times must be >= 1 or None")
        if delay < 0:
            raise ValueError("delay must be >= 0")
        with self._lock:
            self._faults.append(
                _Fault(kind, path, None if times is None else int(times), float(delay))
            )

    def clear_faults(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    # ----------------------------------------------------------------- the request path

    def _receive(self, method: str, path: str) -> _Fault | None:
        """Log an API request and pick the fault that applies to it, if any."""
        with self._lock:
            self._requests.append((method, path))
            for index, fault in enumerate(self._faults):
                if fault.path is None or fault.path in path:
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            del self._faults[index]
                    return fault
        return None

    def _handle(
        self, method: str, path: str, headers: Mapping[str, str], fault: _Fault | None
    ) -> _Reply | None:
        """Answer one API request; None means "drop the connection without a reply"."""
        if fault is not None:
            kind = fault.kind
            if kind == "drop":
                return None
            if kind == "500":
                return _error(500, "Internal Server Error")
            if kind == "html":
                return _Reply(502, raw=_NGINX_502, content_type="text/html", server="nginx")
            if kind == "garbage":
                return _Reply(200, raw=_GARBAGE)
            if kind == "vanish":
                return _error(404, _vanish_text(path))
            if kind == "shutting_down" and path.startswith(
                ("/v1/vhosts", "/v1/stats/current/", "/v2/")
            ):
                # OME 0.18 for 30-200 ms after SIGTERM: no vhosts, and 404 below them
                reply = self._answer(method, path, headers)
                if reply.status in (401, 403) or path == "/v1/vhosts":
                    return _ok([]) if reply.status == 200 else reply
                vhost = path.split("/vhosts/", 1)[-1].split("/", 1)[0]
                return _error(404, f"Could not find the virtual host: [{vhost}]")
        reply = self._answer(method, path, headers)
        if fault is not None:
            self._reshape(fault.kind, reply)
        return reply

    def _reshape(self, kind: str, reply: _Reply) -> None:
        if kind == "wrong_shape":
            reply.status = 200
            reply.raw = _dumps([reply.payload] if reply.has_payload else [])
        elif kind == "wrong_types" and reply.has_payload:
            reply.payload = _mangle_types(reply.payload)
        elif kind == "truncated":
            body = reply.body()
            reply.body_override = body[: len(body) // 2]
        elif kind == "huge":
            reply.body_override = self._huge_body(reply)

    def _huge_body(self, reply: _Reply) -> bytes:
        if self._huge_padding is None:
            self._huge_padding = b'"' + b"x" * _HUGE_BYTES + b'"'
        parts = [b'{"message":', _dumps(reply.message), b',"padding":', self._huge_padding]
        if reply.has_payload:
            parts += [b',"response":', _dumps(reply.payload)]
        parts += [b',"statusCode":', str(reply.status).encode(), b"}"]
        return b"".join(parts)
