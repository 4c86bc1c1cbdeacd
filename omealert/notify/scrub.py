"""Find the secret parts of a service URL and mask them in text that reaches logs and errors.

apprise's log lines and exception texts can carry a URL in full (a webhook path is a token), so
every reason a send returns goes through ``scrub_reason`` with that URL's ``url_secrets``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit

from ..rules import safe_url

__all__ = ["scrub_reason", "url_secrets"]

#: Longest reason an Outcome carries; apprise can log a lot for one failure.
_MAX_REASON = 300


def url_secrets(url: str) -> list[str]:
    """Every part of ``url`` that could be secret: user, password, path segments, query.

    Both raw and percent-decoded forms, longest first so a token is replaced before a
    shorter fragment of it. Fragments under three characters are left alone: they carry no
    secret and would shred the message.
    """
    found: set[str] = set()
    m = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)(.*)$", url, re.DOTALL)
    if m is None:
        found.add(url)
        rest = url
    else:
        netloc, rest = m.groups()
        if "@" in netloc:
            userinfo = netloc.rsplit("@", 1)[0]
            found.add(userinfo)
            found.update(userinfo.split(":", 1))
        if not _looks_like_host(netloc.rsplit("@", 1)[-1].split(":", 1)[0]):
            found.add(netloc.rsplit("@", 1)[-1])  # a token in the host position
    parts = urlsplit("x://h" + rest) if m is not None else urlsplit(url)
    found.update(s for s in parts.path.split("/") if s)
    found.add(parts.path)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() not in _PLAIN_OPTIONS:
            found.add(value)
    found.add(parts.query)
    found.add(parts.fragment)
    for item in list(found):
        found.add(unquote(item))
        found.update(item.split(","))
    return sorted((s for s in found if len(s) >= 3), key=len, reverse=True)


#: apprise's generic URL options: their values are settings, not secrets, and masking words
#: like "yes" or "text" would only garble the reason. Every other query value is masked.
_PLAIN_OPTIONS = frozenset(
    {"format", "overflow", "retry", "wait", "optional", "cto", "rto", "verify", "method", "mode"}
)


# A URL in an error text, found from the start of a run of scheme characters only: a pattern
# free to start anywhere in a long run of letters would rescan it from every position
# (quadratic in the length of a reason a remote server wrote). The scheme proper starts at
# the run's first letter.
_URL_IN_TEXT = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z0-9+.-]+://\S+")
_SCHEME_LEAD = "0123456789+.-"


def _cut_url(m: re.Match[str]) -> str:
    found = m.group(0)
    url = found.lstrip(_SCHEME_LEAD)
    return found[: len(found) - len(url)] + safe_url(url)


def scrub_reason(text: str, secrets: list[str]) -> str:
    """``text`` with every secret fragment masked and every URL cut to scheme and host."""
    for secret in secrets:
        text = text.replace(secret, "***")
    text = _URL_IN_TEXT.sub(_cut_url, text)
    text = " ".join(text.split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


_HOSTLIKE = re.compile(
    r"^(?:localhost|\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]|"
    r"(?:[A-Za-z0-9-]+\.)+[A-Za-z0-9-]+)$"
)


def _looks_like_host(host: str) -> bool:
    return bool(_HOSTLIKE.match(host))
