"""The ``--listen`` server over real loopback sockets: its routes, and every bound on its clients.

Each test runs a ``Listener`` in its own event loop and talks to it with raw sockets, so what
is sent (a head trickled byte by byte, a field past the limit) is exactly what the test says.
The head deadline is shortened to keep the suite fast; the flood against a real watcher with
the default deadline is in ``test_flood.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

from aiohttp import web
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from omealert.metrics import Metrics
from omealert.web.listener import MAX_BODY_BYTES, MAX_CONNECTIONS, MAX_FIELD_BYTES, Listener

DEADLINE = 0.4
#: far longer than any bound under test: a wait that reaches it is a failure, not a measure
PATIENCE = 5.0


@contextlib.asynccontextmanager
async def serving(head_deadline: float = DEADLINE) -> AsyncIterator[Listener]:
    listener = Listener(Metrics(), head_deadline=head_deadline)
    await listener.start()
    try:
        yield listener
    finally:
        await listener.stop()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 30))


async def connect(listener: Listener) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", listener.port)


async def closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closed)."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        async with asyncio.timeout(PATIENCE):
            while chunk := await reader.read(65536):
                data += chunk
    return data


async def request(listener: Listener, raw: bytes) -> bytes:
    """One raw request on a fresh connection; the whole answer, read until the server closes."""
    reader, writer = await connect(listener)
    writer.write(raw)
    try:
        return await closed(reader)
    finally:
        writer.close()


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def get(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: x", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_metrics_and_healthz_answer_and_other_paths_are_404() -> None:
    """/metrics is the registry as prometheus_client writes it, /healthz says ok, the rest 404."""

    async def body() -> None:
        async with serving() as listener:
            answer = await request(listener, get("/metrics"))
            head, _, text = answer.partition(b"\r\n\r\n")
            assert status(answer) == 200
            assert b"Content-Type: text/plain; version=" in head
            names = {f.name for f in text_string_to_metric_families(text.decode())}
            assert {"omealert_ticks", "omealert_alerts", "omealert_tick_seconds"} <= names
            assert (await request(listener, get("/healthz"))).endswith(b"\r\n\r\nok\n")
            assert status(await request(listener, get("/nothing-here"))) == 404
            assert status(await request(listener, get("/metrics").replace(b"GET", b"POST"))) == 405

    run(body)


def test_a_scraper_asking_for_openmetrics_gets_it() -> None:
    """The library's handler negotiates: Prometheus's Accept header gets OpenMetrics text."""

    async def body() -> None:
        async with serving() as listener:
            accept = "Accept: application/openmetrics-text; version=1.0.0"
            answer = await request(listener, get("/metrics", accept))
            assert b"Content-Type: application/openmetrics-text" in answer
            assert answer.endswith(b"# EOF\n")

    run(body)


class CountingCollector:
    """A collector that only counts how often the registry is read."""

    def __init__(self) -> None:
        self.reads = 0

    def collect(self) -> Iterator[Metric]:
        self.reads += 1
        return iter(())


def test_a_scrape_is_reused_while_the_watchers_series_are_unchanged() -> None:
    """A scrape loop costs one rendering per change: unchanged series reuse the last answer;
    a tick, a delivery or another format renders anew, and shows the new values at once."""

    async def body() -> None:
        async with serving() as listener:
            counting = CountingCollector()
            listener.metrics.registry.register(counting)
            for _ in range(5):
                assert status(await request(listener, get("/metrics"))) == 200
            assert counting.reads == 1
            listener.metrics.observe_tick([], 0.1, [])
            answer = await request(listener, get("/metrics"))
            assert b"\nomealert_ticks_total 1.0\n" in answer
            assert counting.reads == 2
            listener.metrics.delivery = lambda: ({"hook": 1}, {}, {}, {})
            answer = await request(listener, get("/metrics"))
            assert b'omealert_notifications_sent_total{channel="hook"} 1.0' in answer
            assert counting.reads == 3
            accept = "Accept: application/openmetrics-text; version=1.0.0"
            await request(listener, get("/metrics", accept))
            assert counting.reads == 4

    run(body)


def test_connections_over_the_cap_are_closed_at_once_and_the_cap_frees_up() -> None:
    """With 32 idle connections open, the 33rd is closed unanswered before any deadline; once
    the idle ones are cut (by the head deadline), /metrics answers again."""

    async def body() -> None:
        async with serving(head_deadline=PATIENCE * 2) as listener:
            idle = [await connect(listener) for _ in range(MAX_CONNECTIONS)]
            assert listener.gate is not None
            async with asyncio.timeout(PATIENCE):
                while listener.gate.open < MAX_CONNECTIONS:
                    await asyncio.sleep(0.01)
            reader, writer = await connect(listener)
            writer.write(get("/metrics"))
            # well before the 10 s head deadline: closed at accept, not timed out
            assert await closed(reader) == b""
            assert listener.gate.refused >= 1
            writer.close()
            for _, w in idle:
                w.close()
            async with asyncio.timeout(PATIENCE):
                while listener.gate.open:
                    await asyncio.sleep(0.01)
            assert status(await request(listener, get("/metrics"))) == 200

    run(body)


def test_an_idle_connection_is_cut_at_the_head_deadline() -> None:
    """A connection that sends nothing is closed by the server, unanswered."""

    async def body() -> None:
        async with serving() as listener:
            reader, writer = await connect(listener)
            assert await closed(reader) == b""
            writer.close()

    run(body)


async def trickle(writer: asyncio.StreamWriter, data: bytes, reader: asyncio.StreamReader) -> bytes:
    """Send ``data`` a byte at a time, slower than the deadline allows; what came back."""
    try:
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(DEADLINE / 4)
            if reader.at_eof():
                break
    except ConnectionError:
        pass
    return await closed(reader)


def test_a_head_trickled_slower_than_the_deadline_is_cut() -> None:
    """Slowloris: bytes keep coming, but a head not complete by the deadline gets no answer."""

    async def body() -> None:
        async with serving() as listener:
            reader, writer = await connect(listener)
            head = get("/metrics", "X-Pad: " + "a" * 40)
            assert await trickle(writer, head, reader) == b""
            writer.close()

    run(body)


def test_a_later_head_on_a_kept_alive_connection_is_bounded_too() -> None:
    """After one answer on a kept-alive connection, a trickled second head is cut as well."""

    async def body() -> None:
        async with serving() as listener:
            reader, writer = await connect(listener)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            first = await reader.readuntil(b"ok\n")
            assert status(first) == 200
            assert await trickle(writer, get("/metrics", "X-Pad: " + "a" * 40), reader) == b""
            writer.close()

    run(body)


def test_an_oversize_head_is_refused_and_the_listener_serves_on() -> None:
    """A field over the limit, or too many fields, is a 400; the next request is answered."""

    async def body() -> None:
        async with serving() as listener:
            long_field = get("/metrics", "X-Big: " + "a" * (MAX_FIELD_BYTES + 10))
            assert status(await request(listener, long_field)) == 400
            many = get("/metrics", *(f"X-{i}: y" for i in range(200)))
            assert status(await request(listener, many)) == 400
            assert status(await request(listener, get("/metrics"))) == 200

    run(body)


def test_a_body_over_the_limit_is_refused_and_an_unread_one_is_not_drained() -> None:
    """A handler reading a body gets at most the limit (413 beyond); a body sent to a handler
    that reads none is not read on: the answer comes and the connection closes."""

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    async def body() -> None:
        listener = Listener(Metrics(), head_deadline=DEADLINE)
        listener.app.router.add_post("/echo", echo)  # as the webhooks of later issues will
        await listener.start()
        try:
            big = MAX_BODY_BYTES + 1
            post = "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            post += f"Content-Length: {big}\r\n\r\n"
            assert status(await request(listener, post.encode() + b"x" * big)) == 413
            small = b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            small += b"Content-Length: 5\r\n\r\nhello"
            assert (await request(listener, small)).endswith(b"\r\n\r\nhello")
            # a 1 GiB body announced to /metrics: answered, then closed, never read through
            huge = get("/metrics").replace(b"\r\n\r\n", b"\r\nContent-Length: 1073741824\r\n\r\n")
            reader, writer = await connect(listener)
            writer.write(huge + b"y" * 65536)
            answer = await closed(reader)
            assert status(answer) == 200
            writer.close()
        finally:
            await listener.stop()

    run(body)
