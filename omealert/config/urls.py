"""Checks of the addresses a config names: OME server URLs and CA bundles.

Why apart from config.check: they are pure functions of one value, and other checks
(Alertmanager URLs, listeners) reuse them without the whole checker.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit


def ca_file_path(base_dir: Path, name: str) -> tuple[str, str | None]:
    """The absolute path of a CA bundle, and why it cannot be used (if it cannot)."""
    try:
        path = (base_dir / Path(name).expanduser()).absolute()
        if path.is_file():
            return str(path), None
    except (OSError, ValueError, RuntimeError) as exc:  # too long, NUL byte, unknown ~user
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return name, f"ca_file {name!r} cannot be used: {reason}"
    return str(path), f"ca_file {name!r} does not exist"


def server_url(url: str) -> tuple[str, str | None]:
    """The URL without one trailing slash, and what is wrong with it (never echoing it:
    a URL can carry credentials)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return url, "server url is not a valid URL"
    if any(ch.isspace() for ch in url):
        return url, "server url must not contain spaces"
    if parts.scheme not in ("http", "https"):
        return url, "server url must start with http:// or https://"
    if not parts.hostname:
        return url, "server url has no host"
    if parts.username is not None or parts.password is not None:
        return url, "server url must not contain a user or password; use access_token"
    if parts.query or parts.fragment:
        return url, "server url must not have a query (?...) or fragment (#...)"
    return (url[:-1] if url.endswith("/") else url), None
