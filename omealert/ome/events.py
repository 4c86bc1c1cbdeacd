"""What omealert remembers of OME's Alert events: bounded per server, whatever is sent.

Each configured server gets the last codes OME sent per source (its alarm state, as OME
sees it: a list of codes until an ``OK`` clears it) and a short log of its latest events.
Both are bounded: a source beyond ``max_sources`` pushes out the one heard from longest
ago, and the log keeps ``recent`` entries, so a flood of events naming invented streams
costs a fixed amount of memory. Event codes (a stream created, a transcoder failing) are
kept apart from the alarm codes, as the last such event per source: OME never sends an
``OK`` for them, and an event must not wipe an alarm. Both expire when the poll no longer
lists the stream (``expire``): OME drops the key of a stream that ends in alarm silently.
"""

from __future__ import annotations

import json
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..lang.codes import FIELD_PREFIX
from ..lang.queuefields import EVENT_PREFIX
from ..model import PollResult, Sample, Scope, Target, Value
from .alert import EVENT_TYPES, INGRESS_METRIC_CODES, QUEUE_CODES, AlertEvent, Source

MAX_SOURCES = 4096
#: queues remembered from congestion events per server (one 64 KiB body holds ~400)
MAX_EVENT_QUEUES = 2048
#: a queue's id and urn
QueueKey = tuple[int, str]
RECENT = 50
#: what ``status`` and ``history`` show: the last few events of each source, for the sources
#: heard from most recently (each server)
SHOWN_PER_SOURCE = 3
SHOWN_SOURCES = 256
#: the codes OME repeats until they clear, so they make a state
STATE_CODES = INGRESS_METRIC_CODES | QUEUE_CODES
KINDS = tuple(k for t in EVENT_TYPES for k in (t, f"{t}:event"))


@dataclass(frozen=True, slots=True)
class Heard:
    """One event as received: when, from which server, what it said."""

    at: float
    server: str
    event: AlertEvent


@dataclass(slots=True)
class ServerEvents:
    """One server's event memory."""

    #: (event type, source) -> OME's current codes for it (never empty; cleared by OK)
    codes: OrderedDict[tuple[str, Source | None], tuple[str, ...]] = field(
        default_factory=OrderedDict
    )
    recent: deque[Heard] = field(default_factory=lambda: deque(maxlen=RECENT))
    received: int = 0
    #: source -> its last ``SHOWN_PER_SOURCE`` events, for ``status`` and ``history``
    shown: OrderedDict[Source | None, deque[Heard]] = field(default_factory=OrderedDict)
    #: source -> the queues its current congestion event listed, by (id, urn): ``event.*``
    queues: OrderedDict[Source | None, dict[QueueKey, dict[str, Value]]] = field(
        default_factory=OrderedDict
    )


class EventBook:
    """Every server's event memory; ``record`` is the only way in."""

    def __init__(self, max_sources: int = MAX_SOURCES) -> None:
        self.max_sources = max_sources
        self._servers: dict[str, ServerEvents] = {}
        #: set by every event, cleared by whoever saved ``shown()`` (the runner)
        self.changed = False

    def record(self, heard: Heard) -> None:
        """Remember ``heard``: its codes become the source's state, an ``OK`` clears it."""
        book = self._servers.setdefault(heard.server, ServerEvents())
        book.received += 1
        book.recent.append(heard)
        event = heard.event
        self.changed = True
        last = book.shown.get(event.source)
        if last is None:
            last = book.shown[event.source] = deque(maxlen=SHOWN_PER_SOURCE)
            if len(book.shown) > SHOWN_SOURCES:
                book.shown.popitem(last=False)
        book.shown.move_to_end(event.source)
        last.append(heard)
        key = (event.type, event.source)
        if event.type == "INTERNAL_QUEUE":
            _remember_queues(book, event)
        if event.recovered:
            book.codes.pop(key, None)
            return
        state = tuple(c for c in event.codes if c in STATE_CODES)
        status = tuple(c for c in event.codes if c not in STATE_CODES)
        for kind, codes in ((event.type, state), (f"{event.type}:event", status)):
            if codes:
                slot = (kind, event.source)
                book.codes[slot] = codes
                book.codes.move_to_end(slot)
        while len(book.codes) > self.max_sources:
            book.codes.popitem(last=False)

    def codes(self, server: str, source: Source | None) -> frozenset[str]:
        """OME's current codes for ``source`` on ``server``, of every event type."""
        book = self._servers.get(server)
        if book is None:
            return frozenset()
        out: set[str] = set()
        for kind in KINDS:
            out.update(book.codes.get((kind, source), ()))
        return frozenset(out)

    def expire(self, server: str, listed: Callable[[Source], bool]) -> int:
        """Forget the codes of ``server``'s streams for which ``listed`` is False."""
        book = self._servers.get(server)
        if book is None:
            return 0
        gone = [
            k
            for k in book.codes
            if k[1] is not None and k[1].stream is not None and not listed(k[1])
        ]
        for k in gone:
            del book.codes[k]
        return len(gone)

    def shown(self) -> list[dict[str, object]]:
        """The last events of each source of every server, newest source first, as JSON-ready
        rows (``target`` is the key alerts use): what the watcher saves for ``status``."""
        rows: list[dict[str, object]] = []
        for server, book in sorted(self._servers.items()):
            for source, heard in reversed(book.shown.items()):
                target = _target_of(server, source).key
                rows.append({"target": target, "events": [_row(h) for h in heard]})
        return rows

    def meta(self) -> dict[str, str]:
        """The state file's ``ome_events`` entry when new events came, else nothing."""
        if not self.changed:
            return {}
        self.changed = False  # a failed write loses only what the next event rewrites
        return {"ome_events": json.dumps(self.shown(), sort_keys=True)}

    def recent(self, server: str) -> tuple[Heard, ...]:
        book = self._servers.get(server)
        return tuple(book.recent) if book is not None else ()

    def sources(self, server: str) -> int:
        book = self._servers.get(server)
        return len(book.codes) if book is not None else 0

    def apply(self, polls: Iterable[PollResult]) -> None:
        """Give each polled sample OME's current codes (``ome_alert.CODE`` fields), after
        forgetting the streams a successful poll no longer lists.

        A poll that failed, or saw whole apps vanish (OME's shutdown window, confirmed only
        by the next poll), expires nothing: its listing is not the whole truth.
        """
        for poll in polls:
            if poll.server not in self._servers:
                continue
            if poll.error is None and not poll.unconfirmed:
                self.expire(poll.server, _in_listing(poll))
            book = self._servers[poll.server]
            readings = _queue_readings(book, poll)
            for target, sample in poll.samples.items():
                source = _source_of(target)
                for code in self.codes(poll.server, source):
                    sample.fields[FIELD_PREFIX + code] = True
                if readings and target.output == Scope.QUEUE.value:
                    got = readings.get(_queue_key(sample))
                    for name, value in (got or {}).items():
                        sample.fields[EVENT_PREFIX + name] = value

    def forget(self, keep: frozenset[str]) -> None:
        """Drop the memory of servers no longer configured (after a reload)."""
        for name in [n for n in self._servers if n not in keep]:
            del self._servers[name]


def stream_of(heard: Heard) -> Target | None:
    """The stream a targeted poll should read for ``heard``; None: poll the whole server.

    A queue event reads the queues, which only a poll of the whole server does; an event
    naming no stream (0.18's queue congestion, an app's queue) has no narrower target."""
    source = heard.event.source
    if heard.event.type == "INTERNAL_QUEUE" or source is None or source.stream is None:
        return None
    return Target(heard.server, source.vhost, source.app, source.stream)


def _remember_queues(book: ServerEvents, event: AlertEvent) -> None:
    """A congestion event's queues become its source's ``event.*``; its OK clears them.

    Bounded: past ``MAX_EVENT_QUEUES`` queues of one server, the sources heard from longest
    ago are forgotten (0.18-0.20 send one source, the whole server; 0.20.5+ one per app or
    stream)."""
    book.queues.pop(event.source, None)
    if event.recovered or not event.queues:
        return
    book.queues[event.source] = {(qid, urn): fields for qid, urn, fields in event.queues}
    while len(book.queues) > 1 and sum(map(len, book.queues.values())) > MAX_EVENT_QUEUES:
        book.queues.popitem(last=False)


def _queue_key(sample: Sample) -> QueueKey:
    """A polled queue's (id, urn): its leaf ends in ``#id`` (``ome.queues.queue_target``)."""
    qid = (sample.target.leaf or "").rpartition("#")[2]
    urn = sample.fields.get("urn")
    return (int(qid) if qid.isdigit() else -1, urn if isinstance(urn, str) else "")


def _queue_readings(book: ServerEvents, poll: PollResult) -> dict[QueueKey, dict[str, Value]]:
    """Every queue the server's current congestion events list (the newest wins); a poll of
    the whole server that read the queues forgets those it no longer lists (an id is only
    unique within one life of OME, hence the urn too)."""
    if not book.queues:
        return {}
    polled = {_queue_key(s) for t, s in poll.samples.items() if t.output == Scope.QUEUE.value}
    if polled and poll.covers is None and poll.error is None:
        for source in list(book.queues):
            kept = {k: v for k, v in book.queues[source].items() if k in polled}
            if kept:
                book.queues[source] = kept
            else:
                del book.queues[source]
    out: dict[QueueKey, dict[str, Value]] = {}
    for readings in book.queues.values():
        out.update(readings)
    return out


def _target_of(server: str, source: Source | None) -> Target:
    if source is None:
        return Target(server)
    return Target(server, source.vhost, source.app, source.stream)


def _row(heard: Heard) -> dict[str, object]:
    event = heard.event
    return {"at": heard.at, "type": event.type, "codes": list(event.codes)}


def _source_of(target: Target) -> Source | None:
    """The event source a sample's target reads: its stream, its app, or (server) none."""
    if target.vhost is None or target.app is None:
        return None
    return Source(target.vhost, target.app, target.stream)


def _in_listing(poll: PollResult) -> Callable[[Source], bool]:
    """Whether the poll lists a source; a targeted poll says yes for what it did not judge."""
    server, listed = poll.server, poll.listed

    def seen(s: Source) -> bool:
        target = Target(server, s.vhost, s.app, s.stream)
        return target in listed or not poll.judges(target)

    return seen
