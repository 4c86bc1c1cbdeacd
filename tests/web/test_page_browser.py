"""The status page in a real headless Chromium (Debian's, driven by Playwright).

A watcher process polls the simulator; the browser opens its page and sees a stalled
stream's row turn ``stalled`` with its reason and the alert appear, with no console error
and no failed request. A screenshot of that page is saved under the test's tmp dir (and
to ``OMEALERT_SCREENSHOT`` when set: ``make screenshot`` writes the README's PNG so).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from omealert.simulator import Simulator
from tests.realparts import require
from tests.web.pagerig import TOKEN, PageWatcher

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INTERVAL_S = 1.0
ABSENT = """\
  - name: studio-expected
    match: default/studio/main
    when: absent
    severity: critical
"""


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the module, closed at its end."""
    path = require("/usr/bin/chromium", "chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Watched:
    """What went wrong in the browser while a page was open: console errors, failed requests."""

    def __init__(self, page: Any) -> None:
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("requestfailed", lambda req: self.problems.append(f"failed: {req.url}"))
        page.on("response", self._response)

    def _console(self, msg: Any) -> None:
        if msg.type in ("error", "warning"):
            self.problems.append(f"console {msg.type}: {msg.text}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")


def busy_origin(sim: Simulator) -> None:
    """A few apps and streams with audiences, as the README's screenshot shows them."""
    sim.add_stream("default", "live", "cam1", bitrate=4_500_000, viewers={"webrtc": 42})
    sim.add_stream("default", "live", "cam2", bitrate=2_500_000, viewers={"llhls": 17})
    sim.add_stream("default", "live", "lobby", bitrate=1_200_000, viewers={"webrtc": 130})
    sim.add_stream("default", "events", "keynote", bitrate=6_000_000, viewers={"hlsv3": 880})
    sim.add_stream("default", "events", "hall-b", bitrate=3_000_000, viewers={"webrtc": 12})


def test_stalled_stream_turns_stalled_in_the_browser(
    chromium: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stalled ingest shows as a ``stalled`` row with its reason and a firing alert."""
    with Simulator(access_token=TOKEN) as sim:
        busy_origin(sim)
        watcher = PageWatcher(tmp_path, sim, interval="1s", extra="", rules_extra=ABSENT)
        try:
            page = chromium.new_page(viewport={"width": 1280, "height": 900})
            seen = Watched(page)
            page.goto(watcher.url)
            cam1 = 'tr[data-key="origin/default/live/cam1"]'
            page.locator(f"{cam1}.s-healthy").wait_for(timeout=10_000)
            for step in range(8):  # audiences move: a few points of history for the sparklines
                sim.set_viewers("default", "events", "keynote", "hlsv3", 880 + 40 * step)
                sim.set_viewers("default", "live", "cam2", "llhls", 17 + (step % 3) * 4)
                sim.set_bitrate("default", "events", "hall-b", 3_000_000 - 250_000 * step)
                page.wait_for_timeout(600)
            sim.stall("default", "live", "cam1")
            first = _first_stalled(watcher)
            deadline_ms = int((2 * INTERVAL_S + 3.0) * 1000)
            started = time.monotonic()
            # (the page's CSP forbids eval: waits are locators, not wait_for_function)
            page.locator(f"{cam1}.s-stalled", has_text="no input for").wait_for(timeout=deadline_ms)
            page.locator("table.alerts", has_text="ingest-stalled").wait_for(timeout=deadline_ms)
            lag = time.monotonic() - started
            cells = page.locator(f"{cam1} td.health")
            assert "stalled" in cells.inner_text() and "no input for" in cells.inner_text()
            assert "studio-expected" in page.locator("table.alerts").inner_text()
            assert seen.problems == [], seen.problems
            shot = tmp_path / "status-page.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            page.emulate_media(color_scheme="dark")
            page.screenshot(path=str(tmp_path / "status-page-dark.png"), full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})  # a phone
            page.screenshot(path=str(tmp_path / "status-page-phone.png"), full_page=True)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390 + 1, f"the page scrolls sideways on a phone: {width}px"
            assert seen.problems == [], seen.problems
            target = os.environ.get("OMEALERT_SCREENSHOT")
            if target:
                shutil.copyfile(shot, target)
                for variant in ("dark", "phone"):
                    shutil.copyfile(
                        tmp_path / f"status-page-{variant}.png",
                        Path(target).with_name(f"status-page-{variant}.png"),
                    )
            with capsys.disabled():
                print(
                    f"\n[page] API said stalled {first:.2f}s after the stall; page {lag:.2f}s later"
                )
            page.close()
        finally:
            watcher.stop()
        assert TOKEN not in watcher.stderr()


def _first_stalled(watcher: PageWatcher) -> float:
    """Seconds from now until the API first calls cam1 stalled (at most 10 s)."""
    started = time.monotonic()
    while time.monotonic() - started < 10:
        rows = watcher.json("/api/v1/streams?state=stalled")["streams"]
        if any(r["stream"] == "cam1" for r in rows):
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError("the API never said cam1 is stalled")


def ten_thousand() -> Any:
    """A watcher-shaped object whose health book holds 10,000 streams (a few stalled), with
    a few polls of history: the page's data without polling 10,000 streams first."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from omealert.clock import FakeClock
    from omealert.engine.engine import Engine
    from omealert.engine.health import HealthBook
    from omealert.model import PollResult, Sample, Target
    from tests.helpers import settings

    clock, book = FakeClock(), HealthBook(["origin"], 10.0)
    for step in range(5):
        at = clock.now()
        poll = PollResult("origin", at, at)
        for i in range(10_000):
            t = Target("origin", "default", f"app{i % 20}", f"s{i:05d}")
            poll.listed.add(t)
            stalled = i == 9_999 and step > 2
            fields: dict[str, Any] = {
                "providers.lastRecvTime": datetime.fromtimestamp(at - (60 if stalled else 1), UTC),
                "providers.avgThroughputIn": 2_000_000 + 10_000 * ((i + step) % 7),
                "publishers.viewers": (i * 7 + step * 3) % 50,
            }
            poll.samples[t] = Sample(t, fields, at, at)
        poll.listed.update(Target("origin", "default", f"app{i}") for i in range(20))
        book.observe([poll], [], frozenset(), at)
        clock.advance(10)
    conf = settings()
    return SimpleNamespace(health=book, engine=Engine(conf), settings=conf, store=None, clock=clock)


class PageThread:
    """The watcher's listener with the page on it, in a thread of its own (its own loop)."""

    def __init__(self, runner: Any) -> None:
        import asyncio
        import threading

        from omealert.metrics import Metrics
        from omealert.web.listener import Listener
        from omealert.web.site import install_site

        self.loop = asyncio.new_event_loop()
        self.listener = Listener(Metrics())
        install_site(self.listener, runner)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.listener.start(), self.loop).result(10)
        self.url = f"http://127.0.0.1:{self.listener.port}/"

    def stop(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self.listener.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def test_ten_thousand_streams_render_in_the_browser(
    chromium: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """With 10,000 streams the page loads paginated, problems first, filters, and errs nowhere."""
    server = PageThread(ten_thousand())
    try:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        seen = Watched(page)
        started = time.monotonic()
        page.goto(server.url, wait_until="load")
        loaded = time.monotonic() - started
        wait, render = page.evaluate(
            "(() => { const t = performance.getEntriesByType('navigation')[0];"
            " return [t.responseEnd - t.requestStart, t.loadEventEnd - t.responseEnd]; })()"
        )
        rows = page.locator("table.streams tbody tr")
        assert rows.first.get_attribute("data-key") == "origin/default/app19/s09999"
        assert "10000" in page.locator("#h-streams").inner_text()
        assert rows.count() == 100
        page.fill("#q", "s0042")
        expect(rows).to_have_count(10, timeout=10_000)
        assert seen.problems == [], seen.problems
        assert loaded < 10.0  # a generous bound: the figure itself is printed (and in bench/)
        with capsys.disabled():
            print(f"\n[page] 10,000 streams: loaded in {loaded * 1000:.0f} ms "
                  f"(answer {wait:.0f} ms, parse and render {render:.0f} ms)")  # fmt: skip
        page.close()
    finally:
        server.stop()
