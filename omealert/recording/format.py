"""The recording file: what ``omealert record`` writes and ``replay`` and rule tests read.

A recording is gzip-compressed JSON Lines, written to a temporary file next to the target,
fsynced and renamed into place, so a crash or Ctrl-C never leaves half a file under the
final name. Lines, in order::

    {"type": "header", "format": "omealert-recording", "version": 1, "created": T,
     "interval": 10.0, "servers": [{"name": "origin-1", "api_version": "v1"}],
     "accept_encoding": "identity"}
    {"type": "tick", "at": T}             one per polling round, T on the interval grid
    {"type": "poll", "server": "origin-1", "at": T, "requests": 7, "error": null}
    {"type": "response", "server": "origin-1", "at": T, "path": "/v1/vhosts",
     "status": 200, "headers": {...}, "body": "..."}          ("body_b64" if not UTF-8)
    {"type": "response", ..., "error": "NoConnection", "message": "..."}   no answer

Paths are relative to the server's configured URL, so a recording replays against a config
whose URLs differ. No request header is kept (the access token travels in one), and the
token and its base64 form are replaced by ``***`` in error messages. Answers are kept as
the client got them, headers with lower-case names and without ``set-cookie``.

A GET that got no answer is kept under the name of the failure the client's HTTP stack
(``ome.http``) raised, so a replay fails it the same way and ``ome.api`` classifies it as it
did live:

``TimeoutError``    no complete answer within the server's ``timeout``
``NoConnection``    could not connect (refused, unresolvable, TLS handshake failed)
``BadCertificate``  could not connect: the certificate failed verification; ``message`` is
                    OpenSSL's reason and ``verify_code`` its ``X509_V_ERR_*`` number, which
                    decides the hint the error gives
``Broken``          the connection closed or broke before any answer
``BrokenAnswer``    the connection closed or broke partway through an answer
``Garbled``         what came back is not HTTP (status line, header, length or chunk)
``TooLarge``        the answer is larger than the client reads

Files written before ``record`` used omealert's own HTTP stack name httpx's exceptions
instead (``ReadTimeout``, ``ConnectError``, ``RemoteProtocolError``, ...). They replay as
httpx classified them then: a name ending in ``Timeout`` as ``TimeoutError``,
``ConnectError`` as ``NoConnection``, any other name as ``Broken``. Those files also lack
``accept_encoding``: their client asked for ``gzip, deflate`` and undid a
``Content-Encoding``, so replay undoes it for them, while bodies recorded with
``"accept_encoding": "identity"`` are replayed exactly as they came. Neither needed a new
``VERSION``: a reader of version 1 ignores keys it does not know.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import json
import os
import ssl
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from ..errors import OmealertError
from ..ome.http import MAX_BODY_BYTES, Broken, Garbled, NoConnection, TooLarge

__all__ = [
    "FORMAT",
    "IDENTITY",
    "VERSION",
    "AtomicGzipLines",
    "RecordedPoll",
    "RecordedResponse",
    "RecordedTick",
    "RecordingError",
    "RecordingHeader",
    "RecordingReader",
    "failure_record",
    "replayed_failure",
]

FORMAT = "omealert-recording"
VERSION = 1
#: ``accept_encoding`` of a recording whose bodies are exactly what the client got
IDENTITY = "identity"
#: what httpx, which recorded the files that have no ``accept_encoding``, asked for
_HTTPX_ACCEPT_ENCODING = "gzip, deflate"
#: the longest line read: a response's body (at most MAX_BODY_BYTES, each byte at most
#: six characters once JSON-escaped) and room for the rest; no recording writes a longer
#: one, and without a limit one endless line of a small gzip file would fill the memory
_MAX_LINE_CHARS = 6 * MAX_BODY_BYTES + 1024 * 1024


class RecordingError(OmealertError):
    """A recording that cannot be read; the message starts with FILE:LINE:COL."""

    def __init__(self, file: str, line: int, message: str) -> None:
        self.file = file
        self.line = line
        self.message = message
        super().__init__(f"{file}:{line}:1: {message}")


# -- the data ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordingHeader:
    created: float
    interval: float
    servers: tuple[str, ...]
    #: what the recording client asked for; anything but ``IDENTITY`` means replay undoes
    #: a ``Content-Encoding`` as that client did
    accept_encoding: str = IDENTITY


@dataclass(slots=True)
class RecordedResponse:
    """One answer (or the transport error instead of one) to a GET of ``path``."""

    at: float
    path: str
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None  # the failure's name (see the module docstring) if no answer came
    message: str = ""
    verify_code: int | None = None  # BadCertificate's X509_V_ERR_* number

    def to_json(self, server: str) -> dict[str, Any]:
        line: dict[str, Any] = {"type": "response", "server": server, "at": self.at}
        line["path"] = self.path
        if self.error is not None:
            line["error"] = self.error
            line["message"] = self.message
            if self.verify_code is not None:
                line["verify_code"] = self.verify_code
            return line
        line["status"] = self.status
        line["headers"] = self.headers
        try:
            line["body"] = self.body.decode("utf-8")
        except UnicodeDecodeError:
            line["body_b64"] = base64.b64encode(self.body).decode("ascii")
        return line


@dataclass(slots=True)
class RecordedPoll:
    server: str
    at: float
    responses: list[RecordedResponse] = field(default_factory=list)


@dataclass(slots=True)
class RecordedTick:
    at: float
    polls: list[RecordedPoll] = field(default_factory=list)


# -- failures --------------------------------------------------------------------------------


def failure_record(exc: Exception) -> tuple[str, str, int | None] | None:
    """How a recording keeps a failure of ``Getter.get``: name, message (unscrubbed) and
    ``verify_code``; None for anything that is not one of ``ome.http``'s failures."""
    if isinstance(exc, TimeoutError):
        return "TimeoutError", "", None
    if isinstance(exc, NoConnection):
        cert = exc.certificate
        if cert is not None:
            what = cert.verify_message or cert.reason or str(cert)
            return "BadCertificate", what, cert.verify_code
        return "NoConnection", exc.detail, None
    if isinstance(exc, Broken):
        return ("BrokenAnswer" if exc.answered else "Broken"), exc.detail, None
    if isinstance(exc, Garbled):
        return "Garbled", exc.detail, None
    if isinstance(exc, TooLarge):
        return "TooLarge", "", None
    return None


def replayed_failure(response: RecordedResponse) -> Exception:
    """The failure to raise for an error record, as the live stack raised it."""
    name, message = response.error or "", response.message
    if name == "TimeoutError":
        return TimeoutError()
    if name == "NoConnection":
        return NoConnection(message)
    if name == "BadCertificate":
        cert = ssl.SSLCertVerificationError(message)
        cert.verify_code = response.verify_code or 0
        cert.verify_message = message
        return NoConnection(message, cert)
    if name in ("Broken", "BrokenAnswer"):
        return Broken(message, answered=name == "BrokenAnswer")
    if name == "Garbled":
        return Garbled(message)
    if name == "TooLarge":
        return TooLarge()
    # httpx's names, from files recorded through it, as its getter classified them; and
    # a name from a newer omealert
    if name.endswith("Timeout"):  # ReadTimeout, ConnectTimeout, WriteTimeout, PoolTimeout
        return TimeoutError()
    if name == "ConnectError":
        return NoConnection(message or name)
    return Broken(message or name, answered=False)  # ReadError, RemoteProtocolError, ...


# -- writing -----------------------------------------------------------------------------------


class AtomicGzipLines:
    """JSON lines into ``<dir>/.<name>.*.tmp``, moved to ``path`` only by ``commit``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self.tmp = Path(tmp)
        self._raw: IO[bytes] = os.fdopen(fd, "wb")
        self._gz = gzip.GzipFile(filename=path.name, mode="wb", fileobj=self._raw, mtime=0)
        self.bytes = 0

    def write(self, obj: dict[str, Any]) -> None:
        data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        self._gz.write(data)
        self.bytes += len(data)

    def commit(self) -> None:
        self._gz.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        os.replace(self.tmp, self.path)
        with contextlib.suppress(OSError):  # not every file system lets a directory be fsynced
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._gz.close()
        with contextlib.suppress(OSError):
            self._raw.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink()


# -- reading -----------------------------------------------------------------------------------


class RecordingReader:
    """Reads a recording lazily, one polling round at a time; use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._line = 0
        try:
            raw = gzip.open(self.path, "rb")  # noqa: SIM115 - closed by close()
            self._file: TextIO = io.TextIOWrapper(raw, encoding="utf-8")
        except OSError as exc:
            raise RecordingError(self.path, 1, f"cannot open: {exc.strerror or exc}") from None
        try:
            first = self._next()
        except BaseException:
            self.close()
            raise
        if first is None or first.get("type") != "header" or first.get("format") != FORMAT:
            self.close()
            raise RecordingError(self.path, 1, "not an omealert recording (no header line)")
        if first.get("version") != VERSION:
            self.close()
            raise RecordingError(
                self.path, 1, f"recording format version {first.get('version')} is not supported"
            )
        try:
            servers = tuple(str(s["name"]) for s in first["servers"])
            self.header = RecordingHeader(
                float(first["created"]),
                float(first["interval"]),
                servers,
                str(first.get("accept_encoding", _HTTPX_ACCEPT_ENCODING)),
            )
        except (KeyError, TypeError, ValueError):
            self.close()
            raise RecordingError(self.path, 1, "the header line is incomplete") from None
        self._pending: dict[str, Any] | None = None

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def _next(self) -> dict[str, Any] | None:
        try:
            text = self._file.readline(_MAX_LINE_CHARS)
        except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
            reason = "the file ends early (truncated)" if isinstance(exc, EOFError) else str(exc)
            raise RecordingError(self.path, self._line + 1, f"unreadable: {reason}") from None
        if not text:
            return None
        self._line += 1
        if len(text) == _MAX_LINE_CHARS and not text.endswith("\n"):
            limit = _MAX_LINE_CHARS // (1024 * 1024)
            reason = f"a line longer than {limit} MiB: not one omealert writes"
            raise RecordingError(self.path, self._line, reason)
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            raise RecordingError(self.path, self._line, "not a JSON line") from None
        if not isinstance(obj, dict):
            raise RecordingError(self.path, self._line, "expected a JSON object")
        return obj

    def ticks(self) -> Iterator[RecordedTick]:
        """Every polling round, in order, with its polls and their answers."""
        tick: RecordedTick | None = None
        poll: RecordedPoll | None = None
        while (obj := self._next()) is not None:
            kind = obj.get("type")
            try:
                if kind == "tick":
                    if tick is not None:
                        yield tick
                    tick, poll = RecordedTick(float(obj["at"])), None
                elif kind == "poll":
                    if tick is None:
                        raise RecordingError(self.path, self._line, "a poll before any tick")
                    poll = RecordedPoll(str(obj["server"]), float(obj["at"]))
                    tick.polls.append(poll)
                elif kind == "response":
                    if poll is None:
                        raise RecordingError(self.path, self._line, "a response before any poll")
                    poll.responses.append(_response(obj))
                # other types are from a newer omealert: skip them
            except (KeyError, TypeError, ValueError) as exc:
                raise RecordingError(
                    self.path, self._line, f"incomplete {kind} line ({exc})"
                ) from None
        if tick is not None:
            yield tick


def _response(obj: dict[str, Any]) -> RecordedResponse:
    at, path = float(obj["at"]), str(obj["path"])
    if obj.get("error") is not None:
        code = obj.get("verify_code")
        return RecordedResponse(
            at,
            path,
            error=str(obj["error"]),
            message=str(obj["message"]),
            verify_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        )
    if "body_b64" in obj:
        body = base64.b64decode(obj["body_b64"])
    else:
        body = str(obj["body"]).encode("utf-8")
    headers = {str(k): str(v) for k, v in dict(obj["headers"]).items()}
    return RecordedResponse(at, path, int(obj["status"]), headers, body)
