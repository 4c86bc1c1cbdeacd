"""The status page on ``watch --listen``: ``GET /`` and each stream's own page.

Server-rendered with Jinja (autoescaped: every name OME supplies is text, never markup),
no framework and no build step. ``static/page.js`` refreshes the live part in place every
``interval`` and narrows streams as one types; with scripts off the page still works
(the filter is a plain GET form, the page just does not refresh by itself).

10,000 streams stay usable: they are sorted problems first and shown ``PAGE_SIZE`` at a
time, with the filter and state links to narrow them; a page renders in a few tens of
milliseconds (``bench/bench_page.py``). That is loop time the polls share, so a rendered
page is reused for the same address until the next tick or ``REUSE_S`` (a client asking
for it in a tight loop costs one render per tick, not one per request).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web

from ..engine.alerts import Instance
from ..engine.health import Health, TargetHealth
from ..engine.lifecycle import engine_view
from ..errors import StateError
from ..model import Target
from ..notify.planner import compile_silences
from ..notify.windows import Quiet
from ..state.acks import Ack
from ..state.records import Silence
from .present import FILTERS, ICONS, age
from .sparkline import sparkline
from .view import (
    STATES,
    Muting,
    alert_rows,
    alerts_about,
    health_row,
    server_rows,
    sorted_streams,
)

if TYPE_CHECKING:
    from ..runner import Runner

PAGE_SIZE = 100
#: how far back a stream's page looks for its transitions and notifications
STREAM_LOG_S = 86400.0
SILENCE_REUSE_S = 2.0
REUSE_S = 1.0
#: rendered pages kept for reuse (different filters and pages); more and all are dropped
MAX_REUSED = 64
_STATIC = {
    "page.css": "text/css",
    "page.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}


def stream_path(target: Target) -> str:
    """``/stream/{server}/{vhost}/{app}/{stream}``, each name quoted as one path segment."""
    return "/stream/" + "/".join(quote(n, safe="") for n in (target.server, *target.names))


class StatusPages:
    """The page, the stream pages and their static files, reading the running watcher."""

    def __init__(self, runner: Runner, *, page_size: int = PAGE_SIZE) -> None:
        self.runner = runner
        self.page_size = page_size
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("omealert.web", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters.update(FILTERS)
        self.env.globals.update(icons=ICONS, stream_path=stream_path, states=STATES)
        files = resources.files("omealert.web") / "static"
        self.static = {name: (files / name).read_bytes() for name in _STATIC}
        self._silences: tuple[float, Muting] | None = None
        #: address → (tick it showed, monotonic time rendered, HTML)
        self._rendered: dict[str, tuple[float | None, float, str]] = {}

    def install(self, app: web.Application) -> None:
        app.router.add_get("/", self.index)
        app.router.add_get("/stream/{server}/{vhost}/{app}/{stream}", self.stream)
        app.router.add_get("/static/{name}", self.static_file)

    # -- what the pages read -----------------------------------------------------------------

    def muting(self, now: float) -> Muting:
        """Silences in force (read from the state file at most every ``SILENCE_REUSE_S``)."""
        cached = self._silences
        if cached is not None and now - cached[0] < SILENCE_REUSE_S:
            return cached[1]
        store = self.runner.store
        silences: list[Silence] = []
        acks: list[Ack] = []
        if store is not None:
            try:
                silences = [s for s in store.active_silences(now) if s.starts_at <= now]
                acks = store.live_acks(now)
            except StateError:
                pass  # the watcher logs the state file's troubles itself
        compiled = tuple(compile_silences(silences))
        settings = self.runner.settings
        quiet = Quiet.build(settings, now, compiled, acks)
        muting = Muting(compiled, settings.inhibit, quiet, engine_view(self.runner.engine))
        self._silences = (now, muting)
        return muting

    def now(self) -> float:
        return self.runner.clock.now()

    def _render(self, name: str, **values: Any) -> str:
        return self.env.get_template(name).render(**values)

    def reused(self, request: web.Request, render: Callable[[], str]) -> web.Response:
        """``render()``'s page, or the one rendered for this address since the last tick."""
        book = self.runner.health
        tick = book.updated_at if book is not None else None
        key = request.path_qs
        now = time.monotonic()
        cached = self._rendered.get(key)
        if cached is not None and cached[0] == tick and now - cached[1] < REUSE_S:
            html = cached[2]
        else:
            html = render()
            if len(self._rendered) >= MAX_REUSED:
                self._rendered.clear()
            self._rendered[key] = (tick, now, html)
        return web.Response(
            text=html, content_type="text/html", headers={"Cache-Control": "no-store"}
        )

    # -- handlers ------------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.Response:
        if self.runner.health is None:
            raise web.HTTPNotFound(text="the status page needs watch --listen\n")
        return self.reused(request, lambda: self._index(request))

    def _index(self, request: web.Request) -> str:
        book = self.runner.health
        assert book is not None
        now = self.now()
        query = request.query.get("q", "")[:200]
        state = request.query.get("state", "")
        if state not in STATES:
            state = ""
        try:
            page = max(1, int(request.query.get("page", "1")))
        except ValueError:
            page = 1
        matching = sorted_streams(book, query=query)
        by_state: dict[str, int] = {}
        for h in matching:
            by_state[h.state.value] = by_state.get(h.state.value, 0) + 1
        if state:
            matching = [h for h in matching if h.state.value == state]
        pages = max(1, -(-len(matching) // self.page_size))
        page = min(page, pages)
        shown = matching[(page - 1) * self.page_size : page * self.page_size]
        rows = []
        for h in shown:
            row = health_row(h)
            row["path"] = stream_path(h.target)
            row["spark_bitrate"], row["spark_viewers"] = self._sparks(h.target, 120, 24)
            rows.append(row)
        apps = sorted(book.apps.values(), key=lambda h: (h.state is Health.HEALTHY, h.target.key))
        alerts = alert_rows(self.runner.engine.instances(), self.muting(now), now)

        def link(**change: object) -> str:
            params = {"q": query, "state": state, "page": page, **change}
            kept = {k: v for k, v in params.items() if v not in ("", None, 1)}
            return "/?" + urlencode(kept) if kept else "/"

        return self._render(
            "index.html",
            now=now,
            interval=self.runner.settings.interval_s,
            servers=server_rows(book, now),
            apps=[health_row(h) for h in apps],
            alerts=alerts,
            firing=sum(1 for a in alerts if a["state"] == "firing"),
            streams=rows,
            total=len(book.streams),
            matching=len(matching),
            by_state=by_state,
            query=query,
            state=state,
            page=page,
            pages=pages,
            link=link,
        )

    def _sparks(self, target: Target, width: int, height: int) -> tuple[Any, Any]:
        book = self.runner.health
        series = book.trends.get(target) if book is not None else None
        if series is None:
            return sparkline([]), sparkline([])
        span = series.times[-1] - series.times[0] if len(series.times) > 1 else 0.0
        over = f"over the last {age(span)}"
        return (
            sparkline(series.bitrate, width=width, height=height,
                      label=f"input bitrate {over}", css="spark bitrate"),
            sparkline(series.viewers, width=width, height=height,
                      label=f"viewers {over}", css="spark viewers"),
        )  # fmt: skip

    async def stream(self, request: web.Request) -> web.Response:
        book = self.runner.health
        if book is None:
            raise web.HTTPNotFound(text="the status page needs watch --listen\n")
        m = request.match_info
        target = Target(m["server"], m["vhost"], m["app"], m["stream"])
        health = book.streams.get(target)
        instances = alerts_about(self.runner.engine.instances(), target)
        if health is None and not instances:
            raise web.HTTPNotFound(text="no such stream is listed now\n")
        return self.reused(request, lambda: self._stream(target, health, instances))

    def _stream(
        self, target: Target, health: TargetHealth | None, instances: list[Instance]
    ) -> str:
        now = self.now()
        log = []
        store = self.runner.store
        if store is not None:
            try:
                entries = store.history(now - STREAM_LOG_S, limit=5000)
            except StateError:
                entries = []
            key = target.key
            log = [
                e
                for e in reversed(entries)
                if any(t == key or t.startswith(key + "/") for t in e.targets)
            ]
        big = self._sparks(target, 600, 80)
        fields = (
            sorted((k, scrubbed(v)) for k, v in (health.fields or {}).items()) if health else []
        )
        return self._render(
            "stream.html",
            now=now,
            interval=self.runner.settings.interval_s,
            target=target,
            health=health_row(health) if health is not None else None,
            fields=fields,
            alerts=alert_rows(instances, self.muting(now), now),
            log=log[:200],
            chart_bitrate=big[0],
            chart_viewers=big[1],
        )

    async def static_file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = self.static.get(name)
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(
            body=body,
            content_type=_STATIC[name],
            headers={"Cache-Control": "max-age=300"},
        )


_USERINFO = re.compile(r"(?i)^([a-z][a-z0-9+.-]*://)[^/@]*@")


def scrubbed(value: object) -> object:
    """A field for the page, with any ``user:password@`` of a URL (an RTSP pull's) hidden."""
    if isinstance(value, str):
        return _USERINFO.sub(r"\1…@", value)
    return value
