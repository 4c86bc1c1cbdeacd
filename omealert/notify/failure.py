"""Why a delivery failed, as one of six words that history, logs and ``/metrics`` share.

A failed send is worth retrying or not depending on why: a revoked token (``auth``) or a
message the service rejects (``bad_request``) fails again until someone acts, while a full
queue (``rate_limited``), a hiccup (``server_error``) or a relay that is down (``refused``,
``timeout``) usually heals. Counting the reasons apart is what lets an operator alert on
"Slack's token stopped working" without paging for every 503.

What can be known depends on the service:

* Slack's Web API (``notify.slack``) answers an HTTP status and a JSON ``error`` code, so
  its reasons are exact.
* apprise returns only a status per service. What it logged for that send is read instead
  (``from_apprise_logs``): its HTTP plugins log ``error=NNN`` with the status, and the
  exception text (``Read timed out``, ``Connection refused``, an SMTP reply code) comes at
  DEBUG. Where a plugin logs only "Connection error" with nothing more, the reason is a
  best guess (``refused``), and a failure with no detail at all is ``bad_request``
  (the service would not take the message, cause unknown). README lists these limits.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable

__all__ = ["FailureReason", "from_apprise_logs", "from_http_status", "from_smtp_code"]


class FailureReason(enum.StrEnum):
    """The class of one failed delivery attempt."""

    #: the service refused our credentials (HTTP 401/403, Slack ``invalid_auth``, SMTP 535)
    AUTH = "auth"
    #: the service asked us to slow down (HTTP 429, Slack ``ratelimited``)
    RATE_LIMITED = "rate_limited"
    #: no answer in time: a connect or read timeout, or our own send deadline
    TIMEOUT = "timeout"
    #: no connection: refused, reset, name not found, closed before answering
    REFUSED = "refused"
    #: the service answered that it failed (HTTP 5xx, SMTP 4xx)
    SERVER_ERROR = "server_error"
    #: the service would not take this message as sent (other 4xx, SMTP 5xx, bad config)
    BAD_REQUEST = "bad_request"


def from_http_status(status: int) -> FailureReason:
    """The reason an HTTP answer with ``status`` (not 2xx) gives."""
    if status in (401, 403, 407):
        return FailureReason.AUTH
    if status == 429:
        return FailureReason.RATE_LIMITED
    if status == 408:
        return FailureReason.TIMEOUT
    if status >= 500:
        return FailureReason.SERVER_ERROR
    return FailureReason.BAD_REQUEST


#: SMTP reply codes that mean the relay refused our login (RFC 4954).
_SMTP_AUTH_CODES = frozenset({530, 534, 535, 538})


def from_smtp_code(code: int) -> FailureReason:
    """The reason an SMTP reply ``code`` gives: 4xx is the relay's trouble, 5xx ours."""
    if code in _SMTP_AUTH_CODES:
        return FailureReason.AUTH
    if code == 421 or 400 <= code < 500:
        return FailureReason.SERVER_ERROR
    return FailureReason.BAD_REQUEST


# What apprise's plugins log, in the order the checks run: a status or code is the surest
# sign, then the exception words. Each pattern is anchored on a short literal, so a long
# reason written by a remote server is scanned once.
_HTTP_STATUS = re.compile(r"error=(\d{3})\b")
_SMTP_REPLY = re.compile(r"\((\d{3}), b['\"]")
_TIMEOUT_WORDS = ("timed out", "timeout", "did not finish within")
_AUTH_WORDS = (
    "smtp auth extension not supported",
    "authentication",
    "username and password not accepted",
    "invalid_auth",
    "not_authed",
)
_REFUSED_WORDS = (
    "connection refused",
    "failed to establish a new connection",
    "name or service not known",
    "nodename nor servname",
    "temporary failure in name resolution",
    "connection reset",
    "unexpectedly closed",
    "remote end closed connection",
    "connection aborted",
    "connection error",
)


def from_apprise_logs(lines: Iterable[str]) -> FailureReason:
    """The best reason what apprise logged for one failed send supports (see module doc)."""
    texts = [line.lower() for line in lines]
    for text in texts:
        if m := _HTTP_STATUS.search(text):
            return from_http_status(int(m.group(1)))
    for text in texts:
        if m := _SMTP_REPLY.search(text):
            return from_smtp_code(int(m.group(1)))
    for words, reason in (
        (_TIMEOUT_WORDS, FailureReason.TIMEOUT),
        (_AUTH_WORDS, FailureReason.AUTH),
        (_REFUSED_WORDS, FailureReason.REFUSED),
    ):
        if any(word in text for text in texts for word in words):
            return reason
    return FailureReason.BAD_REQUEST
