"""``ome.wire`` against servers that lie or flood: framings it refuses (through ``OmeApi``, as
a ``bad_response`` on a connection never reused), bytes on idle connections, tiny-chunk
floods, a dead IPv6 route, and control characters in what OME says."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from omealert.errors import SourceErrorKind, printable
from omealert.ome import wire as ome_wire
from omealert.ome.api import Failed, OmeApi, PollRun
from omealert.ome.http import Garbled
from omealert.ome.wire import WireGetter
from omealert.rules import ServerSpec

from ..helpers import run_async
from ..wireserver import READ, Step, Trickle, Wait, WireServer


def ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body


@contextlib.asynccontextmanager
async def api_for(url: str) -> AsyncIterator[OmeApi]:
    api = OmeApi(ServerSpec(name="origin", url=url, timeout_s=5.0), None)
    try:
        yield api
    finally:
        await api.aclose()


async def settle(event: asyncio.Event) -> None:
    """Wait for something the loop is about to do; the timeout only keeps a failing test
    from hanging."""
    async with asyncio.timeout(5):
        await event.wait()


@contextlib.asynccontextmanager
async def getter(url: str, limit: int = 4, timeout: float = 5.0) -> AsyncIterator[WireGetter]:
    wire = WireGetter(url, {}, limit, False, timeout)
    try:
        yield wire
    finally:
        await wire.aclose()


def run() -> PollRun:
    return PollRun(at=0.0, started=time.perf_counter())


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
MANY_HEADERS = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 90) for i in range(700))
REFUSED: dict[str, Step] = {
    "bare-cr-in-value": b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n",
    "nul-in-value": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n",
    "name-not-a-token": b"HTTP/1.1 200 OK\r\nX(A): a\r\nContent-Length: 0\r\n\r\n",
    "te-gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc",
    "te-list": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "te-repeated": CHUNKED[:-2] + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-with-length": CHUNKED[:-2] + b"Content-Length: 5\r\n\r\n0\r\n\r\n",
    "chunked-on-http10": b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "chunk-zeros-one-segment": CHUNKED + b"0" * 2000 + b"5\r\nhello\r\n0\r\n\r\n",
    "chunk-extension-one-segment": CHUNKED + b"5;" + b"e" * 2000 + b"\r\nhello\r\n0\r\n\r\n",
    "chunk-line-many-segments": Trickle(CHUNKED + b"0" * 2000 + b"5\r\nhello\r\n0\r\n\r\n", 100),
    "chunk-line-after-chunks": CHUNKED + b"3\r\nabc\r\n" * 5 + b"0" * 2000 + b"1\r\nx\r\n0\r\n\r\n",
    "head-one-segment": b"HTTP/1.1 200 OK\r\n" + MANY_HEADERS + b"Content-Length: 0\r\n\r\n",
    "head-many-segments": Trickle(b"HTTP/1.1 200 OK\r\n" + MANY_HEADERS + b"\r\n", 4096),
    "trailer-one-segment": CHUNKED + b"0\r\n" + MANY_HEADERS + b"\r\n",
}


@pytest.mark.parametrize("reply", list(REFUSED.values()), ids=list(REFUSED))
@run_async
async def test_a_framing_llhttp_or_the_limits_refuse_is_bad_response(reply: Step) -> None:
    """Each refused framing is a ``bad_response`` saying "not valid HTTP"; the client closes
    that connection and the next GET goes over a new one."""
    async with (
        WireServer([READ, reply, READ, ok(b"stale")], [READ, ok(b"fresh")]) as server,
        api_for(server.url) as api,
    ):
        with pytest.raises(Failed) as caught:
            await api.get(run(), "/v1/vhosts")
        await settle(server.connections[0].closed_by_client)
        with pytest.raises(Failed) as second:  # b"fresh" is not OME's envelope, but an answer
            await api.get(run(), "/v1/vhosts")
    assert caught.value.error.kind is SourceErrorKind.BAD_RESPONSE
    assert "not valid HTTP" in caught.value.error.reason
    assert "not JSON" in second.value.error.reason
    assert server.accepted == 2
    assert len(server.connections[0].requests) == 1


# -- flow control --------------------------------------------------------------------------------


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The size of every segment the client's connections took in."""
    sizes: list[int] = []
    original = ome_wire._Connection.data_received

    def spy(self: ome_wire._Connection, data: bytes) -> None:
        sizes.append(len(data))
        original(self, data)

    monkeypatch.setattr(ome_wire._Connection, "data_received", spy)
    yield sizes


@run_async
async def test_bytes_on_an_idle_connection_close_it_at_once(received: list[int]) -> None:
    """A server flooding a keep-alive connection while it sits in the pool gets it closed
    after the first segment: the client takes in a few hundred KiB of 64 MiB, not all."""
    gate = asyncio.Event()
    flood = b"x" * (64 * 1024 * 1024)
    async with (
        WireServer([READ, ok(b"1"), Wait(gate), flood], [READ, ok(b"2")]) as server,
        getter(server.url) as wire,
    ):
        assert (await wire.get("/a")).body == b"1"
        taken = sum(received)
        gate.set()
        await settle(server.connections[0].closed_by_client)
        assert (await wire.get("/b")).body == b"2"
    assert sum(received) - taken < 4 * 1024 * 1024
    assert server.accepted == 2


@run_async
async def test_a_flood_of_tiny_chunks_is_cut_off_while_the_loop_serves_others() -> None:
    """An answer of endless one-byte chunks is refused by the chunk budget, long before the
    deadline, while GETs to another server go on being answered."""
    flood = CHUNKED + b"1\r\na\r\n" * 400_000
    others: list[bytes] = []

    async def other(url: str) -> None:
        async with getter(url, 1) as wire:
            for _ in range(20):
                others.append((await wire.get("/b")).body)
                await asyncio.sleep(0.001)

    script: list[Step] = [step for _ in range(20) for step in (READ, ok(b"ok"))]
    async with WireServer([READ, flood]) as flooder, WireServer(script) as steady:
        wire = WireGetter(flooder.url, {}, 1, False, 30.0)
        try:
            results = await asyncio.gather(
                wire.get("/a"), other(steady.url), return_exceptions=True
            )
        finally:
            await wire.aclose()
    assert isinstance(results[0], Garbled)
    assert "chunks for" in results[0].detail
    assert others == [b"ok"] * 20


# -- happy eyeballs ------------------------------------------------------------------------------


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@contextlib.contextmanager
def blackhole(family: socket.AddressFamily, host: str) -> Iterator[int]:
    """A loopback port that takes no connection: a listener whose accept queue is full and
    who never accepts, so the kernel drops every further SYN, as a dead route does."""
    listener = socket.socket(family)
    listener.bind((host, 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(3):
            filler = socket.socket(family)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect((host, port))
            fillers.append(filler)
        time.sleep(0.05)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def blackhole_v6() -> contextlib.AbstractContextManager[int]:
    return blackhole(socket.AF_INET6, "::1")


def blackhole_v4() -> contextlib.AbstractContextManager[int]:
    return blackhole(socket.AF_INET, "127.0.0.1")


@pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
@run_async
async def test_a_name_whose_ipv6_is_dead_connects_over_ipv4(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host name resolving to a dead IPv6 address first and 127.0.0.1 second is reached over
    IPv4 within the timeout, not reported unreachable."""
    loop = asyncio.get_running_loop()
    async with WireServer([READ, ok(b"over v4")]) as server:
        with blackhole_v6() as dead:
            answers: list[Any] = [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", dead, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", server.port)),
            ]

            async def resolve(host: str, port: int, **_: Any) -> list[Any]:
                assert host == "ome.test"
                return answers

            monkeypatch.setattr(loop, "getaddrinfo", resolve)
            async with getter(f"http://ome.test:{server.port}", 1, 3.0) as wire:
                answer = await wire.get("/v1/vhosts")
    assert answer.body == b"over v4"
    assert server.connections[0].requests[0].startswith(b"GET /v1/vhosts HTTP/1.1\r\n")


# -- what OME says, in messages ------------------------------------------------------------------


@run_async
async def test_control_characters_from_ome_never_reach_an_error() -> None:
    """ESC, CR and NUL in OME's message, a tab in a proxy's Server header and ESC in a header
    llhttp refuses come out replaced (U+FFFD, or escaped) in the error's reason and text."""
    message = b'{"statusCode": 500, "message": "stream \\u001b[2Jx\\r\\u0000y failed"}'
    proxy = b"HTTP/1.1 502 Bad Gateway\r\nServer: evil\tproxy\r\nContent-Length: 2\r\n\r\nno"
    garbled = b"HTTP/1.1 200 OK\r\nX-Name: \x1b]0;owned\x07\r\n\r\n"
    answer = b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % len(message) + message
    script: list[Step] = [READ, answer, READ, proxy, READ, garbled]
    async with WireServer(script) as server, api_for(server.url) as api:
        errors = []
        for _ in range(3):
            with pytest.raises(Failed) as caught:
                await api.get(run(), "/v1/vhosts")
            errors.append(caught.value.error)
    for error in errors:
        for text in (error.reason, str(error)):
            assert not any(c in text for c in "\x1b\r\x00\x07\t")
    assert "stream \ufffd[2Jx\ufffd\ufffdy failed" in errors[0].reason
    assert "from evil\ufffdproxy" in errors[1].reason
    assert "not valid HTTP" in errors[2].reason
    assert "]0;owned" in errors[2].reason


def test_printable_keeps_text_and_replaces_only_controls() -> None:
    """Letters, emoji and tabs-free text pass unchanged; controls, DEL, C1, line separators
    and bidi overrides are replaced one for one."""
    assert printable("caméra 🎉 live/Ωmega") == "caméra 🎉 live/Ωmega"
    assert (
        printable("a\tb\nc\x7fd\x85e\u2028f\u202eg")
        == "a\ufffdb\ufffdc\ufffdd\ufffde\ufffdf\ufffdg"
    )


@pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
@run_async
async def test_a_name_whose_every_address_is_dead_times_out_closing_its_sockets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When both the IPv6 and the IPv4 attempt hang, the GET ends at its deadline and the
    sockets of both attempts are closed (none is left for the garbage collector to find)."""
    loop = asyncio.get_running_loop()
    opened: list[socket.socket] = []
    real_socket = socket.socket

    def tracked(*args: Any, **kwargs: Any) -> socket.socket:
        sock = real_socket(*args, **kwargs)
        opened.append(sock)
        return sock

    with blackhole_v6() as dead6, blackhole_v4() as dead4:
        answers: list[Any] = [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", dead6, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", dead4)),
        ]

        async def resolve(host: str, port: int, **_: Any) -> list[Any]:
            return answers

        monkeypatch.setattr(loop, "getaddrinfo", resolve)
        monkeypatch.setattr(socket, "socket", tracked)
        async with getter(f"http://ome.test:{dead4}", 1, 0.6) as wire:
            with pytest.raises(TimeoutError):
                await wire.get("/v1/vhosts")
        monkeypatch.setattr(socket, "socket", real_socket)
        for _ in range(3):
            await asyncio.sleep(0)
    assert len(opened) == 2
    assert all(sock.fileno() == -1 for sock in opened)
