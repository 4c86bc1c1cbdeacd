"""Pushes and recordings: ``:pushes`` and ``:records`` as OME 0.18 answers them.

The bodies copy what a real 0.18 printed (``ome-real-0.18/``, ``ome-beyond-stats.md`` §1-2):
every push key always present (``streamKey`` only when set, ``finishTime`` always the
epoch), record keys only in the states OME writes them, unset times as the epoch in the
server's zone. The state machines are OME's, played from the clock at read time:

* a push to a ``refused`` destination shows ``error`` on every poll, its ``startTime``
  moving on a second per attempt; to a ``blackhole`` one, ``connecting`` for 4.1 s and
  ``error`` for 1 s of each 5.1-s attempt; while a blackholed push of an app has a live
  stream, that app's other pushes that have not started yet stay ``ready`` (OME's one
  control thread per app is stuck in the blackholed connect);
* a push whose stream ends goes ``ready`` with ``sequence`` + 1 and its bytes moved into
  the totals; when the stream returns it is ``ready`` for a second, then pushes again; a
  ``<StreamMap>`` push (``is_config``) leaves the list with its stream instead, and comes
  back under a new random 6-character id;
* a record records while its stream is live; when the stream ends it is ``stopped``
  (``finishTime`` set, no ``recordBytes``); a record in ``error`` stays there until its
  stream is created anew.

Counters move with the stream's own input bytes, so a stalled stream's push stays
``pushing`` and its record ``recording`` with frozen counters, as OME's do. Changes are
noticed when read (every API answer and control call), which is all a poller can see.
"""

from __future__ import annotations

import math
import random
import string
import time
from dataclasses import dataclass
from typing import Any, Final

from .reply import _error, _ok, _Reply
from .streams import _Metrics, _NotFound
from .topology import _Topology

#: How a push's destination behaves: takes the stream, refuses the connection, or accepts
#: TCP and never answers RTMP.
DESTINATIONS: Final = frozenset({"ok", "refused", "blackhole"})
_TICK: Final = 1.0  # OME's per-app control thread wakes once a second
_BLACKHOLE_CYCLE: Final = 5.1  # a 5-s connect timeout and the next tick
_BLACKHOLE_ERROR: Final = 1.0


@dataclass(slots=True)
class _Push:
    id: str
    stream: str
    protocol: str
    url: str
    key: str
    is_config: bool
    created: float
    dest: str
    dest_since: float
    session: _Metrics | None = None
    session_since: float = 0.0
    pushing_since: float | None = None
    state: str = "ready"
    start_time: float = 0.0  # 0: never attempted (the epoch)
    sent_bytes: float = 0.0
    sent_ms: int = 0
    total_bytes: float = 0.0
    total_ms: int = 0
    sequence: int = 0
    last_in: float = 0.0
    last_t: float = 0.0


@dataclass(slots=True)
class _Record:
    id: str
    stream: str
    file_path: str
    info_path: str
    created: float
    fail_at_start: bool
    session: _Metrics | None = None
    state: str = "ready"
    failed: bool = False
    seg_start: float = 0.0
    finish: float = 0.0
    bytes: float = 0.0
    ms: int = 0
    total_bytes: float = 0.0
    total_ms: int = 0
    sequence: int = 0
    last_in: float = 0.0
    last_t: float = 0.0


@dataclass(slots=True)
class _AppOutputs:
    push_publisher: bool = True
    file_publisher: bool = True
    pushes: dict[str, _Push] | None = None
    records: dict[str, _Record] | None = None


class _Outputs(_Topology):
    """``Simulator``'s pushes and records, and the methods that script them."""

    _outputs: dict[tuple[str, str], _AppOutputs]

    # ----------------------------------------------------------------- scripting

    def set_publishers(self, vhost: str, app: str, *, push: bool = True, file: bool = True) -> None:
        """Give ``app`` a Push and/or File publisher (both by default). Without File,
        ``:records`` answers 404 as OME does; without Push, ``:pushes`` answers ``[]``."""
        with self._lock:
            self._app(vhost, app)
            node = self._app_outputs(vhost, app)
            node.push_publisher, node.file_publisher = bool(push), bool(file)

    def start_push(
        self,
        vhost: str,
        app: str,
        id: str,
        stream: str,
        url: str,
        *,
        stream_key: str = "",
        protocol: str = "rtmp",
        destination: str = "ok",
        is_config: bool = False,
    ) -> dict[str, Any]:
        """``:startPush``: a push of ``stream`` (which need not exist yet) to ``url``;
        ``destination`` says how the far end behaves (``ok``, ``refused``, ``blackhole``).
        Returns the push object as OME's answer holds it."""
        _check_destination(destination)
        with self._lock:
            self._app(vhost, app)
            pushes = self._pushes_of(vhost, app)
            if id in pushes:
                raise ValueError(f"Duplicate ID: {id}")
            now = self._now()
            push = _Push(id, stream, protocol.lower(), url.rstrip("/"), stream_key, is_config,
                         now, destination, now)  # fmt: skip
            pushes[id] = push
            self._settle_outputs(vhost, app)
            return self._push_body(vhost, app, push)

    def set_push_destination(self, vhost: str, app: str, id: str, destination: str) -> None:
        """The far end of push ``id`` starts to take the stream, refuse, or blackhole it."""
        _check_destination(destination)
        with self._lock:
            self._settle_outputs(vhost, app)
            push = self._find(self._pushes_of(vhost, app), id)
            push.dest, push.dest_since = destination, self._now()
            if destination != "ok":
                push.pushing_since = None

    def stop_push(self, vhost: str, app: str, id: str) -> None:
        """``:stopPush``: the push leaves the list."""
        with self._lock:
            self._find(self._pushes_of(vhost, app), id)
            del self._pushes_of(vhost, app)[id]

    def start_record(
        self,
        vhost: str,
        app: str,
        id: str,
        stream: str,
        *,
        file_path: str = "",
        info_path: str = "",
        fail: bool = False,
    ) -> dict[str, Any]:
        """``:startRecord``; with ``fail`` the start fails on disk, and OME's 200 answer
        already says ``state: "error"``. Returns the record object."""
        with self._lock:
            node = self._app_outputs(vhost, app)
            self._app(vhost, app)
            if not node.file_publisher:
                raise _NotFound(f"Could not find application: [{vhost}/{app}]")
            records = self._records_of(vhost, app)
            if id in records:
                raise ValueError(f"Duplicate ID already exists: {id}")
            records[id] = _Record(id, stream, file_path, info_path, self._now(), fail)
            self._settle_outputs(vhost, app)
            return self._record_body(vhost, app, records[id])

    def fail_record(self, vhost: str, app: str, id: str) -> None:
        """A write of record ``id`` fails (a full disk): ``error`` from now on, counters frozen."""
        with self._lock:
            self._settle_outputs(vhost, app)
            record = self._find(self._records_of(vhost, app), id)
            if record.session is not None:
                record.failed = True
                record.state = "error"

    def stop_record(self, vhost: str, app: str, id: str) -> None:
        """``:stopRecord``: finalized at once, and gone from the list."""
        with self._lock:
            del self._records_of(vhost, app)[self._find(self._records_of(vhost, app), id).id]

    def restart(self) -> None:
        """OME restarts: pushes and records made through the API are gone."""
        super().restart()
        with self._lock:
            for node in self._outputs.values():
                node.pushes, node.records = {}, {}

    # ----------------------------------------------------------------- answers

    def _pushes_reply(self, vhost: str, app: str) -> _Reply:
        self._app(vhost, app)
        node = self._app_outputs(vhost, app)
        if not node.push_publisher:
            return _ok([])  # 0.18 answered so for an app without <Push>
        self._settle_outputs(vhost, app)
        # <StreamMap> pushes are deleted with their stream and made anew when it returns
        pushes = self._pushes_of(vhost, app).values()
        listed = [p for p in pushes if p.session is not None or not p.is_config]
        return _ok([self._push_body(vhost, app, p) for p in listed])

    def _records_reply(self, vhost: str, app: str) -> _Reply:
        self._app(vhost, app)
        node = self._app_outputs(vhost, app)
        if not node.file_publisher:
            return _error(404, f"Could not find application: [{vhost}/{app}]")
        self._settle_outputs(vhost, app)
        records = self._records_of(vhost, app).values()
        return _ok([self._record_body(vhost, app, r) for r in records])

    def _push_body(self, vhost: str, app: str, p: _Push) -> dict[str, Any]:
        fmt = self.format_time
        body: dict[str, Any] = {
            "app": app, "createdTime": fmt(p.created), "finishTime": fmt(0.0), "id": p.id,
            "isConfig": p.is_config, "protocol": p.protocol, "sentBytes": int(p.sent_bytes),
            "sentTime": p.sent_ms, "sequence": p.sequence, "startTime": fmt(p.start_time),
            "state": p.state, "stream": {"name": p.stream, "trackIds": [], "variantNames": []},
            "totalsentBytes": int(p.total_bytes + p.sent_bytes),
            "totalsentTime": p.total_ms + p.sent_ms, "url": p.url, "vhost": vhost,
        }  # fmt: skip
        if p.key:
            body["streamKey"] = p.key
        return body

    def _record_body(self, vhost: str, app: str, r: _Record) -> dict[str, Any]:
        fmt = self.format_time
        body: dict[str, Any] = {
            "app": app, "createdTime": fmt(r.created), "id": r.id, "isConfig": False,
            "segmentationRule": "discontinuity", "state": r.state,
            "stream": {"name": r.stream, "trackIds": [], "variantNames": []}, "vhost": vhost,
        }  # fmt: skip
        if r.file_path:
            body["filePath"] = r.file_path
        if r.info_path:
            body["infoPath"] = r.info_path
        if r.seg_start:
            stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(r.seg_start))
            name = r.file_path.replace("${Sequence}", str(r.sequence)) if r.file_path else ""
            body["outputFilePath"] = name or f"/{vhost}/{app}/{r.stream}/{stamp}.ts"
            body["outputInfoPath"] = r.info_path or f"/{vhost}/{app}/{r.stream}.xml"
        if r.state != "ready":
            for key, value in (("recordBytes", int(r.bytes)), ("recordTime", r.ms),
                               ("totalRecordBytes", int(r.total_bytes + r.bytes)),
                               ("totalRecordTime", r.total_ms + r.ms),
                               ("sequence", r.sequence)):  # fmt: skip
                if value > 0:
                    body[key] = value
            if r.seg_start:
                body["startTime"] = fmt(r.seg_start)
            if r.state in ("stopped", "error") and r.finish:
                body["finishTime"] = fmt(r.finish)
        return body

    # ----------------------------------------------------------------- state machines

    def _settle_outputs(self, vhost: str, app: str) -> None:
        now = self._now()
        streams = self._app(vhost, app).streams
        pushes = self._pushes_of(vhost, app)
        blackholed = any(p.dest == "blackhole" and p.stream in streams for p in pushes.values())
        for ident, push in list(pushes.items()):
            s = streams.get(push.stream)
            self._settle_push(push, None if s is None else s.metrics, now, blackholed)
            if push.id != ident:  # a StreamMap push re-created under a new random id
                del pushes[ident]
                pushes[push.id] = push
        for record in self._records_of(vhost, app).values():
            s = streams.get(record.stream)
            _settle_record(record, None if s is None else s.metrics, now)

    def _settle_push(self, p: _Push, m: _Metrics | None, now: float, held: bool) -> None:
        if p.session is not None and m is not p.session:  # the stream ended
            p.total_bytes += p.sent_bytes
            p.total_ms += p.sent_ms
            p.sent_bytes, p.sent_ms, p.sequence = 0.0, 0, p.sequence + 1
            p.start_time = p.last_t  # OME sets startTime at stop, too
            p.session, p.pushing_since, p.state = None, None, "ready"
        if m is None:
            p.state = "ready"
            return
        m.settle(now)
        if p.session is None:
            if p.is_config and p.start_time:  # OME deleted it with its stream: a new one
                p.id = "".join(random.choices(string.ascii_letters + string.digits, k=6))
                p.created, p.sequence, p.total_bytes, p.total_ms = now, 0, 0.0, 0
                p.start_time = 0.0
            p.session, p.session_since = m, now
            p.last_in, p.last_t = m.bytes_in, now
        if held and p.dest != "blackhole" and p.pushing_since is None:
            p.session_since = now  # the app's control thread is stuck elsewhere
        base = max(p.session_since + _TICK, p.dest_since)
        if now < p.session_since + _TICK:
            p.state = "ready"
        elif p.dest == "ok":
            if p.pushing_since is None:
                p.pushing_since = p.start_time = base
            since = max(p.last_t, p.pushing_since)
            if now > p.last_t:
                share = max(0.0, (now - since) / (now - p.last_t))
                p.sent_bytes += (m.bytes_in - p.last_in) * share
            p.sent_ms = max(0, int((min(m.last_recv, now) - p.pushing_since) * 1000))
            p.state = "pushing"
        elif p.dest == "refused":
            p.start_time = base + math.floor(now - base)
            p.state = "error"
        else:
            attempts = math.floor((now - base) / _BLACKHOLE_CYCLE)
            p.start_time = base + attempts * _BLACKHOLE_CYCLE
            phase = now - p.start_time
            p.state = "error" if phase >= _BLACKHOLE_CYCLE - _BLACKHOLE_ERROR else "connecting"
        p.last_in, p.last_t = m.bytes_in, now

    # ----------------------------------------------------------------- lookups

    def _app_outputs(self, vhost: str, app: str) -> _AppOutputs:
        node = self._outputs.get((vhost, app))
        if node is None:
            node = self._outputs[(vhost, app)] = _AppOutputs(pushes={}, records={})
        return node

    def _pushes_of(self, vhost: str, app: str) -> dict[str, _Push]:
        pushes = self._app_outputs(vhost, app).pushes
        assert pushes is not None
        return pushes

    def _records_of(self, vhost: str, app: str) -> dict[str, _Record]:
        records = self._app_outputs(vhost, app).records
        assert records is not None
        return records

    @staticmethod
    def _find(items: dict[str, Any], ident: str) -> Any:
        if ident not in items:
            raise _NotFound(f"Could not find id '{ident}'")
        return items[ident]


def _settle_record(r: _Record, m: _Metrics | None, now: float) -> None:
    if r.session is not None and m is not r.session:  # the stream ended
        if r.state == "recording":
            r.total_bytes += r.bytes
            r.total_ms += r.ms
            r.bytes, r.ms, r.sequence = 0.0, 0, r.sequence + 1
            r.finish, r.state = r.last_t, "stopped"
        r.session = None
    if m is None:
        return
    m.settle(now)
    if r.session is None:  # a live stream: a new segment, or a fresh session after error
        r.session, r.seg_start = m, max(now, r.created)
        r.failed = r.fail_at_start
        r.last_in, r.last_t = m.bytes_in, now
    if r.failed:
        r.state = "error"
        if not r.finish:
            r.finish = 0.0
    else:
        r.state = "recording"
        r.bytes += m.bytes_in - r.last_in
        r.ms = max(0, int((min(m.last_recv, now) - r.seg_start) * 1000))
    r.last_in, r.last_t = m.bytes_in, now


def _check_destination(destination: str) -> None:
    if destination not in DESTINATIONS:
        raise ValueError(f"destination must be one of {sorted(DESTINATIONS)}, not {destination!r}")
