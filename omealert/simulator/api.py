"""OME's REST endpoints: authentication, routing, and the v1/v2 stats and stream-info bodies.

The byte-level behaviour follows ``ome-api.md``: the 401/404 texts, auth before routing,
HEAD wherever GET is, and stream-info bitrates as JSON strings.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from .outputs import _Outputs
from .queues import _Queues
from .quirks import QUIRK_KINDS, quirk_info, quirk_stats
from .reply import _c_float, _error, _ok, _Reply
from .streams import PROVIDER_KEYS, _Metrics, _NotFound, _Stream

_B64_PREFIX: Final = re.compile(r"[A-Za-z0-9+/]*")


def _lenient_b64decode(text: str) -> bytes:
    """Decode base64 the way OME's Apache-style decoder does: stop at the first stray byte."""
    prefix = _B64_PREFIX.match(text)
    valid = prefix.group(0) if prefix else ""
    if len(valid) % 4 == 1:
        valid = valid[:-1]  # a lone sextet carries no whole byte
    valid += "=" * (-len(valid) % 4)
    try:
        return base64.b64decode(valid)
    except binascii.Error:  # pragma: no cover - the prefix is always decodable
        return b""


_NOT_FOUND = "Controller not found"
_R = re.compile
_ROUTES: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (_R(r"/v1/version"), "version"),
    (_R(r"/v1/vhosts"), "vhost_list"),
    (_R(r"/v1/vhosts/([^/]*)"), "vhost_info"),
    (_R(r"/v1/vhosts/([^/]*)/apps"), "app_list"),
    (_R(r"/v1/vhosts/([^/]*)/apps/([^/:]*)"), "app_info"),
    (_R(r"/v1/vhosts/([^/]*)/apps/([^/:]*):pushes"), "pushes"),
    (_R(r"/v1/vhosts/([^/]*)/apps/([^/:]*):records"), "records"),
    (_R(r"/v1/vhosts/([^/]*)/apps/([^/:]*)/streams"), "stream_list"),
    (_R(r"/v1/vhosts/([^/]*)/apps/([^/:]*)/streams/([^/]*)"), "stream_info"),
    (_R(r"/v1/stats/current"), "stats_server"),
    (_R(r"/v1/stats/current/internals"), "internals"),
    (_R(r"/v1/stats/current/internals/queues"), "queues"),
    (_R(r"/v1/stats/current/vhosts/([^/]*)"), "stats_vhost"),
    (_R(r"/v1/stats/current/vhosts/([^/]*)/apps/([^/]*)"), "stats_app"),
    (_R(r"/v1/stats/current/vhosts/([^/]*)/apps/([^/:]*)/streams/([^/]*)"), "stats_stream"),
)
_V2_ROUTES: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (_R(r"/v2/stats/current/vhosts/([^/]*)"), "v2_vhost"),
    (_R(r"/v2/stats/current/vhosts/([^/]*)/apps/([^/]*)"), "v2_app"),
    (_R(r"/v2/stats/current/vhosts/([^/]*)/apps/([^/:]*)/streams/([^/]*)"), "v2_stream"),
)


#: What OME answers on POST too (and documents as POST; GET "will be deprecated").
_POST_ROUTES: Final = frozenset({"pushes", "records"})


class _Api(_Outputs, _Queues):
    """``Simulator``'s answers to OME API requests (see ``_SimClock``)."""

    _token: str
    _enterprise: bool
    _version: str
    _quirks: frozenset[str]

    def set_token(self, token: str) -> None:
        """Rotate the access token; the old one gets 401 "Invalid credential" from now on."""
        with self._lock:
            self._token = str(token)

    def set_quirks(self, kinds: Iterable[str]) -> None:
        """Print streams' measurements as OME 0.18 does (``quirks.py``): ``"first_second"``
        (a new stream's garbage and zeros), ``"partial_window"`` (the window after a stall);
        none: every value is right from the start (the default)."""
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        unknown = sorted(set(kinds) - QUIRK_KINDS)
        if unknown:
            raise ValueError(f"unknown quirk(s) {unknown}; use {sorted(QUIRK_KINDS)}")
        with self._lock:
            self._quirks = frozenset(kinds)

    # ----------------------------------------------------------------- answers

    def _answer(self, method: str, path: str, headers: Mapping[str, str]) -> _Reply:
        if method == "OPTIONS":
            return _Reply(204, raw=b"", content_type="")
        denied = self._check_auth(headers.get("authorization"))
        if denied is not None:
            reply = _error(401, denied)
            reply.headers.append(("WWW-Authenticate", 'Basic realm="OvenMediaEngine"'))
            return reply
        if method not in ("GET", "HEAD", "POST"):
            return _error(404, _NOT_FOUND)
        routes = _ROUTES + _V2_ROUTES if self._enterprise else _ROUTES
        for pattern, name in routes:
            match = pattern.fullmatch(path)
            if match is not None:
                if method == "POST" and name not in _POST_ROUTES:
                    return _error(404, _NOT_FOUND)
                with self._lock:
                    try:
                        return self._route(name, match.groups())
                    except _NotFound as exc:
                        return _error(404, exc.text)
        return _error(404, _NOT_FOUND)

    def _check_auth(self, value: str | None) -> str | None:
        if not value:
            return "Authorization header is required to call API"
        parts = value.split(" ")
        if len(parts) != 2:
            return "Invalid authorization header"
        scheme, credential = parts
        if scheme.upper() != "BASIC":
            return f"Not supported credential type: {scheme}"
        if not hmac.compare_digest(_lenient_b64decode(credential), self._token.encode()):
            return "Invalid credential"
        return None

    def _route(self, name: str, groups: tuple[str | Any, ...]) -> _Reply:
        now = self._now()
        g = [str(x) for x in groups]
        if name == "version":
            return _ok({"gitVersion": f"v{self._version}", "version": self._version})
        if name == "vhost_list":
            return _ok(list(self._vhosts))
        if name == "vhost_info":
            node = self._vhost(g[0])
            return _ok({"name": node.name, "distribution": "ovenmediaengine.com",
                        "host": {"names": ["*"]}})  # fmt: skip
        if name == "app_list":
            return _ok(list(self._vhost(g[0]).apps))
        if name == "app_info":
            app_node = self._app(g[0], g[1])
            return _ok({"name": app_node.name, "dynamic": False, "type": "live"})
        if name == "pushes":
            return self._pushes_reply(g[0], g[1])
        if name == "records":
            return self._records_reply(g[0], g[1])
        if name == "stream_list":
            return _ok(list(self._app(g[0], g[1]).streams))
        if name == "stream_info":
            stream = self._stream(g[0], g[1], g[2])
            info = self._stream_info(stream, now)
            if self._quirks:
                quirk_info(info, stream, now, self._quirks)
            return _ok(info)
        if name == "stats_server":
            return _ok(self._v1(self._server, now))
        if name == "internals":
            return _ok(["/v1/stats/current/internals/queues"])
        if name == "queues":
            return _ok(self._queues_answer(now))
        if name == "stats_vhost":
            return _ok(self._v1(self._vhost(g[0]).metrics, now))
        if name == "stats_app":
            return _ok(self._v1(self._app(g[0], g[1]).metrics, now))
        if name == "stats_stream":
            return _ok(self._stream_stats(self._stream(g[0], g[1], g[2]), now))
        if name == "v2_vhost":
            vhost_node = self._vhost(g[0])
            return _ok(self._v2(vhost_node.metrics, vhost_node.providers, now))
        if name == "v2_app":
            app_node = self._app(g[0], g[1])
            return _ok(self._v2(app_node.metrics, app_node.providers, now))
        if name == "v2_stream":
            s = self._stream(g[0], g[1], g[2])
            providers = dict.fromkeys(PROVIDER_KEYS, 0)
            providers[s.source.lower()] = 1
            return _ok(_v2_of(self._stream_stats(s, now), providers))
        raise AssertionError(name)  # pragma: no cover

    def _v1(self, m: _Metrics, now: float) -> dict[str, Any]:
        m.settle(now)
        fmt = self.format_time
        return {
            "avgThroughputIn": m.avg_in,
            "avgThroughputOut": m.avg_out,
            "connections": dict(m.connections),
            "createdTime": fmt(m.created),
            "lastRecvTime": fmt(m.last_recv),
            "lastSentTime": fmt(m.last_sent),
            "lastThroughputIn": m.avg_in // 8,
            "lastThroughputOut": m.avg_out // 8,
            "lastUpdatedTime": fmt(m.last_event),
            "maxThroughputIn": m.max_in,
            "maxThroughputOut": m.max_out,
            "maxTotalConnectionTime": fmt(m.max_total_time),
            "maxTotalConnections": m.max_total,
            "totalBytesIn": round(m.bytes_in),
            "totalBytesOut": round(m.bytes_out),
            "totalConnections": m.total,
        }

    def _stream_stats(self, s: _Stream, now: float) -> dict[str, Any]:
        body = self._v1(s.metrics, now)
        if self._quirks:
            quirk_stats(body, s, now, self._quirks)
        return body

    def _v2(self, m: _Metrics, providers: Mapping[str, int], now: float) -> dict[str, Any]:
        return _v2_of(self._v1(m, now), providers)

    def _stream_info(self, s: _Stream, now: float) -> dict[str, Any]:
        live = not s.stalled
        fps = _c_float(s.framerate)
        gop = s.key_frame_interval
        frames = int(max(0.0, now - s.metrics.created) * s.framerate) if live else 0
        video: dict[str, Any] = {
            "bitrate": str(s.announced_bitrate),
            "bitrateAvg": str(s.bitrate),
            "bitrateConf": str(s.announced_bitrate),
            "bitrateLatest": str(s.bitrate if live else 0),
            "bypass": False,
            "codec": "H264",
            "deltaFramesSinceLastKeyFrame": frames % gop if gop > 0 else 0,
            "framerate": fps,
            "framerateAvg": fps,
            "framerateConf": _c_float(s.announced_framerate),
            "framerateLatest": fps if live else _c_float(0.0),
            "hasBframes": False,
            "height": s.height,
            "keyFrameInterval": gop,
            "keyFrameIntervalAvg": _c_float(gop),
            "keyFrameIntervalConf": gop,
            "keyFrameIntervalLatest": gop,
            "maxHeight": s.height,
            "maxWidth": s.width,
            "width": s.width,
        }
        # an edge's input tracks are named after the origin's output tracks, with no max
        # size and an unset (float) keyFrameIntervalConf, as a real 0.18 edge prints them
        relayed = s.source_url is not None
        if relayed:
            del video["maxHeight"], video["maxWidth"]
            video["keyFrameIntervalConf"] = _c_float(0.0)
        names = ("bypass_video", "bypass_audio") if relayed else ("Video", "Audio")
        tracks: list[dict[str, Any]] = [
            {"id": 0, "name": names[0], "type": "Video", "video": video}
        ]
        out_tracks: list[dict[str, Any]] = [
            {"id": 0, "name": "bypass_video", "type": "Video", "video": {**video, "bypass": True}}
        ]
        if s.audio_bitrate is not None:
            audio: dict[str, Any] = {
                "bitrate": str(s.audio_bitrate),
                "bitrateAvg": str(s.audio_bitrate),
                "bitrateConf": str(s.audio_bitrate),
                "bitrateLatest": str(s.audio_bitrate if live else 0),
                "bypass": False,
                "channel": 2,
                "codec": "AAC",
                "samplerate": 48000,
            }
            tracks.append({"id": 1, "name": names[1], "type": "Audio", "audio": audio})
            out_tracks.append(
                {
                    "id": 1,
                    "name": "bypass_audio",
                    "type": "Audio",
                    "audio": {**audio, "bypass": True},
                }
            )
        playlist = {
            "fileName": "llhls",
            "name": "default",
            "options": {"enableTsPackaging": False, "webrtcAutoAbr": True},
            "renditions": [
                {
                    "audioTrackName": "bypass_audio",
                    "name": "bypass",
                    "videoTrackName": "bypass_video",
                }
            ],
        }
        return {
            "input": {
                "createdTime": self.format_time(s.metrics.created),
                "sourceType": s.source,
                "sourceUrl": s.source_url or f"TCP://127.0.0.1:{s.port}",
                "tracks": tracks,
            },
            "name": s.name,
            # a relayed (OVT) stream has no transcoder outputs: [] before OME 0.20.5
            "outputs": []
            if s.source_url is not None
            else [{"name": s.name, "playlists": [playlist], "tracks": out_tracks}],
        }


def _v2_of(v1: dict[str, Any], providers: Mapping[str, int]) -> dict[str, Any]:
    """A v1 stats body in Enterprise's v2 shape."""
    return {
        "createdTime": v1["createdTime"],
        "lastUpdatedTime": v1["lastUpdatedTime"],
        "providers": {
            "avgThroughputIn": v1["avgThroughputIn"],
            "connections": dict(providers),
            "lastRecvTime": v1["lastRecvTime"],
            "lastThroughputIn": v1["lastThroughputIn"],
            "maxThroughputIn": v1["maxThroughputIn"],
            "totalBytesIn": v1["totalBytesIn"],
        },
        "publishers": {
            key: v1[key]
            for key in (
                "avgThroughputOut",
                "connections",
                "lastSentTime",
                "lastThroughputOut",
                "maxThroughputOut",
                "maxTotalConnectionTime",
                "maxTotalConnections",
                "totalBytesOut",
                "totalConnections",
            )
        },
    }
