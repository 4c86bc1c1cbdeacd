"""Flapping and server dependencies in a real ``omealert watch`` process.

The watcher runs as a subprocess against simulators on loopback (one per server) and
notifies a loopback webhook, on the real clock at a 200 ms interval; the tests wait on
what the webhook received and on the watcher's tick counter, never on fixed sleeps, and
read ``status``/``check --format json`` as an operator (or a status page) would.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from omealert.simulator import Simulator
from tests.cli.test_watch import REPO, TOKEN, Watcher, write
from tests.helpers import wait_until
from tests.receivers import HttpReceiver

LIVE = ("default", "live")
SERVERS = ("origin-1", "edge-1", "edge-2")


@pytest.fixture
def sims() -> Iterator[dict[str, Simulator]]:
    started = {name: Simulator(access_token=TOKEN) for name in SERVERS}
    for sim in started.values():
        sim.start()
        sim.add_stream(*LIVE, "cam1", viewers={"webrtc": 5})
    try:
        yield started
    finally:
        for sim in started.values():
            sim.stop()


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[Path], Watcher]]:
    """Start watchers; each is killed by its pid afterwards and its output audited."""
    started: list[Watcher] = []

    def launch(config: Path) -> Watcher:
        w = Watcher(tmp_path, config, tmp_path / "state.db", f"watch-{len(started)}", ())
        started.append(w)
        return w.wait_ready()

    yield launch
    for w in started:
        w.kill()
        text = w.stdout() + w.stderr()
        assert TOKEN not in text and "Traceback" not in text, text


def config(sims: dict[str, Simulator], http: HttpReceiver, rules: str, extra: str = "") -> str:
    servers = "".join(
        f"  - name: {name}\n    url: {sim.url}\n    access_token: {TOKEN}\n    timeout: 2s\n"
        + ("    depends_on: [origin-1]\n" if name != "origin-1" else "")
        for name, sim in sims.items()
    )
    return f"""\
servers:
{servers}interval: 200ms
{extra}defaults:
  channels: [hook]
channels:
  hook:
    urls: ["json://127.0.0.1:{http.port}/hook"]
    format: text
rules:
{rules}"""


def omealert(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omealert", *args],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def titles(http: HttpReceiver) -> list[str]:
    return [str(b["title"]) for b in http.json_bodies()]


def message(http: HttpReceiver, title: str) -> str:
    return next(str(b["message"]) for b in http.json_bodies() if b["title"] == title)


NO_VIEWERS = """\
  - name: no-viewers
    when: webrtc publishers < 1
    servers: [origin-1]
    flapping: {window: 10, high: 30%, low: 25%}
"""
CAM1 = "origin-1/default/live/cam1"


def test_a_toggling_alert_flaps_once_and_settles(
    start: Callable[[Path], Watcher],
    sims: dict[str, Simulator],
    http: HttpReceiver,
    tmp_path: Path,
) -> None:
    """Viewers toggled every tick or two: a few pages, one [FLAPPING], silence while it
    toggles on, `status` shows it; once it holds still firing, [FLAPPING ENDED] then
    [FIRING]; `check --format json` on the state file shows the flap record."""
    cfg = write(
        tmp_path / "omealert.yaml", config({"origin-1": sims["origin-1"]}, http, NO_VIEWERS)
    )
    w = start(cfg)
    origin = sims["origin-1"]
    flapping = f"[FLAPPING] no-viewers on {CAM1}"
    count = 5
    for _ in range(40):
        count = 0 if count else 5
        origin.set_viewers(*LIVE, "cam1", "webrtc", count)
        w.wait_ticks(1)
        if flapping in titles(http):
            break
    assert flapping in titles(http), (titles(http), w.stderr())
    at_start = len(titles(http))
    for _ in range(6):  # it keeps toggling: nothing is sent
        count = 0 if count else 5
        origin.set_viewers(*LIVE, "cam1", "webrtc", count)
        w.wait_ticks(1)
    status = omealert("status", "--state", "state.db", "--format", "json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    row = next(r for r in json.loads(status.stdout) if r["target"] == CAM1)
    assert row["flapping"]["flapping"] is True and row["flapping"]["window"] == 10
    assert len(titles(http)) == at_start
    origin.set_viewers(*LIVE, "cam1", "webrtc", 0)
    ended = f"[FLAPPING ENDED] no-viewers on {CAM1}"
    assert wait_until(lambda: len(titles(http)) >= at_start + 2, 20), (titles(http), w.stderr())
    assert titles(http)[at_start - 1 :] == [flapping, ended, f"[FIRING] no-viewers on {CAM1}"]
    assert "firing now" in message(http, ended)
    before = titles(http)[: at_start - 1]
    assert before and all(t.startswith(("[FIRING]", "[RESOLVED]")) for t in before)

    # toggle into flapping again, stop the watcher, and ask `check` about the state file
    for _ in range(40):
        count = 0 if count else 5
        origin.set_viewers(*LIVE, "cam1", "webrtc", count)
        w.wait_ticks(1)
        if titles(http).count(flapping) == 2:
            break
    origin.set_viewers(*LIVE, "cam1", "webrtc", 0)
    w.signal(signal.SIGTERM)
    assert w.wait_exit() == 0
    check = omealert(
        "check", "-c", str(cfg), "--state", "state.db", "--format", "json", cwd=tmp_path
    )
    doc = json.loads(check.stdout)
    alert = next(a for a in doc["alerts"] if a["rule"] == "no-viewers")
    assert alert["flapping"]["flapping"] is True, doc


STALLED = """\
  - name: stalled
    when: lastRecvTime stale > 1s
"""


def test_origin_outage_holds_edge_alerts_until_the_grace_ends(
    start: Callable[[Path], Watcher],
    sims: dict[str, Simulator],
    http: HttpReceiver,
    tmp_path: Path,
) -> None:
    """The origin's API fails while both edges' cam1 stalls: one origin page counting two
    held alerts, `status` names them; after the origin recovers, edge-2 (recovered) never
    pages and edge-1 (still stalled) pages once the 2s grace has passed."""
    extra = "dependency_grace: 2s\nome_api_down:\n  for: 2s\n"
    w = start(write(tmp_path / "omealert.yaml", config(sims, http, STALLED, extra)))
    w.wait_ticks(2)
    sims["origin-1"].set_fault("500")
    for edge in ("edge-1", "edge-2"):
        sims[edge].stall(*LIVE, "cam1")
    down = "[FIRING] ome-api-down on origin-1"
    assert wait_until(lambda: down in titles(http), 20), (titles(http), w.stderr())
    assert "also affects edge-1, edge-2: 2 alerts held" in message(http, down)
    status = omealert("status", "--state", "state.db", "--format", "json", cwd=tmp_path)
    rows = {r["target"]: r for r in json.loads(status.stdout)}
    held = rows["edge-1/default/live/cam1"]["held"]
    assert held["by"] == [{"rule": "ome-api-down", "target": "origin-1"}]
    assert rows["origin-1"]["holds"]["held"] == 2

    sims["edge-2"].resume(*LIVE, "cam1")
    sims["origin-1"].clear_faults()
    up = "[RESOLVED] ome-api-down on origin-1"
    assert wait_until(lambda: up in titles(http), 20), (titles(http), w.stderr())
    late = "[FIRING] stalled on edge-1/default/live/cam1"
    assert wait_until(lambda: late in titles(http), 20), (titles(http), w.stderr())
    w.wait_ticks(3)
    assert titles(http) == [down, up, late]
