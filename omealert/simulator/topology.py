"""Scripting the model: vhosts, apps and streams come and go, stall, and change rates.

Every change settles the counters it touches up to "now" first and then moves the
aggregates (app, vhost, server) by the same delta, so reading stays exact and cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .clock import _SimClock
from .streams import (
    PROVIDER_KEYS,
    PUBLISHER_KEYS,
    _App,
    _Metrics,
    _NotFound,
    _Stream,
    _stream_not_found,
    _VHost,
)


class _Topology(_SimClock):
    """``Simulator``'s methods that script vhosts, apps and streams (see ``_SimClock``)."""

    _vhosts: dict[str, _VHost]
    _server: _Metrics
    _next_id: int

    # ----------------------------------------------------------------- topology

    def add_vhost(self, vhost: str) -> None:
        """Create a virtual host (no-op if it exists)."""
        with self._lock:
            self._vhost(vhost, create=True)

    def add_app(self, vhost: str, app: str) -> None:
        """Create an application, and its vhost if missing (no-op if it exists)."""
        with self._lock:
            self._app(vhost, app, create=True)

    def add_stream(
        self,
        vhost: str,
        app: str,
        stream: str,
        *,
        bitrate: int = 2_500_000,
        source: str = "Rtmp",
        framerate: float = 30.0,
        width: int = 1280,
        height: int = 720,
        audio_bitrate: int | None = 128_000,
        viewers: Mapping[str, int] | None = None,
        key_frame_interval: int | None = None,
    ) -> None:
        """Start ingesting ``stream`` now; missing vhost/app are created.  Duplicates raise."""
        self.add_streams(
            vhost,
            app,
            [stream],
            bitrate=bitrate,
            source=source,
            framerate=framerate,
            width=width,
            height=height,
            audio_bitrate=audio_bitrate,
            viewers=viewers,
            key_frame_interval=key_frame_interval,
        )

    def add_streams(
        self,
        vhost: str,
        app: str,
        names: Iterable[str],
        *,
        bitrate: int = 2_500_000,
        source: str = "Rtmp",
        framerate: float = 30.0,
        width: int = 1280,
        height: int = 720,
        audio_bitrate: int | None = 128_000,
        viewers: Mapping[str, int] | None = None,
        key_frame_interval: int | None = None,
    ) -> None:
        """Add many streams with the same settings, all or none; cheap for 10,000."""
        names = list(names)
        if len(set(names)) != len(names):
            raise ValueError("duplicate stream names in one call")
        bitrate = _non_negative_int("bitrate", bitrate)
        if audio_bitrate is not None:
            audio_bitrate = _non_negative_int("audio_bitrate", audio_bitrate)
        if framerate < 0:
            raise ValueError("framerate must be >= 0")
        if not source:
            raise ValueError("source must not be empty")
        views = _check_viewers(viewers or {})
        gop = key_frame_interval if key_frame_interval is not None else max(1, round(framerate * 2))
        with self._lock:
            now = self._now()
            app_node = self._app(vhost, app, create=True)
            for name in names:
                if name in app_node.streams:
                    raise ValueError(f"stream already exists: {vhost}/{app}/{name}")
            batch: list[_Stream] = []
            for name in names:
                metrics = _Metrics(now)
                stream = _Stream(
                    name=name,
                    id=self._next_id,
                    source=source,
                    bitrate=bitrate,
                    announced_bitrate=bitrate,
                    framerate=float(framerate),
                    announced_framerate=float(framerate),
                    width=width,
                    height=height,
                    audio_bitrate=audio_bitrate,
                    key_frame_interval=int(gop),
                    port=40000 + self._next_id % 20000,
                    metrics=metrics,
                )
                self._next_id += 1
                metrics.add_connections(now, views)
                metrics.set_rates(now, stream.rate_in(), stream.rate_out())
                app_node.streams[name] = stream
                batch.append(stream)
            self._attach(now, vhost, app_node, batch)

    def _attach(self, now: float, vhost: str, app: _App, streams: list[_Stream]) -> None:
        """Add a batch of new streams' sessions, ingests and rates to their aggregates."""
        if not streams:
            return
        conns: dict[str, int] = {}
        provs: dict[str, int] = {}
        d_in = d_out = 0
        for s in streams:
            for key, count in s.metrics.connections.items():
                conns[key] = conns.get(key, 0) + count
            provs[s.source.lower()] = provs.get(s.source.lower(), 0) + 1
            d_in += s.metrics.rate_in
            d_out += s.metrics.rate_out
        vhost_node = self._vhosts[vhost]
        for metrics, providers in (
            (app.metrics, app.providers),
            (vhost_node.metrics, vhost_node.providers),
            (self._server, None),
        ):
            metrics.add_connections(now, conns)
            if providers is not None:
                for key, count in provs.items():
                    providers[key] = providers.get(key, 0) + count
            if d_in or d_out:
                metrics.set_rates(now, metrics.rate_in + d_in, metrics.rate_out + d_out)

    def remove_stream(self, vhost: str, app: str, stream: str) -> None:
        """The stream ends: unlisted at once, its stats 404, aggregates keep its bytes."""
        with self._lock:
            app_node = self._app(vhost, app)
            s = self._stream(vhost, app, stream)
            self._detach(self._now(), vhost, app_node, s)
            del app_node.streams[stream]
        self._tell_edges(vhost, app, stream)

    def _detach(self, now: float, vhost: str, app: _App, s: _Stream) -> None:
        vhost_node = self._vhosts[vhost]
        minus = {k: -v for k, v in s.metrics.connections.items() if v}
        key = s.source.lower()
        for metrics, providers in (
            (app.metrics, app.providers),
            (vhost_node.metrics, vhost_node.providers),
            (self._server, None),
        ):
            metrics.set_rates(
                now, metrics.rate_in - s.metrics.rate_in, metrics.rate_out - s.metrics.rate_out
            )
            metrics.add_connections(now, minus)
            if providers is not None:
                providers[key] = providers.get(key, 0) - 1

    def remove_app(self, vhost: str, app: str) -> None:
        """Delete an application and every stream in it."""
        with self._lock:
            app_node = self._app(vhost, app)
            now = self._now()
            for s in list(app_node.streams.values()):
                self._detach(now, vhost, app_node, s)
            del self._vhosts[vhost].apps[app]

    def remove_vhost(self, vhost: str) -> None:
        """Delete a virtual host with all its applications and streams."""
        with self._lock:
            vhost_node = self._vhost(vhost)
            now = self._now()
            for app_node in list(vhost_node.apps.values()):
                for s in list(app_node.streams.values()):
                    self._detach(now, vhost, app_node, s)
            del self._vhosts[vhost]

    # ----------------------------------------------------------------- live changes

    def set_viewers(self, vhost: str, app: str, stream: str, protocol: str, count: int) -> None:
        """Set the sessions of one publisher; negative counts mimic OME's bookkeeping bug."""
        if protocol not in PUBLISHER_KEYS:
            raise ValueError(f"unknown publisher {protocol!r}; use one of {list(PUBLISHER_KEYS)}")
        count = int(count)
        with self._lock:
            now = self._now()
            app_node = self._app(vhost, app)
            s = self._stream(vhost, app, stream)
            delta = {protocol: count - s.metrics.connections.get(protocol, 0)}
            for metrics in self._chain(vhost, app_node, s):
                metrics.add_connections(now, delta)
            self._update_rates(now, vhost, app_node, s)

    def stall(self, vhost: str, app: str, stream: str) -> None:
        """The encoder hangs with its TCP session open: the stream stays listed, input stops."""
        self._set_stalled(vhost, app, stream, True)

    def resume(self, vhost: str, app: str, stream: str) -> None:
        """The hung encoder sends again."""
        self._set_stalled(vhost, app, stream, False)

    def _set_stalled(self, vhost: str, app: str, stream: str, stalled: bool) -> None:
        with self._lock:
            app_node = self._app(vhost, app)
            s = self._stream(vhost, app, stream)
            now = self._now()
            if stalled and not s.stalled:
                s.stalled_at = now
            elif s.stalled and not stalled:
                s.resumed_at, s.gap = now, now - s.stalled_at
            s.stalled = stalled
            self._update_rates(now, vhost, app_node, s)
        self._tell_edges(vhost, app, stream)

    def _tell_edges(self, vhost: str, app: str, stream: str) -> None:
        """A stream's input changed: edges relaying it follow (``relay.py``)."""

    def set_bitrate(self, vhost: str, app: str, stream: str, bits_per_second: int) -> None:
        """Change the ingest rate; stream info's announced ``bitrate`` keeps its old value."""
        value = _non_negative_int("bits_per_second", bits_per_second)
        with self._lock:
            app_node = self._app(vhost, app)
            s = self._stream(vhost, app, stream)
            s.bitrate = value
            self._update_rates(self._now(), vhost, app_node, s)

    def set_framerate(self, vhost: str, app: str, stream: str, fps: float) -> None:
        """Change the measured frame rate shown in stream info."""
        if fps < 0:
            raise ValueError("fps must be >= 0")
        with self._lock:
            self._stream(vhost, app, stream).framerate = float(fps)

    def _chain(self, vhost: str, app: _App, s: _Stream) -> tuple[_Metrics, ...]:
        return (s.metrics, app.metrics, self._vhosts[vhost].metrics, self._server)

    def _update_rates(self, now: float, vhost: str, app: _App, s: _Stream) -> None:
        old_in, old_out = s.metrics.rate_in, s.metrics.rate_out
        new_in, new_out = s.rate_in(), s.rate_out()
        if (old_in, old_out) == (new_in, new_out):
            return
        for metrics in self._chain(vhost, app, s):
            metrics.set_rates(
                now, metrics.rate_in - old_in + new_in, metrics.rate_out - old_out + new_out
            )

    def restart(self) -> None:
        """OME restarts: every metrics object is new; streams and viewers come back at once.

        Stream ids restart at 100 in the old listing order, negative viewer counts (a
        bookkeeping bug) are gone, and stalled encoders stay stalled.
        """
        with self._lock:
            now = self._now()
            self._server = _Metrics(now)
            self._next_id = 100
            for vhost_node in self._vhosts.values():
                vhost_node.metrics = _Metrics(now)
                vhost_node.providers = dict.fromkeys(PROVIDER_KEYS, 0)
                for app_node in vhost_node.apps.values():
                    app_node.metrics = _Metrics(now)
                    app_node.providers = dict.fromkeys(PROVIDER_KEYS, 0)
                    for s in app_node.streams.values():
                        viewers = {k: v for k, v in s.metrics.connections.items() if v > 0}
                        s.metrics = _Metrics(now)
                        s.metrics.add_connections(now, viewers)
                        s.metrics.set_rates(now, s.rate_in(), s.rate_out())
                        s.id = self._next_id
                        s.port = 40000 + s.id % 20000
                        s.announced_bitrate = s.bitrate
                        s.announced_framerate = s.framerate
                        self._next_id += 1
                    self._attach(now, vhost_node.name, app_node, list(app_node.streams.values()))

    # ----------------------------------------------------------------- lookups

    def _vhost(self, vhost: str, *, create: bool = False) -> _VHost:
        node = self._vhosts.get(vhost)
        if node is None:
            if not create:
                raise _NotFound(f"Could not find the virtual host: [{vhost}]")
            node = _VHost(vhost, _Metrics(self._now()), dict.fromkeys(PROVIDER_KEYS, 0))
            self._vhosts[vhost] = node
        return node

    def _app(self, vhost: str, app: str, *, create: bool = False) -> _App:
        vhost_node = self._vhost(vhost, create=create)
        node = vhost_node.apps.get(app)
        if node is None:
            if not create:
                raise _NotFound(f"Could not find the application: [{vhost}/{app}]")
            node = _App(app, _Metrics(self._now()), dict.fromkeys(PROVIDER_KEYS, 0))
            vhost_node.apps[app] = node
        return node

    def _stream(self, vhost: str, app: str, stream: str) -> _Stream:
        node = self._app(vhost, app).streams.get(stream)
        if node is None:
            raise _NotFound(_stream_not_found(vhost, app, stream))
        return node


def _non_negative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a number >= 0")
    return round(value)


def _check_viewers(viewers: Mapping[str, int]) -> dict[str, int]:
    unknown = sorted(set(viewers) - set(PUBLISHER_KEYS))
    if unknown:
        raise ValueError(f"unknown publisher(s) {unknown}; use {list(PUBLISHER_KEYS)}")
    return {k: int(v) for k, v in viewers.items()}
