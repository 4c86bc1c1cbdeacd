"""The OME simulator speaks OME's REST API byte for byte, over real sockets on loopback."""

from __future__ import annotations

import base64
import email.utils
import json
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from omealert.simulator import PUBLISHER_KEYS, ManualClock, Simulator

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
TOKEN = "ome-access-token"
AUTH = {"Authorization": "Basic b21lLWFjY2Vzcy10b2tlbg=="}
STATS = "/v1/stats/current/vhosts/default/apps/app/streams/stream1"
INFO = "/v1/vhosts/default/apps/app/streams/stream1"

# ome-api.md §3, "Wire example (a stream, OME ≥ 0.18)".
WIRE_EXAMPLE = (
    '{"message":"OK","response":{"avgThroughputIn":2500000,"avgThroughputOut":10000000,'
    '"connections":{"file":0,"hlsv3":0,"llhls":1,"ovt":0,"push":0,"srt":0,"thumbnail":0,'
    '"webrtc":3},"createdTime":"2026-01-01T00:00:00.000+00:00",'
    '"lastRecvTime":"2026-01-01T00:00:09.750+00:00","lastSentTime":"2026-01-01T00:00:09.750+00:00",'
    '"lastThroughputIn":312500,"lastThroughputOut":1250000,'
    '"lastUpdatedTime":"2026-01-01T00:00:09.750+00:00","maxThroughputIn":2500000,'
    '"maxThroughputOut":10000000,"maxTotalConnectionTime":"2026-01-01T00:00:02.250+00:00",'
    '"maxTotalConnections":4,"totalBytesIn":3046875,"totalBytesOut":9375000,"totalConnections":4},'
    '"statusCode":200}'
)


_PLAIN = ssl.create_default_context()  # built once: httpx builds a costly one per client


def http(base_url: str = "", **kwargs: Any) -> httpx.Client:
    """An httpx client for plain-HTTP loopback tests."""
    return httpx.Client(base_url=base_url, verify=_PLAIN, **kwargs)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=START)


@pytest.fixture
def sim(clock: ManualClock) -> Iterator[Simulator]:
    with Simulator(clock=clock.now) as s:
        yield s


@pytest.fixture
def client(sim: Simulator) -> Iterator[httpx.Client]:
    with http(base_url=sim.url, headers=AUTH) as c:
        yield c


def payload(client: httpx.Client, path: str) -> Any:
    r = client.get(path)
    assert r.status_code == 200, r.text
    return r.json()["response"]


def compact(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def error_body(status: int, text: str) -> bytes:
    return compact({"message": f"[HTTP] {text} ({status})", "statusCode": status})


@dataclass
class RawReply:
    head: bytes
    body: bytes


class RawConnection:
    """One client socket speaking HTTP/1.1 by hand, to see exactly what goes over the wire."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, request: str) -> None:
        self.sock.sendall(request.encode("latin-1"))

    def reply(self) -> RawReply:
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = self.buf[:end]
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                if len(self.buf) >= end + 4 + length:
                    body = self.buf[end + 4 : end + 4 + length]
                    self.buf = self.buf[end + 4 + length :]
                    return RawReply(head, body)
            chunk = self.sock.recv(65536)
            assert chunk, "server closed the connection"
            self.buf += chunk

    def closed_by_server(self) -> bool:
        """Blocks until the server closes (True) or sends more bytes (False)."""
        return self.sock.recv(1) == b""


def get(path: str, version: str = "HTTP/1.1", connection: str | None = None) -> str:
    extra = f"Connection: {connection}\r\n" if connection else ""
    return f"GET {path} {version}\r\nAuthorization: {AUTH['Authorization']}\r\n{extra}\r\n"


# ------------------------------------------------------------------ envelope and bytes


def test_stream_stats_match_the_documented_wire_example(
    sim: Simulator, client: httpx.Client, clock: ManualClock
) -> None:
    """The scenario behind ome-api.md's wire example reproduces it byte for byte."""
    sim.add_stream("default", "app", "stream1")
    clock.advance(2.25)
    sim.set_viewers("default", "app", "stream1", "webrtc", 3)
    sim.set_viewers("default", "app", "stream1", "llhls", 1)
    clock.advance(7.5)
    r = client.get(STATS)
    assert r.status_code == 200
    assert r.content == WIRE_EXAMPLE.encode()
    assert r.headers["content-type"] == "application/json;charset=UTF-8"
    assert r.headers["server"] == "OvenMediaEngine"
    assert r.headers["content-length"] == str(len(WIRE_EXAMPLE))
    assert "date" not in r.headers


@pytest.mark.parametrize(
    "path",
    [
        "/v1/version",
        "/v1/vhosts",
        "/v1/vhosts/default",
        "/v1/vhosts/default/apps",
        "/v1/vhosts/default/apps/app",
        "/v1/vhosts/default/apps/app/streams",
        INFO,
        "/v1/stats/current",
        "/v1/stats/current/vhosts/default",
        "/v1/stats/current/vhosts/default/apps/app",
        STATS,
        "/v1/stats/current/internals",
    ],
)
def test_every_endpoint_answers_compact_sorted_envelopes(
    sim: Simulator, client: httpx.Client, path: str
) -> None:
    """Each GET endpoint answers the OK envelope printed compact with sorted keys."""
    sim.add_stream("default", "app", "stream1", framerate=29.97)
    r = client.get(path)
    body = r.json()
    assert (r.status_code, body["statusCode"], body["message"]) == (200, 200, "OK")
    assert r.content == compact(body)


def test_version_endpoint_reports_the_configured_version(clock: ManualClock) -> None:
    """GET /v1/version answers the version given to the simulator."""
    with Simulator(clock=clock.now, version="0.20.0") as sim, http() as c:
        r = c.get(sim.url + "/v1/version", headers=AUTH)
    assert r.json()["response"] == {"gitVersion": "v0.20.0", "version": "0.20.0"}


def test_stream_info_has_string_bitrates_and_c_float_framerates(
    sim: Simulator, client: httpx.Client
) -> None:
    """Stream info prints bitrates as strings and 29.97 fps as the C float jsoncpp prints."""
    sim.add_stream("default", "app", "stream1", framerate=29.97, width=1920, height=1080)
    r = client.get(INFO)
    assert b'"framerate":29.969999313354492' in r.content
    assert b'"keyFrameIntervalAvg":60.0' in r.content
    info = r.json()["response"]
    assert info["name"] == "stream1"
    assert info["input"]["sourceType"] == "Rtmp"
    assert info["input"]["sourceUrl"].startswith("TCP://127.0.0.1:")
    assert info["input"]["createdTime"] == "2026-01-01T00:00:00.000+00:00"
    video, audio = (t[t["type"].lower()] for t in info["input"]["tracks"])
    assert video["codec"] == "H264"
    assert (video["width"], video["height"], video["hasBframes"]) == (1920, 1080, False)
    for key in ("bitrate", "bitrateConf", "bitrateAvg", "bitrateLatest"):
        assert video[key] == "2500000"
        assert audio[key] == "128000"
    assert isinstance(video["keyFrameInterval"], int)
    assert isinstance(video["keyFrameIntervalLatest"], int)
    assert (audio["codec"], audio["samplerate"], audio["channel"]) == ("AAC", 48000, 2)
    assert info["outputs"][0]["name"] == "stream1"


def test_announced_bitrate_does_not_follow_changes(sim: Simulator, client: httpx.Client) -> None:
    """Like RTMP metadata, ``bitrate`` keeps the connect-time value; ``bitrateLatest`` moves."""
    sim.add_stream("default", "app", "stream1", bitrate=4_000_000)
    sim.set_bitrate("default", "app", "stream1", 1_000_000)
    sim.set_framerate("default", "app", "stream1", 12.5)
    video = payload(client, INFO)["input"]["tracks"][0]["video"]
    assert (video["bitrate"], video["bitrateConf"]) == ("4000000", "4000000")
    assert (video["bitrateLatest"], video["bitrateAvg"]) == ("1000000", "1000000")
    assert (video["framerateLatest"], video["framerateConf"]) == (12.5, 30.0)


# ------------------------------------------------------------------ authentication


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "Authorization header is required to call API"),
        ("", "Authorization header is required to call API"),
        ("Basic", "Invalid authorization header"),
        ("Basic  b21lLWFjY2Vzcy10b2tlbg==", "Invalid authorization header"),
        ("Basic a b", "Invalid authorization header"),
        ("Bearer b21lLWFjY2Vzcy10b2tlbg==", "Not supported credential type: Bearer"),
        ("Basic " + base64.b64encode(b"wrong").decode(), "Invalid credential"),
        ("Basic " + base64.b64encode(b"ome-access-token:").decode(), "Invalid credential"),
    ],
)
def test_auth_failures_answer_401_with_ome_texts(
    sim: Simulator, value: str | None, text: str
) -> None:
    """Each kind of bad Authorization header gets OME's 401 text and WWW-Authenticate."""
    headers = {} if value is None else {"Authorization": value}
    with http(base_url=sim.url) as c:
        r = c.get("/v1/vhosts", headers=headers)
    assert r.status_code == 401
    assert r.content == error_body(401, text)
    assert r.headers["www-authenticate"] == 'Basic realm="OvenMediaEngine"'


@pytest.mark.parametrize(
    "value",
    [
        "Basic b21lLWFjY2Vzcy10b2tlbg==",
        "basic b21lLWFjY2Vzcy10b2tlbg==",
        "BASIC b21lLWFjY2Vzcy10b2tlbg",  # unpadded: OME's decoder is lenient
        "Basic b21lLWFjY2Vzcy10b2tlbg==!!junk",  # decoding stops at the first stray byte
    ],
)
def test_auth_accepts_what_ome_accepts(sim: Simulator, value: str) -> None:
    """The scheme is case-insensitive and the base64 decoder lenient, as in OME."""
    with http(base_url=sim.url) as c:
        assert c.get("/v1/vhosts", headers={"Authorization": value}).status_code == 200


def test_auth_runs_before_routing(sim: Simulator) -> None:
    """An unknown path without credentials is 401, not 404; OPTIONS needs no credentials."""
    with http(base_url=sim.url) as c:
        assert c.get("/no/such/route").status_code == 401
        assert c.options("/v1/vhosts").status_code == 204


def test_token_rotation_rejects_the_old_token(sim: Simulator, client: httpx.Client) -> None:
    """After set_token the old token gets "Invalid credential" and the new one works."""
    assert client.get("/v1/vhosts").status_code == 200
    sim.set_token("rotated")
    r = client.get("/v1/vhosts")
    assert (r.status_code, r.content) == (401, error_body(401, "Invalid credential"))
    fresh = {"Authorization": "Basic " + base64.b64encode(b"rotated").decode()}
    assert client.get("/v1/vhosts", headers=fresh).status_code == 200


# ------------------------------------------------------------------ routing and 404s


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/v1/vhosts/nope", "Could not find the virtual host: [nope]"),
        ("/v1/vhosts/nope/apps", "Could not find the virtual host: [nope]"),
        ("/v1/stats/current/vhosts/nope", "Could not find the virtual host: [nope]"),
        ("/v1/stats/current/vhosts/nope/apps/app", "Could not find the virtual host: [nope]"),
        ("/v1/vhosts/default/apps/nope", "Could not find the application: [default/nope]"),
        ("/v1/vhosts/default/apps/nope/streams", "Could not find the application: [default/nope]"),
        (
            "/v1/stats/current/vhosts/default/apps/nope/streams/x",
            "Could not find the application: [default/nope]",
        ),
        (
            "/v1/stats/current/vhosts/default/apps/app/streams/nope",
            "Could not find the stream: [default/#default#app/nope]",
        ),
        (
            "/v1/vhosts/default/apps/app/streams/stream%201",
            "Could not find the stream: [default/#default#app/stream%201]",
        ),
        (
            "/v1/vhosts/we%23ird/apps/x",
            "Could not find the virtual host: [we%23ird]",
        ),
        ("/v1/nope", "Controller not found"),
        ("/V1/vhosts", "Controller not found"),
        ("/v2/stats/current/vhosts/default", "Controller not found"),
    ],
)
def test_404_texts(sim: Simulator, client: httpx.Client, path: str, text: str) -> None:
    """Unknown vhosts, apps, streams and routes get OME's 404 texts or "Controller not found"."""
    sim.add_stream("default", "app", "stream 1")
    r = client.get(path)
    assert (r.status_code, r.content) == (404, error_body(404, text))


def test_stream_404_prints_the_internal_app_name(sim: Simulator) -> None:
    """A '#' inside names becomes '_' in the #vhost#app part of the stream 404 text."""
    sim.add_app("v#1", "a#2")
    with RawConnection(sim.port) as conn:
        conn.send(get("/v1/stats/current/vhosts/v#1/apps/a#2/streams/s"))
        reply = conn.reply()
    assert reply.head.startswith(b"HTTP/1.1 404 Not Found")
    assert reply.body == error_body(404, "Could not find the stream: [v#1/#v_1#a_2/s]")


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/v1/vhosts/", "Could not find the virtual host: []"),
        (
            "/v1/vhosts/default/apps/app/streams/",
            "Could not find the stream: [default/#default#app/]",
        ),
        ("/v1/vhosts/default/", "Controller not found"),
        ("/v1/stats/current/", "Controller not found"),
        ("/v1/stats/current/vhosts/default/", "Controller not found"),
    ],
)
def test_trailing_slashes_behave_like_ome(
    sim: Simulator, client: httpx.Client, path: str, text: str
) -> None:
    """Trailing slashes give the exact 404s ome-api.md §5 lists."""
    sim.add_app("default", "app")
    r = client.get(path)
    assert (r.status_code, r.content) == (404, error_body(404, text))


def test_query_strings_are_ignored(sim: Simulator, client: httpx.Client) -> None:
    """A query string does not change routing."""
    sim.add_app("default", "app")
    assert payload(client, "/v1/vhosts?foo=bar") == ["default"]


def test_other_methods_get_controller_not_found(sim: Simulator, client: httpx.Client) -> None:
    """POST/DELETE on a GET route is 404 "Controller not found", never 405."""
    sim.add_app("default", "app")
    for method in ("POST", "DELETE", "PUT"):
        r = client.request(method, "/v1/vhosts")
        assert (r.status_code, r.content) == (404, error_body(404, "Controller not found"))


def test_head_is_served_wherever_get_is(sim: Simulator, client: httpx.Client) -> None:
    """HEAD answers GET's status and headers, including its Content-Length, with no body."""
    sim.add_stream("default", "app", "stream1")
    for path in ("/v1/vhosts", STATS, "/v1/vhosts/nope"):
        get, head = client.get(path), client.head(path)
        assert head.status_code == get.status_code
        assert head.headers["content-length"] == str(len(get.content))
        assert head.content == b""


# ------------------------------------------------------------------ listings


def test_listings_are_in_creation_order(sim: Simulator, client: httpx.Client) -> None:
    """Vhosts, apps and streams list in creation order; a re-created stream goes last."""
    sim.add_vhost("zeta")
    sim.add_app("alpha", "live")
    sim.add_app("alpha", "app")
    for name in ("c", "a", "b"):
        sim.add_stream("alpha", "app", name)
    assert payload(client, "/v1/vhosts") == ["zeta", "alpha"]
    assert payload(client, "/v1/vhosts/alpha/apps") == ["live", "app"]
    assert payload(client, "/v1/vhosts/alpha/apps/live/streams") == []
    assert payload(client, "/v1/vhosts/alpha/apps/app/streams") == ["c", "a", "b"]
    sim.remove_stream("alpha", "app", "c")
    sim.add_stream("alpha", "app", "c")
    assert payload(client, "/v1/vhosts/alpha/apps/app/streams") == ["a", "b", "c"]
    sim.remove_app("alpha", "live")
    assert payload(client, "/v1/vhosts/alpha/apps") == ["app"]


def test_bulk_add_of_ten_thousand_streams(sim: Simulator, client: httpx.Client) -> None:
    """add_streams holds 10,000 streams and lists them all in order."""
    names = [f"s{i:05d}" for i in range(10_000)]
    sim.add_streams("default", "app", names, viewers={"webrtc": 1})
    listed = payload(client, "/v1/vhosts/default/apps/app/streams")
    assert listed == names
    app = payload(client, "/v1/stats/current/vhosts/default/apps/app")
    assert app["totalConnections"] == 10_000
    assert payload(client, "/v1/stats/current/vhosts/default/apps/app/streams/s09999")


def test_unknown_publisher_is_rejected(sim: Simulator) -> None:
    """Viewer counts are only accepted for OME 0.18's publisher keys."""
    sim.add_stream("default", "app", "stream1")
    with pytest.raises(ValueError, match="unknown publisher"):
        sim.set_viewers("default", "app", "stream1", "dash", 1)
    with pytest.raises(ValueError, match="unknown publisher"):
        sim.add_stream("default", "app", "stream2", viewers={"rtmp": 1})


def test_duplicate_stream_is_rejected(sim: Simulator) -> None:
    """Adding a stream name that is already live raises, as OME refuses duplicates."""
    sim.add_stream("default", "app", "stream1")
    with pytest.raises(ValueError, match="already exists"):
        sim.add_stream("default", "app", "stream1")


# ------------------------------------------------------------------ counters


def test_counters_move_with_the_manual_clock(
    sim: Simulator, client: httpx.Client, clock: ManualClock
) -> None:
    """While ingesting, bytes grow by bitrate/8 per second and lastRecvTime follows the clock."""
    sim.add_stream("default", "app", "stream1", bitrate=800_000)
    first = payload(client, STATS)
    assert (first["totalBytesIn"], first["avgThroughputIn"]) == (0, 800_000)
    clock.advance(10)
    s = payload(client, STATS)
    assert s["totalBytesIn"] == 1_000_000
    assert s["lastRecvTime"] == "2026-01-01T00:00:10.000+00:00"
    assert s["lastUpdatedTime"] == "2026-01-01T00:00:10.000+00:00"
    assert (s["lastThroughputIn"], s["maxThroughputIn"]) == (100_000, 800_000)
    assert s["lastSentTime"] == s["createdTime"]  # nobody watches
    assert s["totalBytesOut"] == 0
    sim.set_bitrate("default", "app", "stream1", 400_000)
    clock.advance(10)
    s = payload(client, STATS)
    assert s["totalBytesIn"] == 1_500_000
    assert (s["avgThroughputIn"], s["lastThroughputIn"], s["maxThroughputIn"]) == (
        400_000,
        50_000,
        800_000,
    )


def test_stall_freezes_input_but_keeps_the_stream_listed(
    sim: Simulator, client: httpx.Client, clock: ManualClock
) -> None:
    """A stalled encoder freezes lastRecvTime, bytes and throughputs until it resumes."""
    sim.add_stream("default", "app", "stream1", bitrate=800_000)
    clock.advance(5)
    sim.stall("default", "app", "stream1")
    clock.advance(60)
    s = payload(client, STATS)
    assert s["totalBytesIn"] == 500_000
    assert s["lastRecvTime"] == "2026-01-01T00:00:05.000+00:00"
    assert (s["avgThroughputIn"], s["lastThroughputIn"]) == (800_000, 100_000)
    assert payload(client, "/v1/vhosts/default/apps/app/streams") == ["stream1"]
    video = payload(client, INFO)["input"]["tracks"][0]["video"]
    assert (video["framerateLatest"], video["bitrateLatest"]) == (0.0, "0")
    sim.resume("default", "app", "stream1")
    clock.advance(1)
    s = payload(client, STATS)
    assert s["totalBytesIn"] == 600_000
    assert s["lastRecvTime"] == "2026-01-01T00:01:06.000+00:00"


def test_viewers_drive_connections_and_bytes_out(
    sim: Simulator, client: httpx.Client, clock: ManualClock
) -> None:
    """Viewer counts set connections, peaks and bytes out; negative counts are shown as is."""
    sim.add_stream("default", "app", "stream1", bitrate=800_000, viewers={"webrtc": 2})
    clock.advance(4)
    s = payload(client, STATS)
    assert s["connections"] == {**dict.fromkeys(PUBLISHER_KEYS, 0), "webrtc": 2}
    assert (s["totalConnections"], s["maxTotalConnections"]) == (2, 2)
    assert s["totalBytesOut"] == 800_000  # 2 viewers × 100,000 B/s × 4 s
    assert (s["avgThroughputOut"], s["lastThroughputOut"]) == (1_600_000, 200_000)
    assert s["lastSentTime"] == "2026-01-01T00:00:04.000+00:00"
    sim.set_viewers("default", "app", "stream1", "llhls", 3)
    clock.advance(1)
    sim.set_viewers("default", "app", "stream1", "webrtc", -1)
    sim.set_viewers("default", "app", "stream1", "llhls", 0)
    s = payload(client, STATS)
    assert s["connections"]["webrtc"] == -1
    assert s["totalConnections"] == -1
    assert s["maxTotalConnections"] == 5
    assert s["maxTotalConnectionTime"] == "2026-01-01T00:00:04.000+00:00"
    sent = s["totalBytesOut"]
    clock.advance(5)
    s = payload(client, STATS)
    assert s["totalBytesOut"] == sent  # nobody real is watching
    assert s["lastSentTime"] == "2026-01-01T00:00:05.000+00:00"


def test_aggregates_keep_bytes_of_removed_streams(
    sim: Simulator, client: httpx.Client, clock: ManualClock
) -> None:
    """App, vhost and server totals keep deleted streams' bytes but drop their sessions."""
    sim.add_stream("default", "app", "a", bitrate=800_000, viewers={"webrtc": 1})
    sim.add_stream("default", "app", "b", bitrate=800_000, viewers={"webrtc": 2})
    clock.advance(10)
    for path in (
        "/v1/stats/current/vhosts/default/apps/app",
        "/v1/stats/current/vhosts/default",
        "/v1/stats/current",
    ):
        agg = payload(client, path)
        assert (agg["totalBytesIn"], agg["avgThroughputIn"]) == (2_000_000, 1_600_000)
        assert (agg["totalConnections"], agg["totalBytesOut"]) == (3, 3_000_000)
    sim.remove_stream("default", "app", "b")
    clock.advance(10)
    agg = payload(client, "/v1/stats/current/vhosts/default/apps/app")
    assert agg["totalBytesIn"] == 3_000_000
    assert (agg["totalConnections"], agg["maxTotalConnections"]) == (1, 3)
    assert agg["avgThroughputIn"] == 800_000
    sim.remove_stream("default", "app", "a")
    clock.advance(10)
    agg = payload(client, "/v1/stats/current")
    assert agg["totalBytesIn"] == 3_000_000
    assert agg["avgThroughputIn"] == 800_000  # frozen, as OME's are (issue #1368)
    assert agg["lastRecvTime"] == "2026-01-01T00:00:20.000+00:00"
    assert agg["totalConnections"] == 0
    r = client.get("/v1/stats/current/vhosts/default/apps/app/streams/a")
    assert r.status_code == 404


def test_restart_recreates_every_object(
    sim: Simulator, client: httpx.Client, clock: ManualClock
) -> None:
    """After restart, createdTime is new everywhere, counters start from 0 and streams return."""
    sim.add_stream("default", "app", "stream1", viewers={"webrtc": 4})
    clock.advance(100)
    sim.set_viewers("default", "app", "stream1", "webrtc", 1)
    sim.restart()
    new_time = "2026-01-01T00:01:40.000+00:00"
    for path in (STATS, "/v1/stats/current/vhosts/default/apps/app", "/v1/stats/current"):
        s = payload(client, path)
        assert s["createdTime"] == new_time
        assert (s["totalBytesIn"], s["totalBytesOut"]) == (0, 0)
        assert (s["totalConnections"], s["maxTotalConnections"]) == (1, 1)
    assert payload(client, INFO)["input"]["createdTime"] == new_time
    assert payload(client, "/v1/vhosts/default/apps/app/streams") == ["stream1"]


# ------------------------------------------------------------------ v2, time and Date


def test_v2_shape_for_enterprise(clock: ManualClock) -> None:
    """With enterprise=True, /v2 splits metrics into providers and publishers."""
    with Simulator(clock=clock.now, enterprise=True) as sim, http(headers=AUTH) as c:
        sim.add_stream("default", "app", "s", bitrate=800_000, source="SRT", viewers={"llhls": 2})
        clock.advance(2)
        base = sim.url + "/v2/stats/current/vhosts/default"
        stream = c.get(base + "/apps/app/streams/s").json()["response"]
        app = c.get(base + "/apps/app").json()["response"]
        vhost = c.get(base).json()["response"]
        assert c.get(sim.url + "/v2/stats/current").status_code == 404
    assert set(stream) == {"createdTime", "lastUpdatedTime", "providers", "publishers"}
    prov, pub = stream["providers"], stream["publishers"]
    assert prov["connections"]["srt"] == 1 and sum(prov["connections"].values()) == 1
    assert (prov["totalBytesIn"], prov["avgThroughputIn"], prov["lastThroughputIn"]) == (
        200_000,
        800_000,
        100_000,
    )
    assert prov["lastRecvTime"] == "2026-01-01T00:00:02.000+00:00"
    assert pub["connections"]["llhls"] == 2
    assert (pub["totalConnections"], pub["totalBytesOut"]) == (2, 400_000)
    assert set(pub) == {
        "avgThroughputOut", "connections", "lastSentTime", "lastThroughputOut",
        "maxThroughputOut", "maxTotalConnectionTime", "maxTotalConnections", "totalBytesOut",
        "totalConnections",
    }  # fmt: skip
    assert app["providers"]["connections"]["srt"] == 1
    assert vhost["publishers"]["totalConnections"] == 2


def test_v2_is_controller_not_found_without_enterprise(
    sim: Simulator, client: httpx.Client
) -> None:
    """Open-source OME has no /v2: 404 with credentials, 401 without."""
    sim.add_stream("default", "app", "stream1")
    r = client.get("/v2/stats/current/vhosts/default/apps/app/streams/stream1")
    assert (r.status_code, r.content) == (404, error_body(404, "Controller not found"))
    with http(base_url=sim.url) as anonymous:
        assert anonymous.get("/v2/stats/current/vhosts/default").status_code == 401


def test_date_header_and_clock_skew(clock: ManualClock) -> None:
    """send_date_header adds an RFC 7231 Date from the skewed clock; JSON times are skewed too."""
    sim = Simulator(clock=clock.now, send_date_header=True, clock_skew=-90.0)
    with sim, http(base_url=sim.url, headers=AUTH) as c:
        sim.add_stream("default", "app", "stream1")
        clock.advance(0.5)
        r = c.get(STATS)
    assert r.headers["date"] == "Wed, 31 Dec 2025 23:58:30 GMT"
    assert email.utils.parsedate_to_datetime(r.headers["date"]).timestamp() == START - 90
    assert r.json()["response"]["lastRecvTime"] == "2025-12-31T23:58:30.500+00:00"


def test_tz_offset_prints_local_time(clock: ManualClock) -> None:
    """Times are printed in the configured offset with truncated milliseconds."""
    with (
        Simulator(clock=clock.now, tz_offset="+09:00") as sim,
        http(base_url=sim.url, headers=AUTH) as c,
    ):
        sim.add_stream("default", "app", "stream1")
        clock.advance(1.2349)
        s = c.get(STATS).json()["response"]
    assert s["createdTime"] == "2026-01-01T09:00:00.000+09:00"
    assert s["lastRecvTime"] == "2026-01-01T09:00:01.234+09:00"


def test_bad_tz_offset_is_rejected() -> None:
    """Offsets must be written ±HH:MM, as OME ≥ 0.13 prints them."""
    with pytest.raises(ValueError, match="tz_offset"):
        Simulator(tz_offset="+0900")


# ------------------------------------------------------------------ faults


def test_fault_500(sim: Simulator, client: httpx.Client) -> None:
    """A "500" fault answers OME's error envelope once, then normal service resumes."""
    sim.set_fault("500", times=1)
    r = client.get("/v1/vhosts")
    assert (r.status_code, r.json()["statusCode"]) == (500, 500)
    assert r.json()["message"].startswith("[HTTP] ")
    assert client.get("/v1/vhosts").status_code == 200


def test_fault_html(sim: Simulator, client: httpx.Client) -> None:
    """An "html" fault looks like an nginx 502 page."""
    sim.set_fault("html")
    r = client.get("/v1/vhosts")
    assert r.status_code == 502
    assert r.headers["content-type"] == "text/html"
    assert b"<html>" in r.content


def test_fault_garbage(sim: Simulator, client: httpx.Client) -> None:
    """A "garbage" fault is a 200 whose body is not JSON."""
    sim.set_fault("garbage")
    r = client.get("/v1/vhosts")
    assert r.status_code == 200
    with pytest.raises(ValueError):
        json.loads(r.content)


def test_fault_truncated(sim: Simulator, client: httpx.Client) -> None:
    """A "truncated" fault sends the first half of the real body."""
    sim.add_stream("default", "app", "stream1")
    full = client.get(STATS).content
    sim.set_fault("truncated", path="/streams/")
    r = client.get(STATS)
    assert r.status_code == 200
    assert r.content == full[: len(full) // 2]
    with pytest.raises(ValueError):
        json.loads(r.content)


def test_fault_wrong_shape(sim: Simulator, client: httpx.Client) -> None:
    """A "wrong_shape" fault is valid JSON without the envelope."""
    sim.add_app("default", "app")
    sim.set_fault("wrong_shape")
    r = client.get("/v1/vhosts")
    assert r.status_code == 200
    assert isinstance(r.json(), list)


def test_fault_wrong_types(sim: Simulator, client: httpx.Client) -> None:
    """A "wrong_types" fault keeps the envelope but prints numbers as "n/a"."""
    sim.add_stream("default", "app", "stream1")
    sim.set_fault("wrong_types")
    body = client.get(STATS).json()
    assert body["statusCode"] == 200
    stats = body["response"]
    assert stats["totalBytesIn"] == "n/a"
    assert stats["connections"]["webrtc"] == "n/a"
    assert stats["createdTime"] == "2026-01-01T00:00:00.000+00:00"
    video = client.get(INFO).json()["response"]["input"]["tracks"][0]["video"]
    assert (video["framerate"], video["bitrate"], video["codec"]) == ("n/a", "n/a", "H264")


def test_fault_huge(sim: Simulator, client: httpx.Client) -> None:
    """A "huge" fault answers a valid envelope of about 20 MB."""
    sim.set_fault("huge", times=1)
    r = client.get("/v1/vhosts")
    assert r.status_code == 200
    assert len(r.content) > 20_000_000
    assert r.json()["statusCode"] == 200


def test_fault_drop(sim: Simulator, client: httpx.Client) -> None:
    """A "drop" fault closes the connection without any reply."""
    sim.set_fault("drop", times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/v1/vhosts")
    assert client.get("/v1/vhosts").status_code == 200


def test_fault_slow_delays_then_answers(sim: Simulator, client: httpx.Client) -> None:
    """A "slow" fault answers normally after its delay; a short client timeout trips on it."""
    sim.set_fault("slow", delay=0.01, times=1)
    assert payload(client, "/v1/vhosts") == []
    sim.set_fault("slow", delay=30.0, times=1)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/v1/vhosts", timeout=0.05)
    assert client.get("/v1/vhosts").status_code == 200


def test_fault_vanish(sim: Simulator, client: httpx.Client) -> None:
    """A "vanish" fault makes a listed stream's stats 404 as if it just ended."""
    sim.add_stream("default", "app", "stream1")
    sim.set_fault("vanish", path="stream1")
    assert payload(client, "/v1/vhosts/default/apps/app/streams") == ["stream1"]
    r = client.get(STATS)
    assert (r.status_code, r.content) == (
        404,
        error_body(404, "Could not find the stream: [default/#default#app/stream1]"),
    )


def test_fault_path_and_times_limit_its_reach(sim: Simulator, client: httpx.Client) -> None:
    """A fault hits only paths containing its substring, only ``times`` times, until cleared."""
    sim.add_stream("default", "app", "stream1")
    sim.set_fault("500", path="/stats/", times=2)
    assert client.get("/v1/vhosts").status_code == 200
    assert [client.get(STATS).status_code for _ in range(3)] == [500, 500, 200]
    sim.set_fault("500")
    assert client.get("/v1/vhosts").status_code == 500
    sim.clear_faults()
    assert client.get("/v1/vhosts").status_code == 200


def test_unknown_fault_kind_is_rejected(sim: Simulator) -> None:
    """set_fault refuses kinds it does not know."""
    with pytest.raises(ValueError, match="unknown fault"):
        sim.set_fault("teapot")


# ------------------------------------------------------------------ request log, control


def test_request_log(sim: Simulator, client: httpx.Client) -> None:
    """Requests are logged as (method, path) without the query, countable by prefix."""
    client.get("/v1/vhosts?x=1")
    client.head("/v1/stats/current")
    client.get("/v1/stats/current")
    assert sim.requests == [
        ("GET", "/v1/vhosts"),
        ("HEAD", "/v1/stats/current"),
        ("GET", "/v1/stats/current"),
    ]
    assert sim.request_count("/v1/stats") == 2
    assert sim.request_count() == 3
    sim.reset_requests()
    assert sim.request_count() == 0


def test_control_endpoint_scripts_the_simulator(
    sim: Simulator, client: httpx.Client, clock: ManualClock
) -> None:
    """POST /_sim/<method> calls the scripting method without auth and is not logged."""
    with http(base_url=sim.url) as anonymous:
        r = anonymous.post(
            "/_sim/add_stream",
            json={"vhost": "default", "app": "app", "stream": "stream1", "bitrate": 800_000},
        )
        assert r.json() == {"ok": True}
        assert anonymous.post("/_sim/advance", json={"seconds": 10}).json() == {"ok": True}
        where = {"vhost": "default", "app": "app", "stream": "stream1"}
        assert anonymous.post("/_sim/stall", json=where).status_code == 200
        bad = anonymous.post("/_sim/set_viewers", json={"vhost": "default"})
        missing = anonymous.post(
            "/_sim/remove_stream", json={"vhost": "default", "app": "app", "stream": "x"}
        )
        forbidden = anonymous.post("/_sim/stop", json={})
        counted = anonymous.post("/_sim/request_count", json={"prefix": "/v1"})
        not_json = anonymous.post("/_sim/restart", content=b"{nope")
    assert clock.now() == START + 10
    assert payload(client, STATS)["totalBytesIn"] == 1_000_000
    assert bad.status_code == 400 and bad.json()["ok"] is False
    assert missing.status_code == 400 and "Could not find the stream" in missing.json()["error"]
    assert forbidden.status_code == 400
    assert counted.json() == {"ok": True, "result": 0}
    assert not_json.status_code == 400
    assert sim.requests == [("GET", STATS)]


def test_control_advance_needs_a_manual_clock() -> None:
    """Without a ManualClock, /_sim/advance is refused."""
    with Simulator(clock=lambda: START) as sim, http(base_url=sim.url) as c:
        r = c.post("/_sim/advance", json={"seconds": 1})
        ok = c.post("/_sim/add_vhost", json={"vhost": "x"})
    assert r.status_code == 400
    assert ok.json() == {"ok": True}
    assert sim.manual_clock is None


# ------------------------------------------------------------------ HTTP/1.1 transport


def test_keep_alive_serves_pipelined_requests_on_one_connection(sim: Simulator) -> None:
    """HTTP/1.1 keeps the connection open and answers pipelined requests in order."""
    sim.add_app("default", "app")
    with RawConnection(sim.port) as conn:
        conn.send(get("/v1/vhosts") + get("/v1/nope") + get("/v1/vhosts/default/apps"))
        heads = [conn.reply().head.split(b"\r\n")[0] for _ in range(3)]
        assert heads == [b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found", b"HTTP/1.1 200 OK"]
        conn.send(get("/v1/vhosts"))  # still open afterwards
        assert conn.reply().body == b'{"message":"OK","response":["default"],"statusCode":200}'


def test_accepted_connections_send_without_nagle_delay(sim: Simulator) -> None:
    """Every accepted socket has TCP_NODELAY, so a second pipelined answer is not held ~40 ms."""
    with RawConnection(sim.port) as conn:
        conn.send(get("/v1/vhosts"))
        conn.reply()
        (proto,) = sim._protocols
        assert proto._transport is not None
        accepted = proto._transport.get_extra_info("socket")
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_connection_header_policy(sim: Simulator) -> None:
    """Exact "Keep-Alive" is echoed with its parameters; "Close" and HTTP/1.0 close."""
    with RawConnection(sim.port) as conn:
        conn.send(get("/v1/vhosts", connection="Keep-Alive"))
        head = conn.reply().head
        assert b"\r\nConnection: Keep-Alive" in head
        assert b"\r\nKeep-Alive: timeout=5, max=100" in head
        conn.send(get("/v1/vhosts"))
        assert b"Connection:" not in conn.reply().head
    with RawConnection(sim.port) as conn:
        conn.send(get("/v1/vhosts", connection="Close"))
        assert b"\r\nConnection: Close" in conn.reply().head
        assert conn.closed_by_server()
    with RawConnection(sim.port) as conn:
        conn.send(get("/v1/vhosts", version="HTTP/1.0"))
        assert conn.reply().head.startswith(b"HTTP/1.1 200 OK")
        assert conn.closed_by_server()


def test_stop_closes_open_connections_and_port(clock: ManualClock) -> None:
    """stop() ends the server thread; a later request cannot connect."""
    sim = Simulator(clock=clock.now)
    sim.start()
    with http(base_url=sim.url, headers=AUTH) as c:
        assert c.get("/v1/vhosts").status_code == 200
        sim.stop()
        with pytest.raises(httpx.TransportError):
            c.get("/v1/vhosts")
    sim.stop()  # idempotent


def test_manual_clock() -> None:
    """ManualClock moves only through advance() and set()."""
    clock = ManualClock(start=10.0)
    clock.advance(2.5)
    assert clock.now() == 12.5
    clock.set(100.0)
    assert clock.now() == 100.0


def test_command_line_entry_serves_until_sigterm() -> None:
    """``python -m omealert.simulator`` prints its URL, serves K streams and exits on SIGTERM."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "omealert.simulator", "--streams", "3", "--token", TOKEN],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with http(base_url=url, headers=AUTH) as c:
            listed = c.get("/v1/vhosts/default/apps/app/streams").json()["response"]
        assert listed == ["stream1", "stream2", "stream3"]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert code == 0
