"""picture.* over real HTTP: the simulator draws thumbnails, the client fetches and judges them."""

from __future__ import annotations

import asyncio
import struct
import zlib

from omealert.clock import FakeClock
from omealert.errors import SourceErrorKind
from omealert.model import PollResult, Scope, Target
from omealert.ome.client import OmeClient
from omealert.ome.plan import plan_polls
from omealert.rules import Rule, ServerSpec, TargetPattern, ThumbnailSpec
from omealert.simulator import Simulator

from ..helpers import rule

TOKEN = "t"
S1 = Target("o", "default", "app", "s1")
S2 = Target("o", "default", "app", "s2")


def spec_for(url: str, thumbs: str, **kw: object) -> ServerSpec:
    return ServerSpec(
        name="o",
        url=url,
        access_token=TOKEN,
        thumbnails=ThumbnailSpec(url=thumbs, **kw),  # type: ignore[arg-type]
    )


def polls(
    spec: ServerSpec,
    clock: FakeClock,
    rules: list[Rule],
    n: int,
    step: float = 5.0,
    sim: Simulator | None = None,
    script: dict[int, tuple[str, str, str]] | None = None,
) -> list[PollResult]:
    """``n`` polls ``step`` seconds apart, each followed by its thumbnail fetches."""
    plan = plan_polls(rules, "o")

    async def go() -> list[PollResult]:
        out = []
        async with OmeClient(spec, clock=clock) as client:
            for i in range(n):
                if sim is not None and script and i in script:
                    sim.set_picture(*script[i])
                out.append(await client.poll(plan))
                assert client.thumbnails
                await client.thumbnails.settled()
                clock.advance(step)
        return out

    return asyncio.run(go())


def test_moving_frozen_black_and_missing_over_real_http() -> None:
    """A moving picture has no frozen time, a frozen one counts up, black and 404 are seen."""
    clock = FakeClock(1_000_000.0)
    with Simulator(clock=clock.now, access_token=TOKEN) as sim:
        sim.add_stream("default", "app", "s1")
        rules = [rule("f", "picture.frozen_for > 30s")]
        script = {
            3: ("app", "s1", "frozen"),
            8: ("app", "s1", "black"),
            10: ("app", "s1", "missing"),
        }
        got = polls(
            spec_for(sim.url, sim.url, every_s=5.0), clock, rules, 12, sim=sim, script=script
        )
    fields = [r.samples[S1].fields for r in got]
    assert "picture.luma" not in fields[0]  # no fetch has finished before the first poll
    assert fields[3]["picture.frozen_for"] == 0.0 and fields[3]["picture.black"] is False
    # frozen from poll 3 on: new bytes every fetch (age stays 0), the same picture
    assert [fields[i]["picture.frozen_for"] for i in range(2, 9)] == [0, 0, 5, 10, 15, 20, 25]
    assert fields[7]["picture.age"] == 0.0
    assert fields[9]["picture.black"] is True and fields[9]["picture.luma"] < 5  # type: ignore[operator]
    assert fields[10]["picture.missing"] is False and fields[11]["picture.missing"] is True
    assert 60 < fields[3]["picture.luma"] < 200  # type: ignore[operator]


def test_a_still_picture_over_a_stalled_input_is_not_frozen() -> None:
    """Frozen counts only while input bytes arrive: a stall is the stale rule's job."""
    clock = FakeClock(1_000_000.0)
    with Simulator(clock=clock.now, access_token=TOKEN) as sim:
        sim.add_stream("default", "app", "s1")
        sim.set_picture("app", "s1", "frozen")
        sim.stall("default", "app", "s1")
        got = polls(
            spec_for(sim.url, sim.url, every_s=5.0),
            clock,
            [rule("f", "picture.frozen_for > 30s")],
            6,
        )
    assert [r.samples[S1].fields["picture.frozen_for"] for r in got[1:]] == [0.0] * 5


def test_only_streams_a_picture_rule_reads_are_fetched_at_most_once_per_every() -> None:
    """No picture rule, no fetch; ``match`` narrows; ``every`` spaces a stream's fetches."""
    clock = FakeClock(1_000_000.0)
    with Simulator(clock=clock.now, access_token=TOKEN) as sim:
        sim.add_stream("default", "app", "s1")
        sim.add_stream("default", "app", "s2")
        polls(spec_for(sim.url, sim.url), clock, [rule("b", "totalBytesIn > 0")], 3)
        assert sim.thumbnail_fetches() == 0
        spec = spec_for(sim.url, sim.url, every_s=10.0, patterns=(TargetPattern(("app", "s2")),))
        got = polls(spec, clock, [rule("k", "picture.black", for_s=10.0)], 6, step=2.0)
        assert sim.thumbnail_fetches() == 2  # s2 at t=0 and t=10 of 0..10
    assert all("picture.luma" not in r.samples[S1].fields for r in got)
    assert "picture.luma" in got[-1].samples[S2].fields


def test_a_hanging_thumbnail_server_delays_no_poll_and_holds_max_in_flight() -> None:
    """Thumbnails that never answer hold no poll up, and at most max_in_flight are open."""
    clock = FakeClock(1_000_000.0)
    with (
        Simulator(clock=clock.now, access_token=TOKEN) as sim,
        Simulator(access_token=TOKEN) as thumbs,
    ):
        for i in range(6):
            sim.add_stream("default", "app", f"s{i}")
            thumbs.add_stream("default", "app", f"s{i}")
        thumbs.set_fault("hang")
        spec = ServerSpec(
            name="o",
            url=sim.url,
            access_token=TOKEN,
            timeout_s=600.0,  # a poll that waited for a thumbnail would hang this test
            thumbnails=ThumbnailSpec(url=thumbs.url, every_s=1.0, max_in_flight=2),
        )
        plan = plan_polls([rule("f", "picture.frozen_for > 30s")], "o")

        async def go() -> tuple[list[PollResult], int, int]:
            async with OmeClient(spec, clock=clock) as client:
                results = []
                for _ in range(4):
                    results.append(await client.poll(plan))
                    clock.advance(5)
                assert client.thumbnails
                await asyncio.sleep(0.2)  # let the fetches reach the hung server
                return results, client.thumbnails.in_flight, client.thumbnails.fetches

        results, in_flight, fetches = asyncio.run(go())
        assert thumbs.request_count("/app/") == 2
    assert all(len([t for t in r.samples if t.scope is Scope.STREAM]) == 6 for r in results)
    assert (in_flight, fetches) == (2, 2)  # still hung after four polls, no more started


def _png_bomb() -> bytes:
    """A small PNG whose header declares 30,000 x 30,000 pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 30_000, 30_000, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 30_001 * 100)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


async def _serve_bytes(body: bytes) -> asyncio.Server:
    """A loopback server answering every request with ``body`` as image/png, then closing."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


def test_a_decompression_bomb_is_a_bad_response() -> None:
    """A PNG declaring 30,000 x 30,000 pixels is refused from its header, not decoded."""
    clock = FakeClock(1_000_000.0)
    with Simulator(clock=clock.now, access_token=TOKEN) as sim:
        sim.add_stream("default", "app", "s1")
        plan = plan_polls([rule("k", "picture.black")], "o")

        async def go() -> tuple[PollResult, object]:
            server = await _serve_bytes(_png_bomb())
            port = server.sockets[0].getsockname()[1]
            spec = spec_for(sim.url, f"http://127.0.0.1:{port}", extension="png")
            try:
                async with OmeClient(spec, clock=clock) as client:
                    await client.poll(plan)
                    assert client.thumbnails
                    await client.thumbnails.settled()
                    clock.advance(20)
                    return await client.poll(plan), client.thumbnails.error_of(S1)
            finally:
                server.close()

        result, error = asyncio.run(go())
    assert "picture.black" not in result.samples[S1].fields
    assert getattr(error, "kind", None) is SourceErrorKind.BAD_RESPONSE
    assert "pixels" in str(error)


def test_a_thumbnail_rendition_is_never_read_as_the_video_track() -> None:
    """Real 0.18 stream info: an input JPEG-typed Video track is skipped for the real one."""
    import json
    from pathlib import Path

    from omealert.ome.normalize import normalize_info

    data = Path(__file__).parents[1] / "data" / "ome-real-0.18" / "stream-info-stream1.json"
    real = json.loads(data.read_text())
    body = real["response"]
    jpeg = body["outputs"][0]["tracks"][1]
    body["input"]["tracks"].insert(0, jpeg)  # as if OME listed the rendition first
    fields = normalize_info(body)
    assert fields["video.codec"] == "H264" and fields["video.width"] == 640


def test_with_more_streams_due_than_slots_the_longest_waiting_go_first() -> None:
    """Six streams, two slots, all due at every poll: three polls fetch each stream once."""
    clock = FakeClock(1_000_000.0)
    with Simulator(clock=clock.now, access_token=TOKEN) as sim:
        for i in range(6):
            sim.add_stream("default", "app", f"s{i}")
        spec = spec_for(sim.url, sim.url, every_s=1.0, max_in_flight=2)
        polls(spec, clock, [rule("f", "picture.frozen_for > 30s")], 3, step=1.0)
        counts = [sim.request_count(f"/app/s{i}/thumb.jpg") for i in range(6)]
    assert counts == [1] * 6
