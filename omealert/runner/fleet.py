"""What a watcher tells the world beyond its channels: Alertmanagers and the heartbeat.

The runner calls ``after_tick`` at the end of every tick; it only queues (alerts for the
Alertmanagers' senders) or starts a task (the heartbeat ping), so neither a slow
Alertmanager nor a slow ping service ever delays polling. ``run`` is the senders' task,
beside the tick loop, until the watcher stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..notify.alertmanager import AlertFeed
from ..notify.am_sender import AlertmanagerPool
from ..notify.heartbeat import Pinger

if TYPE_CHECKING:
    import httpx

    from ..clock import Clock
    from ..engine.alerts import Transition
    from ..engine.engine import Engine
    from ..model import PollResult
    from ..notify.alertmanager import Viewer
    from ..rules import Settings

__all__ = ["FleetHook", "wants_fleet"]

log = logging.getLogger("omealert")

#: at shutdown, how long a post still out to an Alertmanager may take
STOP_GRACE_S = 2.0


def wants_fleet(settings: Settings) -> bool:
    """Whether ``settings`` post to an Alertmanager or ping a heartbeat at all."""
    return bool(settings.alertmanagers) or settings.heartbeat.url is not None


class FleetHook:
    """The Alertmanager feed and senders, and the heartbeat pinger, of one runner."""

    def __init__(
        self,
        settings: Settings,
        viewer: Viewer,
        *,
        clock: Clock,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.pool = AlertmanagerPool(settings.alertmanagers, clock=clock, transport=transport)
        self.feed = AlertFeed(settings, self.pool, viewer)
        self.pinger = Pinger(settings.heartbeat, transport=transport)
        self._transport = transport
        self._clock = clock
        self._managers = settings.alertmanagers

    def configure(self, settings: Settings) -> None:
        """A reload: new options apply at once; a changed list of Alertmanagers from the
        next start (the senders of the old ones keep their queues until then)."""
        self.feed.configure(settings)
        self.pinger.configure(settings.heartbeat)
        if settings.alertmanagers != self._managers:
            log.warning(
                "the list of alertmanagers changed: it takes effect when the watcher restarts"
            )

    def after_tick(
        self,
        engine: Engine,
        transitions: Sequence[Transition],
        polls: Sequence[PollResult],
        now: float,
        *,
        full: bool,
    ) -> None:
        if self._managers:
            self.feed.observe(transitions, engine, now)
        if full:
            self.pinger.tick_done(list(polls))

    async def run(self, stop: asyncio.Event) -> None:
        """The senders until ``stop``; then a post still out gets ``STOP_GRACE_S`` to end
        (a hung Alertmanager must not hold up the exit: the next start resends)."""
        senders = asyncio.create_task(self.pool.run(stop))
        try:
            await stop.wait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(senders, STOP_GRACE_S)
        finally:
            if not senders.done():
                senders.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await senders
            await self.pinger.aclose()

    async def flush(self, timeout: float) -> bool:
        """Post what is queued once and wait for the ping (``check --notify``)."""
        ok = await self.pool.flush(timeout) if self._managers else True
        ok = await self.pinger.finish(timeout) and ok
        await self.pinger.aclose()
        return ok
