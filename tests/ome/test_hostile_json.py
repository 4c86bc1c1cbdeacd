"""JSON from OME that Python's decoder chokes on is a bad answer of that server, never a crash."""

from __future__ import annotations

import json

import pytest

from omealert.clock import FakeClock
from omealert.errors import SourceErrorKind
from omealert.model import PollResult
from omealert.ome.client import OmeClient
from omealert.ome.plan import plan_polls
from omealert.rules import ServerSpec

from ..helpers import rule, run_async
from ..wireserver import READ, WireServer

TOKEN = "ome-access-token"


def answer(body: bytes) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


def envelope(response: bytes) -> bytes:
    return b'{"message":"OK","statusCode":200,"response":' + response + b"}"


async def poll_listing(body: bytes) -> PollResult:
    """One poll whose vhost listing OME answers with ``body``."""
    async with WireServer([READ, answer(body)]) as server:
        spec = ServerSpec(name="origin", url=server.url, access_token=TOKEN, timeout_s=5)
        async with OmeClient(spec, clock=FakeClock(1_767_225_600.0)) as client:
            return await client.poll(plan_polls([rule("bytes", "totalBytesIn < 1")], "origin"))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (envelope(b"[" * 100_000 + b"]" * 100_000), "not JSON"),  # RecursionError
        (envelope(b'{"a":' * 50_000 + b"1" + b"}" * 50_000), "not JSON"),
        (envelope(b"[" + b"7" * 5_000 + b"]"), "not JSON"),  # past int max-str-digits
        (envelope(b'["caf\xe9"]'), "not JSON"),  # Latin-1, not UTF-8
        (envelope(b"[NaN]"), "expected a list of names"),
        (b'{"message":"OK","statusCode":Infinity,"response":[]}', "envelope"),
    ],
)
@run_async
async def test_an_answer_the_decoder_refuses_fails_the_poll_as_bad_response(
    body: bytes, reason: str
) -> None:
    """Deep nesting, giant integers, non-UTF-8 and NaN are a bad_response poll, not a raise."""
    result = await poll_listing(body)
    assert result.error is not None
    assert result.error.kind is SourceErrorKind.BAD_RESPONSE
    assert reason in result.error.reason


def listing(names: list[str]) -> bytes:
    return answer(envelope(json.dumps(names).encode()))


async def poll_tree(streams: list[str]) -> PollResult:
    """One poll of a server with one vhost and one app listing ``streams``."""
    script = [READ, listing(["default"]), READ, listing(["app"]), READ, listing(streams)]
    async with WireServer(script) as server:
        spec = ServerSpec(name="origin", url=server.url, access_token=TOKEN, timeout_s=5)
        async with OmeClient(spec, clock=FakeClock(1_767_225_600.0)) as client:
            return await client.poll(plan_polls([rule("bytes", "totalBytesIn < 1")], "origin"))


@run_async
async def test_a_listing_of_more_targets_than_the_cap_fails_the_poll_before_fetching() -> None:
    """100,001 stream names in one listing are a bad_response, not 100,001 requests."""
    result = await poll_tree([f"s{i}" for i in range(100_001)])
    assert result.error is not None
    assert result.error.kind is SourceErrorKind.BAD_RESPONSE
    assert result.error.reason == "the listings name more than 100,000 vhosts, apps and streams"
    assert result.requests == 3


@run_async
async def test_a_name_longer_than_the_cap_fails_the_poll() -> None:
    """A 1 MiB stream name (well under the body limit) is refused, not carried into alerts."""
    result = await poll_tree(["ok", "n" * 2**20])
    assert result.error is not None
    assert result.error.kind is SourceErrorKind.BAD_RESPONSE
    assert result.error.reason == "a name of 1,048,576 characters (at most 1,024 are read)"
    assert result.requests == 3
