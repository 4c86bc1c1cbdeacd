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


def _all_listed(watcher: PageWatcher) -> bool:
    """Whether the watcher lists all 10,000 streams, s09999 stalled (a busy loop may
    reset a connection meanwhile: that is a no, not an error)."""
    try:
        listed = watcher.json("/api/v1/streams?limit=0")["total"] == 10_000
        return listed and watcher.json("/api/v1/streams?state=stalled")["matching"] == 1
    except OSError:
        return False


def test_ten_thousand_streams_render_in_the_browser(
    chromium: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With 10,000 streams the page loads, paginated, with problems first and no error."""
    with Simulator(access_token=TOKEN) as sim:
        sim.add_streams("default", "live", [f"s{i:05d}" for i in range(10_000)])
        sim.stall("default", "live", "s09999")
        # a poll of 10,000 streams takes seconds: a 1 s stale_after would call some stalled
        watcher = PageWatcher(tmp_path, sim, interval="10s", stale_after="6s")
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not _all_listed(watcher):
                time.sleep(0.5)
            page = chromium.new_page(viewport={"width": 1280, "height": 900})
            seen = Watched(page)
            started = time.monotonic()
            page.goto(watcher.url, wait_until="load")
            loaded = time.monotonic() - started
            timing = page.evaluate(
                "(() => { const t = performance.getEntriesByType('navigation')[0];"
                " return t.loadEventEnd - t.startTime; })()"
            )
            first = page.locator("table.streams tbody tr").first
            top = [
                (r["key"], r["state"], r["reason"])
                for r in watcher.json("/api/v1/streams?limit=3")["streams"]
            ]
            assert first.get_attribute("data-key") == "origin/default/live/s09999", top
            assert "10000" in page.locator("#h-streams").inner_text()
            assert page.locator("table.streams tbody tr").count() == 100
            page.fill("#q", "s0042")
            expect(page.locator("table.streams tbody tr")).to_have_count(10, timeout=20_000)
            assert seen.problems == [], seen.problems
            with capsys.disabled():
                print(f"\n[page] 10,000 streams: loaded in {loaded * 1000:.0f} ms "
                      f"(navigation timing {timing:.0f} ms)")  # fmt: skip
            page.close()
        finally:
            watcher.stop()
