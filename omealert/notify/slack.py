"""A channel's native Slack service: one thread per alert, kept up to date, on Slack's Web API.

apprise posts and forgets: it gets no message id back, so it can neither thread nor edit.
This service uses ``slack_sdk``'s ``AsyncWebClient`` (on the event loop, no thread):

* the first message about an alert is posted with ``chat.postMessage`` and its ``ts`` kept
  (``notify.threads``, in the state file);
* every later message about it (a repeat, the resolve, or any other kind the planner
  sends) is a reply in that thread (``thread_ts``), and the first message is edited with
  ``chat.update`` so that the channel shows the current state ("RESOLVED after 12m")
  without opening the thread;
* a retry does not repeat a step already done: the replies and edits a message made are
  remembered until it is delivered.

Failures come back as an ``Outcome`` with a ``FailureReason``, and never with the token:
Slack's error code (``invalid_auth``, ``channel_not_found``...) says what is wrong. HTTP 429
is not waited out here: its ``Retry-After`` goes back to the outbox, which holds this
service's queue that long while every other service goes on.
"""

from __future__ import annotations

import asyncio
import html
import logging
import math
import re
import time
from typing import TYPE_CHECKING, Any

from ..state.records import service_key
from .failure import FailureReason, from_http_status
from .outcome import Outcome
from .threads import AlertKey, ThreadBook, ThreadRoot

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

    from ..rules import ChannelSpec, SlackApiSpec
    from ..state.records import OutboxMessage
    from .render import Message

__all__ = ["SlackSender", "slack_text"]

log = logging.getLogger("omealert.slack")

SERVICE = "slack-api://"

#: slack_sdk logs every request at DEBUG with its headers, the bot token among them: its
#: logger is ours, quiet and cut off from every handler.
_SDK_LOG = logging.getLogger("omealert.slack.sdk")
_SDK_LOG.setLevel(logging.WARNING)
_SDK_LOG.propagate = False

#: Slack cuts a message's text at 40,000 characters; leave room for the status line.
MAX_TEXT = 38_000
#: Messages whose finished steps are remembered for their retry; more forgets the oldest.
MAX_REMEMBERED = 1000
#: The longest wait a ``Retry-After`` may ask for; a larger one is a broken header.
MAX_RETRY_AFTER = 3600.0

#: Slack error codes that mean the token or the bot's access is the problem, with the hint
#: an operator needs to fix it.
AUTH_ERRORS = {
    "invalid_auth": "the bot token is not valid",
    "not_authed": "no bot token was sent",
    "account_inactive": "the token's bot or user was deactivated",
    "token_revoked": "the bot token was revoked",
    "token_expired": "the bot token expired",
    "no_permission": "the token may not do this",
    "missing_scope": "the token lacks the chat:write scope",
    "not_allowed_token_type": "use a bot token (xoxb-...)",
    "channel_not_found": "the channel does not exist or the bot cannot see it",
    "not_in_channel": "invite the bot to the channel",
    "is_archived": "the channel is archived",
}
_SERVER_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable"})
#: An edit that can never succeed: the message is gone or may no longer be edited. The
#: reply already told the news, so the message counts as delivered.
_EDIT_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
_CODE = re.compile(r"[a-z_]{1,60}")


class _Failed(Exception):
    """One Web API call failed; ``text`` is safe to log."""

    def __init__(self, reason: FailureReason, text: str, retry_after: float = 0.0, code: str = ""):
        super().__init__(text)
        self.reason, self.text, self.retry_after, self.code = reason, text, retry_after, code


def slack_text(message: Message) -> str:
    """``message`` in Slack's mrkdwn: a bold title line, then the body.

    Markdown's ``**bold**`` becomes ``*bold*`` and its backslash escapes are taken out;
    ``&``, ``<`` and ``>`` are always entity-escaped, so nothing in an alert can become a
    link or a mention.
    """
    title = _escape(" ".join(message.title.split()))
    if message.format == "markdown":
        body = _MARKDOWN.sub(_from_markdown, message.body)
    elif message.format == "html":
        body = _escape(html.unescape(_TAG.sub("", message.body)))
    else:
        body = _escape(message.body)
    text = f"*{title}*\n{body}" if body.strip() else f"*{title}*"
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MARKDOWN = re.compile(r"\\(.)|\*\*|[&<>]", re.DOTALL)
_TAG = re.compile(r"<[^<>]{0,1000}>")


def _escape(text: str) -> str:
    return "".join(_ENTITIES.get(c, c) for c in text)


def _from_markdown(m: re.Match[str]) -> str:
    if m.group(1) is not None:  # an escaped character is that character, as plain text
        return _ENTITIES.get(m.group(1), m.group(1))
    return "*" if m.group(0) == "**" else _ENTITIES[m.group(0)]


def span(seconds: float) -> str:
    """A duration the way a person says it: ``45s``, ``12m``, ``1h 5m``, ``2d 3h``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h}h {m}m" if m else f"{h}h"
    d, h = divmod(s // 3600, 24)
    return f"{d}d {h}h" if h else f"{d}d"


def status_line(reason: str, root: ThreadRoot, at: float, title: str) -> str:
    """What the first message of a thread says about now, after a later message at ``at``."""
    age = span(at - root.posted_at)
    if reason == "resolved":
        if not root.open:
            return f"RESOLVED after {age}"
        done = sum(1 for v in root.alerts.values() if v is not None)
        return f"{done} of {len(root.alerts)} resolved, the latest after {age}"
    if reason == "repeat":
        return f"still FIRING after {age}"
    return _escape(" ".join(title.split()))  # an ack, a flapping notice...: its own title


class SlackSender:
    """Sends to every ``slack_api`` service; one Web API client per token and API URL."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self.threads = ThreadBook()
        self._clients: dict[tuple[str, str], AsyncWebClient] = {}
        #: message id → the replies and edits it already made (a retry skips them)
        self._done: dict[int, set[str]] = {}

    def _client(self, spec: SlackApiSpec) -> AsyncWebClient:
        from slack_sdk.web.async_client import AsyncWebClient

        key = (spec.token, spec.api_url)
        client = self._clients.get(key)
        if client is None:
            client = AsyncWebClient(
                token=spec.token,
                base_url=spec.api_url,
                timeout=max(1, math.ceil(self._timeout)),
                logger=_SDK_LOG,
                retry_handlers=[],  # the outbox retries, with backoff and Retry-After
            )
            self._clients[key] = client
        return client

    async def send(
        self,
        channel: ChannelSpec,
        spec: SlackApiSpec,
        message: Message,
        about: OutboxMessage | None,
    ) -> Outcome:
        """Post, reply and edit as ``about`` (the queued message) calls for; never raises."""
        started = time.monotonic()
        service = (channel.name, service_key(spec.service_url))
        try:
            async with asyncio.timeout(self._timeout):
                await self._deliver(service, spec, message, about)
        except _Failed as failed:
            elapsed = time.monotonic() - started
            why = failed.reason.value
            return Outcome(
                False, SERVICE, failed.text, elapsed, reason=why, retry_after=failed.retry_after
            )
        except TimeoutError:
            text = f"timed out after {self._timeout:g}s"
            elapsed = time.monotonic() - started
            return Outcome(False, SERVICE, text, elapsed, reason=FailureReason.TIMEOUT.value)
        if about is not None and about.id is not None:
            self._done.pop(about.id, None)
        return Outcome(True, SERVICE, "", time.monotonic() - started)

    async def _deliver(
        self,
        service: tuple[str, str],
        spec: SlackApiSpec,
        message: Message,
        about: OutboxMessage | None,
    ) -> None:
        client = self._client(spec)
        text = slack_text(message)
        reason = about.reason if about is not None else "first"
        alerts: list[AlertKey] = [(about.rule, t) for t in about.targets] if about else []
        at = about.created_at if about is not None else time.time()
        roots = [] if reason == "first" else self.threads.open_roots(service, alerts)
        if not roots:
            answer = await self._call(client, "chat_postMessage", channel=spec.channel, text=text)
            if reason != "resolved" and alerts:
                root = ThreadRoot(str(answer["ts"]), str(answer["channel"]), at, text)
                root.alerts = dict.fromkeys(alerts)
                self.threads.started(service, root)
            return
        if len(self._done) >= MAX_REMEMBERED:  # those of messages given up: oldest go first
            del self._done[next(iter(self._done))]
        done = self._done.setdefault(about.id if about and about.id is not None else -1, set())
        newcomers = {a for a in alerts if not any(a in root.alerts for root in roots)}
        for i, root in enumerate(roots):
            if f"reply:{root.ts}" not in done:
                await self._call(
                    client, "chat_postMessage", channel=root.slack_channel, text=text,
                    thread_ts=root.ts,
                )  # fmt: skip
                done.add(f"reply:{root.ts}")
            # the alerts change only once the edit is in: a retry must find the thread open
            after = dict(root.alerts)
            for alert in alerts:
                if alert in after or (i == 0 and alert in newcomers and reason != "resolved"):
                    after[alert] = at if reason == "resolved" else after.get(alert)
            now = ThreadRoot(root.ts, root.slack_channel, root.posted_at, root.text, after)
            if f"edit:{root.ts}" not in done:
                await self._edit(client, root, status_line(reason, now, at, message.title))
                done.add(f"edit:{root.ts}")
            root.alerts = after
            self.threads.changed(service, root)

    async def _edit(self, client: AsyncWebClient, root: ThreadRoot, status: str) -> None:
        text = f"*{status}*\n{root.text}"
        try:
            await self._call(
                client, "chat_update", channel=root.slack_channel, ts=root.ts, text=text
            )
        except _Failed as failed:
            if failed.code not in _EDIT_GONE:
                raise
            log.warning(
                "Slack thread %s: its first message cannot be edited (%s)", root.ts, failed.code
            )

    async def _call(self, client: AsyncWebClient, method: str, **kwargs: Any) -> dict[str, Any]:
        """One Web API call; any failure becomes ``_Failed`` with a reason and a safe text."""
        from slack_sdk.errors import SlackApiError

        name = method.replace("_", ".", 1)
        try:
            response = await getattr(client, method)(**kwargs)
        except SlackApiError as exc:
            raise _api_failure(name, exc.response) from None
        except TimeoutError:
            raise _Failed(FailureReason.TIMEOUT, f"Slack {name}: no answer in time") from None
        except Exception as exc:  # aiohttp's connection errors, and anything else on the way
            reason = _transport_reason(exc)
            raise _Failed(reason, f"Slack {name}: {type(exc).__name__}") from None
        data = response.data
        if not isinstance(data, dict) or not isinstance(data.get("ts"), str):
            raise _Failed(FailureReason.BAD_REQUEST, f"Slack {name}: answer without a message ts")
        return data


def _api_failure(method: str, response: Any) -> _Failed:
    """What a non-ok Web API answer means; Slack's error code is shown, nothing else of it."""
    status = int(getattr(response, "status_code", 0) or 0)
    data = getattr(response, "data", None)
    raw = data.get("error") if isinstance(data, dict) else None
    code = raw if isinstance(raw, str) and _CODE.fullmatch(raw) else ""
    said = code or f"HTTP {status}"
    if status == 429 or code == "ratelimited":
        wait = _retry_after(getattr(response, "headers", {}) or {})
        text = f"Slack {method}: rate limited, retry after {wait:g}s"
        return _Failed(FailureReason.RATE_LIMITED, text, wait, code)
    if code in AUTH_ERRORS:
        return _Failed(
            FailureReason.AUTH, f"Slack {method}: {code}: {AUTH_ERRORS[code]}", code=code
        )
    if code in _SERVER_ERRORS:
        return _Failed(FailureReason.SERVER_ERROR, f"Slack {method}: {code}", code=code)
    if status == 200:
        return _Failed(FailureReason.BAD_REQUEST, f"Slack {method}: {said}", code=code)
    return _Failed(from_http_status(status), f"Slack {method}: {said}", code=code)


def _retry_after(headers: Any) -> float:
    """Seconds from a ``Retry-After`` header (Slack sends whole seconds); 1 s if unreadable."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        wait = float(value)
    except (TypeError, ValueError):
        return 1.0
    return min(MAX_RETRY_AFTER, wait) if math.isfinite(wait) and wait > 0 else 1.0


def _transport_reason(exc: Exception) -> FailureReason:
    import aiohttp

    if isinstance(exc, aiohttp.ServerTimeoutError):
        return FailureReason.TIMEOUT
    if isinstance(exc, aiohttp.ClientResponseError):
        return from_http_status(exc.status)
    if isinstance(exc, aiohttp.ClientError | OSError):
        return FailureReason.REFUSED
    return FailureReason.BAD_REQUEST
