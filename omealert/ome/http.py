"""What the HTTP stacks under ``OmeClient`` share: the answer, the failures, TLS settings.

There are two stacks: ``ome.wire`` (plain asyncio, the default; ``record`` wraps it and
``replay`` stands in for it through the same ``Getter`` protocol) and ``ome.via_httpx`` (httpx:
``http_client: httpx``, and the mock transports of tests; httpx is imported only then).
Both do the same thing, a GET of a path below the server's URL with a bounded body, and
report what went wrong in the same few terms (``TimeoutError``, ``TooLarge``,
``NoConnection``, ``Broken``, ``Garbled``), so what an answer or a failure means is decided
once, in ``ome.api``, whichever stack ran.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import NamedTuple, Protocol

from ..rules import ServerSpec

__all__ = [
    "MAX_BODY_BYTES",
    "Answer",
    "Broken",
    "Garbled",
    "Getter",
    "NoConnection",
    "TooLarge",
    "certificate_error",
    "client_context",
    "tls_context",
]

#: Largest answer read before giving up on it; a listing of 100k streams is ~3 MB.
MAX_BODY_BYTES = 16 * 1024 * 1024


class TooLarge(Exception):
    pass


class NoConnection(Exception):
    """The server could not be reached at all (refused, unresolvable, TLS failed);
    ``certificate`` when its certificate failed verification."""

    def __init__(
        self, detail: str, certificate: ssl.SSLCertVerificationError | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.certificate = certificate


def certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind ``exc``, if that is what it is."""
    seen: BaseException | None = exc
    for _ in range(8):  # exceptions wrap each other a few levels deep, never in a cycle
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class Broken(Exception):
    """The exchange broke: before any answer, or (``answered``) partway through the body."""

    def __init__(self, detail: str, *, answered: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.answered = answered


class Garbled(Exception):
    """What came back is not HTTP: a bad status line, header, length or chunk."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Answer(NamedTuple):
    status: int
    headers: Mapping[str, str]  # looked up by lower-case names
    body: bytes


class Getter(Protocol):
    """One HTTP stack under the client: a GET of a path below the server's URL, and closing.

    ``get`` raises ``TimeoutError`` when the whole exchange, body included, takes longer
    than the server's ``timeout``; the stack enforces it, since a second timer per request
    around it would cost as much again.
    """

    async def get(self, path: str) -> Answer: ...

    async def aclose(self) -> None: ...


def tls_context(server: ServerSpec) -> ssl.SSLContext | bool:
    if server.ca_file:
        return ssl.create_default_context(cafile=server.ca_file)
    return server.verify_tls


def client_context(tls: ssl.SSLContext | bool) -> ssl.SSLContext:
    """``tls`` as a context: as given, the system's CAs for ``True``, no checks for
    ``False``. Built when first needed: loading the system's CAs takes tens of ms."""
    if isinstance(tls, ssl.SSLContext):
        return tls
    if tls:
        return ssl.create_default_context()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
