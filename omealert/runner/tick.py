"""One tick — poll, evaluate, plan notices, persist — and the loop that repeats it.

The runner is the only place where the pure engine meets I/O: OME clients, the state
database, the outbox. A failing OME server becomes ``ome-api-down``; nothing here may stop
the loop.

A state database that cannot be written (disk full, file made read-only, a lock held too
long) is logged once, and the watcher carries on from memory: alerts are evaluated and
notices delivered as usual. What could not be written is kept — instances stay dirty,
removals and transitions pile up, the outbox keeps its bookkeeping — and every
``STORE_RETRY_S`` a tick tries again; the first write that succeeds saves all of it in one
transaction (with the messages queued only in memory), so a restart after the disk came
back neither repeats nor forgets what happened during the outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..clock import Clock
from ..engine.alerts import Transition
from ..engine.engine import Engine
from ..engine.health import absent_rules
from ..errors import StateError
from ..model import AlertState, PollResult, Target
from ..notify.delivery import Deliverer
from ..notify.outbox import Outbox
from ..notify.planner import Planner
from ..ome.client import OmeClient, poll_all
from ..ome.plan import PollPlan
from ..ome.targeted import poll_targeted
from ..ome.version import describe
from ..rules import Settings
from ..state.acks import Ack
from ..state.persist import from_record, to_record, transition_record
from ..state.records import OutboxMessage, Silence, TransitionRecord
from ..state.retention import Pruner
from ..state.store import StateStore
from .early import EVENT_POLL_GAP_S, EventPolls
from .logbook import Logbook
from .meta import tick_meta
from .watching import Watching

if TYPE_CHECKING:
    import httpx

    from ..metrics import Metrics
    from ..ome.events import EventBook
    from .fleet import FleetHook

log = logging.getLogger("omealert")

#: While the state file cannot be written, how often (clock seconds) a tick tries again.
STORE_RETRY_S = 60.0
#: Transitions kept for ``history`` while the file cannot be written; older ones are dropped.
MAX_UNSAVED_TRANSITIONS = 10_000

ReloadHook = Callable[["Runner"], Awaitable[None]]


@dataclass
class TickReport:
    at: float
    polls: list[PollResult]
    transitions: list[Transition]
    messages: list[OutboxMessage] = field(default_factory=list)
    duration: float = 0.0


class Runner:
    """Owns the engine, the clients, the store and the outbox for one config."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock,
        store: StateStore | None = None,
        deliverer: Deliverer | None = None,
        notify: bool = True,
        lenient_history: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        metrics: Metrics | None = None,
        events: EventBook | None = None,
        health: bool = False,
    ) -> None:
        self.settings = settings
        #: health states (``watch --listen``, ``demo``) and stream stories (``watching``)
        self.watching = Watching(settings, health=health)
        self.health = self.watching.health
        #: the servers and streams OME's events asked to poll now (``runner.early``)
        self.early = EventPolls(metrics)
        #: what OME's Alert module said, given to each tick's samples (``ome_alert()``)
        self.events = events
        self.clock = clock
        self.store = store
        self.notify = notify
        self.transport = transport
        #: the watcher's metrics; None (check, demo, replay): nothing is recorded
        self.metrics = metrics
        self.engine = Engine(settings, lenient_history=lenient_history)
        self.planner = Planner(settings)
        self.clients: dict[str, OmeClient] = {}
        self.plans: dict[str, PollPlan] = {}
        self._build_clients(settings)
        self.logbook = Logbook()
        self._store_broken = False
        self._store_retry_at = 0.0
        #: what the store has not been told yet: removed instances and transitions
        self._unsaved_deletes: dict[tuple[str, str], None] = {}
        self._unsaved_transitions: list[TransitionRecord] = []
        #: the silences last read, used when reading them fails
        self._silences: list[Silence] = []
        self._acks: list[Ack] = []
        self.outbox: Outbox | None = None
        if deliverer is not None and notify:
            self.outbox = Outbox(
                store=store,
                deliverer=deliverer,
                channels=settings.channels,
                clock=clock,
                max_age_s=settings.delivery_max_age_s,
                logger=logging.getLogger("omealert.outbox"),
                on_store_error=self._store_failed,
            )
        self.restored: list[Transition] = []
        #: Alertmanagers and the heartbeat (``runner/fleet.py``), told of every tick
        self.fleet: FleetHook | None = None
        #: sends still running when ``watch`` gave up waiting for them at shutdown
        self.unfinished_sends = 0
        #: scheduled ticks that ``watch`` skipped because the loop was busy past their time
        self.missed_slots = 0
        if store is not None:
            self._restore(store)

    # -- set-up ----------------------------------------------------------------------------

    def _build_clients(self, settings: Settings) -> None:
        for server in settings.servers:
            self.clients[server.name] = OmeClient(
                server, clock=self.clock, transport=self.transport, ask_version=True
            )
        self.plans = self.watching.plans(settings)

    def _restore(self, store: StateStore) -> None:
        try:
            records = store.load_alerts()
            last = store.get_meta("last_tick_at")
            self.engine.flapping.load(store.get_meta("flapping"))
            self.engine.dependencies.load(store.get_meta("dependencies"))
        except StateError as exc:
            self._store_failed(exc)
            return
        last_tick = float(last) if last else None
        self.restored = self.engine.restore(
            (from_record(r) for r in records), self.clock.now(), last_tick
        )
        if records:
            firing = sum(1 for r in records if r.state == AlertState.FIRING.value)
            log.info("restored %d alert instance(s), %d firing", len(records), firing)

    async def reload(self, settings: Settings) -> None:
        """Swap the config in place; state of unchanged rules carries over."""
        now = self.clock.now()
        transitions = self.engine.reload(settings, now)
        old_servers = {s.name: s for s in self.settings.servers}
        self.settings = settings
        self.planner = Planner(settings, self.planner.acks)
        for name, client in list(self.clients.items()):
            new = next((s for s in settings.servers if s.name == name), None)
            if new is None or new != old_servers.get(name):
                await client.aclose()
                del self.clients[name]
        for server in settings.servers:
            if server.name not in self.clients:
                self.clients[server.name] = OmeClient(
                    server, clock=self.clock, transport=self.transport, ask_version=True
                )
        self.plans = self.watching.plans(settings)
        self.early.forget(frozenset(self.clients))
        self.watching.reload(settings)
        for client in self.clients.values():
            if client.version.version is not None:  # a new client logs it on its first poll
                log.info("%s", describe(client.name, client.version.version))
        if self.outbox is not None:
            self.outbox.configure(settings.channels)
        if self.fleet is not None:
            self.fleet.configure(settings)
        elif settings.alertmanagers or settings.heartbeat.url is not None:  # senders start once
            log.warning("alertmanagers or a heartbeat were added: they start at the next restart")
        messages = self._plan(transitions, now)
        self._save(transitions, messages, now)
        self.logbook.transitions(transitions)

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    # -- the tick --------------------------------------------------------------------------

    def look(self, server: str, stream: Target | None = None) -> None:
        """OME said something about ``server`` (its ``stream``): poll it now, outside the
        schedule (``watch``); coalesced and bounded by ``runner.early``."""
        if server in self.clients:
            self.early.ask(server, stream)

    async def tick(
        self,
        only: frozenset[str] | None = None,
        streams: Mapping[str, Sequence[Target]] | None = None,
    ) -> TickReport:
        """Poll (every server, or ``only`` these, and the ``streams`` of targeted polls),
        evaluate, plan and save: one tick, or one round of early polls."""
        started = time.perf_counter()
        clients = [c for name, c in self.clients.items() if only is None or name in only]
        polls = await poll_all(clients, self.plans) if clients else []
        if streams:
            polls += await poll_targeted(self.clients, self.plans, streams, self.clock.now())
        if self.events is not None:
            self.events.apply(polls)
        # The tick's time is taken after the poll: the client stamps samples as it reads
        # them, and history leaves points later than `now` out of every window, so a `now`
        # from before the poll would drop the newest sample from rate() and friends.
        now = self.clock.now()
        transitions = list(self.restored) + self.engine.step(polls, now)
        self.restored = []
        reports = self.watching.observe(
            polls, self.engine.instances(), absent_rules(self.settings), self.settings, now
        )
        messages = self._plan(transitions, now) + (reports if self.notify else [])
        self._refresh_summaries(transitions, now)
        self._save(transitions, messages, now)
        full = [p for p in polls if p.covers is None]  # a targeted one says little of its server
        self.logbook.polls(full)
        self.logbook.transitions(transitions)
        duration = time.perf_counter() - started
        if self.metrics is not None:
            if only is None or full:  # a round of targeted polls alone is not a tick
                self.metrics.observe_tick(full, duration, self.engine.instances())
            self.metrics.observe_targeted([p for p in polls if p.covers is not None])
        if self.fleet is not None:
            self.fleet.after_tick(self.engine, transitions, polls, now, full=only is None)
        return TickReport(now, polls, transitions, messages, duration)

    def _plan(self, transitions: Sequence[Transition], now: float) -> list[OutboxMessage]:
        if not self.notify:
            return []
        if self.store is not None:
            # Tried even while writes fail: a full disk or a read-only file still reads, and
            # a silence must keep working through a disk problem.
            try:
                self._silences = self.store.active_silences(now)
                self._acks = self.store.live_acks(now)
            except StateError as exc:
                self._store_failed(exc)
        silences = [s for s in self._silences if s.starts_at <= now < s.ends_at]
        return self.planner.plan(self.engine, transitions, now, silences, self._acks)

    def _refresh_summaries(self, transitions: Sequence[Transition], now: float) -> None:
        """Render the summary of alerts that just became pending or firing.

        The planner renders one only for a message it sends; without this an alert that
        notifies nobody (or is silenced) would show an empty summary in ``omealert status``.
        """
        if self.store is None:
            return
        for tr in transitions:
            if tr.rule is not None and tr.to_state in (AlertState.PENDING, AlertState.FIRING):
                before = tr.instance.summary
                self.planner.view(tr.instance, tr.rule, now)
                if tr.instance.summary != before:
                    tr.instance.dirty = True

    def _save(
        self, transitions: Sequence[Transition], messages: list[OutboxMessage], now: float
    ) -> None:
        """Write the tick in one transaction, then hand its messages to the outbox.

        While the store is broken, the changes pile up and a write is tried every
        ``STORE_RETRY_S``; the one that succeeds carries the whole backlog, including the
        messages that were queued only in memory meanwhile.
        """
        removed = self.engine.take_removed()
        if self.store is None:
            self._queue(messages)
            return
        self._unsaved_deletes.update(dict.fromkeys((i.rule, i.target.key) for i in removed))
        self._unsaved_transitions.extend(transition_record(t) for t in transitions)
        del self._unsaved_transitions[:-MAX_UNSAVED_TRANSITIONS]
        if self._store_broken and now < self._store_retry_at:
            self._queue(messages)
            return
        recovering = self._store_broken
        dirty = [i for i in self.engine.instances() if i.dirty]
        unsaved = self.outbox.unsaved() if self.outbox is not None and recovering else []
        try:
            ids = self.store.save_tick(
                upsert=[to_record(i) for i in dirty],
                delete=list(self._unsaved_deletes),
                transitions=self._unsaved_transitions,
                outbox=[*unsaved, *messages],
                meta=tick_meta(self.engine, self.settings, self.events, self.watching, now),
                acks_announced=self.planner.acks.announced,
            )
        except StateError as exc:
            self._store_failed(exc)
            self._queue(messages)
            return
        for inst in dirty:
            inst.dirty = False
        self.planner.acks.announced.clear()
        self._unsaved_deletes.clear()
        self._unsaved_transitions.clear()
        if self.outbox is not None:
            self.outbox.saved(zip(unsaved, ids, strict=False))
        for msg, msg_id in zip(messages, ids[len(unsaved) :], strict=False):
            msg.id = msg_id
        self._queue(messages)
        if self.outbox is not None and self.outbox.store_broken and not self.outbox.resync():
            return  # the outbox said so through _store_failed; try again later
        if recovering:
            self._store_broken = False
            log.info(
                "state database writable again: saved %d changed alert(s) and %d message(s) "
                "kept in memory",
                len(dirty),
                len(unsaved),
            )

    def _queue(self, messages: list[OutboxMessage]) -> None:
        if self.outbox is not None and messages:
            self.outbox.add(messages)

    def _store_failed(self, exc: StateError) -> None:
        """One line when the store starts failing; retries meanwhile stay quiet."""
        if not self._store_broken:
            log.error(
                "state database failed, alerting continues from memory (retrying every %gs): %s",
                STORE_RETRY_S,
                exc,
            )
        self._store_broken = True
        self._store_retry_at = self.clock.now() + STORE_RETRY_S
        if self.metrics is not None:
            self.metrics.state_error()

    async def _look_now(self) -> None:
        """The early polls OME's events asked for (``runner.early``), with the same rules."""
        servers, streams = self.early.take()
        await self.tick(only=servers, streams=streams)
        if self.metrics is not None:
            for server in servers:
                self.metrics.event_poll(server, "server")

    # -- the loop --------------------------------------------------------------------------

    async def watch(
        self,
        stop: asyncio.Event,
        *,
        reload_requested: asyncio.Event | None = None,
        on_reload: ReloadHook | None = None,
        flush_timeout: float = 10.0,
    ) -> None:
        """Tick every ``interval`` until ``stop``; a slow tick never overlaps the next one."""
        outbox_task = None
        if self.outbox is not None:
            outbox_task = asyncio.create_task(self.outbox.run(stop))
        prune_task = None
        if self.store is not None:  # state_retention: history is pruned beside the ticks
            pruner = Pruner(
                self.store, clock=self.clock, retention_s=lambda: self.settings.state_retention_s
            )
            prune_task = asyncio.create_task(pruner.run(stop))
        fleet = self.fleet
        fleet_task = asyncio.create_task(fleet.run(stop)) if fleet is not None else None
        next_at = self.clock.now()
        looked_at = next_at - EVENT_POLL_GAP_S
        try:
            while not stop.is_set():
                report = await self.tick()
                interval = self.settings.interval_s
                if self.logbook.tick_took(report.duration, interval) and self.metrics is not None:
                    self.metrics.slow_tick()
                # Let go of this tick's samples now: held until the next tick's returned,
                # two ticks of 10,000 samples would be alive at once.
                del report
                next_at += interval
                now = self.clock.now()
                if next_at < now:  # skip the slots we missed, start on schedule
                    missed = int((now - next_at) // interval) + 1
                    next_at += missed * interval
                    self.missed_slots += missed
                while not stop.is_set():
                    if reload_requested is not None and reload_requested.is_set():
                        reload_requested.clear()
                        if on_reload is not None:
                            await on_reload(self)
                    remaining = next_at - self.clock.now()
                    if remaining <= 0:
                        break
                    wait = min(remaining, 1.0)
                    look: asyncio.Event | None = self.early.wake
                    if self.early.pending():
                        early = looked_at + EVENT_POLL_GAP_S - self.clock.now()
                        if early <= 0:
                            await self._look_now()
                            looked_at = self.clock.now()  # the gap runs from its end
                            continue
                        wait, look = min(wait, early), None  # pending: wake at the gap's end
                    await _wait_any(stop, reload_requested, wait, self.clock, look)
        finally:
            stop.set()
            if prune_task is not None:
                await prune_task
            if fleet_task is not None:
                await fleet_task
            if outbox_task is not None:
                await outbox_task
            if self.outbox is not None:
                self.unfinished_sends = await self.outbox.flush(flush_timeout)
            await self.aclose()


async def _wait_any(
    stop: asyncio.Event,
    other: asyncio.Event | None,
    timeout: float,
    clock: Clock,
    look: asyncio.Event | None = None,
) -> None:
    events = [stop] + [e for e in (other, look) if e is not None]
    tasks = [asyncio.ensure_future(e.wait()) for e in events]
    sleeper = asyncio.ensure_future(clock.sleep(timeout))
    _, pending = await asyncio.wait([*tasks, sleeper], return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
