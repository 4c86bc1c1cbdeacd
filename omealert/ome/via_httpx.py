"""httpx under ``OmeClient``: ``http_client: httpx``, and the ``httpx.MockTransport`` of tests.

Kept apart from ``ome.http`` so that httpx is imported only by a server or a test that uses it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping

import httpx

from ..rules import ServerSpec
from .http import (
    MAX_BODY_BYTES,
    Answer,
    Broken,
    NoConnection,
    TooLarge,
    certificate_error,
    client_context,
)

__all__ = ["HttpxGetter", "own_transport"]


def own_transport(server: ServerSpec, tls: ssl.SSLContext | bool) -> httpx.AsyncHTTPTransport:
    """httpx's own connection pool with the server's TLS settings and request limit, for
    ``http_client: httpx``. Proxies from the environment are not used, as with omewire."""
    limit = max(1, server.max_in_flight)
    return httpx.AsyncHTTPTransport(
        verify=client_context(tls),
        limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
        trust_env=False,
    )


class HttpxGetter:
    """httpx over an injected transport (a mock, or httpx's own pool in a benchmark)."""

    def __init__(
        self,
        base: str,
        headers: Mapping[str, str],
        limit: int,
        transport: httpx.AsyncBaseTransport,
        timeout: float,
    ) -> None:
        self._base = base
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            headers=dict(headers),
            timeout=None,  # asyncio.timeout in get() covers the whole exchange
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
            transport=transport,
            follow_redirects=False,
        )

    async def get(self, path: str) -> Answer:
        url = self._base + path
        answered = False
        try:
            async with asyncio.timeout(self._timeout), self._http.stream("GET", url) as response:
                answered = True
                body = await _read_httpx(response)
                return Answer(response.status_code, response.headers, body)
        except httpx.ConnectError as exc:
            raise NoConnection(str(exc), certificate_error(exc)) from None
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.HTTPError as exc:
            raise Broken(str(exc) or type(exc).__name__, answered=answered) from None

    async def aclose(self) -> None:
        await self._http.aclose()


async def _read_httpx(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)
