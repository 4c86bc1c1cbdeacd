"""Several simulators as an OVT origin and its edges.

``edge.relay_from(origin, vhost, app, stream)`` makes ``edge`` pull ``stream`` from
``origin`` as an OME edge does: the edge lists it with ``sourceType: Ovt`` and an
``ovt://`` ``sourceUrl``, relayed streams have no transcoder outputs (OME before 0.20.5),
and the origin counts one ``ovt`` session for it. The edge stream's input follows the
origin's: it stalls while the origin's stalls or is gone, and while the relay itself is
broken (``break_relay``: the origin stays fresh, the edge gets nothing) until
``mend_relay``. OME reaps an unused or dead edge stream within ~60 s
(``ome-beyond-stats.md`` §7); here ``remove_stream`` on the edge does that, when a
script says so.

Locks: an origin tells its edges after it let go of its own lock, and an edge asks its
origin under the origin's lock only, so two simulators never wait for each other.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from .streams import _NotFound
from .topology import _Topology

if TYPE_CHECKING:
    from collections.abc import Callable

#: ``sourceType`` of a stream pulled over OVT
OVT_SOURCE = "Ovt"

_Key = tuple[str, str, str]


class _Relays(_Topology):
    """``Simulator``'s origin/edge methods (see ``_SimClock``)."""

    #: on an edge: the relayed streams, each with its origin (None: scripted only) and
    #: whether the relay is broken
    _relays: dict[_Key, list[Any]]
    #: on an origin: each stream's edges, as the callbacks that make them follow it
    _edges: dict[_Key, list[Callable[[], None]]]

    if TYPE_CHECKING:

        @property
        def port(self) -> int: ...

    def relay_from(
        self,
        origin: _Relays | None,
        vhost: str,
        app: str,
        stream: str,
        *,
        origin_host: str | None = None,
        bitrate: int = 2_500_000,
    ) -> None:
        """Pull ``vhost/app/stream`` from ``origin`` (a simulator, or None to script the
        relay by hand with ``break_relay``/``mend_relay``); the edge stream is new."""
        host = origin_host or "127.0.0.1:9000"  # OVT's port, not the API's
        self.add_stream(vhost, app, stream, bitrate=bitrate, source=OVT_SOURCE)
        key = (vhost, app, stream)
        with self._lock:
            self._stream(vhost, app, stream).source_url = f"ovt://{host}/{app}/{stream}"
            self._relays[key] = [origin, False]
        if origin is not None:
            origin._add_edge(key, lambda: self._follow(key))
        self._follow(key)

    def break_relay(self, vhost: str, app: str, stream: str) -> None:
        """The relay breaks: the edge stream stays listed and gets nothing, the origin's
        goes on (a dead OVT session the edge has not noticed)."""
        self._set_broken((vhost, app, stream), True)

    def mend_relay(self, vhost: str, app: str, stream: str) -> None:
        """The relay carries the origin's stream again."""
        self._set_broken((vhost, app, stream), False)

    def _set_broken(self, key: _Key, broken: bool) -> None:
        with self._lock:
            link = self._relays.get(key)
            if link is None:
                raise _NotFound(f"not a relayed stream: {'/'.join(key)}")
            link[1] = broken
        self._follow(key)

    def _follow(self, key: _Key) -> None:
        """Set the edge stream's input from its origin's and the relay's state."""
        with self._lock:
            link = self._relays.get(key)
            if link is None or key[2] not in self._app(key[0], key[1]).streams:
                return  # reaped by the edge
            origin, broken = link
        fresh = origin._is_fresh(key) if origin is not None else True
        self._set_stalled(*key, broken or not fresh)

    def _add_edge(self, key: _Key, follow: Callable[[], None]) -> None:
        with self._lock:
            self._edges.setdefault(key, []).append(follow)
            count = len(self._edges[key])
        with contextlib.suppress(_NotFound):  # an edge may ask for a stream not there yet
            self.set_viewers(*key, "ovt", count)

    def _is_fresh(self, key: _Key) -> bool:
        with self._lock:
            app = self._vhosts.get(key[0])
            node = app.apps.get(key[1]) if app is not None else None
            s = node.streams.get(key[2]) if node is not None else None
            return s is not None and not s.stalled

    def _tell_edges(self, vhost: str, app: str, stream: str) -> None:
        """The origin's stream changed: its edges follow (called without the lock)."""
        with self._lock:
            follows = list(self._edges.get((vhost, app, stream), ()))
        for follow in follows:
            follow()
