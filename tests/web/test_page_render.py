"""The page's rendering at its edges: hostile names, sparklines, the open-address warning."""

from __future__ import annotations

import asyncio
import logging
import math
from types import SimpleNamespace

import pytest
from aiohttp.test_utils import make_mocked_request

from omealert.clock import FakeClock
from omealert.engine.engine import Engine
from omealert.engine.health import HealthBook
from omealert.web.page import StatusPages, scrubbed
from omealert.web.safety import authorized, is_loopback, warn_if_open
from omealert.web.sparkline import sparkline
from tests.helpers import poll, settings, ts

HOSTILE = "<img src=x onerror=alert(1)>"


def pages_with(stream: str) -> StatusPages:
    """Pages over a health book holding one stream named ``stream`` (as OME could send it)."""
    clock = FakeClock()
    book = HealthBook(["origin"], 10.0)
    at = clock.now()
    fields = {"providers.lastRecvTime": ts(at - 60), "sourceUrl": "rtsp://cam:hunter2@10.0.0.9/s"}
    polls = [poll(at, {f"default/live/{stream}": fields})]
    book.observe(polls, [], frozenset(), at)
    conf = settings()
    runner = SimpleNamespace(
        health=book, engine=Engine(conf), settings=conf, store=None, clock=clock
    )
    return StatusPages(runner)  # type: ignore[arg-type]


def get(handler: object, path: str, **match: str) -> str:
    request = make_mocked_request("GET", path, match_info=match)
    response = asyncio.run(handler(request))  # type: ignore[operator]
    return str(response.text)


def test_names_from_ome_are_escaped_everywhere() -> None:
    """A stream named like markup shows as text on the page, its link and its own page."""
    pages = pages_with(HOSTILE)
    html = get(pages.index, "/")
    assert HOSTILE not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "/stream/origin/default/live/%3Cimg%20src%3Dx" in html  # the link to its page is quoted
    page = get(
        pages.stream, "/stream/x", server="origin", vhost="default", app="live", stream=HOSTILE
    )
    assert HOSTILE not in page and "&lt;img src=x" in page


def test_a_source_url_password_is_hidden() -> None:
    """An RTSP pull's ``user:password@`` never reaches the stream page."""
    page = get(
        pages_with("cam1").stream,
        "/stream/x",
        server="origin",
        vhost="default",
        app="live",
        stream="cam1",
    )
    assert "hunter2" not in page and "rtsp://…@10.0.0.9/s" in page
    assert scrubbed("TCP://203.0.113.7:52110") == "TCP://203.0.113.7:52110"


def test_sparkline_breaks_at_unknown_points_and_escapes_its_label() -> None:
    """NaN splits the line in two; a flat series sits mid-height; the label is escaped."""
    svg = str(sparkline([1.0, 2.0, math.nan, 3.0, 4.0], label="<b>"))
    assert svg.count("<polyline") == 2 and "&lt;b&gt;" in svg and "<b>" not in svg
    flat = str(sparkline([5.0, 5.0, 5.0], height=24))
    assert "2.0,12.0" in flat
    assert 'class="none"' in str(sparkline([]))


def test_basic_auth_compares_both_halves() -> None:
    """Only the exact user and password pass; malformed headers are refused."""
    import base64

    def header(text: str) -> str:
        return "Basic " + base64.b64encode(text.encode()).decode()

    assert authorized(header("ops:pw"), ("ops", "pw"))
    assert not authorized(header("ops:PW"), ("ops", "pw"))
    assert not authorized(header("opspw"), ("ops", "pw"))
    assert not authorized("Basic !!!", ("ops", "pw"))
    assert not authorized(None, ("ops", "pw"))


@pytest.mark.parametrize(
    ("host", "auth", "warned"),
    [
        ("127.0.0.1", None, False),
        ("::1", None, False),
        ("localhost", None, False),
        ("0.0.0.0", None, True),
        ("192.0.2.10", None, True),
        ("0.0.0.0", ("ops", "pw"), False),
    ],
)
def test_warning_for_an_open_address_without_auth(
    caplog: pytest.LogCaptureFixture, host: str, auth: tuple[str, str] | None, warned: bool
) -> None:
    """A non-loopback --listen without listen_auth is warned about at start."""
    with caplog.at_level(logging.WARNING, logger="omealert"):
        assert warn_if_open(host, auth) is warned
    assert ("listen_auth is not set" in caplog.text) is warned
    assert is_loopback(host) is (host in ("127.0.0.1", "::1", "localhost"))


def test_a_page_is_rendered_once_per_tick_however_often_it_is_asked() -> None:
    """Requests in a tight loop reuse the page rendered for their address since the tick."""
    pages = pages_with("cam1")
    renders: list[str] = []

    def render() -> str:
        renders.append("x")
        return f"<p>{len(renders)}</p>"

    request = make_mocked_request("GET", "/?q=cam")
    for _ in range(50):
        pages.reused(request, render)
    assert len(renders) == 1
    pages.reused(make_mocked_request("GET", "/?q=other"), render)
    assert len(renders) == 2  # another address: its own page
    book = pages.runner.health
    assert book is not None
    book.observe([], [], frozenset(), pages.now() + 10)  # the next tick
    assert pages.reused(request, render).text == "<p>3</p>"
