"""The OME client against the simulator over real sockets: discovery, planning, failures, clocks."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import httpx
import pytest

from omealert.clock import FakeClock
from omealert.errors import SourceErrorKind
from omealert.model import PollResult, Scope, Target
from omealert.ome.client import OmeClient, poll_all
from omealert.ome.plan import PollPlan, plan_polls
from omealert.ome.serverclock import ServerClock
from omealert.rules import ServerSpec
from omealert.simulator import Simulator

from ..helpers import poll_once, rule

T = TypeVar("T")
TOKEN = "ome-access-token"
START = 1_767_225_600.0
STREAMS = [
    Target("origin", "default", "app", "stream1"),
    Target("origin", "default", "app", "stream2"),
    Target("origin", "default", "app", "cam1"),
    Target("origin", "default", "other", "x"),
    Target("origin", "studio", "live", "main"),
]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[Simulator]:
    with Simulator(clock=clock.now, access_token=TOKEN, enterprise=True) as s:
        s.add_streams("default", "app", ["stream1", "stream2", "cam1"], viewers={"webrtc": 3})
        s.add_stream("default", "other", "x", viewers={"llhls": 2})
        s.add_stream("studio", "live", "main")
        yield s


def spec(url: str, **kw: Any) -> ServerSpec:
    return ServerSpec(
        name=kw.pop("name", "origin"), url=url, access_token=kw.pop("token", TOKEN), **kw
    )


def paths(sim: Simulator) -> list[str]:
    return [p for _, p in sim.requests]


STREAM_STATS = rule("bytes", "totalBytesIn < 1")
APP_STATS = rule("app-viewers", "publishers.viewers > 100", scope="app")
TRACKS = rule("low-video", "video.bitrateLatest < 1000000")


# -- auth and URLs ------------------------------------------------------------------------------


def test_basic_header_is_base64_of_the_whole_token(clock: FakeClock) -> None:
    """The Authorization header is ``Basic base64(token)``, even for a token with a colon."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={"message": "OK", "response": [], "statusCode": 200})

    poll_once(spec("http://ome.invalid"), clock, [], httpx.MockTransport(handler))
    poll_once(
        spec("http://ome.invalid", token="admin:pa ss"), clock, [], httpx.MockTransport(handler)
    )
    assert seen[0] == "Basic b21lLWFjY2Vzcy10b2tlbg=="  # the sample value in OME's docs
    assert seen[1] == "Basic " + base64.b64encode(b"admin:pa ss").decode()


def test_a_token_with_a_colon_is_accepted_by_ome(clock: FakeClock) -> None:
    """OME compares the decoded header with the whole token, so user:password tokens work."""
    with Simulator(clock=clock.now, access_token="admin:s3cret") as sim:
        sim.add_stream("default", "app", "s")
        result = poll_once(spec(sim.url, token="admin:s3cret"), clock, [STREAM_STATS])
    assert result.error is None
    assert set(result.samples) == {Target("origin", "default", "app", "s")}


def test_no_requested_path_ends_with_a_slash(sim: Simulator, clock: FakeClock) -> None:
    """Every URL the client builds has no trailing slash (OME answers those with 404)."""
    rules = [
        STREAM_STATS,
        TRACKS,
        APP_STATS,
        rule("vh", "totalBytesOut < 0", scope="vhost"),
        rule("srv", "streams > 100", scope="server"),
    ]
    result = poll_once(spec(sim.url + "/"), clock, rules)
    assert result.error is None
    assert len(paths(sim)) == result.requests > 10
    assert [p for p in paths(sim) if p.endswith("/")] == []


# -- discovery and planning ---------------------------------------------------------------------


def test_globs_filter_discovery_before_any_stats_request(sim: Simulator, clock: FakeClock) -> None:
    """Only the listings leading to ``default/app/stream*`` and those streams' stats are read."""
    result = poll_once(
        spec(sim.url), clock, [rule("r", "totalBytesIn < 1", match="default/app/stream*")]
    )
    assert sorted(paths(sim)) == sorted(
        [
            "/v1/vhosts",
            "/v1/vhosts/default/apps",
            "/v1/vhosts/default/apps/app/streams",
            "/v1/stats/current/vhosts/default/apps/app/streams/stream1",
            "/v1/stats/current/vhosts/default/apps/app/streams/stream2",
        ]
    )
    assert set(result.samples) == set(STREAMS[:2])
    assert Target("origin", "default", "app", "cam1") in result.listed  # discovered, not fetched
    assert Target("origin", "studio") in result.listed
    assert Target("origin") in result.listed
    sample = result.samples[STREAMS[0]]
    assert sample.target.labels() == {
        "server": "origin",
        "vhost": "default",
        "app": "app",
        "stream": "stream1",
    }
    assert sample.fields["publishers.connections.webrtc"] == 3


def test_stream_rules_cost_the_listings_plus_one_stats_request_per_stream(
    sim: Simulator, clock: FakeClock
) -> None:
    """N streams: 1 vhost + 2 app + 3 stream listings, then N stats requests and nothing else."""
    result = poll_once(spec(sim.url), clock, [STREAM_STATS])
    assert result.error is None
    assert sim.request_count("/v1/stats/current/") == len(STREAMS)
    assert sim.request_count() == 6 + len(STREAMS) == result.requests
    assert set(result.samples) == set(STREAMS)
    assert not any(p.startswith("/v2") for p in paths(sim))


def test_app_rules_fetch_no_stream_listing_or_stream_stats(
    sim: Simulator, clock: FakeClock
) -> None:
    """App-scope stats rules list vhosts and apps and fetch app stats only."""
    result = poll_once(spec(sim.url), clock, [APP_STATS])
    assert sorted(paths(sim)) == sorted(
        [
            "/v1/vhosts",
            "/v1/vhosts/default/apps",
            "/v1/vhosts/studio/apps",
            "/v1/stats/current/vhosts/default/apps/app",
            "/v1/stats/current/vhosts/default/apps/other",
            "/v1/stats/current/vhosts/studio/apps/live",
        ]
    )
    app = Target("origin", "default", "app")
    assert result.samples[app].fields["publishers.viewers"] == 9
    assert "streams" not in result.samples[app].fields


def test_stream_info_only_when_a_rule_reads_track_fields(sim: Simulator, clock: FakeClock) -> None:
    """A track-field rule fetches stream info (not stats); without one, no info is requested."""
    poll_once(spec(sim.url), clock, [STREAM_STATS])
    assert not any(p.startswith("/v1/vhosts/") and p.count("/") == 7 for p in paths(sim))
    sim.reset_requests()
    result = poll_once(
        spec(sim.url), clock, [rule("tr", "video.bitrateLatest < 1", match="*/*/main")]
    )
    assert sorted(paths(sim)) == sorted(
        [
            "/v1/vhosts",
            "/v1/vhosts/default/apps",
            "/v1/vhosts/studio/apps",
            "/v1/vhosts/default/apps/app/streams",
            "/v1/vhosts/default/apps/other/streams",
            "/v1/vhosts/studio/apps/live/streams",
            "/v1/vhosts/studio/apps/live/streams/main",
        ]
    )
    fields = result.samples[Target("origin", "studio", "live", "main")].fields
    assert fields["sourceType"] == "Rtmp"
    assert "providers.totalBytesIn" not in fields


def test_string_bitrates_in_stream_info_become_numbers(sim: Simulator, clock: FakeClock) -> None:
    """OME 0.18.0 prints stream-info bitrates as strings; samples hold ints."""
    clock.advance(5)  # past the streams' first measurement window
    result = poll_once(spec(sim.url), clock, [TRACKS, STREAM_STATS])
    fields = result.samples[STREAMS[0]].fields
    assert fields["video.bitrateLatest"] == 2_500_000
    assert isinstance(fields["video.bitrateLatest"], int)
    assert fields["audio.bitrateLatest"] == 128_000
    assert fields["video.framerateLatest"] == pytest.approx(30.0)
    assert "providers.totalBytesIn" in fields  # stats and info merged into one sample
    assert sim.request_count("/v1/stats/current/") == len(STREAMS)


def test_stream_counts_need_listings_only(sim: Simulator, clock: FakeClock) -> None:
    """``streams`` rules list down to streams and fetch no stats; counts are per target."""
    rules = [
        rule("empty-app", "streams < 1", scope="app"),
        rule("few", "streams < 3", scope="server"),
    ]
    result = poll_once(spec(sim.url), clock, rules)
    assert not any("/stats/" in p for p in paths(sim))
    assert result.requests == 1 + 2 + 3
    assert result.samples[Target("origin")].fields == {"streams": 5}
    assert result.samples[Target("origin", "default", "app")].fields == {"streams": 3}
    assert result.samples[Target("origin", "studio", "live")].fields == {"streams": 1}


def test_server_stats_alone_need_one_request(sim: Simulator, clock: FakeClock) -> None:
    """A server-scope stats rule costs exactly ``/v1/stats/current`` and no listing."""
    result = poll_once(
        spec(sim.url), clock, [rule("srv", "publishers.viewers > 1000", scope="server")]
    )
    assert paths(sim) == ["/v1/stats/current"]
    assert result.samples[Target("origin")].fields["publishers.viewers"] == 11
    assert result.listed == {Target("origin")}


def test_without_rules_the_vhost_list_is_a_liveness_probe(sim: Simulator, clock: FakeClock) -> None:
    """A server no rule reads is still checked with one cheap listing."""
    result = poll_once(
        spec(sim.url), clock, [rule("elsewhere", "totalBytesIn < 1", servers=("b",))]
    )
    assert paths(sim) == ["/v1/vhosts"]
    assert result.error is None and result.samples == {}
    assert result.listed == {
        Target("origin"),
        Target("origin", "default"),
        Target("origin", "studio"),
    }


def test_absent_rules_need_only_the_listings_above_them(sim: Simulator, clock: FakeClock) -> None:
    """An ``absent`` rule lists its parents and fetches no stats; the ghost is not listed."""
    result = poll_once(spec(sim.url), clock, [rule("gone", "absent", match="default/app/ghost")])
    assert sorted(paths(sim)) == [
        "/v1/vhosts",
        "/v1/vhosts/default/apps",
        "/v1/vhosts/default/apps/app/streams",
    ]
    assert Target("origin", "default", "app", "ghost") not in result.listed
    assert STREAMS[0] in result.listed
    assert result.samples == {}


def test_plan_summarises_what_rules_read() -> None:
    """The plan keeps only rules for its server and knows which scopes need stats or info."""
    rules = [
        STREAM_STATS,
        TRACKS,
        rule("other", "totalConnections > 1", scope="app", servers=("b",)),
    ]
    plan = plan_polls(rules, "a")
    assert plan.stats_scopes == {Scope.STREAM}
    assert plan.reads_info
    assert not plan.explores(Target("a", "v", "app", "s"))
    other = plan_polls(rules, "b")
    assert other.stats_scopes == {Scope.STREAM, Scope.APP}
    assert plan_polls([APP_STATS], "a").sources(Target("a", "v", "x", "s")) is None


# -- v1 and v2 ----------------------------------------------------------------------------------


def test_v1_and_v2_give_the_same_fields_but_provider_connections(
    sim: Simulator, clock: FakeClock
) -> None:
    """The same traffic read over /v1 and Enterprise /v2 normalizes to identical samples."""
    clock.advance(10)
    rules = [STREAM_STATS, APP_STATS, rule("vh", "totalBytesOut < 0", scope="vhost")]
    one = poll_once(spec(sim.url), clock, rules)
    sim.reset_requests()
    two = poll_once(spec(sim.url, api_version="v2"), clock, rules)
    stats = [p for p in paths(sim) if "/stats/" in p]
    assert stats and all(p.startswith("/v2/stats/current/vhosts/") for p in stats)
    assert set(one.samples) == set(two.samples) and len(one.samples) == 5 + 3 + 2
    for target, sample in one.samples.items():
        v2 = dict(two.samples[target].fields)
        provider = {p for p in v2 if p.startswith("providers.connections.")}
        assert provider, target
        for p in provider:
            del v2[p]
        assert v2 == sample.fields, target
    assert two.samples[STREAMS[0]].fields["providers.connections.rtmp"] == 1
    assert one.samples[STREAMS[0]].fields["providers.totalBytesIn"] == 10 * 2_500_000 // 8


def test_v2_server_stats_come_from_v1(sim: Simulator, clock: FakeClock) -> None:
    """Enterprise documents no server-wide /v2 stats, so the server sample reads /v1."""
    result = poll_once(
        spec(sim.url, api_version="v2"), clock, [rule("s", "totalBytesIn < 1", scope="server")]
    )
    assert paths(sim) == ["/v1/stats/current"]
    assert result.error is None


def test_v2_against_open_source_ome_is_a_server_error(clock: FakeClock) -> None:
    """/v2 on open-source OME is "Controller not found": the whole server fails, plainly."""
    with Simulator(clock=clock.now, access_token=TOKEN) as sim:
        sim.add_streams("default", "app", ["a", "b"])
        result = poll_once(spec(sim.url, api_version="v2"), clock, [STREAM_STATS])
    assert result.error is not None
    assert result.error.kind is SourceErrorKind.NOT_FOUND
    assert "api_version" in result.error.reason
    assert result.samples == {} and result.target_errors == {}


# -- failures ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_a_refused_port_is_unreachable(clock: FakeClock) -> None:
    """Nothing listening: the poll reports ``unreachable`` with the path and no samples."""
    result = poll_once(spec(f"http://127.0.0.1:{free_port()}"), clock, [STREAM_STATS])
    assert result.error is not None
    assert result.error.kind is SourceErrorKind.UNREACHABLE
    assert result.error.path == "/v1/vhosts"
    assert result.error.server == "origin"
    assert result.samples == {} and result.listed == set()
    assert result.requests == 1


def test_a_slow_server_times_out(sim: Simulator, clock: FakeClock) -> None:
    """A reply slower than ``timeout_s`` is a ``timeout``, not a hang."""
    sim.set_fault("slow", delay=30.0)
    result = poll_once(spec(sim.url, timeout_s=0.2), clock, [STREAM_STATS])
    assert result.error is not None
    assert result.error.kind is SourceErrorKind.TIMEOUT
    assert "0.2s" in result.error.reason


@pytest.mark.parametrize("token", ["wrong-token", "ome-access-token-old"])
def test_a_wrong_token_says_so_and_never_shows_it(
    sim: Simulator, clock: FakeClock, token: str
) -> None:
    """401: the message says the token is wrong and contains neither it nor its base64."""
    result = poll_once(spec(sim.url, token=token), clock, [STREAM_STATS])
    error = result.error
    assert error is not None
    assert error.kind is SourceErrorKind.UNAUTHORIZED
    text = f"{error} {error.reason} {error.path} {error!r}"
    assert "access_token" in text and "wrong" in text
    for secret in (token, base64.b64encode(token.encode()).decode(), TOKEN):
        assert secret not in text
    assert result.requests == 1


def test_a_missing_token_is_named_as_missing(sim: Simulator, clock: FakeClock) -> None:
    """No token configured: the message says none is configured, not that it is wrong."""
    result = poll_once(spec(sim.url, token=None), clock, [STREAM_STATS])
    assert result.error is not None
    assert result.error.kind is SourceErrorKind.UNAUTHORIZED
    assert "no access_token is configured" in result.error.reason


def test_a_token_rotated_mid_poll_fails_the_whole_server(clock: FakeClock) -> None:
    """A 401 on a stream's stats is not that stream's fault: the server's poll fails."""

    def handler(request: httpx.Request) -> httpx.Response:
        if "/stats/" in request.url.path:
            return httpx.Response(
                401, json={"message": "[HTTP] Invalid credential (401)", "statusCode": 401}
            )
        names = {"/v1/vhosts": ["v"], "/v1/vhosts/v/apps": ["a"]}.get(
            request.url.path, ["s1", "s2"]
        )
        return httpx.Response(200, json={"message": "OK", "response": names, "statusCode": 200})

    result = poll_once(
        spec("http://ome.invalid"), clock, [STREAM_STATS], httpx.MockTransport(handler)
    )
    assert result.error is not None and result.error.kind is SourceErrorKind.UNAUTHORIZED
    assert result.target_errors == {}


SERVER_FAULTS = [
    ("500", SourceErrorKind.SERVER_ERROR, "HTTP 500"),
    ("html", SourceErrorKind.SERVER_ERROR, "HTTP 502"),
    ("garbage", SourceErrorKind.BAD_RESPONSE, "not JSON"),
    ("truncated", SourceErrorKind.BAD_RESPONSE, "not JSON"),
    ("wrong_shape", SourceErrorKind.BAD_RESPONSE, "envelope"),
    ("huge", SourceErrorKind.BAD_RESPONSE, "larger than"),
    ("drop", SourceErrorKind.UNREACHABLE, "without an answer"),
]


@pytest.mark.parametrize(("fault", "kind", "words"), SERVER_FAULTS)
def test_a_broken_listing_fails_the_server(
    sim: Simulator, clock: FakeClock, fault: str, kind: SourceErrorKind, words: str
) -> None:
    """A listing that fails in any way makes the whole poll fail with the right kind."""
    sim.set_fault(fault, path="/v1/vhosts/default/apps/app/streams")
    result = poll_once(spec(sim.url), clock, [STREAM_STATS])
    assert result.error is not None
    assert result.error.kind is kind
    assert words in result.error.reason
    assert result.error.path == "/v1/vhosts/default/apps/app/streams"
    assert TOKEN not in str(result.error)


@pytest.mark.parametrize(
    ("fault", "kind", "words"),
    [*SERVER_FAULTS, ("wrong_types", SourceErrorKind.BAD_RESPONSE, "providers.")],
)
def test_one_broken_stream_leaves_the_others_sampled(
    sim: Simulator, clock: FakeClock, fault: str, kind: SourceErrorKind, words: str
) -> None:
    """A failure of one stream's stats lands in target_errors; every other stream is sampled."""
    sim.set_fault(fault, path="/streams/stream2")
    result = poll_once(spec(sim.url), clock, [STREAM_STATS])
    assert result.error is None
    bad = Target("origin", "default", "app", "stream2")
    assert set(result.target_errors) == {bad}
    assert result.target_errors[bad].kind is kind
    assert words in result.target_errors[bad].reason
    assert set(result.samples) == set(STREAMS) - {bad}
    assert bad in result.listed and not result.gone


def test_wrong_types_in_server_stats_fail_the_server(sim: Simulator, clock: FakeClock) -> None:
    """Server-level stats with text where numbers belong are a bad response for the server."""
    sim.set_fault("wrong_types", path="/v1/stats/current")
    result = poll_once(spec(sim.url), clock, [rule("s", "totalBytesIn < 1", scope="server")])
    assert result.error is not None
    assert result.error.kind is SourceErrorKind.BAD_RESPONSE
    assert "wrong type" in result.error.reason and "n/a" in result.error.reason


def test_wrong_types_in_stream_info_are_a_target_error(sim: Simulator, clock: FakeClock) -> None:
    """Stream info with an unreadable bitrate fails that stream only, naming the field."""
    sim.set_fault("wrong_types", path="/v1/vhosts/default/apps/app/streams/cam1")
    result = poll_once(spec(sim.url), clock, [TRACKS])
    error = result.target_errors[Target("origin", "default", "app", "cam1")]
    assert error.kind is SourceErrorKind.BAD_RESPONSE
    assert "video." in error.reason
    assert len(result.samples) == len(STREAMS) - 1


def test_a_stream_that_vanishes_before_its_stats_is_gone(sim: Simulator, clock: FakeClock) -> None:
    """A 404 "Could not find the stream" after the listing means the stream ended: gone."""
    sim.set_fault("vanish", path="/streams/cam1")
    result = poll_once(spec(sim.url), clock, [STREAM_STATS])
    cam = Target("origin", "default", "app", "cam1")
    assert result.error is None
    assert result.gone == {cam}
    assert cam not in result.listed and cam not in result.target_errors
    assert len(result.samples) == len(STREAMS) - 1


def test_an_app_that_vanishes_before_its_listing_is_gone(sim: Simulator, clock: FakeClock) -> None:
    """A 404 for an app's stream listing empties that app, and the poll still succeeds."""
    sim.set_fault("vanish", path="/v1/vhosts/default/apps/other/streams")
    result = poll_once(spec(sim.url), clock, [STREAM_STATS])
    assert result.error is None
    assert Target("origin", "default", "other") in result.gone
    assert Target("origin", "default", "other", "x") not in result.listed
    assert len(result.samples) == len(STREAMS) - 1


def test_omes_shutdown_window_is_unconfirmed_until_the_next_poll(
    sim: Simulator, clock: FakeClock
) -> None:
    """``/v1/vhosts`` answering ``[]`` (and 404 below) after a good poll: every vhost is
    unconfirmed, not gone; the server's stream count has no value; a second such poll is
    believed."""

    async def go() -> list[PollResult]:
        plan = plan_polls([STREAM_STATS, rule("n", "streams < 1", scope="server")], "origin")
        async with OmeClient(spec(sim.url), clock=clock) as client:
            first = await client.poll(plan)
            sim.set_fault("shutting_down")
            return [first, await client.poll(plan), await client.poll(plan)]

    first, window, again = asyncio.run(go())
    vhosts = {Target("origin", "default"), Target("origin", "studio")}
    assert not first.unconfirmed and first.samples[Target("origin")].fields["streams"] == 5
    assert window.error is None and window.unconfirmed == vhosts
    assert "streams" not in window.samples[Target("origin")].fields
    assert not again.unconfirmed and again.samples[Target("origin")].fields["streams"] == 0


def test_no_vhost_at_the_first_poll_is_unconfirmed_too(sim: Simulator, clock: FakeClock) -> None:
    """omealert (re)started during OME's shutdown window has no listing to compare with:
    a server without a single vhost waits for the next poll, server count included."""

    async def go() -> list[PollResult]:
        plan = plan_polls([STREAM_STATS, rule("n", "streams < 1", scope="server")], "origin")
        sim.set_fault("shutting_down")
        async with OmeClient(spec(sim.url), clock=clock) as client:
            return [await client.poll(plan), await client.poll(plan)]

    window, again = asyncio.run(go())
    assert window.error is None and window.unconfirmed == {Target("origin")}
    assert "streams" not in window.samples[Target("origin")].fields
    assert not again.unconfirmed and again.samples[Target("origin")].fields["streams"] == 0


def test_a_vhost_404_on_a_streams_stats_unconfirms_the_vhost(
    sim: Simulator, clock: FakeClock
) -> None:
    """Listings fine, then a stream's stats say "Could not find the virtual host": the
    vhost went away with everything under it, which the next poll must confirm."""

    async def go() -> PollResult:
        plan = plan_polls([STREAM_STATS], "origin")
        async with OmeClient(spec(sim.url), clock=clock) as client:
            await client.poll(plan)
            sim.set_fault("shutting_down", path="/v1/stats/current/vhosts/studio/")
            return await client.poll(plan)

    result = asyncio.run(go())
    assert result.unconfirmed == {Target("origin", "studio")}
    assert Target("origin", "studio") in result.gone
    assert not any(t.vhost == "studio" for t in result.listed)
    assert Target("origin", "default", "app", "cam1") in result.samples


def test_mock_edges_are_classified(clock: FakeClock) -> None:
    """403 from old OME, a redirect, and a body whose statusCode disagrees are each classified."""
    cases = {
        403: (SourceErrorKind.UNAUTHORIZED, httpx.Response(403, text="")),
        302: (SourceErrorKind.BAD_RESPONSE, httpx.Response(302, headers={"Location": "/x"})),
        200: (
            SourceErrorKind.BAD_RESPONSE,
            httpx.Response(200, json={"message": "x", "response": [], "statusCode": 500}),
        ),
    }
    for kind, response in cases.values():
        transport = httpx.MockTransport(lambda _request, r=response: r)
        result = poll_once(spec("http://ome.invalid"), clock, [], transport)
        assert result.error is not None and result.error.kind is kind, response


# -- the server's clock -------------------------------------------------------------------------


def ages(result: PollResult) -> dict[str, float]:
    out = {}
    for target, sample in result.samples.items():
        stamp = sample.fields["providers.lastRecvTime"]
        assert isinstance(stamp, datetime)
        out[target.stream or ""] = sample.server_now - stamp.timestamp()
    return out


def two_polls(sim: Simulator, clock: FakeClock, between: Callable[[], None]) -> list[PollResult]:
    async def go() -> list[PollResult]:
        async with OmeClient(spec(sim.url), clock=clock) as client:
            plan = plan_polls([STREAM_STATS], "origin")
            first = await client.poll(plan)
            between()
            return [first, await client.poll(plan)]

    return asyncio.run(go())


def test_a_server_behind_the_watcher_does_not_fake_stale_streams(clock: FakeClock) -> None:
    """Server 120 s behind: after two polls a stream stalled for 40 s is 40 s old, not 160 s."""
    with Simulator(clock=clock.now, access_token=TOKEN, clock_skew=-120) as sim:
        sim.add_streams("default", "app", ["live", "stuck"])
        sim.stall("default", "app", "stuck")

        def later() -> None:
            clock.advance(40)

        first, second = two_polls(sim, clock, later)
    assert first.server_now == START  # no evidence yet: clocks assumed to agree
    assert second.server_now == pytest.approx(START + 40 - 120, abs=1)
    assert ages(second)["stuck"] == pytest.approx(40, abs=1)
    assert ages(second)["live"] == pytest.approx(0, abs=1)


def test_a_server_ahead_of_the_watcher_is_never_in_the_future(clock: FakeClock) -> None:
    """Server 120 s ahead: a live stream's age is about 0 from the first poll on, never -120."""
    with Simulator(clock=clock.now, access_token=TOKEN, clock_skew=120) as sim:
        sim.add_stream("default", "app", "live")
        results = two_polls(sim, clock, lambda: clock.advance(10))
    for result in results:
        assert ages(result)["live"] == pytest.approx(0, abs=1)
        assert result.server_now == pytest.approx(result.at + 120, abs=1)


def test_a_stall_everywhere_does_not_drag_the_clock_along(clock: FakeClock) -> None:
    """When every stream stalls, the learnt offset stays, so their ages keep growing."""
    with Simulator(clock=clock.now, access_token=TOKEN, clock_skew=-120) as sim:
        sim.add_stream("default", "app", "only")

        async def go() -> list[PollResult]:
            async with OmeClient(spec(sim.url), clock=clock) as client:
                plan = plan_polls([STREAM_STATS], "origin")
                out = [await client.poll(plan)]
                clock.advance(10)
                out.append(await client.poll(plan))  # live: offset learnt
                sim.stall("default", "app", "only")
                for _ in range(3):
                    clock.advance(30)
                    out.append(await client.poll(plan))
                return out

        results = asyncio.run(go())
    assert [round(ages(r)["only"]) for r in results[1:]] == [0, 30, 60, 90]


def test_a_date_header_sets_the_server_clock_at_once(clock: FakeClock) -> None:
    """With a Date header the first poll already knows the server is 120 s behind."""
    with Simulator(
        clock=clock.now, access_token=TOKEN, clock_skew=-120, send_date_header=True
    ) as sim:
        sim.add_stream("default", "app", "live")
        result = poll_once(spec(sim.url), clock, [STREAM_STATS])
    assert result.server_now == pytest.approx(START - 120, abs=1)
    assert all(s.server_now == result.server_now for s in result.samples.values())


def test_server_clock_learns_only_from_live_timestamps() -> None:
    """The offset follows advancing timestamps, keeps still during stalls, and obeys Date."""
    est = ServerClock()
    assert est.update(1000.0, 880.0, None) == 1000.0  # first sight: no evidence
    assert est.update(1010.0, 890.0, None) == 890.0  # advanced 10 in 10 s: live
    assert est.update(1040.0, 890.0, None) == 920.0  # stalled: offset kept
    assert est.update(1050.0, 893.0, None) == 930.0  # 3 s in 10 s: not enough to trust
    assert est.update(1060.0, 2000.0, None) == 2000.0  # a timestamp is never in the future
    assert est.update(1070.0, None, 5.0) == 1075.0  # Date wins
    assert est.now(1080.0) == 1085.0


# -- concurrency --------------------------------------------------------------------------------


class Recorder(httpx.AsyncBaseTransport):
    """A real transport that logs request starts and ends and tracks requests in flight."""

    def __init__(self, name: str, log: list[tuple[str, str]]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.name = name
        self.log = log
        self.in_flight = 0
        self.peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.log.append(("start", self.name))
        try:
            response = await self.inner.handle_async_request(request)
            await response.aread()
            return httpx.Response(
                response.status_code, headers=response.headers, content=response.content
            )
        finally:
            self.in_flight -= 1
            self.log.append(("end", self.name))

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_several_servers_are_polled_concurrently(clock: FakeClock) -> None:
    """A fast server's poll starts and ends while a slow one is still waiting for its answer."""
    log: list[tuple[str, str]] = []
    with (
        Simulator(clock=clock.now, access_token=TOKEN) as slow,
        Simulator(clock=clock.now, access_token=TOKEN) as fast,
    ):
        slow.add_stream("default", "app", "s")
        fast.add_stream("default", "app", "f")
        slow.set_fault("slow", path="/v1/vhosts", times=1, delay=0.3)
        rules = [STREAM_STATS]

        async def go() -> list[PollResult]:
            clients = [
                OmeClient(spec(slow.url, name="a"), clock=clock, transport=Recorder("a", log)),
                OmeClient(spec(fast.url, name="b"), clock=clock, transport=Recorder("b", log)),
            ]
            try:
                plans = {"a": plan_polls(rules, "a"), "b": plan_polls(rules, "b")}
                return await poll_all(clients, plans)
            finally:
                for c in clients:
                    await c.aclose()

        results = asyncio.run(go())
    assert [r.server for r in results] == ["a", "b"]
    assert set(results[0].samples) == {Target("a", "default", "app", "s")}
    assert set(results[1].samples) == {Target("b", "default", "app", "f")}
    first_slow_end = log.index(("end", "a"))
    assert log.count(("end", "b")) == 4  # b's whole poll: 3 listings + 1 stats
    assert max(i for i, e in enumerate(log) if e == ("end", "b")) < first_slow_end


def test_requests_in_flight_are_bounded_per_server(clock: FakeClock) -> None:
    """With max_in_flight=2, at most two requests to the server are ever open at once."""
    with Simulator(clock=clock.now, access_token=TOKEN) as sim:
        sim.add_streams("default", "app", [f"s{i}" for i in range(12)])
        sim.set_fault("slow", path="/stats/", delay=0.02)
        recorder = Recorder("x", [])
        result = poll_once(spec(sim.url, max_in_flight=2), clock, [STREAM_STATS], recorder)
    assert len(result.samples) == 12
    assert 1 <= recorder.peak <= 2


def test_poll_result_bookkeeping(sim: Simulator, clock: FakeClock) -> None:
    """``at`` is the watcher clock at the start; ``requests`` is what the server saw."""
    clock.advance(5)
    result = poll_once(spec(sim.url), clock, [STREAM_STATS])
    assert result.at == START + 5
    assert result.requests == sim.request_count()
    assert result.duration > 0
    assert all(
        s.at == result.at and s.server_now == result.server_now for s in result.samples.values()
    )


def test_a_server_without_a_plan_is_probed(sim: Simulator, clock: FakeClock) -> None:
    """``poll_all`` checks a server that has no plan with a single listing."""

    async def go() -> list[PollResult]:
        async with OmeClient(spec(sim.url, name="lonely"), clock=clock) as client:
            return await poll_all([client], {})

    (result,) = asyncio.run(go())
    assert result.error is None and paths(sim) == ["/v1/vhosts"]
    assert PollPlan("lonely").needs == ()


def test_json_bodies_are_read_whatever_the_content_type(clock: FakeClock) -> None:
    """OME's ``application/json;charset=UTF-8`` body parses; listings are de-duplicated."""
    body = json.dumps({"message": "OK", "response": ["v", "v"], "statusCode": 200})

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=body, headers={"Content-Type": "application/json;charset=UTF-8"}
        )

    result = poll_once(spec("http://ome.invalid"), clock, [], httpx.MockTransport(handler))
    assert result.listed == {Target("origin"), Target("origin", "v")}


def test_a_stream_gone_mid_poll_is_not_counted(sim: Simulator, clock: FakeClock) -> None:
    """An app's ``streams`` count leaves out a stream whose stats said it had just ended."""
    sim.set_fault("vanish", path="/streams/cam1")
    result = poll_once(spec(sim.url), clock, [STREAM_STATS, rule("n", "streams < 1", scope="app")])
    assert result.samples[Target("origin", "default", "app")].fields == {"streams": 2}
    assert Target("origin", "default", "app", "cam1") in result.gone


def test_the_cards_two_rules_fire_identically_on_v1_and_v2(
    sim: Simulator, clock: FakeClock
) -> None:
    """`webrtc publishers > 500` and `lastRecvTime stale > 30s` give the same alerts,
    with the same values, whether OME is read through /v1 or Enterprise /v2."""
    from omealert.engine.engine import Engine

    from ..helpers import settings

    rules = [
        rule("viewers", "webrtc publishers > 500"),
        rule("stalled", "lastRecvTime stale > 30s"),
    ]
    v1, v2 = spec(sim.url, name="one"), spec(sim.url, name="two", api_version="v2")
    engine = Engine(settings(*rules, servers=(v1, v2)))
    sim.set_viewers("default", "app", "stream1", "webrtc", 612)
    clock.advance(5)
    sim.stall("default", "app", "cam1")

    async def go() -> None:
        async with OmeClient(v1, clock=clock) as a, OmeClient(v2, clock=clock) as b:
            for _ in range(5):
                polls = await poll_all([a, b], {"one": plan_polls(rules, "one"),
                                                "two": plan_polls(rules, "two")})  # fmt: skip
                assert [p.error for p in polls] == [None, None]
                engine.step(polls, clock.now())
                clock.advance(10)

    asyncio.run(go())
    seen: dict[str, set[tuple[str, str, str, object]]] = {"one": set(), "two": set()}
    for inst in engine.instances():
        t = inst.target
        seen[t.server].add(
            (inst.rule, f"{t.vhost}/{t.app}/{t.stream}", inst.state.value, inst.value)
        )
    assert seen["one"] == seen["two"]
    assert seen["one"] == {
        ("viewers", "default/app/stream1", "firing", 612),
        ("stalled", "default/app/cam1", "firing", 40.0),
    }


def test_a_restarted_ome_is_polled_again_over_new_connections(clock: FakeClock) -> None:
    """OME restarting between two polls closes the client's keep-alive connections; the
    next poll of the same client opens new ones and reads the new server, no error."""
    with Simulator(clock=clock.now, access_token=TOKEN) as first:
        first.add_streams("default", "app", ["a", "b"])
        port = int(first.url.rsplit(":", 1)[1])
        server = spec(first.url, max_in_flight=2)

        async def two_polls() -> tuple[PollResult, PollResult]:
            async with OmeClient(server, clock=clock) as client:
                plan = plan_polls([STREAM_STATS], server.name)
                before = await client.poll(plan)
                first.stop()
                with Simulator(clock=clock.now, access_token=TOKEN, port=port) as second:
                    second.add_streams("default", "app", ["a", "c"])
                    after = await client.poll(plan)
                return before, after

        before, after = asyncio.run(two_polls())
    assert before.error is None and after.error is None
    assert {t.names[-1] for t in before.samples} == {"a", "b"}
    assert {t.names[-1] for t in after.samples} == {"a", "c"}


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_faults_poll_after_poll_leak_no_connections(clock: FakeClock) -> None:
    """Sixty polls of one client, each with a different fault hitting some streams (drops,
    garbage, cut-off and oversized bodies, timeouts), leave no more sockets open than the
    client's own keep-alive pool, and a clean poll afterwards reads every stream."""
    names = [f"s{i}" for i in range(12)]
    kinds = ["drop", "garbage", "truncated", "huge", "500", "wrong_types", "slow", "vanish"]
    with Simulator(clock=clock.now, access_token=TOKEN) as sim:
        sim.add_streams("default", "app", names)
        server = spec(sim.url, max_in_flight=4, timeout_s=0.05)
        plan = plan_polls([STREAM_STATS], server.name)

        async def polls() -> tuple[int, int, PollResult]:
            async with OmeClient(server, clock=clock) as client:
                await client.poll(plan)
                before = len(os.listdir("/proc/self/fd"))
                for i in range(60):
                    sim.clear_faults()
                    kind = kinds[i % len(kinds)]
                    sim.set_fault(kind, path=f"/streams/s{i % 12}", times=2, delay=1.0)
                    sim.set_fault(kind, path=f"/streams/s{(i * 5) % 12}", times=1, delay=1.0)
                    await client.poll(plan)
                sim.clear_faults()
                last = await client.poll(plan)
                after = len(os.listdir("/proc/self/fd"))
            return before, after, last

        before, after, last = asyncio.run(polls())
    assert after <= before + 4
    assert last.error is None and len(last.samples) == 12


@pytest.mark.parametrize(("fault", "kind", "words"), [(None, None, ""), *SERVER_FAULTS])
def test_the_httpx_escape_hatch_reads_and_fails_like_the_builtin_client(
    sim: Simulator, clock: FakeClock, fault: str | None, kind: SourceErrorKind | None, words: str
) -> None:
    """``http_client: httpx`` gives the same samples, and fails a broken listing with the
    same kind and words, as the built-in client."""
    results = {}
    for client in ("builtin", "httpx"):
        sim.clear_faults()
        if fault is not None:
            sim.set_fault(fault, path="/v1/vhosts/default/apps/app/streams")
        results[client] = poll_once(spec(sim.url, http_client=client), clock, [STREAM_STATS])
    builtin, httpx_ = results["builtin"], results["httpx"]
    if kind is None:
        assert builtin.error is None and httpx_.error is None
        assert builtin.samples.keys() == httpx_.samples.keys() != set()
        for target, sample in builtin.samples.items():
            assert httpx_.samples[target].fields == sample.fields
        return
    for result in (builtin, httpx_):
        assert result.error is not None
        assert result.error.kind is kind
        assert words in result.error.reason
