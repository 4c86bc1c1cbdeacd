"""The simulator as an origin and its edges, scripted in process and over ``/_sim/``."""

from __future__ import annotations

import json
import urllib.request
from base64 import b64encode
from typing import Any

from omealert.simulator import ManualClock, Simulator

STREAM = ("default", "app", "s1")
STATS = "/v1/stats/current/vhosts/default/apps/app/streams/s1"


def get(sim: Simulator, path: str) -> Any:
    token = b64encode(sim.access_token.encode()).decode()
    request = urllib.request.Request(sim.url + path, headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())["response"]


def control(sim: Simulator, method: str, **kwargs: Any) -> Any:
    request = urllib.request.Request(
        f"{sim.url}/_sim/{method}", data=json.dumps(kwargs).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


def test_an_edge_stream_follows_its_origin_and_its_relay() -> None:
    """The edge's input stops when the relay breaks (the origin's goes on), comes back when
    it is mended, stops with the origin's stall, and freezes when the origin's stream ends."""
    clock = ManualClock(1_800_000_000.0)
    with Simulator(clock=clock) as origin, Simulator(clock=clock) as edge:
        origin.add_stream(*STREAM)
        edge.relay_from(origin, *STREAM)

        def recv() -> tuple[str, str]:
            return get(edge, STATS)["lastRecvTime"], get(origin, STATS)["lastRecvTime"]

        clock.advance(5)
        fresh = recv()
        assert fresh[0] == fresh[1]
        edge.break_relay(*STREAM)
        clock.advance(5)
        assert recv() == (fresh[0], get(origin, STATS)["lastRecvTime"]) != (fresh[0], fresh[0])
        edge.mend_relay(*STREAM)
        clock.advance(5)
        mended = recv()
        assert mended[0] == mended[1]
        origin.stall(*STREAM)
        clock.advance(5)
        assert recv() == mended
        origin.resume(*STREAM)
        clock.advance(5)
        assert recv()[0] == recv()[1] != mended[0]
        origin.remove_stream(*STREAM)
        ended = get(edge, STATS)["lastRecvTime"]
        clock.advance(5)
        assert get(edge, STATS)["lastRecvTime"] == ended  # listed, frozen, until reaped


def test_relays_are_scripted_over_sim_control() -> None:
    """``/_sim/relay_from`` with no origin object makes a scripted relay, broken and mended
    over ``/_sim/`` too; an unknown relay is a clear error."""
    clock = ManualClock(1_800_000_000.0)
    with Simulator(clock=clock) as edge:
        assert control(edge, "relay_from", origin=None, vhost="default", app="app",
                       stream="s1", origin_host="origin.example:9000")["ok"]  # fmt: skip
        info = get(edge, "/v1/vhosts/default/apps/app/streams/s1")
        assert info["input"]["sourceType"] == "Ovt"
        assert info["input"]["sourceUrl"] == "ovt://origin.example:9000/app/s1"
        clock.advance(3)
        before = get(edge, STATS)["lastRecvTime"]
        assert control(edge, "break_relay", vhost="default", app="app", stream="s1")["ok"]
        clock.advance(3)
        assert get(edge, STATS)["lastRecvTime"] == before
        try:
            control(edge, "mend_relay", vhost="default", app="app", stream="nope")
        except urllib.error.HTTPError as exc:
            assert json.loads(exc.read())["error"] == "not a relayed stream: default/app/nope"
        else:
            raise AssertionError("an unknown relay was accepted")
