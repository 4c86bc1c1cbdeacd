"""Posting alerts to every configured Alertmanager, each on its own, never in the tick's way.

Each Alertmanager has a queue of the alerts it has not been sent yet, keyed by their label
set: a newer state of an alert (a resend, its resolve) replaces the one still waiting, so
a queue holds one entry per alert however long its Alertmanager is down, and is capped at
``MAX_QUEUED`` (the oldest go first, counted as dropped). One task per Alertmanager posts
batches of ``BATCH`` alerts to ``/api/v2/alerts``; a failed post goes back in the queue
(unless a newer state replaced it meanwhile) and is retried with a doubling backoff up to
``MAX_BACKOFF_S``. A down Alertmanager is logged once when it goes down and once when it
answers again, and never slows the others or the polling: the tick only adds to queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..clock import Clock

if TYPE_CHECKING:
    import httpx

    from ..rules import AlertmanagerSpec

log = logging.getLogger("omealert.alertmanager")

#: alerts waiting per Alertmanager; beyond this the oldest are dropped
MAX_QUEUED = 10_000
#: alerts per POST (Prometheus sends 64; a bigger batch means fewer round trips in a storm)
BATCH = 500
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0

#: one alert in Alertmanager's API shape: labels, annotations, startsAt, endsAt
AmAlert = dict[str, Any]
AlertKey = tuple[tuple[str, str], ...]


def alert_key(alert: AmAlert) -> AlertKey:
    """What Alertmanager identifies an alert by: its label set."""
    return tuple(sorted(alert["labels"].items()))


@dataclass(slots=True)
class AmCounters:
    """What one Alertmanager's sender did, for ``/metrics``."""

    sent: int = 0
    errors: int = 0
    dropped: int = 0
    queued: int = 0
    up: bool = True


@dataclass(slots=True)
class _Target:
    spec: AlertmanagerSpec
    queue: OrderedDict[AlertKey, AmAlert] = field(default_factory=OrderedDict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    counters: AmCounters = field(default_factory=AmCounters)
    failures: int = 0


class AlertmanagerPool:
    """The senders to every Alertmanager; ``put`` queues, ``run`` posts until stopped."""

    def __init__(
        self,
        specs: Sequence[AlertmanagerSpec],
        *,
        clock: Clock,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.clock = clock
        self._transport = transport
        self._targets = [_Target(spec) for spec in specs]
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def names(self) -> list[str]:
        return [t.spec.name for t in self._targets]

    def counters(self) -> Iterator[tuple[str, AmCounters]]:
        for t in self._targets:
            t.counters.queued = len(t.queue)
            yield t.spec.name, t.counters

    def snapshot(self) -> tuple[object, ...]:
        """Changes whenever a counter does: lets ``/metrics`` reuse a scrape otherwise."""
        return tuple((c.sent, c.errors, c.dropped, c.queued, c.up) for _, c in self.counters())

    def put(self, alerts: Iterable[AmAlert]) -> None:
        """Queue ``alerts`` for every Alertmanager (cheap: no I/O, called from the tick)."""
        batch = list(alerts)
        if not batch:
            return
        for t in self._targets:
            for alert in batch:
                key = alert_key(alert)
                t.queue.pop(key, None)
                t.queue[key] = alert
            over = len(t.queue) - MAX_QUEUED
            for _ in range(max(0, over)):
                t.queue.popitem(last=False)
            if over > 0:
                t.counters.dropped += over
                log.warning(
                    "alertmanager %s: queue full, dropped the %d oldest alert(s)", t.spec.name, over
                )
            t.wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Post until ``stop``; what is still queued then is left (a restart resends it)."""
        clients = [_client(t.spec, self._transport) for t in self._targets]
        try:
            await asyncio.gather(
                *(self._serve(t, c, stop) for t, c in zip(self._targets, clients, strict=True))
            )
        finally:
            for c in clients:
                await c.aclose()

    async def flush(self, timeout: float) -> bool:
        """Post what is queued now to every Alertmanager once (``check --notify``)."""
        clients = [_client(t.spec, self._transport) for t in self._targets]
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(
                    *(self._drain(t, c) for t, c in zip(self._targets, clients, strict=True))
                )
        except TimeoutError:
            return False
        finally:
            for c in clients:
                await c.aclose()
        return all(not t.queue for t in self._targets)

    async def _serve(self, t: _Target, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not t.queue:
                t.wake.clear()
                await _first(stop, t.wake)
                continue
            if not await self._send_some(t, client):
                delay = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** min(t.failures - 1, 16))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)

    async def _drain(self, t: _Target, client: httpx.AsyncClient) -> None:
        while t.queue:
            if not await self._send_some(t, client):
                return

    async def _send_some(self, t: _Target, client: httpx.AsyncClient) -> bool:
        """Post one batch; False if it failed (and went back in the queue)."""
        taken: list[tuple[AlertKey, AmAlert]] = []
        while t.queue and len(taken) < BATCH:
            taken.append(t.queue.popitem(last=False))
        problem = await _post(client, [a for _, a in taken])
        if problem is None:
            t.counters.sent += len(taken)
            if not t.counters.up:
                log.info(
                    "alertmanager %s answers again (after %d failed attempt(s))",
                    t.spec.name,
                    t.failures,
                )
            t.counters.up, t.failures = True, 0
            return True
        t.counters.errors += 1
        t.failures += 1
        refused = problem.startswith("refused")
        if t.counters.up:
            log.error(
                "alertmanager %s: %s; %s",
                t.spec.name,
                problem,
                "dropping these alerts" if refused else "retrying with backoff",
            )
        t.counters.up = False
        if refused:  # the same alerts would be refused again: a resend carries on
            return True
        for key, alert in reversed(taken):  # back at the front, unless a newer one came
            if key not in t.queue:
                t.queue[key] = alert
                t.queue.move_to_end(key, last=False)
        return False


def _client(spec: AlertmanagerSpec, transport: Any) -> httpx.AsyncClient:
    import httpx

    headers = {"User-Agent": "omealert"}
    if spec.bearer_token:
        headers["Authorization"] = f"Bearer {spec.bearer_token}"
    verify: Any = spec.verify_tls
    if spec.ca_file is not None and spec.verify_tls:
        import ssl

        verify = ssl.create_default_context(cafile=spec.ca_file)
    return httpx.AsyncClient(
        base_url=spec.url,
        headers=headers,
        auth=spec.basic_auth,
        timeout=spec.timeout_s,
        verify=verify,
        transport=transport,
        follow_redirects=False,
        trust_env=False,
    )


async def _post(client: httpx.AsyncClient, alerts: list[AmAlert]) -> str | None:
    """None if Alertmanager took ``alerts``; else what went wrong (no URL, no secret)."""
    import httpx

    try:
        reply = await client.post("/api/v2/alerts", json=alerts)
    except httpx.TimeoutException:
        return "timed out"
    except httpx.HTTPError as exc:
        return f"cannot connect ({type(exc).__name__})"
    if reply.status_code < 300:
        return None
    if 400 <= reply.status_code < 500 and reply.status_code not in (408, 429):
        return f"refused the alerts: HTTP {reply.status_code}"
    return f"answered HTTP {reply.status_code}"


async def _first(*events: asyncio.Event) -> None:
    tasks = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
