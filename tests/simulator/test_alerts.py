"""The simulator as OME's Alert module, heard by omealert's own receiver over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from omealert.metrics import Metrics
from omealert.ome.alert import Source, parse_event, signature_matches
from omealert.ome.events import EventBook
from omealert.simulator import Simulator
from omealert.web.listener import Listener
from omealert.web.ome_alert import AlertReceiver
from tests.ome.test_alert import REAL

KEY = "sim-alert-key"
CAM = Source("default", "live", "cam1")


@contextlib.asynccontextmanager
async def hearing() -> AsyncIterator[tuple[Listener, EventBook]]:
    book = EventBook()
    listener = Listener(Metrics())
    AlertReceiver({"origin": KEY.encode()}, book.record, listener.metrics).install(listener.app)
    await listener.start()
    try:
        yield listener, book
    finally:
        await listener.stop()


def codes_posted(sim: Simulator) -> list[tuple[str, ...]]:
    return [tuple(m["code"] for m in json.loads(p["body"])["messages"]) for p in sim.alert_posts()]


async def flushed(sim: Simulator) -> None:
    assert await asyncio.to_thread(sim.alert_flush, 10.0)


def test_a_streams_life_is_posted_signed_and_heard_as_ome_would_send_it() -> None:
    """Created, bitrate low, OK, low again, deleted: all accepted; no OK after the deletion."""

    async def body() -> None:
        async with hearing() as (listener, book):
            with Simulator() as sim:
                url = f"http://127.0.0.1:{listener.port}/ome/alert/origin"
                sim.set_alert_module(url, KEY, stream_status=True, min_bitrate=1_000_000)
                sim.add_stream("default", "live", "cam1", bitrate=3_000_000)
                sim.set_bitrate("default", "live", "cam1", 300_000)
                await flushed(sim)
                assert book.codes("origin", CAM) == {
                    "INGRESS_BITRATE_LOW",
                    "INGRESS_STREAM_CREATED",
                }
                sim.set_bitrate("default", "live", "cam1", 3_000_000)
                sim.set_bitrate("default", "live", "cam1", 200_000)
                sim.remove_stream("default", "live", "cam1")
                await flushed(sim)
                assert codes_posted(sim) == [
                    ("INGRESS_STREAM_CREATED",),
                    ("INGRESS_BITRATE_LOW",),
                    ("OK",),
                    ("INGRESS_BITRATE_LOW",),
                    ("INGRESS_STREAM_DELETED",),
                ]
                assert {p["status"] for p in sim.alert_posts()} == {200}
                heard = [h.event for h in book.recent("origin")]
                assert [e.source for e in heard] == [CAM] * 5
                # OME sends no OK for a stream that ends in alarm: the state stays set
                assert book.codes("origin", CAM) == {
                    "INGRESS_BITRATE_LOW",
                    "INGRESS_STREAM_DELETED",
                }

    asyncio.run(asyncio.wait_for(body(), 30))


def test_a_stall_sends_nothing_and_rules_list_video_first() -> None:
    """A silent encoder trips no OME rule; a slow GOP and a low bitrate come in OME's order."""

    async def body() -> None:
        async with hearing() as (listener, book):
            with Simulator() as sim:
                url = f"http://127.0.0.1:{listener.port}/ome/alert"
                sim.add_stream("default", "live", "cam1", key_frame_interval=300)
                sim.set_alert_module(url, KEY, min_bitrate=1_000_000, long_key_frame_interval=True)
                sim.stall("default", "live", "cam1")
                sim.set_bitrate("default", "live", "cam1", 100_000)
                await flushed(sim)
                assert sim.alert_posts() == []
                sim.resume("default", "live", "cam1")
                sim.set_bitrate("default", "live", "cam1", 100_001)
                await flushed(sim)
                assert codes_posted(sim) == [
                    ("INGRESS_LONG_KEY_FRAME_INTERVAL", "INGRESS_BITRATE_LOW")
                ]
                assert book.codes("origin", CAM) == {
                    "INGRESS_LONG_KEY_FRAME_INTERVAL",
                    "INGRESS_BITRATE_LOW",
                }

    asyncio.run(asyncio.wait_for(body(), 30))


def test_congestion_is_0_18s_global_queue_event_and_its_ok() -> None:
    """INTERNAL_QUEUE with every queue (3 of the app, 3 per stream) and no sourceUri, then its
    OK, both accepted."""

    async def body() -> None:
        async with hearing() as (listener, book):
            with Simulator() as sim:
                sim.add_stream("default", "live", "cam1")
                sim.add_stream("default", "live", "cam2")
                sim.set_alert_module(f"http://127.0.0.1:{listener.port}/ome/alert", KEY)
                sim.set_congested(True)
                sim.set_congested(True)
                await flushed(sim)
                assert book.codes("origin", None) == {"INTERNAL_QUEUE_CONGESTION"}
                sim.set_congested(False)
                await flushed(sim)
                events = [parse_event(p["body"].encode()) for p in sim.alert_posts()]
                assert [(e.type, e.codes, e.source, e.queue_count) for e in events] == [
                    ("INTERNAL_QUEUE", ("INTERNAL_QUEUE_CONGESTION",), None, 9),
                    ("INTERNAL_QUEUE", ("OK",), None, 9),
                ]
                assert book.codes("origin", None) == frozenset()

    asyncio.run(asyncio.wait_for(body(), 30))


def test_posts_carry_ome_0_18s_headers_in_its_order_and_a_signature_of_the_raw_body() -> None:
    """A raw capture of the simulator's POST has the real capture's header order."""
    real = json.loads((REAL / "alert-post-1.json").read_text())
    real_names = [name for name, _ in real["headers"]]
    captured: list[bytes] = []

    async def body() -> None:
        async def take(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            captured.append(head + await reader.readexactly(length))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(take, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with Simulator() as sim:
            sim.add_stream("default", "live", "cam1", bitrate=100_000)
            sim.set_alert_module(f"http://127.0.0.1:{port}/ome/alert", KEY, min_bitrate=10**6)
            sim.set_framerate("default", "live", "cam1", 30.0)
            await flushed(sim)
        server.close()
        await server.wait_closed()

    asyncio.run(asyncio.wait_for(body(), 30))
    (raw,) = captured
    head, _, payload = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /ome/alert HTTP/1.1"
    headers: dict[str, Any] = dict(line.split(": ", 1) for line in lines[1:])
    assert list(headers) == real_names
    assert signature_matches(KEY.encode(), payload, headers["X-OME-Signature"])
    data = json.loads(payload)
    assert payload == json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    assert sorted(data["sourceInfo"]) == sorted(real["body"]["sourceInfo"])


def test_a_wrong_key_is_refused_by_omealert_and_logged_by_the_simulator() -> None:
    """The simulator keeps each POST's outcome: here 401, and nothing recorded."""

    async def body() -> None:
        async with hearing() as (listener, book):
            with Simulator() as sim:
                sim.add_stream("default", "live", "cam1")
                sim.set_alert_module(f"http://127.0.0.1:{listener.port}/ome/alert", "nope")
                sim.set_congested(True)
                await flushed(sim)
                assert [p["status"] for p in sim.alert_posts()] == [401]
                assert book.recent("origin") == ()

    asyncio.run(asyncio.wait_for(body(), 30))
