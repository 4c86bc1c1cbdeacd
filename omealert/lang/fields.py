"""The catalogue of fields a rule can read, with types, units and where each one comes from.

One table serves the condition language (name resolution, type and unit checks), the OME
client (which endpoints a rule set needs) and the docs. Paths are in OME's v2 shape, which
is also what v1 answers are normalized into (see ``ome/normalize.py``).

Units are as OME really sends them (``../shared/ome-api.md`` §7): ``avg/maxThroughput*``
are bits per second, ``lastThroughput*`` are **bytes** counted in the last ~1 s window.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace

from ..model import Scope
from .queuefields import DROP_REFUSAL, EVENT_QUEUE_FIELDS, QUEUE_FIELDS


class FieldType(enum.StrEnum):
    NUMBER = "number"
    TIME = "time"
    STRING = "string"
    BOOL = "bool"


class Unit(enum.StrEnum):
    """Physical meaning of a number; literal units in conditions must agree with it."""

    NONE = ""
    COUNT = "count"
    BYTES = "bytes"
    BITRATE = "bits/s"
    SECONDS = "seconds"
    FPS = "frames/s"
    FRAMES = "frames"
    HERTZ = "Hz"
    PIXELS = "pixels"
    MICROSECONDS = "µs"
    PER_SECOND = "items/s"


class Source(enum.StrEnum):
    """Which request provides a field: stats (``/v1/stats/current/...``), stream info, a listing."""

    STATS = "stats"
    INFO = "info"
    LISTING = "listing"
    #: an app's ``:pushes`` or ``:records`` list (which one follows from the rule's scope)
    OUTPUTS = "outputs"
    VERSION = "version"  # GET /v1/version, asked once in a while (ome/version.py)
    QUEUES = "queues"  # GET /v1/stats/current/internals/queues, once per server (ome/queues.py)
    #: an edge's relayed stream, as its origin's poll of the same tick saw it (engine/relay.py)
    ORIGIN = "origin"


#: The levels OME reports stats for; pushes and records have fields of their own.
ALL_SCOPES = frozenset({Scope.SERVER, Scope.VHOST, Scope.APP, Scope.STREAM})


@dataclass(frozen=True, slots=True)
class FieldSpec:
    path: str
    type: FieldType
    unit: Unit
    source: Source
    doc: str
    scopes: frozenset[Scope] = ALL_SCOPES
    counter: bool = False  # grows monotonically until OME or the stream restarts
    v2_only: bool = False  # only OME Enterprise's /v2 answers carry it
    missing_is_zero: bool = False  # connection keys vary by OME release: absent means 0
    #: text values as OME spells them, where known; comparisons are exact, so a condition
    #: spelling one in another case (``"RTMP"`` for ``Rtmp``) could never hold
    spellings: tuple[str, ...] = ()
    #: values outside [low, high] are not measurements (uninitialised memory): the field
    #: has no value in that answer (``ome/unmeasured.py``; counted in /metrics)
    plausible: tuple[float, float] | None = None
    #: seconds after ``createdTime`` before OME has measured the field once: a younger
    #: stream's value (0, or uninitialised garbage in OME 0.18) is no value
    warmup_s: float = 0.0
    #: measured over OME's last ~1 s window: the window that straddles an input gap (or a
    #: gap of OME itself) is partial, no value for ``SETTLE_S`` (lifetime averages and peaks
    #: are not windowed)
    windowed: bool = False
    #: text holding a release number: compared as one (``version < "0.20.5"``, lang/versions.py)
    release: bool = False
    #: why a rule may not read the field at all (refused at load, at its position)
    refusal: str = ""


#: Publisher (egress) connection keys seen in any OME release (0.15.13 … 0.21).
PUBLISHER_PROTOCOLS = (
    "webrtc", "llhls", "hlsv3", "hls", "srt", "ovt", "push", "file", "thumbnail",
    "dash", "lldash", "rtmppush", "mpegtspush",
)  # fmt: skip
#: Provider (ingest) connection keys of OME Enterprise's /v2 stats.
PROVIDER_PROTOCOLS = (
    "rtmp", "rtsp", "rtsppull", "ovt", "mpegts", "webrtc", "srt", "file", "scheduled",
    "multiplex",
)  # fmt: skip
#: Publishers that are audience, summed into ``publishers.viewers`` (not ovt edges, pushes,
#: recordings or thumbnails; ome-api.md §9.4).
VIEWER_PROTOCOLS = ("webrtc", "llhls", "hlsv3", "hls", "srt", "dash", "lldash")

#: ``sourceType`` values (OME's ``StringFromStreamSourceType``; ome-api.md §5).
SOURCE_TYPES = (
    "WebRTC", "Ovt", "Rtmp", "RtmpPull", "Rtsp", "RtspPull", "Transcoder", "SRT", "MPEGTS",
    "File", "Scheduled", "Multiplex",
)  # fmt: skip
#: Codec names as OME prints them (``media_type.h``); newer releases may add more.
CODECS = ("H264", "H265", "VP8", "VP9", "AV1", "AAC", "OPUS", "MP3")

_STREAM = frozenset({Scope.STREAM})
_PUSH = frozenset({Scope.PUSH})
_RECORD = frozenset({Scope.RECORD})
_OUTPUTS = _PUSH | _RECORD
#: ``state`` of a push (``base/info/push.cpp``) and of a record (``base/info/record.cpp``).
PUSH_STATES = ("ready", "connecting", "pushing", "stopping", "stopped", "error")
RECORD_STATES = ("ready", "recording", "stopping", "stopped", "error")
PUSH_PROTOCOLS = ("rtmp", "srt", "mpegts")
_N, _T, _S, _B = FieldType.NUMBER, FieldType.TIME, FieldType.STRING, FieldType.BOOL


def _build() -> dict[str, FieldSpec]:
    specs: list[FieldSpec] = [
        FieldSpec("createdTime", _T, Unit.NONE, Source.STATS,
                  "when OME created this object; a new value means the stream or OME restarted",
                  scopes=ALL_SCOPES | _OUTPUTS),
        FieldSpec("lastUpdatedTime", _T, Unit.NONE, Source.STATS,
                  "last event of any kind (bytes in or out, viewer joined or left)"),
        FieldSpec("providers.lastRecvTime", _T, Unit.NONE, Source.STATS,
                  "last time input bytes arrived; stops moving when ingest stalls"),
        FieldSpec("providers.totalBytesIn", _N, Unit.BYTES, Source.STATS,
                  "media bytes received since createdTime", counter=True),
        FieldSpec("providers.avgThroughputIn", _N, Unit.BITRATE, Source.STATS,
                  "input bits/s over the last ~1 s window; freezes when ingest stops"),
        FieldSpec("providers.lastThroughputIn", _N, Unit.BYTES, Source.STATS,
                  "input BYTES in the last ~1 s window (not bits/s); freezes when ingest stops"),
        FieldSpec("providers.maxThroughputIn", _N, Unit.BITRATE, Source.STATS,
                  "largest avgThroughputIn seen since createdTime"),
        FieldSpec("publishers.totalConnections", _N, Unit.COUNT, Source.STATS,
                  "current output sessions, all protocols"),
        FieldSpec("publishers.maxTotalConnections", _N, Unit.COUNT, Source.STATS,
                  "peak of totalConnections since createdTime"),
        FieldSpec("publishers.maxTotalConnectionTime", _T, Unit.NONE, Source.STATS,
                  "when that peak was reached"),
        FieldSpec("publishers.lastSentTime", _T, Unit.NONE, Source.STATS,
                  "last time output bytes were sent; equals createdTime while nobody watches"),
        FieldSpec("publishers.totalBytesOut", _N, Unit.BYTES, Source.STATS,
                  "bytes sent by all publishers since createdTime", counter=True),
        FieldSpec("publishers.avgThroughputOut", _N, Unit.BITRATE, Source.STATS,
                  "output bits/s over the last ~1 s window (spiky with LL-HLS viewers)"),
        FieldSpec("publishers.lastThroughputOut", _N, Unit.BYTES, Source.STATS,
                  "output BYTES in the last ~1 s window (not bits/s)"),
        FieldSpec("publishers.maxThroughputOut", _N, Unit.BITRATE, Source.STATS,
                  "largest avgThroughputOut seen since createdTime"),
        FieldSpec("publishers.viewers", _N, Unit.COUNT, Source.STATS,
                  "audience sessions: " + " + ".join(VIEWER_PROTOCOLS) + " (computed by omealert)"),
        FieldSpec("streams", _N, Unit.COUNT, Source.LISTING,
                  "number of input streams listed below this target",
                  scopes=frozenset({Scope.SERVER, Scope.VHOST, Scope.APP})),
        # Stream info: the input and its first video and audio track.
        FieldSpec("sourceType", _S, Unit.NONE, Source.INFO,
                  "how the stream came in: Rtmp, WebRTC, SRT, MPEGTS, RtspPull, Ovt, ...",
                  scopes=_STREAM, spellings=SOURCE_TYPES),
        FieldSpec("sourceUrl", _S, Unit.NONE, Source.INFO,
                  "where the input comes from, e.g. TCP://203.0.113.7:52110", scopes=_STREAM),
        FieldSpec("version", _S, Unit.NONE, Source.VERSION,
                  "the server's OME release (GET /v1/version), compared as a release number: "
                  'version < "0.20.5"', release=True, scopes=frozenset(Scope)),
    ]  # fmt: skip
    specs += _queue_fields()
    for proto in PUBLISHER_PROTOCOLS:
        specs.append(
            FieldSpec(f"publishers.connections.{proto}", _N, Unit.COUNT, Source.STATS,
                      f"current {proto} output sessions", missing_is_zero=True)
        )  # fmt: skip
    for proto in PROVIDER_PROTOCOLS:
        specs.append(
            FieldSpec(f"providers.connections.{proto}", _N, Unit.COUNT, Source.STATS,
                      f"current {proto} ingest connections (OME Enterprise /v2 only)",
                      v2_only=True, missing_is_zero=True)
        )  # fmt: skip
    video = [
        ("codec", _S, Unit.NONE, "codec name (H264, H265, VP8, AV1, ...)"),
        ("width", _N, Unit.PIXELS, "frame width"),
        (
            "height",
            _N,
            Unit.PIXELS,
            "frame height; can differ from the encoder's (352 for a 640x360 H.264 input, as "
            "OME's own playlist says): avoid exact-height rules",
        ),
        (
            "bitrate",
            _N,
            Unit.BITRATE,
            "bitrateConf when the encoder announced one, else the measured average (so it "
            "moves for encoders that announce nothing, such as ffmpeg)",
        ),
        ("bitrateConf", _N, Unit.BITRATE, "configured/announced bit rate"),
        ("bitrateAvg", _N, Unit.BITRATE, "measured average bit rate"),
        ("bitrateLatest", _N, Unit.BITRATE, "measured recent bit rate"),
        ("framerate", _N, Unit.FPS, "frame rate"),
        ("framerateConf", _N, Unit.FPS, "announced frame rate"),
        ("framerateAvg", _N, Unit.FPS, "measured average frame rate"),
        ("framerateLatest", _N, Unit.FPS, "measured recent frame rate"),
        ("hasBframes", _B, Unit.NONE, "true when the input carries B-frames (bad for WebRTC)"),
        ("keyFrameInterval", _N, Unit.FRAMES, "GOP size in frames"),
        ("keyFrameIntervalConf", _N, Unit.FRAMES, "announced GOP size in frames"),
        ("keyFrameIntervalAvg", _N, Unit.FRAMES, "measured average GOP size in frames"),
        ("keyFrameIntervalLatest", _N, Unit.FRAMES, "measured recent GOP size in frames"),
        ("deltaFramesSinceLastKeyFrame", _N, Unit.FRAMES, "frames since the last key frame"),
        ("bypass", _B, Unit.NONE, "passed through without transcoding"),
    ]
    audio = [
        ("codec", _S, Unit.NONE, "codec name (AAC, OPUS, MP3, ...)"),
        ("samplerate", _N, Unit.HERTZ, "sample rate"),
        ("channel", _N, Unit.COUNT, "number of audio channels"),
        ("bitrate", _N, Unit.BITRATE, "bit rate announced at connect"),
        ("bitrateConf", _N, Unit.BITRATE, "configured/announced bit rate"),
        ("bitrateAvg", _N, Unit.BITRATE, "measured average bit rate"),
        ("bitrateLatest", _N, Unit.BITRATE, "measured recent bit rate"),
        ("bypass", _B, Unit.NONE, "passed through without transcoding"),
    ]
    for kind, rows in (("video", video), ("audio", audio)):
        for name, ftype, unit, doc in rows:
            specs.append(
                FieldSpec(f"{kind}.{name}", ftype, unit, Source.INFO,
                          f"first {kind} track: {doc}", scopes=_STREAM,
                          spellings=CODECS if name == "codec" else ())
            )  # fmt: skip
    specs.extend(_output_specs())
    out = {s.path: _with_limits(s) for s in specs}
    out.update(_origin_specs(out.values()))
    return out


#: ``origin.<field>``: a relayed stream's field as its origin reports it
ORIGIN_PREFIX = "origin."


def _origin_specs(specs: Iterable[FieldSpec]) -> dict[str, FieldSpec]:
    """``origin.*`` of an edge stream: each stats and info field of a stream, read on the
    origin (its own poll already left out what it had not measured), and ``origin.listed``."""
    out = {
        ORIGIN_PREFIX + s.path: replace(
            s, path=ORIGIN_PREFIX + s.path, source=Source.ORIGIN, scopes=_STREAM,
            doc=f"on the origin: {s.doc}", missing_is_zero=False, plausible=None,
            warmup_s=0.0, windowed=False, v2_only=False,
        )
        for s in specs
        if Scope.STREAM in s.scopes and s.source in (Source.STATS, Source.INFO)
    }  # fmt: skip
    listed = FieldSpec("origin.listed", _B, Unit.NONE, Source.ORIGIN,
                       "the origin lists the stream", scopes=_STREAM)  # fmt: skip
    return {**out, listed.path: listed}


def origin_source(path: str) -> Source:
    """What the origin's poll reads for ``origin.<field>``: its stats, info or listing."""
    base = FIELDS.get(path.removeprefix(ORIGIN_PREFIX))
    return Source.LISTING if base is None else base.source


def _output_specs() -> list[FieldSpec]:
    """Pushes (``:pushes``) and records (``:records``): ``ome-beyond-stats.md`` §1.2, §2.2.
    OME's times in ms arrive here in seconds, so ``recordTime > 1m`` means what it says."""
    o, both = Source.OUTPUTS, _OUTPUTS
    return [
        FieldSpec("state", _S, Unit.NONE, o,
                  "push: ready connecting pushing stopping stopped error; record: ready "
                  "recording stopping stopped error", scopes=both,
                  spellings=tuple(dict.fromkeys(PUSH_STATES + RECORD_STATES))),
        FieldSpec("sequence", _N, Unit.COUNT, o,
                  "push: sessions stopped so far; record: segments completed "
                  "(no value while OME leaves it out: a record's 0)", scopes=both),
        FieldSpec("startTime", _T, Unit.NONE, o,
                  "push: the latest connect attempt; record: start of the current segment "
                  "(no value while unset)", scopes=both),
        FieldSpec("stream_live", _B, Unit.NONE, o,
                  "the stream it reads is listed right now (computed by omealert)", scopes=both),
        FieldSpec("protocol", _S, Unit.NONE, o, "rtmp, srt or mpegts", scopes=_PUSH,
                  spellings=PUSH_PROTOCOLS),
        FieldSpec("sentBytes", _N, Unit.BYTES, o,
                  "bytes sent in the current sequence; stops growing when nothing is sent",
                  scopes=_PUSH, counter=True),
        FieldSpec("totalsentBytes", _N, Unit.BYTES, o,
                  "bytes sent in every sequence (OME's spelling; totalSentBytes is read too)",
                  scopes=_PUSH, counter=True),
        FieldSpec("sentTime", _N, Unit.SECONDS, o,
                  "time the current session has sent for (OME: ms); restarts on a reconnect",
                  scopes=_PUSH),
        FieldSpec("isConfig", _B, Unit.NONE, o,
                  "created by <Push><StreamMap> (true) or by the API (false)", scopes=both),
        FieldSpec("recordBytes", _N, Unit.BYTES, o,
                  "bytes of the current segment (no value outside a segment)",
                  scopes=_RECORD, counter=True),
        FieldSpec("recordTime", _N, Unit.SECONDS, o,
                  "length of the current segment (OME: ms)", scopes=_RECORD),
        FieldSpec("totalRecordBytes", _N, Unit.BYTES, o, "bytes of every segment",
                  scopes=_RECORD, counter=True),
        FieldSpec("totalRecordTime", _N, Unit.SECONDS, o,
                  "length of every segment (OME: ms)", scopes=_RECORD),
        FieldSpec("finishTime", _T, Unit.NONE, o,
                  "end of the last finalized segment (stopped or error only)", scopes=_RECORD),
    ]  # fmt: skip


#: Beyond any physical link: 1 Tbps in bits/s, or 1 Tbps × 1 s in bytes per window.
MAX_BITRATE = 1e12
MAX_WINDOW_BYTES = MAX_BITRATE / 8
#: Beyond any camera or codec: frames per second, pixels per side (AV1's limit).
MAX_FRAMERATE = 10_000.0
MAX_PIXELS = 65_536.0
_HIGH = {Unit.BITRATE: MAX_BITRATE, Unit.FPS: MAX_FRAMERATE, Unit.PIXELS: MAX_PIXELS}
#: OME measures throughput at the first input packet more than 1 s after the previous
#: measurement (``CommonMetrics::UpdateThroughput``): 0 until then, and before 0.19.0 the
#: first window of ``*ThroughputIn`` is garbage (``_last_total_bytes_in`` uninitialised).
#: ``MediaTrack::OnFrameAdded``: ``bitrateLatest``/``framerateLatest`` come after the first
#: 1 s window from the first frame (``_bitrate_last_second`` is never initialised), the
#: measured ``bitrate``/``framerate``/``*Avg`` 1 s after the first frame (0 before). The
#: first frame comes a little after ``createdTime``, hence 2 s for both.
WARMUP_S = 2.0
_MEASURED = frozenset({
    "providers.avgThroughputIn", "providers.lastThroughputIn", "providers.maxThroughputIn",
    "publishers.avgThroughputOut", "publishers.lastThroughputOut", "publishers.maxThroughputOut",
    "video.bitrate", "video.bitrateAvg", "video.bitrateLatest", "video.framerate",
    "video.framerateAvg", "video.framerateLatest",
    "audio.bitrate", "audio.bitrateAvg", "audio.bitrateLatest",
})  # fmt: skip
_WINDOWED = frozenset({
    "providers.avgThroughputIn", "providers.lastThroughputIn",
    "publishers.avgThroughputOut", "publishers.lastThroughputOut",
    "video.bitrateLatest", "video.framerateLatest", "audio.bitrateLatest",
})  # fmt: skip


_QUEUE = frozenset({Scope.QUEUE})


def _queue_fields() -> list[FieldSpec]:
    """``scope: queue``: a queue's numbers as OME sends them, and its URN's parts as text."""
    units = {"count": Unit.COUNT, "µs": Unit.MICROSECONDS, "count/s": Unit.PER_SECOND}
    out = [
        FieldSpec(name, _N, units[unit], Source.QUEUES, doc, scopes=_QUEUE)
        for name, unit, doc in QUEUE_FIELDS
    ]
    out += [  # 0 while no current congestion event lists the queue: an OK clears the alert
        FieldSpec(name, _N, units[unit], Source.QUEUES, doc, scopes=_QUEUE, missing_is_zero=True)
        for name, unit, doc in EVENT_QUEUE_FIELDS
    ]
    out += [
        FieldSpec(name, _S, Unit.NONE, Source.QUEUES, doc, scopes=_QUEUE)
        for name, doc in (
            ("part", "where the queue sits: pvd imr trs omr pub och (from its urn)"),
            (
                "queue_name",
                "the queue's name in its urn (label name): filter_video, dec_h264_0, "
                "streamworker, ...",
            ),
            ("urn", "the queue's whole urn, e.g. mngq:v=#default#app:s=s1:p=trs:n=filter_video"),
            ("vhost", "the queue's virtual host (from its urn; none for server-wide queues)"),
            ("app", "the queue's application (from its urn)"),
            (
                "stream",
                "the queue's stream (from its urn; none for app-level queues; an "
                "encoder's is the output stream)",
            ),
        )
    ]
    out.append(FieldSpec("drop", _N, Unit.COUNT, Source.QUEUES, "always 0 in OME",
                         scopes=_QUEUE, refusal=DROP_REFUSAL))  # fmt: skip
    return out


def _with_limits(spec: FieldSpec) -> FieldSpec:
    """``spec`` with its plausible range, warm-up and window. Counts are passed on as they
    are (OME's bookkeeping bug can make them negative, ome-api.md §7), and so are unitless
    numbers."""
    plausible: tuple[float, float] | None = None
    if spec.scopes == _QUEUE:
        return spec  # item counts and waits, passed on as OME sends them
    if spec.source is Source.OUTPUTS:
        pass  # what OME leaves out is no value already; nothing else is checked
    elif spec.type is FieldType.NUMBER and spec.unit not in (Unit.COUNT, Unit.NONE):
        high = MAX_WINDOW_BYTES if ".lastThroughput" in spec.path else _HIGH.get(spec.unit)
        low = 1.0 if spec.path == "video.keyFrameIntervalLatest" else 0.0  # 0: not measured
        plausible = (low, float("inf") if high is None else high)
    return replace(
        spec,
        plausible=plausible,
        warmup_s=WARMUP_S if spec.path in _MEASURED else 0.0,
        windowed=spec.path in _WINDOWED,
    )


FIELDS: dict[str, FieldSpec] = _build()
#: the fields a unique tail names (``lastRecvTime``); ``origin.*`` take their prefix
_PLAIN = tuple(p for p in FIELDS if not p.startswith(ORIGIN_PREFIX))


class FieldLookupError(LookupError):
    """A name that is unknown or ambiguous; the message says which and suggests fixes."""


def resolve(name: str) -> FieldSpec:
    """Find the field a rule means by ``name``: a full dotted path or a unique tail of one.

    ``totalBytesIn`` → ``providers.totalBytesIn``; ``connections.webrtc`` is ambiguous
    (providers or publishers) and the error lists both.
    """
    spec = FIELDS.get(name)
    if spec is not None:
        return spec
    if name.startswith(ORIGIN_PREFIX) and name != ORIGIN_PREFIX:  # origin.lastRecvTime
        try:
            base = resolve(name.removeprefix(ORIGIN_PREFIX))
        except FieldLookupError as exc:
            raise FieldLookupError(
                f"{exc} (after 'origin.', which reads an edge's origin)"
            ) from None
        spec = FIELDS.get(ORIGIN_PREFIX + base.path)
        if spec is None:
            raise FieldLookupError(f"{base.path} is not a stream field, so it has no origin.* form")
        return spec
    suffix = "." + name
    candidates = sorted(p for p in _PLAIN if p.endswith(suffix))
    if len(candidates) == 1:
        return FIELDS[candidates[0]]
    if candidates:
        raise FieldLookupError(
            f"field {name!r} is ambiguous; write one of: {', '.join(candidates)}"
        )
    raise FieldLookupError(f"unknown field {name!r}{_suggest(name)}")


def _suggest(name: str) -> str:
    pool: list[str] = list(FIELDS)
    pool += [p.rsplit(".", 1)[-1] for p in _PLAIN]
    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def sources_of(paths: Iterable[str]) -> frozenset[Source]:
    return frozenset(FIELDS[p].source for p in paths if p in FIELDS)
