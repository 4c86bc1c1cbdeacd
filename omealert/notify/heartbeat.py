"""The ping half of the dead man's switch: a healthchecks-style URL requested per tick.

Every tick that completed requests ``heartbeat.url`` (``GET`` or ``POST``); a tick where
every server failed requests ``url/fail`` instead, so the ping service tells "the watcher
is dead" (no pings) from "the watcher sees nothing" (fail pings). The request runs in its
own task with its own timeout and never delays the tick: while one is still running, the
next tick's ping is skipped rather than queued. A ping service that does not answer is
logged once when it starts failing and once when it answers again. The URL is a secret
(its path names the check): it is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from ..model import PollResult
    from ..rules import HeartbeatSpec

log = logging.getLogger("omealert.heartbeat")


class Pinger:
    """Requests the heartbeat URL after each tick, one request at a time."""

    def __init__(
        self, spec: HeartbeatSpec, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.spec = spec
        self._transport = transport
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0
        self.skipped = 0
        self._up = True

    def configure(self, spec: HeartbeatSpec) -> None:
        self.spec = spec

    def tick_done(self, polls: list[PollResult]) -> None:
        """A tick completed: ping (``/fail`` if every server failed), without waiting."""
        if self.spec.url is None:
            return
        if self._task is not None and not self._task.done():
            self.skipped += 1
            return
        failed = bool(polls) and all(p.error is not None for p in polls)
        url = self.spec.url.rstrip("/") + "/fail" if failed else self.spec.url
        self._task = asyncio.get_running_loop().create_task(self._ping(url))

    async def _ping(self, url: str) -> None:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.spec.timeout_s,
                transport=self._transport,
                trust_env=False,
                headers={"User-Agent": "omealert"},
            )
        problem: str | None = None
        try:
            async with asyncio.timeout(self.spec.timeout_s):
                reply = await self._client.request(self.spec.method, url)
            if reply.status_code >= 300:
                problem = f"answered HTTP {reply.status_code}"
        except TimeoutError:
            problem = "timed out"
        except httpx.HTTPError as exc:
            problem = f"cannot connect ({type(exc).__name__})"
        if problem is None:
            self.sent += 1
            if not self._up:
                log.info("heartbeat URL answers again")
            self._up = True
            return
        self.failed += 1
        if self._up:
            log.error("heartbeat ping failed: %s (the URL is not shown: it is a secret)", problem)
        self._up = False

    async def finish(self, timeout: float) -> bool:
        """Wait for the ping in flight, if any (``check --notify``); False if it ran over."""
        if self._task is None or self._task.done():
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()
            self._client = None
