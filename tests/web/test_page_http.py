"""The status page's JSON API and its safety rules, over real HTTP from a real watcher.

One watcher process polls the simulator for the module; a stream is stalled at the start,
and each test reads what the listener serves: the API's keys, 405 for anything but GET,
the security headers, no secret anywhere, ``/metrics``' health series. Basic auth and
``--metrics-targets off`` get watchers of their own.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from omealert.simulator import Simulator
from tests.helpers import bare_env, wait_until
from tests.web.pagerig import HOOK_SECRET, TOKEN, PageWatcher

ODD = "x&y'z"  # a stream name the page must escape (OME names needing URL escapes are unreachable)


@pytest.fixture(scope="module")
def watcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageWatcher]:
    """A watcher with cam1 stalled, cam2 healthy and a stream with an odd name."""
    with Simulator(access_token=TOKEN) as sim:
        sim.add_stream("default", "live", "cam1", viewers={"webrtc": 3})
        sim.add_stream("default", "live", "cam2")
        sim.add_stream("default", "live", ODD)
        w = PageWatcher(tmp_path_factory.mktemp("page"), sim, interval="300ms")
        try:
            assert wait_until(lambda: len(w.json("/api/v1/streams")["streams"]) == 3, 20)
            sim.stall("default", "live", "cam1")
            assert wait_until(
                lambda: (
                    w.json("/api/v1/streams?state=stalled")["matching"] == 1
                    and any(
                        a["rule"] == "ingest-stalled" for a in w.json("/api/v1/alerts")["alerts"]
                    )
                ),
                20,
            ), w.stderr()
            yield w
        finally:
            w.stop()


def test_streams_api_lists_the_stalled_stream_with_its_reason(watcher: PageWatcher) -> None:
    """``/api/v1/streams?state=stalled`` gives the stalled stream, with its reason, only."""
    rows = watcher.json("/api/v1/streams?state=stalled")["streams"]
    assert [r["key"] for r in rows] == ["origin/default/live/cam1"]
    row = rows[0]
    assert set(row) >= {"key", "server", "vhost", "app", "stream", "state", "reason", "since"}
    assert row["state"] == "stalled" and re.fullmatch(r"no input for \d+[smh]", row["reason"])
    every = watcher.json("/api/v1/streams")
    assert every["total"] == 3 and every["streams"][0]["key"] == "origin/default/live/cam1"
    assert {r["state"] for r in every["streams"][1:]} == {"healthy"}


def test_health_api_rolls_streams_up_to_app_and_server(watcher: PageWatcher) -> None:
    """The app and the server take the worst state below them, with counts."""
    data = watcher.json("/api/v1/health")
    (server,) = data["servers"]
    assert server["server"] == "origin" and server["state"] == "stalled"
    assert server["reason"] == "1 of 3 streams stalled"
    assert server["counts"] == {"stalled": 1, "healthy": 2}
    assert server["reachable"] is True and server["version"] == "0.18.0"
    (app,) = data["apps"]
    assert app["key"] == "origin/default/live" and app["state"] == "stalled"


def test_alerts_api_shows_the_firing_alert(watcher: PageWatcher) -> None:
    """``/api/v1/alerts`` has the firing alert with its severity and no mute."""
    alerts = watcher.json("/api/v1/alerts")["alerts"]
    stalled = [a for a in alerts if a["rule"] == "ingest-stalled"]
    assert stalled[0]["target"] == "origin/default/live/cam1"
    assert stalled[0]["severity"] == "critical" and stalled[0]["state"] == "firing"
    assert stalled[0]["silenced_by"] == [] and stalled[0]["inhibited_by"] is None


def test_status_command_shows_the_health_column(watcher: PageWatcher) -> None:
    """``omealert status`` shows each alert's target health and each server's, from the file."""
    out = subprocess.run(
        [sys.executable, "-m", "omealert", "status", "--state", str(watcher.state)],
        capture_output=True, text=True, timeout=30, env=bare_env(watcher.state.parent),
    )  # fmt: skip
    lines = out.stdout.splitlines()
    assert lines[0].split()[:5] == ["STATE", "SEVERITY", "RULE", "TARGET", "HEALTH"], out
    row = next(ln for ln in lines if "ingest-stalled" in ln).split()
    assert row[3:5] == ["origin/default/live/cam1", "stalled"]
    assert "health: origin stalled (1 of 3 streams stalled)" in lines
    data = json.loads(
        subprocess.run(
            [sys.executable, "-m", "omealert", "status", "--state", str(watcher.state),
             "--format", "json"],
            capture_output=True, text=True, timeout=30, env=bare_env(watcher.state.parent),
        ).stdout
    )  # fmt: skip
    assert {r["health"] for r in data if r["rule"] == "ingest-stalled"} == {"stalled"}


def test_an_acknowledgement_shows_on_the_alert(watcher: PageWatcher) -> None:
    """``omealert ack`` on the stalled alert: the API and the page say who and why."""
    ack = subprocess.run(
        [sys.executable, "-m", "omealert", "ack", "--matcher", "rule=ingest-stalled",
         "--comment", "swapping the <encoder>", "--by", "alice", "--state", str(watcher.state)],
        capture_output=True, text=True, timeout=30, env=bare_env(watcher.state.parent),
    )  # fmt: skip
    assert ack.returncode == 0, ack

    def acked() -> dict[str, Any] | None:
        alerts = watcher.json("/api/v1/alerts")["alerts"]
        return next(a["ack"] for a in alerts if a["rule"] == "ingest-stalled")

    assert wait_until(lambda: acked() is not None, 10)  # silences and acks are read every 2 s
    assert acked() == {**(acked() or {}), "by": "alice", "comment": "swapping the <encoder>"}
    assert wait_until(
        lambda: (
            "acknowledged by alice: swapping the &lt;encoder&gt;" in watcher.get("/")[2].decode()
        ),
        10,
    )


def test_unknown_state_is_a_clear_400(watcher: PageWatcher) -> None:
    """A state that does not exist is refused, naming the ones that do."""
    status, _, body = watcher.get("/api/v1/streams?state=sleepy")
    assert status == 400 and b"stalled" in body and b"sleepy" in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/", "/api/v1/health", "/stream/origin/default/live/cam1"])
def test_everything_but_get_is_405(watcher: PageWatcher, method: str, path: str) -> None:
    """The page and its API are read-only."""
    status, headers, _ = watcher.get(path, method=method)
    assert status == 405 and "GET" in headers["Allow"]


@pytest.mark.parametrize("path", ["/", "/api/v1/alerts", "/nope", "/static/page.js"])
def test_security_headers_on_every_answer(watcher: PageWatcher, path: str) -> None:
    """CSP without inline script, nosniff and no referrer, errors included."""
    _, headers, _ = watcher.get(path)
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


def test_page_shows_states_and_escapes_names(watcher: PageWatcher) -> None:
    """The HTML carries each state as a word and the odd name escaped, never raw."""
    status, headers, body = watcher.get("/")
    html = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert 'data-key="origin/default/live/cam1"' in html and "‖</span> stalled" in html
    assert "x&amp;y&#39;z" in html and ODD not in html
    assert "<script>" not in html  # the only script is /static/page.js
    stream = watcher.get("/stream/origin/default/live/cam1")
    assert stream[0] == 200 and b"providers.lastRecvTime" in stream[2]
    assert watcher.get("/stream/origin/default/live/nobody")[0] == 404


def test_no_secret_on_any_page_or_api(watcher: PageWatcher) -> None:
    """Neither the OME token nor a webhook URL appears anywhere the listener serves."""
    token64 = base64.b64encode(TOKEN.encode()).decode()
    paths = ["/", "/api/v1/health", "/api/v1/alerts", "/api/v1/streams", "/metrics"]
    paths += ["/stream/origin/default/live/cam1"]
    for path in paths:
        body = watcher.get(path)[2].decode()
        for secret in (TOKEN, token64, HOOK_SECRET, "127.0.0.1:9/hooks"):
            assert secret not in body, (path, secret)


def test_metrics_have_one_health_series_per_target(watcher: PageWatcher) -> None:
    """``omealert_target_health`` is 1 for each target's current state only."""
    text = watcher.get("/metrics")[2].decode()
    lines = [ln for ln in text.splitlines() if ln.startswith("omealert_target_health{")]
    assert (
        'omealert_target_health{app="live",server="origin",state="stalled",stream="cam1",'
        'vhost="default"} 1.0' in lines
    )
    assert len(lines) == 5  # three streams, one app, one server
    assert not any('stream="cam1"' in ln and 'state="healthy"' in ln for ln in lines)


def test_metrics_targets_off_leaves_the_series_out(tmp_path: Path) -> None:
    """``--metrics-targets off`` keeps /metrics to the watcher's own series."""
    with Simulator(access_token=TOKEN) as sim:
        sim.add_stream("default", "live", "cam1")
        w = PageWatcher(tmp_path, sim, interval="300ms", args=("--metrics-targets", "off"))
        try:
            assert wait_until(lambda: w.json("/api/v1/streams")["total"] == 1, 20)
            text = w.get("/metrics")[2].decode()
            assert "omealert_ticks_total" in text and "omealert_target_health" not in text
        finally:
            w.stop()


AUTH = """\
listen_auth:
  username: ops
  password: ${PAGE_PASSWORD}
"""


def test_listen_auth_asks_for_basic_auth(tmp_path: Path) -> None:
    """With ``listen_auth`` the page, API and /metrics need the password; /healthz does not."""
    password = "PAGE-PASSWORD-77e1"
    with Simulator(access_token=TOKEN) as sim:
        sim.add_stream("default", "live", "cam1")
        w = PageWatcher(
            tmp_path, sim, interval="300ms", extra=AUTH, env={"PAGE_PASSWORD": password}
        )
        try:
            good = "Basic " + base64.b64encode(f"ops:{password}".encode()).decode()
            bad = "Basic " + base64.b64encode(b"ops:guess").decode()
            for path in ("/", "/api/v1/streams", "/metrics", "/static/page.css"):
                status, headers, _ = w.get(path)
                assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
                assert w.get(path, headers={"Authorization": bad})[0] == 401
                assert w.get(path, headers={"Authorization": good})[0] == 200
            assert w.get("/healthz")[0] == 200
            assert password not in w.stderr()
        finally:
            w.stop()
