"""``watch --listen``: ``/metrics`` and ``/healthz`` from ``aiohttp.web`` in the watcher's loop.

Bounded so that clients of the listener cannot starve the polls that share its loop and its
file descriptors:

- at most ``MAX_CONNECTIONS`` open at once; one more is reset the moment it is accepted
  (``gate``). ``BACKLOG`` caps how many the kernel queues and ``asyncio`` accepts in one go,
  so a flood holds ``MAX_CONNECTIONS`` descriptors, and a few ``BACKLOG``s more for a loop
  iteration or two (a watcher flooded by 200 idle clients peaked at 32 over its own);
- a request head must arrive within ``HEAD_DEADLINE_S`` of the connection opening (``gate``)
  or of the previous answer (``aiohttp``'s keep-alive timer, which a head trickling in does
  not reset), or the connection is closed;
- a head's lines and fields are capped by ``aiohttp``'s parser (llhttp), and so is the
  number of header fields; a body is read only by a handler that wants it, up to
  ``MAX_BODY_BYTES`` (413 beyond); an unread body is not drained (the connection closes).

``/metrics`` is written by ``prometheus_client`` (OpenMetrics for a scraper that asks for
it, through the library's ``choose_encoder``). Writing it costs ~0.3 ms per server polled
(its histogram buckets), all of it on the loop, so a client asking for it in a tight loop
on 32 connections would keep the loop from the polls: an answer is reused while the
watcher's own series are unchanged (``Metrics.fingerprint``), for at most
``SCRAPE_REUSE_S`` (the process_* series move on their own).
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from prometheus_client.exposition import choose_encoder

from ..metrics import Metrics
from .gate import ConnectionGate

MAX_CONNECTIONS = 32
BACKLOG = 16
HEAD_DEADLINE_S = 2.0
#: request line, and each header field (name and value); llhttp refuses longer ones (400)
MAX_LINE_BYTES = 8190
MAX_FIELD_BYTES = 8190
MAX_HEADERS = 32
MAX_BODY_BYTES = 64 * 1024
#: at stop, how long a request in progress may take to finish
SHUTDOWN_S = 1.0
SCRAPE_REUSE_S = 1.0


class Listener:
    """The watcher's HTTP endpoint; ``app`` is where later handlers (webhooks, pages) go."""

    def __init__(
        self,
        metrics: Metrics,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_connections: int = MAX_CONNECTIONS,
        head_deadline: float = HEAD_DEADLINE_S,
    ) -> None:
        self.host = host
        self.port = port
        self.max_connections = max_connections
        self.head_deadline = head_deadline
        self.app = web.Application(
            client_max_size=MAX_BODY_BYTES, middlewares=[self._request_started]
        )
        self.metrics = metrics
        self._scrapes: dict[str, tuple[float, tuple[object, ...], bytes]] = {}
        self.app.router.add_get("/metrics", self._scrape)
        self.app.router.add_get("/healthz", _healthz)
        self.gate: ConnectionGate | None = None
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind and serve; an ``OSError`` (port taken, no such address) leaves nothing open."""
        runner = web.AppRunner(
            self.app,
            handle_signals=False,  # the watcher owns SIGTERM/SIGINT/SIGHUP
            access_log=None,  # a line per scrape, or per flooding client, says nothing
            shutdown_timeout=SHUTDOWN_S,
            keepalive_timeout=self.head_deadline,
            max_line_size=MAX_LINE_BYTES,
            max_field_size=MAX_FIELD_BYTES,
            max_headers=MAX_HEADERS,
            lingering_time=0,  # never read on through a body nobody asked for
        )
        await runner.setup()
        assert runner.server is not None
        gate = ConnectionGate(runner.server, self.max_connections, self.head_deadline)
        try:
            self._server = await asyncio.get_running_loop().create_server(
                gate, self.host, self.port, backlog=BACKLOG
            )
        except OSError:
            await runner.cleanup()
            raise
        self._runner, self.gate = runner, gate
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop accepting, close every open connection, wait (briefly) for requests in flight."""
        if self._server is not None:
            self._server.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._server is not None:
            await self._server.wait_closed()

    async def _scrape(self, request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(",".join(request.headers.getall(hdrs.ACCEPT, [])))
        now, fingerprint = time.monotonic(), self.metrics.fingerprint()
        cached = self._scrapes.get(content_type)
        if cached is not None and cached[1] == fingerprint and now - cached[0] < SCRAPE_REUSE_S:
            body = cached[2]
        else:
            body = encoder(self.metrics.registry)
            self._scrapes[content_type] = (now, fingerprint, body)
        return web.Response(body=body, headers={hdrs.CONTENT_TYPE: content_type})

    @web.middleware
    async def _request_started(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.gate is not None:
            self.gate.request_started(request.transport)
        return await handler(request)


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")
