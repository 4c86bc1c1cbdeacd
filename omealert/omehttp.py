"""The HTTP stacks under ``OmeClient``: aiohttp by default, or an injected httpx transport.

The httpx one lives in ``omehttpx`` and is imported only when a transport is injected
(tests, replay), so a watcher or a ``check`` never pays for importing httpx.

Both do the same thing, a GET of an absolute URL with a bounded body, and report what went
wrong in the same few terms (``TimeoutError``, ``TooLarge``, ``NoConnection``, ``Broken``),
so what an answer or a failure means is decided once, in ``omeapi``, whichever stack ran.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import NamedTuple, Protocol

import aiohttp
from yarl import URL

from .rules import ServerSpec

__all__ = [
    "MAX_BODY_BYTES",
    "AiohttpGetter",
    "Answer",
    "Broken",
    "Getter",
    "NoConnection",
    "TooLarge",
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


class Answer(NamedTuple):
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes


class Getter(Protocol):
    """One HTTP stack under the client: a GET of an absolute URL, and closing.

    ``get`` raises ``TimeoutError`` when the whole exchange, body included, takes longer
    than the server's ``timeout``; the stack enforces it, since a second timer per request
    around it would cost as much again.
    """

    async def get(self, url: str) -> Answer: ...

    async def aclose(self) -> None: ...


def tls_context(server: ServerSpec) -> ssl.SSLContext | bool:
    if server.ca_file:
        return ssl.create_default_context(cafile=server.ca_file)
    return server.verify_tls


class AiohttpGetter:
    """aiohttp with one keep-alive pool of ``limit`` connections.

    The session is opened on first use because aiohttp binds it to the running event loop,
    and an ``OmeClient`` may be built before the loop that polls with it is running.
    """

    def __init__(
        self, headers: Mapping[str, str], limit: int, tls: ssl.SSLContext | bool, timeout: float
    ) -> None:
        self._headers = dict(headers)
        self._limit = limit
        self._tls = tls
        # total: connecting, sending and reading the whole body. aiohttp rounds deadlines
        # of 5 s and more up to a whole second unless told otherwise.
        self._timeout = aiohttp.ClientTimeout(total=timeout, ceil_threshold=float("inf"))
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._limit, ssl=self._tls)
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            timeout=self._timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self._session

    async def get(self, url: str) -> Answer:
        session = self._session or self._open()
        try:
            # encoded=True: the path is quoted already; yarl must not quote it again
            async with session.get(URL(url, encoded=True), allow_redirects=False) as response:
                try:
                    body = await _read_aiohttp(response)
                except TimeoutError:
                    raise
                except aiohttp.ClientError as exc:
                    raise Broken(str(exc) or type(exc).__name__, answered=True) from None
                return Answer(response.status, response.headers, body)
        except TimeoutError:  # aiohttp's ServerTimeoutError is a ClientError too
            raise TimeoutError from None
        except aiohttp.ClientConnectorError as exc:
            # a failed certificate check is a ClientConnectorCertificateError carrying it
            cause = getattr(exc, "certificate_error", None) or exc
            raise NoConnection(str(exc), certificate_error(cause)) from None
        except aiohttp.ClientError as exc:
            raise Broken(str(exc) or type(exc).__name__, answered=False) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_aiohttp(response: aiohttp.ClientResponse) -> bytes:
    length = response.content_length
    if length is not None:
        if length > MAX_BODY_BYTES:
            raise TooLarge
        return await response.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)
