"""The server's OME release: asked once in a while, parsed as real OME 0.18 answers it."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import httpx
import pytest

from omealert.clock import FakeClock
from omealert.ome.client import OmeClient
from omealert.ome.plan import plan_polls
from omealert.ome.version import (
    BEFORE_VERSION_ENDPOINT,
    REFRESH_S,
    behaviours_of,
    describe,
    parse_version,
)
from omealert.rules import ServerSpec
from omealert.simulator import Simulator

from ..helpers import rule

REAL = Path(__file__).parent.parent / "data" / "ome-real-0.18"
TOKEN = "ome-access-token"
START = 1_767_225_600.0


def real_version_body() -> dict[str, object]:
    body: dict[str, object] = json.loads((REAL / "version.json").read_text())
    return body


def test_the_real_0_18_answer_parses_to_its_release() -> None:
    """The body a real OME 0.18.0 built from an archive sent reads as release 0.18.0."""
    body = real_version_body()
    assert parse_version(body["response"]) == "0.18.0"
    assert parse_version({"gitVersion": "(From archive)"}) is None
    assert parse_version({"version": "(Unknown)"}) is None
    assert parse_version(["0.18.0"]) is None


def test_the_simulator_answers_in_the_real_shape() -> None:
    """The simulator's /v1/version has the real answer's envelope and keys, with its release."""
    with Simulator(access_token=TOKEN, version="0.20.5") as sim:
        auth = {"Authorization": "Basic b21lLWFjY2Vzcy10b2tlbg=="}
        got = httpx.get(sim.url + "/v1/version", headers=auth).json()
    real = real_version_body()
    assert sorted(got) == sorted(real)
    assert sorted(got["response"]) == sorted(real["response"])  # type: ignore[arg-type]
    assert got["response"]["version"] == "0.20.5"


def poll_twice_and_later(ask: bool) -> tuple[list[str], list[str | None]]:
    """Three polls through the real client: now, 10 s later, and REFRESH_S after that."""
    clock = FakeClock(START)
    versions: list[str | None] = []
    with Simulator(clock=clock.now, access_token=TOKEN, version="0.18.0") as sim:
        sim.add_stream("default", "app", "s1")
        spec = ServerSpec(name="origin", url=sim.url, access_token=TOKEN)
        plan = plan_polls([rule("r", "totalBytesIn > 0")], "origin")

        async def go() -> None:
            async with OmeClient(spec, clock=clock, ask_version=ask) as client:
                for step in (0.0, 10.0, REFRESH_S):
                    clock.advance(step)
                    versions.append((await client.poll(plan)).ome_version)

        asyncio.run(go())
        return [p for _, p in sim.requests if p == "/v1/version"], versions


def test_the_release_is_asked_on_the_first_poll_and_every_few_minutes() -> None:
    """One /v1/version on the first poll, none 10 s later, one more after REFRESH_S."""
    asked, versions = poll_twice_and_later(ask=True)
    assert len(asked) == 2
    assert versions == ["0.18.0"] * 3


def test_a_bare_client_asks_only_when_a_rule_reads_the_version() -> None:
    """A client not told to ask (record, benches) makes no /v1/version request."""
    asked, versions = poll_twice_and_later(ask=False)
    assert asked == [] and versions == [None] * 3


def test_a_rule_reading_version_gets_it_in_every_sample() -> None:
    """``version`` reaches the samples of the rule's scope, read from the simulator."""
    clock = FakeClock(START)
    with Simulator(clock=clock.now, access_token=TOKEN, version="0.18.0") as sim:
        sim.add_stream("default", "app", "s1")
        spec = ServerSpec(name="origin", url=sim.url, access_token=TOKEN)
        plan = plan_polls([rule("old", 'version < "0.20.5"')], "origin")

        async def go() -> dict[str, object]:
            async with OmeClient(spec, clock=clock) as client:
                result = await client.poll(plan)
            [sample] = result.samples.values()
            return dict(sample.fields)

        assert asyncio.run(go()) == {"version": "0.18.0"}


def test_a_404_means_older_than_the_endpoint_and_fails_nothing_else() -> None:
    """OME < 0.16.5 has no /v1/version: the poll succeeds and the release reads 0.16.4."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/version":
            return httpx.Response(404, json={"message": "[HTTP] Controller not found (404)",
                                             "statusCode": 404})  # fmt: skip
        return httpx.Response(200, json={"message": "OK", "response": [], "statusCode": 200})

    clock = FakeClock(START)
    spec = ServerSpec(name="old", url="http://ome.invalid", access_token=TOKEN)

    async def go() -> tuple[object, str | None]:
        transport = httpx.MockTransport(handler)
        async with OmeClient(spec, clock=clock, transport=transport, ask_version=True) as c:
            result = await c.poll(plan_polls([], "old"))
        return result.error, result.ome_version

    assert asyncio.run(go()) == (None, BEFORE_VERSION_ENDPOINT)
    assert "older than 0.16.5" in describe("old", BEFORE_VERSION_ENDPOINT)


@pytest.mark.parametrize(
    ("version", "fixed_in"),
    [
        ("0.18.0", {"0.19.0", "0.20.5", "0.21.0"}),
        ("0.19.0", {"0.20.5", "0.21.0"}),
        ("0.20.5", {"0.21.0"}),
        ("0.21.0", set()),
    ],
)
def test_known_behaviour_follows_the_release(version: str, fixed_in: set[str]) -> None:
    """Each release gets the behaviours fixed after it, none fixed before or in it."""
    assert {b.fixed_in for b in behaviours_of(version)} == fixed_in


def test_the_log_line_names_what_is_compensated_and_what_is_warned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Learning a server's release logs one line naming compensations and warnings."""
    caplog.set_level(logging.INFO, logger="omealert.ome")
    poll_twice_and_later(ask=True)
    [line] = [r.getMessage() for r in caplog.records if "OME on origin" in r.getMessage()]
    assert line.startswith("OME on origin is 0.18.0. omealert compensates: ")
    assert "(until 0.19.0)" in line and "(until 0.20.5)" in line and "beware: " in line
    assert "no known behaviour" in describe("x", "0.21.0")
