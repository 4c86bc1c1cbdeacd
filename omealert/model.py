"""Plain value types shared by every layer: where numbers come from, what state an alert is in."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from .errors import SourceError


class Scope(enum.StrEnum):
    """What a rule looks at: the four levels OME reports stats for, the outputs of a stream
    (a push to another server, a recording), and OME's internal queues (``ome/queues.py``).
    ``depth`` is how many name segments a target's ``match`` glob has: a push or a record
    is matched by its stream's names; queues take no glob."""

    SERVER = "server"
    VHOST = "vhost"
    APP = "app"
    STREAM = "stream"
    PUSH = "push"
    RECORD = "record"
    QUEUE = "queue"

    @property
    def depth(self) -> int:
        return _DEPTH[self]

    @property
    def is_output(self) -> bool:
        """A push or a record: read from its app's ``:pushes``/``:records`` list, not stats."""
        return self in OUTPUT_SCOPES


_DEPTH = {
    Scope.SERVER: 0, Scope.VHOST: 1, Scope.APP: 2, Scope.STREAM: 3, Scope.PUSH: 3, Scope.RECORD: 3,
    Scope.QUEUE: 0,
}  # fmt: skip
#: The scopes OME lists per app rather than reporting stats for.
OUTPUT_SCOPES = frozenset({Scope.PUSH, Scope.RECORD})
#: What separates a stream's key from the output or queue below it: a stream name is one
#: path segment of OME's API, so it never holds a ``/``.
_OUTPUT_MARK = {Scope.PUSH: "/:push/", Scope.RECORD: "/:record/", Scope.QUEUE: "/:queue/"}


class Target(NamedTuple):
    """One thing OME reports on: a server, or a vhost/app/stream on it, a push or a
    record of a stream, or one of its internal queues.

    Levels below the target's scope are ``None``. A named tuple rather than a dataclass
    because targets key every per-target map and are hashed millions of times per tick:
    tuple hashing and equality run in C. An output (``output`` is ``push`` or ``record``)
    is named by ``leaf``, which never holds a secret (``ome.outputs``): OME's own ``id``
    is not used, since StreamMap outputs get a new random one each time their stream
    returns.
    """

    server: str
    vhost: str | None = None
    app: str | None = None
    stream: str | None = None
    #: ``"push"``/``"record"`` for an output; ``"queue"`` for an internal queue, whose
    #: ``leaf`` is ``part/name#id`` (``ome/queues.py``)
    output: str | None = None
    leaf: str | None = None

    @property
    def scope(self) -> Scope:
        if self.output is not None:
            return Scope(self.output)
        if self.stream is not None:
            return Scope.STREAM
        if self.app is not None:
            return Scope.APP
        if self.vhost is not None:
            return Scope.VHOST
        return Scope.SERVER

    @property
    def names(self) -> tuple[str, ...]:
        """The name segments below the server: ``()``, ``(v,)``, ``(v, a)`` or ``(v, a, s)``."""
        return tuple(n for n in (self.vhost, self.app, self.stream) if n is not None)

    @property
    def key(self) -> str:
        """Stable identity such as ``origin-1/default/app/stream1``; state and messages use it.

        An output adds its kind and leaf: ``origin-1/default/app/s1/:push/rtmp://h/live#3fa9``;
        a queue ``origin-1/default/app/s1/:queue/trs/filter_video#121``.
        """
        base = "/".join((self.server, *self.names))
        if self.output is None:
            return base
        return f"{base}{_OUTPUT_MARK[Scope(self.output)]}{self.leaf}"

    def labels(self) -> dict[str, str]:
        out = {"server": self.server}
        if self.vhost is not None:
            out["vhost"] = self.vhost
        if self.app is not None:
            out["app"] = self.app
        if self.stream is not None:
            out["stream"] = self.stream
        if self.leaf is not None:
            if self.output == Scope.QUEUE:
                where, _, out["queue_id"] = self.leaf.rpartition("#")
                out["part"], _, out["name"] = where.partition("/")
                return out
            # a push's leaf is ``destination#digest``: the digest only tells apart pushes
            # to one destination with different keys
            if self.output == Scope.PUSH:
                out["destination"] = self.leaf.partition("#")[0]
            else:
                out["record"] = self.leaf
        return out

    def child(self, name: str) -> Target:
        """The vhost, app or stream ``name`` one level below this server, vhost or app."""
        v, a, _ = (*self.names, None, None, None)[:3]
        if v is None:
            return Target(self.server, name)
        if a is None:
            return Target(self.server, v, name)
        return Target(self.server, v, a, name)

    def parent(self) -> Target | None:
        """The level above; an output's is its app, since it outlives its stream; a queue's
        is its server (it can outlive its stream's listing)."""
        if self.output == Scope.QUEUE:
            return Target(self.server)
        if self.output is not None:
            return Target(self.server, self.vhost, self.app)
        if self.stream is not None:
            return Target(self.server, self.vhost, self.app)
        if self.app is not None:
            return Target(self.server, self.vhost)
        if self.vhost is not None:
            return Target(self.server)
        return None

    @classmethod
    def from_key(cls, key: str) -> Target:
        for scope, mark in _OUTPUT_MARK.items():
            base, found, leaf = key.partition(mark)
            if found:
                stream = cls.from_key(base)
                return stream._replace(output=scope.value, leaf=leaf)
        parts = key.split("/", 3)
        names: list[str | None] = [*parts, None, None, None]
        return cls(parts[0], names[1], names[2], names[3])


def stream_counts(listed: Iterable[Target]) -> dict[Target, int]:
    """How many streams are listed under each server, vhost and app: what ``streams`` reads.

    Counted from the listing the poll already made, so the field costs no request.
    """
    counts: dict[Target, int] = {}
    for target in listed:
        if target.scope is Scope.STREAM:
            node = target.parent()
            while node is not None:
                counts[node] = counts.get(node, 0) + 1
                node = node.parent()
    return counts


def under(target: Target, roots: Set[Target]) -> bool:
    """Whether ``target`` or one of its ancestors is in ``roots``."""
    node: Target | None = target
    while node is not None:
        if node in roots:
            return True
        node = node.parent()
    return False


#: What a field of a sample can hold. Times are timezone-aware datetimes.
Value = int | float | str | bool | datetime


@dataclass(slots=True)
class Sample:
    """The normalized stats of one target at one poll, in OME's v2 shape, flattened.

    ``fields`` maps dotted paths (``publishers.connections.webrtc``, ``providers.lastRecvTime``,
    ``video.framerateLatest``, ``streams``) to values. ``at`` is the watcher's clock when the
    poll started; ``server_now`` is the estimate of the OME server's clock at that moment
    (epoch seconds), which is what ``stale``/``age()`` compare timestamps against.
    """

    target: Target
    fields: dict[str, Value]
    at: float
    server_now: float
    #: labels that describe the target but are not part of its identity (a push's OME
    #: ``push_id``, which StreamMap pushes get anew): alerts carry the latest ones
    labels: dict[str, str] | None = None

    def nested(self) -> dict[str, Any]:
        """The fields as nested dicts, for templates: ``sample.publishers.connections.webrtc``."""
        return nest_fields(self.fields)


def nest_fields(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted paths (``publishers.connections.webrtc``) as nested dicts, for templates."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        *parents, leaf = path.split(".")
        for p in parents:
            child = node.get(p)
            if not isinstance(child, dict):
                child = {}
                node[p] = child
            node = child
        node[leaf] = value
    return out


@dataclass(slots=True)
class PollResult:
    """Everything one poll of one server produced.

    If ``error`` is set the server as a whole could not be read: the engine keeps every
    instance of that server as it was and fires ``ome-api-down`` instead.
    Otherwise ``listed`` holds every target the listings showed (all levels discovered,
    plus the server itself), ``samples`` the targets whose stats were fetched,
    ``gone`` the targets that were listed but 404'd before their stats could be read
    (they ended), and ``target_errors`` targets whose own request failed in another way
    (their state is kept, not resolved).
    """

    server: str
    at: float
    server_now: float
    error: SourceError | None = None
    samples: dict[Target, Sample] = field(default_factory=dict)
    listed: set[Target] = field(default_factory=set)
    gone: set[Target] = field(default_factory=set)
    target_errors: dict[Target, SourceError] = field(default_factory=dict)
    #: vhosts and apps the previous poll listed that vanished in this one, with everything
    #: under them (or the server itself, when a first poll lists no vhost at all): OME's
    #: shutdown window looks so. Nothing under them is treated as gone until the next poll
    #: confirms it (their instances keep their state meanwhile).
    unconfirmed: set[Target] = field(default_factory=set)
    #: values left out as not measured, by (field, reason) (``ome.unmeasured``)
    dropped: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: the server's OME release (``GET /v1/version``), None while not known
    ome_version: str | None = None
    requests: int = 0
    duration: float = 0.0
    #: None: the whole server was polled. Else a targeted poll (an OME event asked for it,
    #: ``ome.targeted``): the apps whose stream listing it read (``judges``).
    covers: frozenset[Target] | None = None

    def judges(self, target: Target) -> bool:
        """Whether this poll may change ``target``'s state: a poll of the whole server judges
        all of it; a targeted one only the apps it listed and the streams directly in them.
        Everything else (the server, vhosts, other apps, pushes, records, queues) was not
        looked at, and keeps its state until the next tick."""
        covers = self.covers
        if covers is None:
            return True
        if target.output is not None or target.app is None:
            return False
        return Target(target.server, target.vhost, target.app) in covers


class AlertState(enum.StrEnum):
    """Lifecycle of one (rule, target) instance: inactive → pending → firing → resolved."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"
