"""What a real OME 0.18.0 OVT edge and its origin answered (tests/data/ome-real-0.18/edge-*,
origin-stats-*, issue 15): omealert reads them, joins them and the simulator matches them."""

from __future__ import annotations

import json
import urllib.request
from base64 import b64encode
from pathlib import Path
from typing import Any

from omealert.config.load import load_config_text
from omealert.engine.engine import Engine
from omealert.model import PollResult, Sample, Target
from omealert.ome.normalize import normalize_info, normalize_stats, parse_time
from omealert.simulator import Simulator

REAL = Path(__file__).parents[1] / "data" / "ome-real-0.18"
STREAM = ("default", "app", "stream1")


def response(name: str) -> Any:
    return json.loads((REAL / name).read_text(encoding="utf-8"))["response"]


def shape(value: Any) -> Any:
    """Keys and JSON types, recursively (lists by their first item)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


def test_a_relayed_streams_info_reads_as_ovt_with_its_origin_url() -> None:
    """The edge's stream info: sourceType Ovt, the ovt:// URL of the origin's stream, and
    the first video track although it is named after the origin's output (bypass_video)."""
    info = normalize_info(response("edge-stream-info-ovt.json"))
    assert info["sourceType"] == "Ovt"
    assert info["sourceUrl"] == "ovt://127.0.0.1:19000/app/stream1"
    assert info["video.codec"] == "H264" and info["audio.codec"] == "AAC"
    assert response("edge-stream-info-ovt.json")["outputs"] == []  # a relay: no outputs


def test_the_simulators_relayed_stream_has_the_real_shape() -> None:
    """The simulator's edge stream info has the real edge's keys and types, its ovt:// URL,
    its track names and no outputs; the origin counts the edge as one ovt session."""
    with Simulator() as origin, Simulator() as edge:
        origin.add_stream(*STREAM)
        edge.relay_from(origin, *STREAM)
        info = get(edge, "/v1/vhosts/default/apps/app/streams/stream1")
        stats = get(origin, "/v1/stats/current/vhosts/default/apps/app/streams/stream1")
    real = response("edge-stream-info-ovt.json")
    assert shape(info) == shape(real)
    assert info["input"]["sourceUrl"] == "ovt://127.0.0.1:9000/app/stream1"
    assert [t["name"] for t in info["input"]["tracks"]] == ["bypass_video", "bypass_audio"]
    assert info["outputs"] == []
    assert stats["connections"]["ovt"] == response("origin-stats-one-ovt-edge.json")[
        "connections"
    ]["ovt"] == 1  # fmt: skip


def get(sim: Simulator, path: str) -> Any:
    token = b64encode(sim.access_token.encode()).decode()
    request = urllib.request.Request(sim.url + path, headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())["response"]


def poll(server: str, stats: str, *, info: str | None = None, now: float) -> PollResult:
    target = Target(server, *STREAM)
    fields = normalize_stats(response(stats))
    if info is not None:
        fields |= normalize_info(response(info))
    sample = Sample(target, fields, at=now, server_now=now)
    listed = {Target(server), Target(server, "default"), Target(server, "default", "app"), target}
    return PollResult(server, now, now, samples={target: sample}, listed=listed)


def test_the_real_blackholed_relay_fires_relay_broken() -> None:
    """6 s after the relay between the real edge and origin was blackholed, the edge's
    lastRecvTime is frozen and the origin's moves: the shipped relay-broken rule fires."""
    text = (
        "servers:\n  - {name: origin-1, url: 'http://127.0.0.1:9', role: origin}\n"
        "  - {name: edge-1, url: 'http://127.0.0.1:9', role: edge, origin: origin-1}\n"
        "defaults: {channels: []}\nrules:\n  - name: relay-broken\n"
        "    when: lastRecvTime stale > 5s and not origin.lastRecvTime stale > 5s\n"
    )
    engine = Engine(load_config_text(text, "edge.yaml", env={}))
    origin_stats = response("origin-stats-relay-blackholed-t06.json")
    now = parse_time(origin_stats["lastRecvTime"]).timestamp() + 0.5  # when it was asked
    edge = poll("edge-1", "edge-stats-relay-blackholed-t06.json",
                info="edge-stream-info-ovt.json", now=now)  # fmt: skip
    origin = poll("origin-1", "origin-stats-relay-blackholed-t06.json", now=now)
    [fired] = [t for t in engine.step([origin, edge], now) if t.to_state.value == "firing"]
    assert fired.instance.target == Target("edge-1", *STREAM)
    assert fired.instance.labels["origin"] == "origin-1"
    assert 8 < float(fired.instance.value) < 10  # type: ignore[arg-type]


def test_the_dropped_edge_stream_404s_and_leaves_the_listing() -> None:
    """The real edge dropped the dead relay's stream: its stats 404 with OME's text, and the
    app lists no stream (no alert by itself: edge streams come and go)."""
    body = json.loads((REAL / "edge-stats-stream-dropped-404.json").read_text())
    assert body["statusCode"] == 404
    assert "Could not find the stream" in body["message"]
    assert response("edge-streams-relay-blackholed-t12.json") == []
