"""Hand one rendered message to one apprise service, with a deadline, and report what happened.

The notifier decides what to send, keeps undelivered messages in its outbox and retries them
with backoff; this module only performs one attempt against exactly one URL of a channel and
returns an ``Outcome``. Sending to one service at a time is what lets the outbox retry only
the service that failed, and a channel that is down cost only its own attempt.

Why it looks the way it does:

* apprise is synchronous underneath. ``async_notify`` runs each plugin's blocking ``send``
  in apprise's shared thread pool, so the event loop (and polling) never waits on a slow
  channel. Every attempt has a deadline (``timeout``), and connect/read socket timeouts are
  set on every service whose URL does not choose its own ``cto``/``rto``, so a hung relay
  also releases its worker thread soon after apprise stops waiting for it.
* That pool is process-wide and small (``cpu + 4`` threads). A semaphore keeps our sends
  within it, and a lock per service keeps sends to one endpoint in order.
* Secrets: apprise's own log lines can carry a URL in full (``Unparseable URL json://...``)
  and its DEBUG output carries request URLs and payloads, so the ``apprise`` logger is cut
  off from the application's handlers. What a send logged is captured per call from the
  result object, scrubbed of every fragment of the URL (user, password, path, query) and
  returned as ``Outcome.error``. Services are named by scheme and host only, and only when
  the plugin really treats that part as a host (for ``slack://``, ``pagerduty://`` or
  ``ntfy://topic`` that position holds a token).
* apprise is imported lazily: ``omealert --version`` and config checks without URLs never
  pay for loading its ~190 plugins.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ..rules import safe_url, scheme_and_host

if TYPE_CHECKING:
    from ..rules import ChannelSpec
    from .render import Message

__all__ = ["Deliverer", "Outcome", "check_url", "scrub_reason", "url_secrets"]

log = logging.getLogger(__name__)

#: Longest reason an Outcome carries; apprise can log a lot for one failure.
_MAX_REASON = 300
#: Extra time the outer guard gives apprise to report its own timeout before giving up.
_GRACE = 2.0
#: apprise's generic throttle (``NotifyBase.request_rate_per_sec``). Plugins that keep it
#: (e-mail, PagerDuty, Opsgenie...) did not ask for a pause; plugins that set their own
#: (Slack 1.2 s) follow a documented service limit, and that one is kept.
_GENERIC_THROTTLE = 5.5


_loaded = False


def _apprise() -> Any:
    """Import apprise on first use, load its plugins, and keep its logs away from our handlers."""
    global _loaded
    import apprise

    if _loaded:
        return apprise
    # apprise logs a URL that does not parse, and at DEBUG its request URLs and payloads;
    # urllib3 (under requests, which only apprise uses here) logs every request line with
    # its path and query. Webhook paths are secrets, so neither reaches our handlers. The
    # per-call capture apprise does still works: it attaches its own handler to its logger.
    for name in ("apprise", "urllib3"):
        logging.getLogger(name).propagate = False
    with warnings.catch_warnings():
        # apprise's e-mail plugin probes the stdlib ``imghdr`` module for PGPy, which warns
        # that imghdr is deprecated (Python 3.11/3.12). The probe is harmless, but under
        # ``-W error`` (our test suite) the warning would make the whole plugin fail to load.
        warnings.filterwarnings("ignore", message=".*imghdr", category=DeprecationWarning)
        plugins: Any = apprise.manager_plugins  # untyped in apprise
        plugins.NotificationManager().load_modules()
    _loaded = True
    return apprise


# --------------------------------------------------------------------------- secrets


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


def _describe(url: str, plugin: Any | None) -> str:
    """``scheme://host`` when the plugin uses that part as a host name; else ``scheme://``."""
    shown = scheme_and_host(url)
    scheme, _, host = shown.partition("://")
    templates = getattr(plugin, "templates", ()) if plugin is not None else ()
    if host and _looks_like_host(host) and any("{host}" in t for t in templates):
        return shown
    return f"{scheme}://" if scheme and shown != "<url>" else "<url>"


# --------------------------------------------------------------------------- validation


def check_url(url: str) -> str | None:
    """None if apprise can build a service from ``url``; otherwise why not, without the URL.

    Only the structure is checked: nothing is contacted.
    """
    apprise = _apprise()
    secrets = url_secrets(url)
    try:
        service = apprise.Apprise.instantiate(url, suppress_exceptions=False)
    except Exception as exc:
        return scrub_reason(str(exc) or type(exc).__name__, secrets)
    if service is not None:
        return None
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if not scheme:
        return "not a URL (expected scheme://...)"
    if not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
        return "not a URL (invalid scheme)"
    if scheme not in apprise.manager_plugins.NotificationManager():
        return f"unknown service scheme {scheme!r}"
    return f"incomplete or malformed {scheme}:// URL"


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True, slots=True)
class Outcome:
    """One delivery attempt to one service. ``error`` is safe to log; ``""`` when ok."""

    ok: bool
    service: str
    error: str
    elapsed: float


@dataclass(slots=True)
class _Slot:
    """One URL of a channel, built once: the plugin, an Apprise holding just it, or why not."""

    describe: str
    secrets: list[str]
    service: Any | None = None
    apprise: Any | None = None
    error: str = ""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(slots=True)
class _Prepared:
    urls: tuple[str, ...]
    slots: list[_Slot]


class Deliverer:
    """Builds apprise services per channel (once) and sends one message to one of them.

    ``timeout`` bounds each ``send`` (apprise's own deadline, plus a small guard); socket
    timeouts default to a share of it.
    """

    def __init__(self, *, app_id: str = "omealert", timeout: float = 30.0) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._app_id = app_id
        self._timeout = timeout
        self._connect_timeout = min(10.0, timeout / 2)
        self._read_timeout = max(0.5, timeout - self._connect_timeout)
        self._asset: Any | None = None
        self._channels: dict[str, _Prepared] = {}
        # Stay within apprise's shared pool (ThreadPoolExecutor's default size), so a send
        # never waits in its queue while its deadline runs.
        self._slots_free = asyncio.Semaphore(min(32, (os.cpu_count() or 1) + 4))

    def _get_asset(self) -> Any:
        if self._asset is None:
            apprise = _apprise()
            self._asset = apprise.AppriseAsset(
                app_id=self._app_id,
                app_desc="omealert: alerts for OvenMediaEngine",
                service_timeout=self._timeout,
                # keep per-call logs in memory: no temp files to clean up
                result_log_disk_size=0,
                # nothing apprise keeps between sends needs to survive a restart
                storage_mode="memory",
            )
        return self._asset

    def prepare(self, channel: ChannelSpec) -> None:
        """Build the services for every URL of ``channel``; a no-op while its URLs are unchanged."""
        known = self._channels.get(channel.name)
        if known is not None and known.urls == channel.urls:
            return
        self._channels[channel.name] = _Prepared(
            channel.urls, [self._build(url) for url in channel.urls]
        )

    def _build(self, url: str) -> _Slot:
        apprise = _apprise()
        asset = self._get_asset()
        secrets = url_secrets(url)
        try:
            service = apprise.Apprise.instantiate(url, asset=asset, suppress_exceptions=False)
        except Exception as exc:
            reason = scrub_reason(str(exc) or type(exc).__name__, secrets)
            return _Slot(_describe(url, None), secrets, error=f"invalid URL: {reason}")
        if service is None:
            why = check_url(url) or "unsupported or unparseable URL"
            return _Slot(_describe(url, None), secrets, error=f"invalid URL: {why}")
        query = {k.lower() for k, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
        if "cto" not in query:
            service.socket_connect_timeout = self._connect_timeout
        if "rto" not in query:
            service.socket_read_timeout = self._read_timeout
        # The outbox already paces retries, and apprise's generic 5.5 s pause between two
        # sends on one instance (e-mail, PagerDuty...) would only delay the next alert.
        if getattr(service, "request_rate_per_sec", 0) == _GENERIC_THROTTLE:
            service.request_rate_per_sec = 0
        holder = apprise.Apprise(asset=asset)
        holder.add(service)
        return _Slot(_describe(url, type(service)), secrets, service=service, apprise=holder)

    def override_endpoint(self, channel: str, url_index: int, attribute: str, value: str) -> None:
        """Tests only: re-point one built service, e.g. a Slack ``webhook_url`` to loopback."""
        slot = self._channels[channel].slots[url_index]
        if slot.service is None:
            raise ValueError(f"channel {channel} URL #{url_index} has no service: {slot.error}")
        if not hasattr(slot.service, attribute):
            raise AttributeError(f"{type(slot.service).__name__} has no attribute {attribute!r}")
        setattr(slot.service, attribute, value)

    async def send(self, channel: ChannelSpec, url_index: int, message: Message) -> Outcome:
        """Deliver ``message`` to URL ``url_index`` of ``channel``; never raises for delivery."""
        started = time.monotonic()
        try:
            self.prepare(channel)
            slot = self._channels[channel.name].slots[url_index]
        except IndexError:
            return Outcome(False, f"{channel.name}#{url_index}", "no such URL", 0.0)
        except Exception as exc:  # a plugin that breaks while being built is a failed send
            return Outcome(False, "<url>", f"could not build service: {type(exc).__name__}", 0.0)
        if slot.apprise is None:
            return Outcome(False, slot.describe, slot.error, time.monotonic() - started)
        deadline = started + self._timeout
        try:
            # The deadline covers waiting for a free worker too; the guard only fires if
            # apprise itself overran its own deadline.
            async with asyncio.timeout(self._timeout + _GRACE):
                async with self._slots_free, slot.lock:
                    budget = max(0.1, deadline - time.monotonic())
                    ok, error = await self._notify(slot, message, budget)
        except TimeoutError:
            ok, error = False, f"timed out after {self._timeout:g}s"
        except Exception as exc:
            detail = scrub_reason(str(exc), slot.secrets)
            ok, error = False, f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        return Outcome(ok, slot.describe, "" if ok else error, time.monotonic() - started)

    async def _notify(self, slot: _Slot, message: Message, budget: float) -> tuple[bool, str]:
        assert slot.apprise is not None
        result = await slot.apprise.async_notify(
            body=message.body or message.title or "(no text)",
            title=message.title,
            notify_type=message.notify_type,
            body_format=message.format,
            timeout=budget,
        )
        with result:  # releases the captured logs
            if result:
                return True, ""
            return False, self._reason(result, slot, budget)

    def _reason(self, result: Any, slot: _Slot, budget: float) -> str:
        lines: list[str] = []
        status = result.status.name.lower()
        for svc in result:
            if svc:
                continue
            status = svc.status.name.lower()
            for entry in svc.logs():
                if entry.message not in lines:
                    lines.append(entry.message)
        if not lines:
            lines = [entry.message for entry in result.call_logs()]
        if status == "timeout":
            head = f"timed out after {budget:.3g}s"
            lines = [line for line in lines if "did not finish within" not in line]
        else:
            head = status
        text = head + (": " + "; ".join(lines) if lines else "")
        return scrub_reason(text, slot.secrets)
