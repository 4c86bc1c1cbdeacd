"""The JSON API beside the page: the same data, for scripts. Read-only, stable keys.

- ``GET /api/v1/health``: ``servers`` and ``apps``, each with ``state``, ``reason``,
  ``since`` (epoch seconds), ``counts`` (streams by state); servers add ``reachable``,
  ``version`` and ``last_poll_age`` (seconds).
- ``GET /api/v1/alerts``: firing and pending alerts: ``rule``, ``target``, ``state``,
  ``severity``, ``value``, ``since``, ``fired_at``, ``summary``, ``silenced_by`` (silence
  IDs), ``inhibited_by`` (the alert muting it, or null), ``silence`` and ``ack`` (as
  ``status --format json`` has them, or null).
- ``GET /api/v1/streams``: ``total``, ``matching`` and ``streams`` (problems first), each
  with ``key``, ``server``, ``vhost``, ``app``, ``stream``, ``state``, ``reason``,
  ``since``, ``viewers``, ``bitrate`` (input bits/s). ``?state=stalled`` and ``?q=text``
  narrow them, ``?limit=`` (default and at most 10,000) and ``?offset=`` page them.

An unknown ``state`` is a 400 naming the states there are.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .view import STATES, alert_rows, health_row, server_rows, sorted_streams

if TYPE_CHECKING:
    from ..engine.health import HealthBook, TargetHealth
    from .page import StatusPages

MAX_LIMIT = 10_000


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, separators=(",", ":"), default=str),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _by_target(h: TargetHealth) -> str:
    return h.target.key


class StatusApi:
    """``/api/v1/*``, reading what the page reads."""

    def __init__(self, pages: StatusPages) -> None:
        self.pages = pages

    def install(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/health", self.health)
        app.router.add_get("/api/v1/alerts", self.alerts)
        app.router.add_get("/api/v1/streams", self.streams)

    def _book(self) -> HealthBook:
        book = self.pages.runner.health
        if book is None:
            raise web.HTTPNotFound(text="the health states need watch --listen\n")
        return book

    async def health(self, request: web.Request) -> web.Response:
        book = self._book()
        now = self.pages.now()
        return _json(
            {
                "updated_at": book.updated_at,
                "servers": server_rows(book, now),
                "apps": [health_row(h) for h in sorted(book.apps.values(), key=_by_target)],
            }
        )

    async def alerts(self, request: web.Request) -> web.Response:
        now = self.pages.now()
        rows = alert_rows(self.pages.runner.engine.instances(), self.pages.muting(now), now)
        return _json({"alerts": rows})

    async def streams(self, request: web.Request) -> web.Response:
        book = self._book()
        state = request.query.get("state", "")
        if state and state not in STATES:
            return _json({"error": f"unknown state {state!r}; one of {', '.join(STATES)}"}, 400)
        try:
            limit = min(MAX_LIMIT, max(0, int(request.query.get("limit", MAX_LIMIT))))
            offset = max(0, int(request.query.get("offset", 0)))
        except ValueError:
            return _json({"error": "limit and offset are whole numbers"}, 400)
        rows = sorted_streams(book, state=state or None, query=request.query.get("q", "")[:200])
        return _json(
            {
                "total": len(book.streams),
                "matching": len(rows),
                "streams": [health_row(h) for h in rows[offset : offset + limit]],
            }
        )
