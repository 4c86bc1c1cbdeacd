"""The simulator plays what a real OME 0.18 did (issue 21) on demand: a new stream's garbage,
the partial window after a stall, the shutdown window and a hang on stop."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from omealert.simulator import QUIRK_KINDS, ManualClock, Simulator

from .test_simulator import AUTH, INFO, START, STATS, http

QUIRKY = ["first_second", "partial_window"]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=START)


@pytest.fixture
def sim(clock: ManualClock) -> Iterator[Simulator]:
    with Simulator(clock=clock.now, quirks=QUIRKY) as s:
        s.add_stream("default", "app", "stream1", bitrate=2_000_000)
        yield s


@pytest.fixture
def client(sim: Simulator) -> Iterator[httpx.Client]:
    with http(base_url=sim.url, headers=AUTH) as c:
        yield c


def get(client: httpx.Client, path: str) -> Any:
    r = client.get(path)
    assert r.status_code == 200, r.text
    return r.json()["response"]


def video(client: httpx.Client) -> dict[str, Any]:
    tracks = get(client, INFO)["input"]["tracks"]
    return next(t["video"] for t in tracks if "video" in t)


def audio(client: httpx.Client) -> dict[str, Any]:
    tracks = get(client, INFO)["input"]["tracks"]
    return next(t["audio"] for t in tracks if "audio" in t)


def test_a_new_stream_prints_garbage_for_its_first_windows(
    sim: Simulator, clock: ManualClock, client: httpx.Client
) -> None:
    """As recorded in session-start.jsonl.gz: uninitialised bit rates and zeros in the first
    second, 8.7e17 in the second, right values after, and the garbage peak for life."""
    assert video(client)["bitrateLatest"] == "-1977517884"
    assert audio(client)["bitrateLatest"] == "-572662307"
    assert video(client)["framerateLatest"] == 0.0
    assert video(client)["keyFrameIntervalLatest"] == 0
    assert get(client, STATS)["avgThroughputIn"] == 0
    clock.advance(1)
    stats = get(client, STATS)
    assert (stats["avgThroughputIn"], stats["lastThroughputIn"]) == (
        873841335088853936,
        109230166886106742,
    )
    assert video(client)["bitrateLatest"] == "2000000"
    clock.advance(1)
    stats = get(client, STATS)
    assert stats["avgThroughputIn"] == 2_000_000
    assert stats["maxThroughputIn"] == 873841335088853936
    assert video(client)["keyFrameIntervalLatest"] == 60
    app = get(client, "/v1/stats/current/vhosts/default/apps/app")
    assert app["maxThroughputIn"] == 2_000_000  # aggregates were clean


def test_the_window_after_a_stall_is_partial_then_catches_up(
    sim: Simulator, clock: ManualClock, client: httpx.Client
) -> None:
    """Resumed after 20 s: one window at bitrate / 20, one at twice the bitrate, then normal."""
    clock.advance(5)
    sim.stall("default", "app", "stream1")
    clock.advance(20)
    sim.resume("default", "app", "stream1")
    assert get(client, STATS)["avgThroughputIn"] == 100_000
    clock.advance(1)
    assert get(client, STATS)["avgThroughputIn"] == 4_000_000
    clock.advance(1)
    assert get(client, STATS)["avgThroughputIn"] == 2_000_000


def test_quirks_are_off_by_default_and_checked(clock: ManualClock) -> None:
    """A plain simulator measures from the start; an unknown quirk is refused by name."""
    with Simulator(clock=clock.now) as plain, http(base_url=plain.url, headers=AUTH) as c:
        plain.add_stream("default", "app", "stream1", bitrate=2_000_000)
        assert video(c)["bitrateLatest"] == "2000000"
        assert get(c, STATS)["avgThroughputIn"] == 2_000_000
        with pytest.raises(ValueError, match="unknown quirk"):
            plain.set_quirks(["first-second"])
        plain.set_quirks(["first_second"])
        plain.restart()
        assert video(c)["bitrateLatest"] == "-1977517884"
    assert frozenset(QUIRKY) == QUIRK_KINDS


def test_the_shutdown_window_lists_nothing_and_404s_below(
    sim: Simulator, client: httpx.Client
) -> None:
    """OME's last moments after SIGTERM: ``200 []`` for the vhosts, "Could not find the
    virtual host" below; the token is still checked."""
    sim.set_fault("shutting_down")
    assert get(client, "/v1/vhosts") == []
    for path in ("/v1/vhosts/default/apps", STATS, INFO):
        r = client.get(path)
        assert r.status_code == 404
        assert json.loads(r.text)["message"] == (
            "[HTTP] Could not find the virtual host: [default] (404)"
        )
    with http(base_url=sim.url) as anonymous:
        assert anonymous.get("/v1/vhosts").status_code == 401


def test_a_hang_accepts_and_never_answers(sim: Simulator) -> None:
    """OME hung on stop: the connection is accepted and no byte comes back."""
    sim.set_fault("hang")
    with http(base_url=sim.url, headers=AUTH, timeout=0.3) as c, pytest.raises(httpx.ReadTimeout):
        c.get("/v1/vhosts")
