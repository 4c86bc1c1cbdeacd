"""What keeps the listener's pages safe to open: read-only, basic auth, security headers.

- Read-only: any method but GET and HEAD is 405 (with ``Allow``), except OME's signed
  ``POST /ome/alert`` (``ome_alert.py``), which has its own HMAC check.
- ``listen_auth:`` (user and password, from ``${VAR}``) asks for HTTP basic auth on
  everything but ``/healthz`` (a load balancer's probe) and ``/ome/alert`` (OME cannot send
  basic auth; its requests are signed). Compared in constant time; a refusal never says
  which half was wrong.
- Every answer carries ``Content-Security-Policy`` (scripts and styles only from the
  listener itself, no inline script, no framing), ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: no-referrer``; pages and API answers are not cached.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
from collections.abc import Callable

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

log = logging.getLogger("omealert")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
READ_METHODS = frozenset({hdrs.METH_GET, hdrs.METH_HEAD})
#: paths that take something other than GET, or answer without auth
POST_PATHS = ("/ome/alert",)
OPEN_PATHS = ("/healthz", "/ome/alert")

Credentials = Callable[[], "tuple[str, str] | None"]


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r + "/") for r in roots)


def authorized(header: str | None, expected: tuple[str, str]) -> bool:
    """Whether an ``Authorization`` header carries exactly ``expected`` (constant time)."""
    if not header or header[:6].lower() != "basic ":
        return False
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    user, sep, password = raw.partition(b":")
    want_user, want_password = (part.encode() for part in expected)
    ok_user = hmac.compare_digest(user, want_user)
    ok_password = hmac.compare_digest(password, want_password)
    return bool(sep) and ok_user and ok_password


def guard(credentials: Credentials) -> Middleware:
    """The middleware: methods, auth, and the headers on every answer (errors included)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        try:
            if request.method not in READ_METHODS and not _under(path, POST_PATHS):
                raise web.HTTPMethodNotAllowed(request.method, sorted(READ_METHODS))
            expected = credentials()
            if (
                expected is not None
                and not _under(path, OPEN_PATHS)
                and not authorized(request.headers.get(hdrs.AUTHORIZATION), expected)
            ):
                raise web.HTTPUnauthorized(
                    text="authorization required\n",
                    headers={hdrs.WWW_AUTHENTICATE: 'Basic realm="omealert"'},
                )
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(SECURITY_HEADERS)
            raise
        response.headers.update(SECURITY_HEADERS)
        return response

    return middleware


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable only from this machine."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_if_open(host: str, credentials: tuple[str, str] | None) -> bool:
    """Warn (and say True) when a non-loopback address serves the page without ``listen_auth``."""
    if is_loopback(host) or credentials is not None:
        return False
    log.warning(
        "--listen %s is reachable from other machines and listen_auth is not set: "
        "anyone who can reach it can read the status page and /metrics",
        host,
    )
    return True
