"""Hand one rendered message to one apprise service, with a deadline, and report what happened.

The notifier decides what to send, keeps undelivered messages in its outbox and retries them
with backoff; this module only performs one attempt against exactly one URL of a channel and
returns an ``Outcome``. Sending to one service at a time is what lets the outbox retry only
the service that failed, and a channel that is down cost only its own attempt. A channel's
``slack_api`` service is handed to ``notify.slack`` (Slack's Web API, on the event loop);
everything below is about apprise. A failed ``Outcome`` carries its ``FailureReason``
(``notify.failure``), read from what apprise logged for that one send.

Why it looks the way it does:

* apprise is synchronous underneath, and its own ``async_notify`` runs every plugin in one
  process-wide pool of ``cpu + 4`` threads: a relay that trickles its greeting a byte at a
  time (so no socket timeout ever fires) held a worker per send, and eight such mail
  channels took every worker from every other channel. So each send runs apprise
  synchronously (``async_mode`` off, no apprise deadline) on a daemon thread of ours, with
  our own deadline, and:

  - a service has at most one thread: while its last send is still running (past its
    deadline, "stuck"), it gets no new send and ``can_start`` says so; the outbox keeps
    its messages queued (deferred) and is told through ``on_free`` when the thread ends;
  - at most ``max_threads`` sends run at once, and once ``max_stuck`` threads are stuck,
    only services whose last send succeeded may start one: services that fail or hang
    can never take the last ``max_threads - max_stuck`` threads from those that deliver;
  - the threads are daemons, so a relay that never lets go cannot hold up the exit.

  Connect/read socket timeouts are still set to a share of the deadline on every service
  whose URL does not choose its own ``cto``/``rto``, so a relay that merely stops answering
  frees its thread soon after the deadline.
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
import contextlib
import logging
import re
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from ..rules import SLACK_API_SCHEME, scheme_and_host
from ..state.threads import ThreadRows
from .failure import FailureReason, from_apprise_logs
from .outcome import Outcome
from .scrub import _looks_like_host, scrub_reason, url_secrets
from .slack import SlackSender
from .threads import ThreadBook

if TYPE_CHECKING:
    from ..rules import ChannelSpec
    from ..state.db import StateDB
    from ..state.records import OutboxMessage
    from .render import Message

__all__ = ["Deliverer", "Outcome", "check_url"]

log = logging.getLogger(__name__)

#: Sends running at once, stuck ones included, and how many of them may be stuck before
#: only services whose last send succeeded may start another.
MAX_THREADS = 16
MAX_STUCK = 8
#: apprise's generic throttle (``NotifyBase.request_rate_per_sec``). Plugins that keep it
#: (e-mail, PagerDuty, Opsgenie...) did not ask for a pause; plugins that set their own
#: (Slack 1.2 s) follow a documented service limit, and that one is kept.
_GENERIC_THROTTLE = 5.5


_loaded = False

#: What a send thread reports: delivered?, why not (safe to log), the ``FailureReason``.
_Result = tuple[bool, str, str]
_BAD = FailureReason.BAD_REQUEST.value


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
    # Records below the logger's level are never made, so the per-call capture of DEBUG
    # (the exception texts a failure is classified by) needs the logger at DEBUG; with no
    # propagation, nothing of it reaches a handler of ours.
    logging.getLogger("apprise").setLevel(logging.DEBUG)
    with warnings.catch_warnings():
        # apprise's e-mail plugin probes the stdlib ``imghdr`` module for PGPy, which warns
        # that imghdr is deprecated (Python 3.11/3.12). The probe is harmless, but under
        # ``-W error`` (our test suite) the warning would make the whole plugin fail to load.
        warnings.filterwarnings("ignore", message=".*imghdr", category=DeprecationWarning)
        plugins: Any = apprise.manager_plugins  # untyped in apprise
        plugins.NotificationManager().load_modules()
    _loaded = True
    return apprise


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


@dataclass(slots=True)
class _Slot:
    """One URL of a channel, built once: the plugin, an Apprise holding just it, or why not."""

    describe: str
    secrets: list[str]
    service: Any | None = None
    apprise: Any | None = None
    error: str = ""
    #: the send in flight on this service's thread, until that thread ends
    running: asyncio.Future[_Result] | None = None
    #: nobody waits for ``running`` any more (its deadline passed): the thread is stuck
    stuck: bool = False
    #: the last send that ended succeeded
    proven: bool = False


@dataclass(slots=True)
class _Prepared:
    urls: tuple[str, ...]
    slots: list[_Slot]


class Deliverer:
    """Builds apprise services per channel (once) and sends one message to one of them.

    ``timeout`` bounds each ``send`` (apprise's own deadline, plus a small guard); socket
    timeouts default to a share of it.
    """

    def __init__(
        self,
        *,
        app_id: str = "omealert",
        timeout: float = 30.0,
        max_threads: int = MAX_THREADS,
        max_stuck: int = MAX_STUCK,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if not 0 < max_stuck < max_threads:
            raise ValueError("need 0 < max_stuck < max_threads")
        self._app_id = app_id
        self._timeout = timeout
        self._connect_timeout = min(10.0, timeout / 2)
        self._read_timeout = max(0.5, timeout - self._connect_timeout)
        self._asset: Any | None = None
        self._channels: dict[str, _Prepared] = {}
        self._max_threads = max_threads
        self._max_stuck = max_stuck
        #: threads of ours sending right now, and how many of them are past their deadline
        self.threads = 0
        self.stuck = 0
        #: called (on the event loop) whenever a send thread ends, so a waiting queue can go on
        self.on_free: Callable[[], None] | None = None
        #: the channels' native Slack services (``slack_api``), sent on the event loop
        self.slack = SlackSender(timeout)

    def use_state(self, store: StateDB | None) -> None:
        """Keep Slack threads in ``store`` (None: in memory only), so they survive a restart."""
        self.slack.threads = ThreadBook(ThreadRows(store) if store is not None else None)

    def _get_asset(self) -> Any:
        if self._asset is None:
            apprise = _apprise()
            self._asset = apprise.AppriseAsset(
                app_id=self._app_id,
                app_desc="omealert: alerts for OvenMediaEngine",
                # keep per-call logs in memory: no temp files to clean up
                result_log_disk_size=0,
                # nothing apprise keeps between sends needs to survive a restart
                storage_mode="memory",
                # run the plugin inline on our thread, not in apprise's shared pool; the
                # deadline is ours (see the module docstring)
                async_mode=False,
                service_timeout=0,
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
        if url.startswith(SLACK_API_SCHEME):  # sent by ``self.slack``; needs no apprise
            return _Slot(SLACK_API_SCHEME, [], error="a native Slack service")
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

    def _slot(self, channel: ChannelSpec, url_index: int) -> _Slot:
        self.prepare(channel)
        return self._channels[channel.name].slots[url_index]

    def can_start(self, channel: ChannelSpec, url_index: int) -> bool:
        """Whether a send to URL ``url_index`` of ``channel`` would start now (not busy)."""
        try:
            slot = self._slot(channel, url_index)
        except Exception:
            return True  # ``send`` reports what is wrong with it
        return self._admits(slot)

    def _admits(self, slot: _Slot) -> bool:
        if slot.apprise is None:
            return True  # no thread needed to say why it cannot send
        if slot.running is not None or self.threads >= self._max_threads:
            return False
        return self.stuck < self._max_stuck or slot.proven

    async def send(
        self,
        channel: ChannelSpec,
        url_index: int,
        message: Message,
        about: OutboxMessage | None = None,
    ) -> Outcome:
        """Deliver ``message`` to URL ``url_index`` of ``channel``; never raises for delivery.

        A busy service (see ``can_start``) is not tried: the outcome says ``busy``. ``about``
        (the queued message: its reason, rule and targets) lets a Slack service thread it.
        """
        slack = channel.slack_at(url_index)
        if slack is not None:
            return await self.slack.send(channel, slack, message, about)
        started = time.monotonic()
        try:
            slot = self._slot(channel, url_index)
        except IndexError:
            return Outcome(False, f"{channel.name}#{url_index}", "no such URL", 0.0, reason=_BAD)
        except Exception as exc:  # a plugin that breaks while being built is a failed send
            why = f"could not build service: {type(exc).__name__}"
            return Outcome(False, "<url>", why, 0.0, reason=_BAD)
        if slot.apprise is None:
            elapsed = time.monotonic() - started
            return Outcome(False, slot.describe, slot.error, elapsed, reason=_BAD)
        if not self._admits(slot):
            why = "its last send is still running" if slot.running else "no send thread free"
            return Outcome(False, slot.describe, f"busy: {why}", 0.0, busy=True)
        running = self._start(slot, message, f"omealert-send {channel.name}#{url_index}")
        try:
            ok, error, reason = await asyncio.wait_for(asyncio.shield(running), self._timeout)
        except TimeoutError:
            ok, error = False, f"timed out after {self._timeout:g}s"
            reason = FailureReason.TIMEOUT.value
        finally:
            if not running.done():  # timed out or cancelled: the thread goes on alone
                slot.stuck = True
                self.stuck += 1
        elapsed = time.monotonic() - started
        return Outcome(ok, slot.describe, "" if ok else error, elapsed, reason="" if ok else reason)

    def _start(self, slot: _Slot, message: Message, name: str) -> asyncio.Future[_Result]:
        """Run the send on a daemon thread of its own; the future settles when it ends."""
        loop = asyncio.get_running_loop()
        running: asyncio.Future[_Result] = loop.create_future()
        slot.running = running
        self.threads += 1
        running.add_done_callback(lambda _: self._ended(slot, running))

        def work() -> None:
            try:
                result = self._notify(slot, message)
            except Exception as exc:
                detail = scrub_reason(str(exc), slot.secrets)
                kind = type(exc).__name__
                result = (False, f"{kind}: {detail}" if detail else kind, _BAD)
            # RuntimeError: the loop is gone (the process is shutting down): nobody waits
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, running, result)

        threading.Thread(target=work, name=name, daemon=True).start()
        return running

    def _ended(self, slot: _Slot, running: asyncio.Future[_Result]) -> None:
        self.threads -= 1
        if slot.stuck:
            slot.stuck = False
            self.stuck -= 1
        if slot.running is running:
            slot.running = None
        slot.proven = not running.cancelled() and running.result()[0]
        if self.on_free is not None:
            self.on_free()

    def _notify(self, slot: _Slot, message: Message) -> _Result:
        """On the send thread: one synchronous apprise call to this one service."""
        assert slot.apprise is not None
        result = slot.apprise.notify(
            body=message.body or message.title or "(no text)",
            title=message.title,
            notify_type=message.notify_type,
            body_format=message.format,
            # DEBUG holds the exception text (``Read timed out``, ``Connection refused``, an
            # SMTP reply) that tells failures apart; it is read here and never shown
            log_level=logging.DEBUG,
        )
        with result:  # releases the captured logs
            if result:
                return True, "", ""
            return self._reason(result, slot, self._timeout)

    def _reason(self, result: Any, slot: _Slot, budget: float) -> _Result:
        """Why apprise failed: its WARNING lines (scrubbed) as text, every line classified."""
        shown: list[str] = []
        seen: list[str] = []
        status = result.status.name.lower()
        for svc in result:
            if svc:
                continue
            status = svc.status.name.lower()
            for entry in svc.logs():
                seen.append(entry.message)
                if _loud(entry.level) and entry.message not in shown:
                    shown.append(entry.message)
        if not seen:
            calls = list(result.call_logs())
            seen = [entry.message for entry in calls]
            shown = [e.message for e in calls if _loud(e.level)]
        if status == "timeout":
            head = f"timed out after {budget:.3g}s"
            shown = [line for line in shown if "did not finish within" not in line]
            reason = FailureReason.TIMEOUT
        else:
            head = status
            reason = from_apprise_logs(seen)
        text = head + (": " + "; ".join(shown) if shown else "")
        return False, scrub_reason(text, slot.secrets), reason.value


def _loud(level: object) -> bool:
    """Whether a captured apprise log entry (its level a name or a number) is WARNING or up."""
    number = logging.getLevelName(level) if isinstance(level, str) else level
    return isinstance(number, int) and number >= logging.WARNING


def _settle(running: asyncio.Future[_Result], result: _Result) -> None:
    if not running.done():
        running.set_result(result)
