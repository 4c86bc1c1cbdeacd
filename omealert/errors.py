"""Every error omealert raises on purpose derives from one base, so callers can catch them all.

    OmealertError
     ├── ConfigError        one or more FILE:LINE:COL problems in a config or test file
     ├── ExprError          a condition that does not parse or type-check (offset inside the text)
     ├── SourceError        an OME server could not be read (kind says why)
     ├── DeliveryError      a channel did not take a message (recoverable or not)
     └── StateError         the state database cannot be used

The CLI catches ``OmealertError`` and turns it into an exit code; anything else is a bug.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

#: Characters that must not reach a terminal, a log line or a message from outside text:
#: C0 and C1 controls (ESC starts terminal escapes, CR rewrites a log line, NUL cuts it),
#: DEL, the Unicode line and paragraph separators, and the bidirectional overrides.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` (from OME, or anyone on its path) with every control and escape character
    replaced by U+FFFD, so that it shows as what it is wherever it is logged or sent."""
    return _UNPRINTABLE.sub("\ufffd", text)


class OmealertError(Exception):
    """Base of every error omealert raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a file, pointing at the character that is wrong (1-based line and column)."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class ConfigError(OmealertError):
    """A config (or rule test) file is invalid; carries every problem found, not just the first."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.file, i.line, i.col, i.message))
        super().__init__("\n".join(str(i) for i in self.issues))


class ExprError(OmealertError):
    """A condition is malformed; ``offset`` is the 0-based character index inside the expression."""

    def __init__(self, message: str, offset: int = 0) -> None:
        self.message = message
        self.offset = offset
        super().__init__(f"{message} (at column {offset + 1} of the expression)")


class SourceErrorKind(enum.StrEnum):
    """Why a server could not be read. Values appear in logs, metrics and check output."""

    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"
    SERVER_ERROR = "server_error"
    BAD_RESPONSE = "bad_response"


class SourceError(OmealertError):
    """An OME server did not give a usable answer. The message never contains the token."""

    def __init__(self, server: str, kind: SourceErrorKind, path: str, reason: str) -> None:
        self.server = server
        self.kind = kind
        self.path = path
        self.reason = printable(reason)  # it quotes what OME said
        super().__init__(f"{server}: {kind.value} on GET {path}: {self.reason}")


class DeliveryError(OmealertError):
    """A channel did not accept a message. ``recoverable`` says whether retrying can help."""

    def __init__(self, channel: str, reason: str, *, recoverable: bool = True) -> None:
        self.channel = channel
        self.reason = reason
        self.recoverable = recoverable
        super().__init__(f"channel {channel}: {reason}")


class StateError(OmealertError):
    """The state database cannot be opened, read or written."""
