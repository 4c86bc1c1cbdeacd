"""The vhost/app/stream model and its counters, as OME's stats report them.

Counters are computed lazily from the injected clock at request time, so a manual clock
needs no ticking thread.  The app, vhost and server objects are kept up to date by
adding and subtracting their streams' changes, so reading an aggregate never walks them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

#: Publisher (viewer/egress) connection keys of OME ≥ 0.18.0, in the order OME prints them.
PUBLISHER_KEYS: Final = ("file", "hlsv3", "llhls", "ovt", "push", "srt", "thumbnail", "webrtc")
#: Provider (ingest) connection keys of OME Enterprise's /v2 stats.
PROVIDER_KEYS: Final = (
    "file", "mpegts", "multiplex", "ovt", "rtmp", "rtsp", "rtsppull", "scheduled", "srt", "webrtc",
)  # fmt: skip


# --------------------------------------------------------------------------- metrics


class _Metrics:
    """One OME metrics object (server, vhost, app or stream), integrated lazily over time.

    Rates are piecewise constant between scripted events, and every event settles the
    object up to "now" before changing a rate, so reading at any time is exact without a
    ticking thread.  Rates are integers in bits/s so aggregate sums never drift.
    """

    __slots__ = (
        "avg_in",
        "avg_out",
        "bytes_in",
        "bytes_out",
        "connections",
        "created",
        "last_event",
        "last_recv",
        "last_sent",
        "max_in",
        "max_out",
        "max_total",
        "max_total_time",
        "rate_in",
        "rate_out",
        "settled",
        "total",
    )

    def __init__(self, now: float) -> None:
        self.created = now
        self.settled = now
        self.bytes_in = 0.0
        self.bytes_out = 0.0
        self.rate_in = 0  # bits/s arriving now
        self.rate_out = 0  # bits/s leaving now
        self.last_recv = now
        self.last_sent = now
        self.last_event = now
        self.avg_in = 0  # bits/s at the last measurement (frozen while nothing ingests)
        self.avg_out = 0
        self.max_in = 0
        self.max_out = 0
        self.connections = dict.fromkeys(PUBLISHER_KEYS, 0)
        self.total = 0
        self.max_total = 0
        self.max_total_time = now

    def settle(self, now: float) -> float:
        """Integrate bytes up to ``now``; returns the effective time (never before the last)."""
        if now <= self.settled:
            return self.settled
        dt = now - self.settled
        if self.rate_in:
            self.bytes_in += self.rate_in * dt / 8
            self.last_recv = now
            self.last_event = now
        if self.rate_out:
            self.bytes_out += self.rate_out * dt / 8
            self.last_sent = now
            self.last_event = now
        self.settled = now
        return now

    def set_rates(self, now: float, rate_in: int, rate_out: int) -> None:
        now = self.settle(now)
        self.rate_in = rate_in
        self.rate_out = rate_out
        if rate_in > 0:
            # OME measures both throughputs only when input arrives: they follow the new
            # rates while something ingests and freeze at their last values otherwise.
            self.avg_in = rate_in
            self.avg_out = rate_out
            self.max_in = max(self.max_in, rate_in)
            self.max_out = max(self.max_out, rate_out)
            self.last_recv = now
            self.last_event = now
            if rate_out > 0:
                self.last_sent = now

    def add_connections(self, now: float, deltas: Mapping[str, int]) -> None:
        now = self.settle(now)
        changed = False
        for key, delta in deltas.items():
            if delta:
                self.connections[key] = self.connections.get(key, 0) + delta
                self.total += delta
                changed = True
        if not changed:
            return
        self.last_event = now
        if self.total > self.max_total:
            self.max_total = self.total
            self.max_total_time = now


@dataclass(slots=True)
class _Stream:
    name: str
    id: int
    source: str
    bitrate: int  # bits/s being ingested (when not stalled)
    announced_bitrate: int  # RTMP metadata value; OME never updates it
    framerate: float
    announced_framerate: float
    width: int
    height: int
    audio_bitrate: int | None
    key_frame_interval: int  # GOP in frames
    port: int
    metrics: _Metrics
    stalled: bool = False
    stalled_at: float = 0.0
    #: when the encoder last resumed after a stall, and how long the gap was (the partial
    #: window quirk, ``quirks.py``)
    resumed_at: float | None = None
    gap: float = 0.0
    #: where an edge pulls a relayed stream from (``ovt://…``, relay.py); None: TCP ingest
    source_url: str | None = None

    def rate_in(self) -> int:
        return 0 if self.stalled else self.bitrate

    def rate_out(self) -> int:
        # Viewers get nothing while the encoder is silent; negative counts (OME's
        # bookkeeping bug) are not real viewers.
        watchers = sum(c for c in self.metrics.connections.values() if c > 0)
        return self.rate_in() * watchers


@dataclass(slots=True)
class _App:
    name: str
    metrics: _Metrics
    providers: dict[str, int]
    streams: dict[str, _Stream] = field(default_factory=dict)


@dataclass(slots=True)
class _VHost:
    name: str
    metrics: _Metrics
    providers: dict[str, int]
    apps: dict[str, _App] = field(default_factory=dict)


class _NotFound(Exception):
    """A resource 404 raised while building a reply."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _stream_not_found(vhost: str, app: str, stream: str) -> str:
    internal = f"#{vhost.replace('#', '_')}#{app.replace('#', '_')}"
    return f"Could not find the stream: [{vhost}/{internal}/{stream}]"
