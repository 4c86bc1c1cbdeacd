"""``GET /v1/stats/current/internals/queues`` as a real OME 0.18 answers it, with congestion on cue.

Shape and names follow the real answers in ``../shared/ome-real-0.18/queues*.json``: every
app has its app-worker queues (inbound and outbound mediarouter ``aw_0``, LL-HLS publisher
``aw-llhls0``), every live stream its stream workers; ``drop`` is always 0, ids are issued
from 100 up and a stream that comes back gets new ones. ``congest_queue`` makes a stream
transcode and its ``filter_video`` back up as it did under a real 4K overload: ``size``
grows, ``outputPerSecond`` is 0, ``avgWaitingTime`` climbs; the threshold it reports is
OME 0.18's (120, although 2 x fps applies), and its decoder and encoder report 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .topology import _Topology

_ROUTE = "std::shared_ptr<MediaRouteStream>"
_PACKET = "std::shared_ptr<MediaPacket>"
_APP_WORKER = "std::shared_ptr<pub::ApplicationWorker::StreamData>"
#: (part, name, reported threshold, element type) of every app's queues
_APP_QUEUES = (
    ("imr", "aw_0", 1000, _ROUTE),
    ("omr", "aw_0", 1000, _ROUTE),
    ("pub", "aw-llhls0", 500, _APP_WORKER),
)
#: the same for every live stream's
_STREAM_QUEUES = (
    ("imr", "streamworker", 600, _PACKET),
    ("omr", "streamworker", 600, _PACKET),
    ("pub", "streamworker_llhls", 500, "std::any"),
)
#: a transcoded stream's, as OME 0.18 reports them (decoder and encoder: 0)
_TRANSCODER_QUEUES = (
    ("trs", "dec_h264_0", 0, "std::shared_ptr<MediaPacket const>"),
    ("trs", "filter_video", 120, "std::shared_ptr<MediaFrame>"),
    ("trs", "enc_h264_0", 0, "std::shared_ptr<MediaFrame const>"),
)
#: the output profile a congested stream is transcoded to (its encoder's URN names it)
_OUTPUT = "1080p"
_AUDIO_PER_S = 44  # AAC frames a second at 44.1/48 kHz, what the real answers show


@dataclass(slots=True)
class _Congestion:
    since: float
    growth: float  # items a second ``filter_video`` gains while congested
    relieved_at: float | None = None
    size_at_relief: float = 0.0


def _urn(vhost: str, app: str, stream: str | None, part: str, name: str) -> str:
    names = f":v=#{vhost.replace('#', '_')}#{app.replace('#', '_')}"
    return f"mngq{names}{'' if stream is None else f':s={stream}'}:p={part}:n={name}"


class _Queues(_Topology):
    """``Simulator``'s managed queues (see the module docstring)."""

    _queue_ids: dict[tuple[Any, ...], int]
    _queue_epoch: float
    _congested: dict[tuple[str, str, str], _Congestion]

    def congest_queue(self, vhost: str, app: str, stream: str, items_per_s: float = 20.0) -> None:
        """Make ``stream`` transcode and its ``filter_video`` grow by ``items_per_s`` a second."""
        if items_per_s <= 0:
            raise ValueError("items_per_s must be positive")
        with self._lock:
            self._stream(vhost, app, stream)  # raises for an unknown stream
            self._congestion()[(vhost, app, stream)] = _Congestion(self._now(), items_per_s)

    def relieve_queue(self, vhost: str, app: str, stream: str) -> None:
        """The transcoder catches up: ``filter_video`` drains at 300 items a second."""
        with self._lock:
            jam = self._congestion().get((vhost, app, stream))
            if jam is not None and jam.relieved_at is None:
                now = self._now()
                jam.size_at_relief = (now - jam.since) * jam.growth
                jam.relieved_at = now

    def _congestion(self) -> dict[tuple[str, str, str], _Congestion]:
        if not hasattr(self, "_congested"):  # set up on first use: no constructor to extend
            self._congested, self._queue_ids, self._queue_epoch = {}, {}, self._server.created
        return self._congested

    def _queue_id(self, key: tuple[Any, ...]) -> int:
        ids = self._queue_ids
        found = ids.get(key)
        if found is None:
            found = ids[key] = 100 + len(ids)
        return found

    def _queues_answer(self, now: float) -> list[dict[str, Any]]:
        """Every queue of the topology, in the order OME lists them (apps first)."""
        jams = self._congestion()
        if self._queue_epoch != self._server.created:  # OME restarted: ids start over at 100
            self._queue_ids, self._queue_epoch = {}, self._server.created
        out: list[dict[str, Any]] = []
        later: list[dict[str, Any]] = []
        for vhost in self._vhosts.values():
            for app in vhost.apps.values():
                live = [s for s in app.streams.values() if not s.stalled]
                rate = sum(round(s.framerate) + _AUDIO_PER_S for s in live)
                for part, name, threshold, kind in _APP_QUEUES:
                    key = (vhost.name, app.name, None, part, name)
                    out.append(_queue(self._queue_id(key), _urn(vhost.name, app.name, None, part,
                               name), threshold, kind, rate, 1 if rate else 0, rate))  # fmt: skip
                for s in app.streams.values():
                    identity = (vhost.name, app.name, s.name, s.id, s.metrics.created)
                    fps = 0 if s.stalled else round(s.framerate)
                    rows = list(_STREAM_QUEUES)
                    jam = jams.get((vhost.name, app.name, s.name))
                    if jam is not None:
                        rows += _TRANSCODER_QUEUES
                    for part, name, threshold, kind in rows:
                        qid = self._queue_id((*identity, part, name))
                        # an encoder is named after the output stream, as in OME
                        on = f"{s.name}_{_OUTPUT}" if name.startswith("enc_") else s.name
                        urn = _urn(vhost.name, app.name, on, part, name)
                        per_s = fps + (_AUDIO_PER_S if part != "trs" else 0)
                        row = _queue(qid, urn, threshold, kind, per_s, 1 if per_s else 0, per_s)
                        if name == "filter_video" and jam is not None:
                            _jam(row, jam, now, fps)
                        later.append(row)
        return out + later


def _queue(
    qid: int, urn: str, threshold: int, kind: str, rate: int, size: int, wait_us: int
) -> dict[str, Any]:
    return {
        "avgWaitingTime": wait_us * 2 if rate else 0,
        "drop": 0,
        "id": qid,
        "inputPerSecond": rate,
        "outputPerSecond": rate,
        "peak": max(size, 3 if rate else 0),
        "size": size,
        "threshold": threshold,
        "type": kind,
        "urn": urn,
    }


def _jam(row: dict[str, Any], jam: _Congestion, now: float, fps: int) -> None:
    """``filter_video`` while congested (grows, nothing out) or draining after relief."""
    if jam.relieved_at is None:
        size = (now - jam.since) * jam.growth
        row["outputPerSecond"] = 0
    else:
        size = max(0.0, jam.size_at_relief - (now - jam.relieved_at) * 300)
        row["outputPerSecond"] = 300 if size else fps
    items = int(size) + 1
    row["size"] = items
    row["peak"] = max(row["peak"], int(jam.size_at_relief or size) + 1)
    # each frame waits for the backlog ahead of it: size / (frames a second) seconds, in µs
    row["avgWaitingTime"] = int(items / max(fps, 1) * 1_000_000)
