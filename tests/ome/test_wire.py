"""``ome_wire.WireGetter`` against a scripted raw TCP server: the HTTP/1.1 edge cases the
simulator never produces (segments, framings, stale keep-alive, garbage, limits, deadline,
cancellation), each checked by the exact bytes on the wire and the connections they used."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import time
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omealert.errors import SourceErrorKind
from omealert.ome import wire as ome_wire
from omealert.ome.api import Failed, OmeApi, PollRun
from omealert.ome.http import Answer, Broken, Garbled, NoConnection, TooLarge
from omealert.ome.wire import WireGetter
from omealert.rules import ServerSpec

from ..helpers import run_async
from ..wireserver import (
    CLOSE,
    HALF_CLOSE,
    READ,
    RESET,
    Act,
    Mark,
    Step,
    Trickle,
    Wait,
    WireServer,
)

TOKEN = "ome-access-token"


def ok(body: bytes, head: bytes = b"HTTP/1.1 200 OK\r\n") -> bytes:
    """A whole answer framed by Content-Length."""
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


@contextlib.asynccontextmanager
async def getter(
    base: str, *, timeout: float = 5.0, headers: dict[str, str] | None = None
) -> AsyncIterator[WireGetter]:
    wire = WireGetter(base, headers or {}, 4, False, timeout)
    try:
        yield wire
    finally:
        await wire.aclose()


async def settle(event: asyncio.Event) -> None:
    """Wait for something the loop is about to do; the timeout only keeps a failing test
    from hanging, nothing is measured."""
    async with asyncio.timeout(5):
        await event.wait()


async def spin() -> None:
    """Let the loop run a few rounds, so bytes already on the loopback are taken in."""
    for _ in range(5):
        await asyncio.sleep(0)


# -- framing -----------------------------------------------------------------------------------


@run_async
async def test_a_body_in_small_segments_arrives_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Content-Length answer trickled in 5-byte pieces comes back whole, with lower-case
    header names and a repeated header joined by a comma."""
    pieces: list[bytes] = []
    received = ome_wire._Connection.data_received

    def spy(self: ome_wire._Connection, data: bytes) -> None:
        pieces.append(data)
        received(self, data)

    monkeypatch.setattr(ome_wire._Connection, "data_received", spy)
    body = b'{"statusCode": 200, "response": "' + b"x" * 120 + b'"}'
    reply = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Seen: one\r\n"
        b"x-SEEN: two\r\nContent-Length: %d\r\n\r\n" % len(body)
    ) + body
    async with WireServer([READ, Trickle(reply, 5)]) as server, getter(server.url) as wire:
        answer = await wire.get("/v1/vhosts")
    assert answer == Answer(
        200,
        {
            "content-type": "application/json",
            "x-seen": "one, two",
            "content-length": str(len(body)),
        },
        body,
    )
    assert len(pieces) > 20  # it really came in pieces, head and body split many times


@pytest.mark.parametrize("suffix", ["/ome", "/ome/"])
@run_async
async def test_keep_alive_sends_exact_requests_on_one_connection(suffix: str) -> None:
    """Three GETs in a row go over one connection, each exactly the request line below the
    base path, Host, and the given headers."""
    script: list[Step] = [READ, ok(b"1"), READ, ok(b"22"), READ, ok(b"333")]
    headers = {"Accept": "application/json", "Authorization": "Basic b21l"}
    paths = ["/v1/vhosts", "/v1/vhosts/default/apps?x=%20y", "/v1/stats/current"]
    async with (
        WireServer(script) as server,
        getter(server.url + suffix, headers=headers) as wire,
    ):
        bodies = [(await wire.get(path)).body for path in paths]
    assert bodies == [b"1", b"22", b"333"]
    assert server.accepted == 1
    assert server.connections[0].requests == [
        f"GET /ome{path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        "Accept: application/json\r\nAuthorization: Basic b21l\r\n\r\n".encode()
        for path in paths
    ]


@pytest.mark.parametrize(
    ("first", "accepted"),
    [
        pytest.param(ok(b"1"), 1, id="http11"),
        pytest.param(ok(b"1", b"HTTP/1.1 200 OK\r\nConnection: close\r\n"), 2, id="close"),
        pytest.param(
            ok(b"1", b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\n"), 2, id="list"
        ),
        pytest.param(ok(b"1", b"HTTP/1.0 200 OK\r\n"), 2, id="http10"),
        pytest.param(
            ok(b"1", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"), 1, id="http10-keep"
        ),
    ],
)
@run_async
async def test_connection_header_decides_reuse(first: bytes, accepted: int) -> None:
    """An answer saying ``Connection: close`` (or HTTP/1.0 without keep-alive) makes the next
    GET open a new connection, and the client closes the old one itself."""
    reuse: list[Step] = [READ, first, READ, ok(b"2")]
    async with WireServer(reuse, [READ, ok(b"2")]) as server, getter(server.url) as wire:
        bodies = [(await wire.get("/a")).body, (await wire.get("/b")).body]
        if accepted == 2:
            await settle(server.connections[0].closed_by_client)
    assert bodies == [b"1", b"2"]
    assert server.accepted == accepted
    assert len(server.connections[0].requests) == 3 - accepted


@pytest.mark.parametrize("version", [b"HTTP/1.0", b"HTTP/1.1"])
@run_async
async def test_a_body_without_length_is_read_until_close(version: bytes) -> None:
    """Without Content-Length or chunking the body is everything until the server closes, and
    the next GET goes over a new connection."""
    body = b"plain text, framed by the end of the connection\n" * 4
    first: list[Step] = [READ, version + b" 200 OK\r\nContent-Type: text/plain\r\n\r\n"]
    first += [Trickle(body, 11), CLOSE]
    async with WireServer(first, [READ, ok(b"next")]) as server, getter(server.url) as wire:
        answer = await wire.get("/a")
        second = await wire.get("/b")
    assert answer == Answer(200, {"content-type": "text/plain"}, body)
    assert second.body == b"next"
    assert server.accepted == 2


@run_async
async def test_chunked_body_with_extension_and_trailer() -> None:
    """Chunks (one with an extension, one with an upper-case hex size) and a trailer are
    joined into the body, and the connection carries the next GET."""
    reply = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;x=y\r\nhello\r\nA\r\n, world!!!\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    async with (
        WireServer([READ, Trickle(reply, 3), READ, ok(b"again")]) as server,
        getter(server.url) as wire,
    ):
        answer = await wire.get("/a")
        again = await wire.get("/b")
    assert answer.body == b"hello, world!!!"
    assert answer.headers == {"transfer-encoding": "chunked"}
    assert again.body == b"again"
    assert server.accepted == 1


@pytest.mark.parametrize("pieces", [1, 2, 3])
@run_async
async def test_bare_lf_line_ends_are_read_like_crlf(pieces: int) -> None:
    """A server ending head lines with a bare LF (RFC 9112 lets clients accept it) is read as
    if it sent CRLF, even with the bytes arriving a few at a time and mixed with CRLF; in
    chunk framing, where llhttp requires CRLF, a bare LF is not valid HTTP."""
    plain = b"HTTP/1.1 200 OK\nContent-Type: text/plain\r\nContent-Length: 2\n\nok"
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\n\n5\nhello\r\n0\r\n\r\n"
    async with (
        WireServer([READ, Trickle(plain, pieces), READ, Trickle(chunked, pieces)]) as server,
        getter(server.url) as wire,
    ):
        first = await wire.get("/a")
        with pytest.raises(Garbled, match="after chunk size"):
            await wire.get("/b")
    assert first == Answer(200, {"content-type": "text/plain", "content-length": "2"}, b"ok")
    assert server.accepted == 1


@run_async
async def test_interim_answer_and_bodiless_statuses() -> None:
    """A 100 Continue and a 103 before the 200 are skipped, and a 204 and a 304 have no body
    even with a length, all on one connection."""
    script: list[Step] = [
        READ,
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
        ok(b"ok", b"HTTP/1.1 200 OK\r\nX-Final: 1\r\n"),
        READ,
        b"HTTP/1.1 204 No Content\r\n\r\n",
        READ,
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
        READ,
        ok(b"last"),
    ]
    async with WireServer(script) as server, getter(server.url) as wire:
        answers = [await wire.get(path) for path in ("/a", "/b", "/c", "/d")]
    assert answers[0] == Answer(200, {"x-final": "1", "content-length": "2"}, b"ok")
    assert [(a.status, a.body) for a in answers[1:]] == [(204, b""), (304, b""), (200, b"last")]
    assert server.accepted == 1


# -- connections the server dropped ----------------------------------------------------------


@pytest.mark.parametrize("close", [CLOSE, HALF_CLOSE])
@run_async
async def test_a_connection_closed_while_idle_is_not_reused(close: Act) -> None:
    """A keep-alive connection the server closed after its answer is let go (the client closes
    its side too), and the next GET succeeds on a fresh connection."""
    async with (
        WireServer([READ, ok(b"1"), close], [READ, ok(b"2")]) as server,
        getter(server.url) as wire,
    ):
        first = await wire.get("/a")
        old = server.connections[0]
        if close is HALF_CLOSE:  # the server still reads: the client must notice by itself
            await settle(old.closed_by_client)
        else:
            await settle(old.closed_by_server)
        await spin()
        second = await wire.get("/b")
    assert (first.body, second.body) == (b"1", b"2")
    assert server.accepted == 2
    assert len(old.requests) == 1
    assert old.extra == b""


@pytest.mark.parametrize("close", [CLOSE, RESET])
@run_async
async def test_a_reused_connection_closed_without_answer_is_retried_once(close: Act) -> None:
    """When the server takes the second request on the old connection and drops it unanswered,
    the same request is sent once more on a new connection."""
    async with (
        WireServer([READ, ok(b"1"), READ, close], [READ, ok(b"2")]) as server,
        getter(server.url) as wire,
    ):
        first = await wire.get("/a")
        second = await wire.get("/b")
    assert (first.body, second.body) == (b"1", b"2")
    assert server.accepted == 2
    old, new = server.connections
    assert len(old.requests) == 2
    assert new.requests == old.requests[1:]


@pytest.mark.parametrize("close", [CLOSE, RESET])
@run_async
async def test_a_fresh_connection_closed_without_answer_is_broken(close: Act) -> None:
    """A new connection dropped without a byte of answer is ``Broken(answered=False)``,
    and not retried."""
    async with (
        WireServer([READ, close], [READ, ok(b"never")]) as server,
        getter(server.url) as wire,
    ):
        with pytest.raises(Broken) as caught:
            await wire.get("/a")
    assert caught.value.answered is False
    assert server.accepted == 1


@pytest.mark.parametrize(
    "script",
    [
        pytest.param([READ, b"HTTP/1.1 200 OK\r\nContent-Le", CLOSE], id="head"),
        pytest.param(
            [READ, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", CLOSE], id="length"
        ),
        pytest.param(
            [READ, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", CLOSE],
            id="chunked",
        ),
        pytest.param([READ, b"HTTP/1.0 200 OK\r\n\r\nhalf a bo", RESET], id="reset-until-close"),
        pytest.param([READ, b"HTTP/1.1 100 Continue\r\n\r\n", CLOSE], id="interim-only"),
    ],
)
@run_async
async def test_an_answer_cut_off_is_broken_after_answering(script: list[Step]) -> None:
    """A connection that ends partway through an answer is ``Broken(answered=True)``; a reset
    is not taken for the end of a body framed by the close."""
    async with WireServer(script) as server, getter(server.url) as wire:
        with pytest.raises(Broken) as caught:
            await wire.get("/a")
    assert caught.value.answered is True
    assert server.accepted == 1


@run_async
async def test_unsolicited_bytes_on_an_idle_connection_are_not_an_answer() -> None:
    """A 408 the server sends on an idle connection is never read as the next GET's answer:
    that GET goes over a new connection and the old one is closed."""
    gate, sent = asyncio.Event(), asyncio.Event()
    late = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    async with (
        WireServer([READ, ok(b"1"), Wait(gate), late, Mark(sent)], [READ, ok(b"2")]) as server,
        getter(server.url) as wire,
    ):
        first = await wire.get("/a")
        gate.set()
        await settle(sent)
        await spin()
        second = await wire.get("/b")
        await settle(server.connections[0].closed_by_client)
    assert (first.body, second.status, second.body) == (b"1", 200, b"2")
    assert server.accepted == 2
    assert len(server.connections[0].requests) == 1


# -- garbage, limits, deadline ---------------------------------------------------------------


GARBAGE = {
    "ssh": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    "http2": b"HTTP/2 200\r\n\r\n",
    "long-status": b"HTTP/1.1 2000 OK\r\n\r\n",
    "no-status": b"HTTP/1.1 OK\r\n\r\n",
    "no-colon": b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    "space-before-colon": b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
    "folded": b"HTTP/1.1 200 OK\r\nX-A: b\r\n folded\r\nContent-Length: 0\r\n\r\n",
    "empty-name": b"HTTP/1.1 200 OK\r\n: value\r\n\r\n",
    "length-abc": b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
    "length-negative": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "length-superscript": b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\nab",
    "two-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "length-list": b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!",
    "chunk-size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n",
    "chunk-size-empty": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n",
    "chunk-size-endless": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 2000,
    "chunk-without-crlf": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n",
    "head-endless": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000,
    "trailer-endless": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
    + (b"X-T: " + b"t" * 95 + b"\r\n") * 700,
}


@pytest.mark.parametrize("reply", list(GARBAGE.values()), ids=list(GARBAGE))
@run_async
async def test_garbage_is_garbled_and_drops_the_connection(reply: bytes) -> None:
    """A reply that is not HTTP/1 (status line, header, length or chunk framing) raises
    ``Garbled`` while the server still holds the connection open, and the client closes it."""
    async with WireServer([READ, reply]) as server, getter(server.url) as wire:
        with pytest.raises(Garbled):
            await wire.get("/a")
        await settle(server.connections[0].closed_by_client)
    assert server.accepted == 1


@run_async
async def test_a_content_length_of_thousands_of_digits_is_refused() -> None:
    """A Content-Length longer than Python converts (4,300 digits) is too large, not let out
    as a ValueError; leading zeros do not make a small length large."""
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 4301 + b"\r\n\r\n"
    padded = b"HTTP/1.1 200 OK\r\nContent-Length: " + b"0" * 5000 + b"2\r\n\r\nok"
    async with WireServer([READ, reply], [READ, padded]) as server, getter(server.url) as wire:
        with pytest.raises(TooLarge):
            await wire.get("/a")
        assert (await wire.get("/b")).body == b"ok"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
UNTIL_CLOSE = b"HTTP/1.0 200 OK\r\n\r\n"


@pytest.mark.parametrize(
    "script",
    [
        pytest.param([READ, b"HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\n"], id="length"),
        pytest.param([READ, CHUNKED + chunk(b"a" * 600) + b"258\r\n"], id="chunked"),
        pytest.param([READ, UNTIL_CLOSE + b"a" * 1500], id="until-close-open"),
        pytest.param([READ, UNTIL_CLOSE + b"a" * 1001, CLOSE], id="until-close-closed"),
    ],
)
@run_async
async def test_a_body_past_the_limit_is_too_large(
    monkeypatch: pytest.MonkeyPatch, script: list[Step]
) -> None:
    """A body announced or grown past the limit raises ``TooLarge`` without waiting for the
    rest (the server never sends it nor closes)."""
    monkeypatch.setattr(ome_wire, "MAX_BODY_BYTES", 1000)
    async with WireServer(script) as server, getter(server.url) as wire:
        with pytest.raises(TooLarge):
            await wire.get("/a")
    assert server.accepted == 1


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(ok(b"a" * 1000), id="length"),
        pytest.param(CHUNKED + chunk(b"a" * 600) + chunk(b"a" * 400) + b"0\r\n\r\n", id="chunked"),
    ],
)
@run_async
async def test_a_body_at_the_limit_is_read(monkeypatch: pytest.MonkeyPatch, reply: bytes) -> None:
    """A body of exactly the limit is still an answer."""
    monkeypatch.setattr(ome_wire, "MAX_BODY_BYTES", 1000)
    async with WireServer([READ, reply]) as server, getter(server.url) as wire:
        answer = await wire.get("/a")
    assert answer.body == b"a" * 1000


@pytest.mark.parametrize(
    "script",
    [
        pytest.param([READ], id="silent"),
        pytest.param([READ, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel"], id="stalled"),
        pytest.param([READ, UNTIL_CLOSE + b"never closed"], id="until-close"),
    ],
)
@run_async
async def test_the_deadline_ends_a_hung_exchange(script: list[Step]) -> None:
    """A server that stops sending makes ``get`` raise ``TimeoutError`` at the getter's timeout,
    and the client closes that connection."""
    async with WireServer(script) as server, getter(server.url, timeout=0.2) as wire:
        task = asyncio.create_task(wire.get("/a"))
        # a getter that ignored its own timeout would hang: the 5 s only bound that failure
        done, _ = await asyncio.wait({task}, timeout=5)
        if not done:
            task.cancel()
            await asyncio.wait({task})
        assert done, "get() outlived its timeout"
        assert isinstance(task.exception(), TimeoutError)
        await settle(server.connections[0].closed_by_client)
    assert server.accepted == 1


# -- cancellation, closing, refusal ----------------------------------------------------------


@run_async
async def test_cancelling_a_get_closes_its_connection() -> None:
    """A GET cancelled halfway through the body closes its connection, which is never reused."""
    halfway = asyncio.Event()
    half = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"
    async with (
        WireServer([READ, half, Mark(halfway)], [READ, ok(b"2")]) as server,
        getter(server.url) as wire,
    ):
        task = asyncio.create_task(wire.get("/a"))
        await settle(halfway)
        await spin()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await settle(server.connections[0].closed_by_client)
        second = await wire.get("/b")
    assert second.body == b"2"
    assert server.accepted == 2


@run_async
async def test_aclose_closes_idle_connections() -> None:
    """``aclose`` closes the keep-alive connections waiting in the pool."""
    async with WireServer([READ, ok(b"1")]) as server, getter(server.url) as wire:
        await wire.get("/a")
        await spin()
        assert not server.connections[0].closed_by_client.is_set()
        await wire.aclose()
        await settle(server.connections[0].closed_by_client)


@run_async
async def test_a_get_in_flight_at_aclose_closes_its_connection_when_done() -> None:
    """A connection whose GET is still running when ``aclose`` is called is closed when the
    GET ends, not put back into a pool nobody will close."""
    gate, asked = asyncio.Event(), asyncio.Event()
    async with WireServer([READ, Mark(asked), Wait(gate), ok(b"1")]) as server:
        wire = WireGetter(server.url, {}, 4, False, 5.0)
        task = asyncio.create_task(wire.get("/a"))
        await settle(asked)
        await wire.aclose()
        gate.set()
        assert (await task).body == b"1"
        await settle(server.connections[0].closed_by_client)


@run_async
async def test_a_refused_connection_is_no_connection() -> None:
    """A port nobody listens on gives ``NoConnection`` (not a certificate problem)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with getter(f"http://127.0.0.1:{port}") as wire:
        with pytest.raises(NoConnection) as caught:
            await wire.get("/a")
    assert caught.value.certificate is None
    assert caught.value.detail


# -- through OmeApi ------------------------------------------------------------------------------


ENCODED = base64.b64encode(TOKEN.encode()).decode()


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(f"OME {TOKEN}\r\n\r\n".encode(), id="status-echoes-token"),
        pytest.param(f"HTTP/1.1 200 OK\r\nBasic {ENCODED}\r\n\r\n".encode(), id="header-echoes"),
    ],
)
@run_async
async def test_omeapi_reports_garbage_as_bad_response_without_the_token(reply: bytes) -> None:
    """Through ``OmeApi`` a garbled reply is a ``BAD_RESPONSE`` saying "not valid HTTP", with
    the token it echoed scrubbed out."""
    async with WireServer([READ, reply]) as server:
        api = OmeApi(ServerSpec(name="origin", url=server.url, access_token=TOKEN), None)
        try:
            with pytest.raises(Failed) as caught:
                await api.get(PollRun(at=0.0, started=time.perf_counter()), "/v1/vhosts")
        finally:
            await api.aclose()
    error = caught.value.error
    assert error.kind is SourceErrorKind.BAD_RESPONSE
    assert "not valid HTTP" in error.reason
    assert "***" in error.reason  # the echo was there, and was scrubbed
    for secret in (TOKEN, ENCODED):
        assert secret not in str(caught.value)
        assert secret not in error.reason
    assert f"Authorization: Basic {ENCODED}\r\n".encode() in server.connections[0].requests[0]


# -- anything at all -----------------------------------------------------------------------------


PIECES = [
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.0 204 No Content\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 99999999999\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Connection: close\r\n",
    b"\r\n",
    b"5;a=b\r\nhello\r\n",
    b"0\r\n\r\n",
    b"ffffffffffff\r\n",
    b"\xff\xfe\x00",
]
REPLIES = st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=16)), max_size=12).map(
    b"".join
)


async def answer_or_failure(reply: bytes) -> Answer | Exception:
    async with (
        WireServer([READ, reply, CLOSE]) as server,
        getter(server.url, timeout=2.0) as wire,
    ):
        try:
            return await wire.get("/a")
        except (Broken, Garbled, TooLarge, TimeoutError) as exc:
            return exc


@settings(max_examples=30, deadline=None)
@given(REPLIES)
def test_any_reply_is_an_answer_or_a_known_failure(reply: bytes) -> None:
    """Whatever bytes the server sends before closing, ``get`` returns an answer or raises one
    of the failures ``ome.api`` classifies, never anything else."""
    outcome = asyncio.run(answer_or_failure(reply))
    assert isinstance(outcome, Answer | Broken | Garbled | TooLarge | TimeoutError)
    if isinstance(outcome, Answer):
        assert 0 <= outcome.status <= 999
        assert all(name == name.lower() for name in outcome.headers)
