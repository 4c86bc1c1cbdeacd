"""An answer before it becomes bytes, and JSON printed the way OME's jsoncpp prints it.

Replies stay structured until the last moment so that faults can still reshape them. The
envelope is ``{"message","response","statusCode"}``, compact with sorted keys.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any, Final

_JSON_TYPE: Final = "application/json;charset=UTF-8"


def _dumps(value: Any) -> bytes:
    """jsoncpp's output: compact, keys sorted, non-ASCII escaped, C floats as ``_c_float`` says."""
    data = json.dumps(value, sort_keys=True, separators=(",", ":")).encode("ascii")
    if b"\\u0000" in data:
        data = data.replace(b'"\\u0000', b"").replace(b'\\u0000"', b"")
    return data


def _c_float(value: float) -> str:
    """A C ``float`` field as jsoncpp prints it: widened to double, ``%.17g``, ``.0`` if integral.

    Python's shortest round-trip repr differs from ``%.17g`` for many C floats (199.998 is
    ``199.99800109863281`` here, ``199.9980010986328`` in Python), so the number travels
    as a NUL-marked string that ``_dumps`` unwraps into a bare JSON number.
    """
    widened: float = struct.unpack("<f", struct.pack("<f", value))[0]
    text = format(widened, ".17g")
    if "." not in text and "e" not in text and math.isfinite(widened):
        text += ".0"
    return f"\x00{text}\x00"


@dataclass(slots=True)
class _Reply:
    """An answer before it is turned into bytes, so faults can still reshape it."""

    status: int
    message: str = "OK"
    payload: Any = None
    has_payload: bool = False
    headers: list[tuple[str, str]] = field(default_factory=list)
    raw: bytes | None = None  # a non-envelope body (HTML, garbage, control replies)
    content_type: str = _JSON_TYPE
    server: str = "OvenMediaEngine"
    body_override: bytes | None = None

    def body(self) -> bytes:
        if self.body_override is not None:
            return self.body_override
        if self.raw is not None:
            return self.raw
        envelope: dict[str, Any] = {"message": self.message, "statusCode": self.status}
        if self.has_payload:
            envelope["response"] = self.payload
        return _dumps(envelope)


def _ok(payload: Any) -> _Reply:
    return _Reply(200, payload=payload, has_payload=True)


def _error(status: int, text: str) -> _Reply:
    return _Reply(status, message=f"[HTTP] {text} ({status})")
