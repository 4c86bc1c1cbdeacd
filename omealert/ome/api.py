"""One OME server's REST API as a poll sees it: authenticated GETs and what each answer means.

Every answer is sorted here, whichever HTTP stack carried it: OME's ``{statusCode, message,
response}`` envelope is unwrapped, and anything else becomes a ``SourceError`` saying what
went wrong and, where one fixes it, which setting to change (a rejected token, a wrong
``api_version``, a certificate). ``server_wide`` marks failures no other request to the same
server can do better on. No message ever contains the access token.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from ..errors import SourceError, SourceErrorKind
from ..rules import ServerSpec
from .http import (
    MAX_BODY_BYTES,
    Answer,
    Broken,
    Garbled,
    Getter,
    NoConnection,
    TooLarge,
    tls_context,
)
from .wire import WireGetter

if TYPE_CHECKING:
    import httpx

__all__ = ["Failed", "Missing", "OmeApi", "PollRun", "default_getter", "server_secrets"]

_MISSING = re.compile(r"Could not find the (virtual host|application|stream)")
#: OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH
_NAME_MISMATCH = frozenset({62, 64})
#: OpenSSL's X509_V_ERR_CERT_HAS_EXPIRED
_CERT_HAS_EXPIRED = 10


class Failed(Exception):
    """A request failed; ``server_wide`` when no other request to this server can do better."""

    def __init__(self, error: SourceError, *, server_wide: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.server_wide = server_wide


class Missing(Exception):
    """OME answered 404 for a named vhost, app or stream: it does not exist (any more).

    ``what`` is which of them OME could not find: a stream's stats can answer "Could not
    find the virtual host" when the vhost went away, and then so did the stream's app."""

    def __init__(self, message: str, what: str = "stream") -> None:
        super().__init__(message)
        self.what = what


@dataclass(slots=True)
class PollRun:
    """Bookkeeping of one poll: request count, the first ``Date`` header seen, and what
    the breaker and the deadline report."""

    at: float
    started: float
    requests: int = 0
    date_offset: float | None = None
    last_path: str = "/v1/vhosts"
    #: requests in a row without an answer, split by how they ended
    timed_out: int = 0
    dropped: int = 0
    #: targets to fetch (None while still listing) and how many of them are done
    targets: int | None = None
    fetched: int = 0


def server_secrets(server: ServerSpec) -> tuple[str, ...]:
    """The access token and its base64 form (what the ``Authorization`` header carries):
    the texts no message, log line or recording may contain."""
    if not server.access_token:
        return ()
    encoded = base64.b64encode(server.access_token.encode()).decode("ascii")
    return (server.access_token, encoded)


def _request_headers(server: ServerSpec) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": "omealert"}
    if server.access_token:
        headers["Authorization"] = f"Basic {server_secrets(server)[1]}"
    return headers


def default_getter(server: ServerSpec) -> Getter:
    """The HTTP stack a live poll of ``server`` uses: ``ome.wire`` with Basic auth, at most
    ``max_in_flight`` connections, its TLS settings and ``timeout``. ``record`` wraps this
    very stack, so a recording holds what the live client would have seen.

    ``http_client: httpx`` swaps in httpx's own transport with the same settings: about 25
    times the CPU per request, but a mature stack to fall back on should the built-in one
    ever misread a server or a proxy in front of it."""
    tls = tls_context(server)
    if server.http_client == "httpx":
        from .via_httpx import own_transport

        return _httpx_getter(server, own_transport(server, tls))
    base, headers = server.url.rstrip("/"), _request_headers(server)
    return WireGetter(base, headers, max(1, server.max_in_flight), tls, server.timeout_s)


def _httpx_getter(server: ServerSpec, transport: httpx.AsyncBaseTransport) -> Getter:
    """httpx over ``transport`` with the server's URL, headers, limit and timeout; httpx is
    imported only here, for ``http_client: httpx`` and the mock transports of tests."""
    from .via_httpx import HttpxGetter

    base, headers = server.url.rstrip("/"), _request_headers(server)
    return HttpxGetter(base, headers, max(1, server.max_in_flight), transport, server.timeout_s)


class OmeApi:
    """GETs to one OME server: keep-alive, Basic auth, bounded concurrency.

    By default requests go through ``ome.wire``'s plain-asyncio HTTP/1.1, which
    ``bench/bench_poll.py`` measured at about a third of aiohttp's CPU per request (and
    aiohttp at a tenth of httpx's own async transport) for thousands of small keep-alive
    GETs. An injected ``getter`` is used as it is (``record`` wraps the default stack in
    one that keeps a copy, ``replay`` answers from a recording); an injected httpx
    ``transport`` lets tests and benchmarks put ``httpx.MockTransport`` in between. Errors
    are classified the same way whichever stack ran.
    """

    def __init__(
        self,
        server: ServerSpec,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        getter: Getter | None = None,
    ) -> None:
        if transport is not None and getter is not None:
            raise ValueError("pass an httpx transport or a getter, not both")
        self.server = server
        self.name = server.name
        self._base = server.url.rstrip("/")
        self._timeout = server.timeout_s
        # With one request in flight, two in a row: one slow stream stays its own error.
        self._breaker = max(2, server.max_in_flight)
        self._limit = asyncio.Semaphore(max(1, server.max_in_flight))
        self._secrets = server_secrets(server)
        self._http: Getter
        if getter is not None:
            self._http = getter
        elif transport is None:
            self._http = default_getter(server)
        else:
            self._http = _httpx_getter(server, transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get(self, run: PollRun, path: str, *, absent_ok: bool = False) -> Any:
        """GET ``path`` and return the ``response`` of OME's envelope, or raise.

        With ``absent_ok`` any 404 is ``Missing`` ("publisher"): an app's ``:records``
        answers so when the app has no File publisher, which is none, not an error."""
        async with self._limit:
            run.requests += 1
            run.last_path = path
            status, headers, body = await self._send(run, path)
        if run.date_offset is None and "date" in headers:
            self._note_date(run, headers)
        envelope: Any = None
        try:
            envelope = json.loads(body)
        except (ValueError, RecursionError):
            # ValueError: not JSON, not UTF-8, or an integer past Python's 4,300 digits;
            # RecursionError: nested deeper than the decoder goes (``[[[[...``), which
            # would otherwise escape the poll and stop the watcher.
            envelope = None
        message = ""
        if isinstance(envelope, dict) and isinstance(envelope.get("message"), str):
            message = self._scrub(envelope["message"])[:200]
        if status in (401, 403):
            raise Failed(self._unauthorized(path, status, message), server_wide=True)
        if status == 404:
            if absent_ok:
                raise Missing(message, "publisher")
            if (found := _MISSING.search(message)) is not None:
                raise Missing(message, found.group(1))
            reason = f"HTTP 404 {message or 'without an OME message'}: wrong URL or api_version?"
            raise Failed(self.error(SourceErrorKind.NOT_FOUND, path, reason), server_wide=True)
        if status >= 500:
            reason = f"HTTP {status}" + (f": {message}" if message else "")
            if envelope is None:  # e.g. a proxy's error page in front of OME
                ctype = headers.get("content-type", "no content type")
                reason += f", a {ctype} body from {headers.get('server', 'an unnamed server')}"
            raise Failed(self.error(SourceErrorKind.SERVER_ERROR, path, reason))
        if status != 200:
            reason = f"unexpected HTTP {status}" + (f": {message}" if message else "")
            raise Failed(self.error(SourceErrorKind.BAD_RESPONSE, path, reason))
        if envelope is None:
            ctype = headers.get("content-type", "no content type")
            reason = f"the answer is not JSON ({ctype}, {len(body)} bytes)"
            raise Failed(self.error(SourceErrorKind.BAD_RESPONSE, path, reason))
        code = envelope.get("statusCode") if isinstance(envelope, dict) else None
        if not isinstance(code, int) or isinstance(code, bool) or "response" not in envelope:
            reason = "the answer is JSON but not OME's {statusCode, message, response} envelope"
            raise Failed(self.error(SourceErrorKind.BAD_RESPONSE, path, reason))
        if code != 200:
            reason = f"HTTP 200 but the body says statusCode {code}"
            raise Failed(self.error(SourceErrorKind.BAD_RESPONSE, path, reason))
        return envelope["response"]

    async def _send(self, run: PollRun, path: str) -> Answer:
        """One GET within the timeout; transport failures become ``Failed``."""
        try:
            answer = await self._http.get(path)
        except TimeoutError:
            run.timed_out += 1
            reason = f"no complete answer within {self._timeout:g}s"
            raise self._unanswered(run, SourceErrorKind.TIMEOUT, path, reason) from None
        except TooLarge:
            reason = f"the answer is larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB"
            raise Failed(self.error(SourceErrorKind.BAD_RESPONSE, path, reason)) from None
        except Garbled as exc:
            reason = f"the answer is not valid HTTP: {self._scrub(exc.detail)}"
            raise Failed(self.error(SourceErrorKind.BAD_RESPONSE, path, reason)) from None
        except NoConnection as exc:
            if exc.certificate is not None:
                detail = self._certificate_problem(exc.certificate)
            else:
                detail = self._scrub(exc.detail) or "refused"
            reason = f"cannot connect to {self._base}: {detail}"
            raise Failed(
                self.error(SourceErrorKind.UNREACHABLE, path, reason), server_wide=True
            ) from None
        except Broken as exc:
            detail = self._scrub(exc.detail)
            if exc.answered:
                reason = f"the answer was cut off: {detail}"
                raise Failed(self.error(SourceErrorKind.BAD_RESPONSE, path, reason)) from None
            run.dropped += 1
            reason = f"the connection closed without an answer: {detail}"
            raise self._unanswered(run, SourceErrorKind.UNREACHABLE, path, reason) from None
        run.timed_out = run.dropped = 0
        return answer

    def _unanswered(self, run: PollRun, kind: SourceErrorKind, path: str, reason: str) -> Failed:
        """A request that got no answer fails itself, until ``max_in_flight`` in a row did:
        then every request slot was taken by one that hung, the API as a whole is not
        answering, and the poll stops. Waiting out ``timeout`` for thousands of streams in
        turn would hold up the poll, and with it every tick, for minutes."""
        unanswered = run.timed_out + run.dropped
        if unanswered < self._breaker:
            return Failed(self.error(kind, path, reason))
        if not run.dropped:
            reason = f"{unanswered} requests in a row timed out after {self._timeout:g}s"
        elif not run.timed_out:
            reason = f"{unanswered} requests in a row closed without an answer"
        else:
            reason = (
                f"{unanswered} requests in a row got no answer ({run.timed_out} timed out "
                f"after {self._timeout:g}s, {run.dropped} closed without one)"
            )
        if run.timed_out:
            kind, reason = SourceErrorKind.TIMEOUT, reason + "; OME's API is hanging"
        else:
            kind, reason = SourceErrorKind.UNREACHABLE, reason + "; OME's API is not answering"
        return Failed(self.error(kind, path, reason), server_wide=True)

    def _certificate_problem(self, error: ssl.SSLCertVerificationError) -> str:
        """What failed in the certificate check, and the setting that fixes it."""
        what = error.verify_message or error.reason or str(error)
        if error.verify_code in _NAME_MISMATCH:
            hint = "use the host name the certificate is for in url:, or verify_tls: false"
        elif error.verify_code == _CERT_HAS_EXPIRED:
            hint = "renew OME's certificate, or set verify_tls: false"
        elif self.server.ca_file:
            hint = (
                "ca_file: holds no CA that signed it; set ca_file: to your CA, or verify_tls: false"
            )
        else:
            hint = "set ca_file: to your CA, or verify_tls: false"
        return f"certificate verify failed: {what}; {hint}"

    def _note_date(self, run: PollRun, headers: Mapping[str, str]) -> None:
        try:
            date = parsedate_to_datetime(headers["date"]).timestamp()
        except (TypeError, ValueError, IndexError):
            return  # an unreadable Date is no evidence; fall back to the timestamps
        watcher = run.at + (time.perf_counter() - run.started)
        run.date_offset = date - watcher

    def _unauthorized(self, path: str, status: int, message: str) -> SourceError:
        if not self.server.access_token:
            reason = "no access_token is configured for this server, and OME requires one"
        else:
            reason = "the access_token configured for this server is wrong: OME refused it"
        reason += f" (HTTP {status}" + (f": {message})" if message else ")")
        return self.error(SourceErrorKind.UNAUTHORIZED, path, reason)

    def error(self, kind: SourceErrorKind, path: str, reason: str) -> SourceError:
        return SourceError(self.name, kind, path, self._scrub(reason))

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
