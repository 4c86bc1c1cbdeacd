"""Keeping the state file bounded: history older than ``state_retention`` is pruned on a timer.

The watcher runs ``Pruner.run`` beside its ticks. A pass deletes in batches of
``PRUNE_BATCH`` rows, one short transaction each, and pauses between batches, so a tick,
a delivery or another process's ``omealert silence`` gets the write lock within one batch
even while a year of backlog goes. The first pass runs at start (a file from a version
that never pruned is caught up then), the next ones every ``PRUNE_EVERY_S``.

Freed pages are reused by later writes; the file does not shrink by itself, it stops growing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from ..clock import Clock
from ..durations import format_duration
from ..errors import StateError
from .store import PRUNE_BATCH, StateStore

__all__ = ["PRUNE_EVERY_S", "Pruner"]

#: Real seconds between two pruning passes of a running watcher.
PRUNE_EVERY_S = 3600.0
#: Real seconds between two batches: room for another process's busy handler to get in.
BATCH_PAUSE_S = 0.01


class Pruner:
    """Deletes what is older than the retention ``retention_s()`` returns (read every pass,
    so a reload that changes ``state_retention`` applies from the next pass)."""

    def __init__(
        self,
        store: StateStore,
        *,
        clock: Clock,
        retention_s: Callable[[], float],
        every_s: float = PRUNE_EVERY_S,
        batch: int = PRUNE_BATCH,
        pause_s: float = BATCH_PAUSE_S,
        logger: logging.Logger | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.retention_s = retention_s
        self.every_s = every_s
        self.batch = batch
        self.pause_s = pause_s
        self.log = logger or logging.getLogger("omealert.state")
        #: transactions made so far, for tests and the log line
        self.batches = 0
        self._failing = False

    async def prune_once(self, stop: asyncio.Event | None = None) -> int:
        """One pass down to the retention; returns how many rows went. Raises StateError.

        ``stop`` ends the pass between two batches; the rest waits for the next pass.
        """
        retention = self.retention_s()
        before = self.clock.now() - retention
        total = 0
        batches = 0
        while stop is None or not stop.is_set():
            removed = self.store.prune_batch(before, self.batch)
            total += removed
            batches += 1
            if removed < self.batch:
                break
            await asyncio.sleep(self.pause_s)
        self.batches += batches
        if total:
            self.log.info(
                "pruned %d row(s) of history older than %s from the state database "
                "(%d transaction(s))",
                total,
                format_duration(retention),
                batches,
            )
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Prune now and then every ``every_s`` until ``stop``; a failure is one log line."""
        while not stop.is_set():
            try:
                await self.prune_once(stop)
            except StateError as exc:
                if not self._failing:
                    self.log.warning(
                        "cannot prune the state database (trying again in %s): %s",
                        format_duration(self.every_s),
                        exc,
                    )
                self._failing = True
            else:
                self._failing = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every_s)
