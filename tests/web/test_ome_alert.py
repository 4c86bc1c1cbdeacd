"""``POST /ome/alert/{server}`` over real loopback HTTP, with OME's real signed bodies.

A ``Listener`` with the ``AlertReceiver`` installed runs in the test's loop; requests are raw
bytes on fresh sockets, so each header and each body byte is exactly what the test says.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import pytest

from omealert.metrics import Metrics
from omealert.ome.alert import Source, sign
from omealert.ome.events import EventBook
from omealert.web.listener import Listener
from omealert.web.ome_alert import AlertReceiver
from tests.ome.test_alert import KEY, real_post
from tests.web.test_listener import closed, connect, request, run, status

EDGE_KEY = b"edge-secret"


@contextlib.asynccontextmanager
async def receiving(
    keys: dict[str, bytes] | None = None, body_deadline: float = 2.0
) -> AsyncIterator[tuple[Listener, AlertReceiver, EventBook]]:
    book = EventBook()
    listener = Listener(Metrics(), head_deadline=2.0)
    receiver = AlertReceiver(
        keys if keys is not None else {"origin": KEY},
        book.record,
        listener.metrics,
        body_deadline=body_deadline,
    )
    receiver.install(listener.app)
    await listener.start()
    try:
        yield listener, receiver, book
    finally:
        await listener.stop()


def post(path: str, body: bytes, signature: str | None, *extra: str) -> bytes:
    """A POST as OME 0.18 sends it: its headers in its order, then the raw body."""
    lines = [f"POST {path} HTTP/1.1", f"Content-Length: {len(body)}", "Host: x"]
    lines.append("Content-Type: application/json")
    if signature is not None:
        lines.append(f"X-OME-Signature: {signature}")
    lines += ["Accept: application/json", "User-Agent: OvenMediaEngine", "Connection: close"]
    return ("\r\n".join([*lines, *extra]) + "\r\n\r\n").encode() + body


def rejected(listener: Listener, reason: str) -> float:
    return listener.metrics.value("omealert_ome_events_rejected_total", reason=reason) or 0.0


def test_a_real_signed_post_is_accepted_and_recorded_for_its_server() -> None:
    """OME's own POST answers 200 {} (JSON, as 0.18 wants), and its codes are recorded."""

    async def body() -> None:
        async with receiving() as (listener, _, book):
            raw, header, _ = real_post(1)
            answer = await request(listener, post("/ome/alert/origin", raw, header))
            assert status(answer) == 200
            assert answer.endswith(b"\r\n\r\n{}")
            assert b"Content-Type: application/json" in answer
            src = Source("default", "app", "stream1")
            assert book.codes("origin", src) == {"INGRESS_BITRATE_LOW"}
            assert (
                listener.metrics.value("omealert_ome_events_total", server="origin", type="INGRESS")
                == 1
            )
            ok, ok_header, _ = real_post(13)
            assert status(await request(listener, post("/ome/alert", ok, ok_header))) == 200
            assert book.recent("origin")[-1].event.type == "INTERNAL_QUEUE"

    run(body)


def test_wrong_key_altered_body_and_missing_header_get_401_and_record_nothing() -> None:
    """Each forged request is refused, counted by reason, and leaves the memory empty."""

    async def body() -> None:
        async with receiving() as (listener, _, book):
            raw, header, _ = real_post(1)
            forged = sign(b"guess", raw)
            assert status(await request(listener, post("/ome/alert/origin", raw, forged))) == 401
            altered = raw.replace(b"stream1", b"stream9")
            assert (
                status(await request(listener, post("/ome/alert/origin", altered, header))) == 401
            )
            assert status(await request(listener, post("/ome/alert/origin", raw, None))) == 401
            assert status(await request(listener, post("/ome/alert/origin", raw, "x" * 27))) == 401
            assert rejected(listener, "bad_signature") == 3
            assert rejected(listener, "unsigned") == 1
            assert book.recent("origin") == ()

    run(body)


def test_a_body_replayed_to_another_servers_path_is_refused() -> None:
    """With a key per server, a body signed by the origin does not pass at the edge's path."""

    async def body() -> None:
        async with receiving({"origin": KEY, "edge": EDGE_KEY}) as (listener, _, book):
            raw, header, _ = real_post(1)
            assert status(await request(listener, post("/ome/alert/edge", raw, header))) == 401
            assert status(await request(listener, post("/ome/alert/origin", raw, header))) == 200
            assert book.recent("edge") == () and len(book.recent("origin")) == 1
            # /ome/alert alone cannot say which of two servers is meant
            assert status(await request(listener, post("/ome/alert", raw, header))) == 404
            assert status(await request(listener, post("/ome/alert/nosuch", raw, header))) == 404
            assert rejected(listener, "unknown_server") == 2

    run(body)


def test_a_repeated_body_is_answered_but_recorded_once() -> None:
    """OME's retry of a POST already taken (or a replay of it) changes nothing."""

    async def body() -> None:
        async with receiving() as (listener, _, book):
            raw, header, _ = real_post(7)
            for _ in range(3):
                assert status(await request(listener, post("/ome/alert", raw, header))) == 200
            assert len(book.recent("origin")) == 1
            assert rejected(listener, "duplicate") == 2

    run(body)


def test_size_and_json_limits() -> None:
    """Over 64 KiB (declared or chunked) is 413; a signed body that is not a payload is 400."""

    async def body() -> None:
        async with receiving() as (listener, _, book):
            big = b"{" + b" " * (64 * 1024) + b"}"
            assert status(await request(listener, post("/ome/alert", big, sign(KEY, big)))) == 413
            reader, writer = await connect(listener)
            head = (
                "POST /ome/alert HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                f"X-OME-Signature: {sign(KEY, big)}\r\nConnection: close\r\n\r\n"
            )
            chunk = b"%x\r\n%s\r\n" % (len(big), big)
            writer.write(head.encode() + chunk + b"0\r\n\r\n")
            assert status(await closed(reader)) == 413
            writer.close()
            for bad in (b"{not json", b"[]", b'{"type":"INGRESS","messages":[]}'):
                answer = await request(listener, post("/ome/alert", bad, sign(KEY, bad)))
                assert status(answer) == 400
            assert rejected(listener, "too_large") == 2
            assert rejected(listener, "malformed") == 3
            assert book.recent("origin") == ()

    run(body)


def test_a_body_trickled_past_the_deadline_is_refused_with_408() -> None:
    """A head that arrives on time does not buy a body unlimited time."""

    async def body() -> None:
        async with receiving(body_deadline=0.3) as (listener, _, book):
            raw, header, _ = real_post(1)
            reader, writer = await connect(listener)
            writer.write(post("/ome/alert", raw, header)[: -len(raw)] + raw[:10])
            answer = await closed(reader)
            writer.close()
            assert status(answer) == 408
            assert rejected(listener, "slow_body") == 1
            assert book.recent("origin") == ()

    run(body)


def test_a_flood_of_forged_posts_logs_one_line_and_never_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two hundred bad signatures make one warning (the rest counted), naming no key."""

    async def body() -> None:
        async with receiving() as (listener, _, _book):
            raw, _, _ = real_post(1)
            for _ in range(200):
                await request(listener, post("/ome/alert", raw, sign(b"guess", raw)))
            assert rejected(listener, "bad_signature") == 200

    with caplog.at_level(logging.WARNING, logger="omealert.web.ome_alert"):
        run(body)
    lines = [r.getMessage() for r in caplog.records if r.name == "omealert.web.ome_alert"]
    assert len(lines) == 1
    assert "bad_signature" in lines[0]
    assert KEY.decode() not in caplog.text


def test_keys_swapped_at_reload_take_effect_at_once() -> None:
    """After ``set_keys``, a server removed is 404 and a changed key is the one checked."""

    async def body() -> None:
        async with receiving() as (listener, receiver, _):
            raw, header, _ = real_post(1)
            receiver.set_keys({"origin": b"new", "edge": KEY})
            assert status(await request(listener, post("/ome/alert/origin", raw, header))) == 401
            assert status(await request(listener, post("/ome/alert/edge", raw, header))) == 200
            receiver.set_keys({})
            assert status(await request(listener, post("/ome/alert/edge", raw, header))) == 404

    run(body)
