"""The queue of messages not yet delivered, and the loop that delivers and retries them.

The working set lives in memory and is mirrored to the state database, so delivery goes
on from memory when the disk fails and survives a restart when it does not. While the
database cannot be written, what would have been recorded (a send, a failure, a drop) is
kept, and written once the runner finds the file writable again (``resync``), so a message
delivered during the outage is not sent again after a later restart. Each entry
is one message for one service (one apprise URL of a channel), sent by that service's own
worker: a dead or hanging service is retried on its own and never holds back the others.
Within one service, messages go out oldest first, so the order per alert is kept.

A message names its service by ``service_key`` (a hash of the URL), and is sent to the URL
of its channel that has that key now, wherever it stands in the list: a reload that
reorders the URLs changes nothing, and one that removes (or edits) a URL drops the messages
queued for it, logged, counted and recorded as dropped, instead of sending them elsewhere.

A service whose last send is still running past its deadline (a relay that hangs or trickles)
is busy: the deliverer starts no new send to it, and its messages wait here, counted once as
deferred (no attempt is spent), until that send's thread ends; those older than
``delivery_max_age`` are dropped meanwhile, as they would be when retried.

Retry policy: first retry 5 s after a failure, doubling up to 5 minutes, until the
message is older than ``delivery_max_age`` (default 24 h); then it is dropped, logged and
recorded with the reason.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..clock import Clock
from ..errors import StateError
from ..rules import ChannelSpec
from ..state.records import OutboxMessage, channel_services, service_key
from ..state.store import StateStore
from .delivery import Deliverer
from .render import Message

FIRST_RETRY_S = 5.0
MAX_RETRY_S = 300.0


def retry_delay(attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failure: 5, 10, 20, … capped at 300."""
    return float(min(FIRST_RETRY_S * 2.0 ** max(0, attempts - 1), MAX_RETRY_S))


@dataclass
class DeliveryCounters:
    sent: dict[str, int]
    failed: dict[str, int]
    dropped: dict[str, int]
    #: messages that were due while their service was busy, each counted once per wait
    deferred: dict[str, int] = field(default_factory=dict)
    #: failed attempts per (channel, ``FailureReason``)
    failed_reasons: dict[tuple[str, str], int] = field(default_factory=dict)


class Outbox:
    """Delivers queued messages; ``deliver_due`` is one pass, ``run`` the background loop."""

    def __init__(
        self,
        *,
        store: StateStore | None,
        deliverer: Deliverer,
        channels: dict[str, ChannelSpec],
        clock: Clock,
        max_age_s: float,
        logger: logging.Logger | None = None,
        on_store_error: Callable[[StateError], None] | None = None,
    ) -> None:
        self.store = store
        self.deliverer = deliverer
        self.channels = channels
        self.clock = clock
        self.max_age_s = max_age_s
        self.log = logger or logging.getLogger("omealert.outbox")
        self._pending: dict[int, OutboxMessage] = {}
        self._next_temp_id = -1
        self._wake = asyncio.Event()
        #: the one worker per service (channel, service key) that is sending right now
        self._inflight: dict[tuple[str, str], asyncio.Task[int]] = {}
        #: channel → service key → where that URL stands in the channel now
        self._where: dict[str, dict[str, int]] = {}
        self._index(channels)
        self.counters = DeliveryCounters({}, {}, {})
        #: ids of messages already counted as deferred in their current wait
        self._deferred: set[int] = set()
        deliverer.on_free = self._wake.set  # a busy service may take its queue again
        deliverer.use_state(store)  # Slack threads live in the same file as the queue
        #: who hears of a store failure; the runner, so that one problem is one log line
        self._on_store_error = on_store_error
        self._store_broken = False
        #: message id → the last bookkeeping call that could not be written, in call order
        self._unrecorded: dict[int, tuple[str, tuple[object, ...]]] = {}
        self._loaded = store is None
        self._load()

    def _load(self) -> None:
        """Take in what an earlier process left queued; ids already known are kept as they are."""
        if self.store is None or self._loaded:
            return
        try:
            for msg in self.store.pending_outbox():
                if msg.id is not None and msg.id not in self._pending:
                    self._pending[msg.id] = msg
                    if not msg.service_key:
                        self._bind(msg)
        except StateError as exc:
            self._store_failed(exc)
            return
        self._loaded = True

    def _bind(self, msg: OutboxMessage) -> None:
        """Give a message an older version queued by position the key of the URL there now.

        That version queued it under the config this watcher starts with (an upgrade keeps
        the file and the config), so the position still names the right URL; from here on
        the key does. One whose position is gone keeps no key and is dropped when due.
        """
        assert msg.id is not None
        channel = self.channels.get(msg.channel)
        if channel is None or not 0 <= msg.url_index < len(channel.urls):
            return
        msg.service_key = service_key(channel.urls[msg.url_index])
        self._persist("set_service_key", msg.id, msg.service_key)

    def __len__(self) -> int:
        return len(self._pending)

    def configure(self, channels: dict[str, ChannelSpec]) -> None:
        """Take a reloaded config; messages whose service it no longer has are dropped now.

        A service whose worker is sending right now is left to that worker, which drops
        what is left of its queue once its send is over.
        """
        self.channels = channels
        self._index(channels)
        now = self.clock.now()
        for key, queue in self._queues().items():
            if self._busy(key):
                continue
            for msg in queue:
                gone = self._gone(msg)
                if gone is not None:
                    self._drop(msg, now, gone, self._describe(msg))

    def _index(self, channels: dict[str, ChannelSpec]) -> None:
        self._where = {name: channel_services(c.urls) for name, c in channels.items()}

    def _gone(self, msg: OutboxMessage) -> str | None:
        """Why ``msg`` can no longer be delivered to its service, or None if it can."""
        if msg.channel not in self.channels:
            return f"channel {msg.channel!r} no longer exists"
        if msg.service_key not in self._where.get(msg.channel, {}):
            return f"its service is no longer in channel {msg.channel!r} (URL removed or changed)"
        return None

    def _describe(self, msg: OutboxMessage) -> str:
        """How logs and the notification log name the service; a removed one by its channel."""
        index = self._where.get(msg.channel, {}).get(msg.service_key)
        if index is None:
            return f"{msg.channel}[removed]"
        return self.channels[msg.channel].describe_url(index)

    def add(self, messages: Iterable[OutboxMessage]) -> None:
        """Take messages already saved (with ids) or, if saving failed, kept in memory only."""
        for msg in messages:
            if msg.id is None:
                msg.id = self._next_temp_id
                self._next_temp_id -= 1
            self._pending[msg.id] = msg
        self._wake.set()

    def next_due(self) -> float | None:
        """When the head of the queue of a service that is not busy sending becomes due."""
        return min(
            (
                q[0].next_attempt_at
                for key, q in self._queues().items()
                # a service the deliverer holds busy is due when its thread ends (``on_free``)
                if not self._busy(key) and self._can_start(q[0])
            ),
            default=None,
        )

    def _queues(self) -> dict[tuple[str, str], list[OutboxMessage]]:
        """Every service's messages, oldest first (ids count up on disk, down in memory)."""
        queues: dict[tuple[str, str], list[OutboxMessage]] = {}
        for msg in sorted(self._pending.values(), key=lambda m: (m.created_at, abs(m.id or 0))):
            queues.setdefault((msg.channel, msg.service_key), []).append(msg)
        return queues

    def _start_due(self) -> None:
        """Start one worker per service whose oldest message is due and that is not sending.

        Only the oldest message of a service decides: while it waits for its retry, the
        younger ones wait behind it, even those never tried, so a service never gets a
        [RESOLVED] before the [FIRING] it resolves. A service that hangs keeps only its own
        worker busy: the others get theirs, and the busy one picks up what became due
        meanwhile as soon as it is free again.
        """
        now = self.clock.now()
        for key, queue in self._queues().items():
            if self._busy(key) or queue[0].next_attempt_at > now:
                continue
            if not self._can_start(queue[0]):
                self._defer(queue, now)
                continue
            task = asyncio.create_task(self._deliver_service(queue))
            self._inflight[key] = task
            task.add_done_callback(functools.partial(self._finished, key))

    def _can_start(self, msg: OutboxMessage) -> bool:
        """False while the deliverer would not start a send to this message's service now."""
        if self._gone(msg) is not None:
            return True  # the worker drops it
        index = self._where[msg.channel][msg.service_key]
        return self.deliverer.can_start(self.channels[msg.channel], index)

    def _defer(self, queue: list[OutboxMessage], now: float) -> None:
        """A busy service's due messages wait (counted once); those too old are dropped."""
        for msg in queue:
            assert msg.id is not None
            if now - msg.created_at > self.max_age_s:
                self._drop(msg, now, "gave up: older than delivery_max_age", self._describe(msg))
            elif msg.next_attempt_at <= now and msg.id not in self._deferred:
                self._deferred.add(msg.id)
                self._count(self.counters.deferred, msg.channel)

    def _busy(self, key: tuple[str, str]) -> bool:
        task = self._inflight.get(key)
        return task is not None and not task.done()

    def _finished(self, key: tuple[str, str], task: asyncio.Task[int]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled() and task.exception() is not None:
            # A bug, not a failed send (those are outcomes): say so once, keep delivering.
            self.log.error("delivery worker for %s crashed: %r", key[0], task.exception())
        self._wake.set()  # that service may have more due by now

    async def deliver_due(self) -> int:
        """Send everything due now and wait for every send in flight; returns how many went out.

        Cancelling it (a shutdown deadline) cancels the waiting, not the bookkeeping: a message
        whose send did not finish stays queued and is tried again on the next start.
        """
        self._start_due()
        results = await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        return sum(r for r in results if isinstance(r, int))

    async def _deliver_service(self, messages: list[OutboxMessage]) -> int:
        """Send one service's queue in order; the first failure stops it (order is kept)."""
        delivered = 0
        for msg in messages:
            ok = await self._deliver_one(msg)
            if not ok:
                break  # keep the order: later messages wait for this one
            delivered += 1
        return delivered

    async def _deliver_one(self, msg: OutboxMessage) -> bool:
        assert msg.id is not None
        now = self.clock.now()
        gone = self._gone(msg)
        if gone is not None:
            self._drop(msg, now, gone, self._describe(msg))
            return True
        channel = self.channels[msg.channel]
        index = self._where[msg.channel][msg.service_key]
        service = channel.describe_url(index)
        if now - msg.created_at > self.max_age_s:
            self._drop(msg, now, "gave up: older than delivery_max_age", service)
            return True
        outcome = await self.deliverer.send(
            channel,
            index,
            Message(msg.title, msg.body, msg.format, msg.notify_type),
            msg,
        )
        now = self.clock.now()
        if outcome.busy:  # not tried: it waits, and ``_start_due`` counts it as deferred
            return False
        self._deferred.discard(msg.id)
        if outcome.ok:
            self._pending.pop(msg.id, None)
            self._count(self.counters.sent, msg.channel)
            self._persist("mark_delivered", msg.id, now, service)
            self.log.info(
                "delivered %s notice for %s to %s (%s)",
                msg.reason,
                msg.rule,
                msg.channel,
                service,
            )
            return True
        msg.attempts += 1
        msg.last_error = outcome.error
        # a service's own Retry-After is a floor: asking sooner only fails again
        msg.next_attempt_at = now + max(retry_delay(msg.attempts), outcome.retry_after)
        self._count(self.counters.failed, msg.channel)
        key = (msg.channel, outcome.reason)
        self.counters.failed_reasons[key] = self.counters.failed_reasons.get(key, 0) + 1
        args = (now, outcome.error, msg.next_attempt_at, service, outcome.reason)
        self._persist("mark_failed", msg.id, *args)
        self.log.warning(
            "delivery to %s (%s) failed (%s), attempt %d, retry in %.0fs: %s",
            msg.channel,
            service,
            outcome.reason,
            msg.attempts,
            msg.next_attempt_at - now,
            outcome.error,
        )
        return False

    def _drop(self, msg: OutboxMessage, now: float, reason: str, service: str) -> None:
        assert msg.id is not None
        self._pending.pop(msg.id, None)
        self._deferred.discard(msg.id)  # every way out of the queue ends its wait
        self._count(self.counters.dropped, msg.channel)
        self._persist("mark_dropped", msg.id, now, reason, service)
        self.log.error(
            "dropped %s notice for %s to %s: %s", msg.reason, msg.rule, msg.channel, reason
        )

    @staticmethod
    def _count(counter: dict[str, int], channel: str) -> None:
        counter[channel] = counter.get(channel, 0) + 1

    def _persist(self, method: str, msg_id: int, *args: object) -> None:
        """Record a send, failure or drop; while the store is broken, keep it for ``resync``.

        Nothing is attempted while broken, so the calls reach the file in the order made.
        """
        if self.store is None or msg_id < 0:
            return
        if self._store_broken:
            self._unrecorded[msg_id] = (method, args)
            return
        try:
            getattr(self.store, method)(msg_id, *args)
        except StateError as exc:
            self._unrecorded[msg_id] = (method, args)
            self._store_failed(exc)

    def _store_failed(self, exc: StateError) -> None:
        if self._on_store_error is not None:
            self._on_store_error(exc)
        elif not self._store_broken:
            self.log.error("state database unusable, delivering from memory: %s", exc)
        self._store_broken = True

    # -- when the state file fails and comes back ---------------------------------------------

    @property
    def store_broken(self) -> bool:
        """Whether bookkeeping is waiting for the state file to be writable again."""
        return self._store_broken or not self._loaded

    def unsaved(self) -> list[OutboxMessage]:
        """Messages queued while the store could not be written (memory only), oldest first."""
        return sorted(
            (m for m in self._pending.values() if m.id is not None and m.id < 0),
            key=lambda m: (m.created_at, -(m.id or 0)),
        )

    def saved(self, pairs: Iterable[tuple[OutboxMessage, int]]) -> None:
        """Memory-only messages were written after all: from now on they go by their new ids.

        A worker sending one of them reads ``msg.id`` when its send ends, so it settles the
        message under the new id.
        """
        for msg, new_id in pairs:
            if msg.id is not None and self._pending.get(msg.id) is msg:
                del self._pending[msg.id]
                self._pending[new_id] = msg
            msg.id = new_id

    def resync(self) -> bool:
        """Write the bookkeeping kept while the store was broken; True when all of it is in.

        Called by the runner after it managed to write a tick again. On a new failure the
        rest is kept for the next try.
        """
        if self.store is None:
            return True
        while self._unrecorded:
            msg_id, (method, args) = next(iter(self._unrecorded.items()))
            try:
                getattr(self.store, method)(msg_id, *args)
            except StateError as exc:
                self._store_failed(exc)
                return False
            del self._unrecorded[msg_id]
        self._store_broken = False
        self._load()
        return self._loaded

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver as messages become due until ``stop`` is set, then return at once.

        Sends still in flight are left running; ``flush`` waits for them within its deadline.
        """
        while not stop.is_set():
            self._wake.clear()
            self._start_due()
            due = self.next_due()
            wait = 1.0 if due is None else max(0.05, min(1.0, due - self.clock.now()))
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            _, pending = await asyncio.wait(
                waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()

    async def flush(self, timeout: float) -> int:
        """Before shutdown: finish sends in flight and try what is due, within ``timeout`` s.

        Returns how many sends were still running at the deadline (their messages stay queued).
        """
        try:
            async with asyncio.timeout(timeout):
                await self.deliver_due()
        except TimeoutError:
            unfinished = sum(1 for key in list(self._inflight) if self._busy(key))
            self.log.warning(
                "shutdown: %d message(s) still queued after %gs; they are kept for the next start",
                len(self._pending),
                timeout,
            )
            return max(1, unfinished)
        return 0
