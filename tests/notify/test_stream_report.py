"""``stream_report``: a stream that ends after being live long enough gets one message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from omealert.clock import FakeClock
from omealert.config.load import load_config_text
from omealert.simulator import Simulator
from tests.helpers import run_async
from tests.receivers import HttpReceiver
from tests.rig import RunnerRig

LIVE = ("default", "live")

CONFIG = """\
servers:
  - name: origin
    url: {sim}
    access_token: ome-access-token
interval: 10s
channels:
  hook:
    urls: ["json://127.0.0.1:{hook}/omealert/report"]
    format: text
stream_report:
  channels: [hook]
  min_duration: 1m
rules:
  - name: viewers-high
    when: publishers.viewers > 100
"""


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[RunnerRig]:
    clock = FakeClock()
    sim = Simulator(clock=clock.now)
    sim.start()
    hook = HttpReceiver()
    hook.start()
    try:
        yield RunnerRig(tmp_path, clock, sim, hook)
    finally:
        hook.stop()
        sim.stop()


def start(rig: RunnerRig) -> None:
    text = CONFIG.format(sim=rig.sim.url, hook=rig.hook.port)
    rig.start_with(load_config_text(text, "report.yaml", env={}))


@run_async
async def test_a_stream_that_ends_gets_its_story(rig: RunnerRig) -> None:
    """Duration, peak and average viewers, bytes, reconnects and alerts, once, at the end."""
    try:
        rig.sim.add_stream(*LIVE, "cam1", bitrate=1_000_000, viewers={"webrtc": 10})
        start(rig)
        for viewers in (10, 50, 150, 150, 30, 10):
            rig.sim.set_viewers(*LIVE, "cam1", "webrtc", viewers)
            await rig.tick()
        rig.sim.remove_stream(*LIVE, "cam1")  # the encoder drops and comes back: a reconnect
        rig.sim.add_stream(*LIVE, "cam1", bitrate=1_000_000, viewers={"webrtc": 10})
        for _ in range(3):
            await rig.tick()
        assert rig.hook.json_bodies() == [], "nothing is said while the stream is live"
        rig.sim.remove_stream(*LIVE, "cam1")
        await rig.tick()
        await rig.tick()
        bodies = rig.hook.json_bodies()
        reports = [b for b in bodies if str(b["title"]).startswith("[ENDED]")]
        assert [b["title"] for b in reports] == ["[ENDED] origin/default/live/cam1 after 1m 20s"]
        lines = str(reports[0]["message"]).splitlines()
        assert lines[0].startswith("origin/default/live/cam1 was live for 1m 20s (")
        assert lines[1] == "viewers: peak 150, average 48"  # 430 viewers over 9 polls
        assert lines[2].startswith("bytes: ") and " in, " in lines[2]
        assert "bytes: 0 B in" not in lines[2]
        assert lines[3:] == ["reconnects: 1", "alerts: viewers-high"]
    finally:
        await rig.stop()


@run_async
async def test_a_short_stream_and_an_unreadable_server_say_nothing(rig: RunnerRig) -> None:
    """Shorter than min_duration: no report; a failed poll does not end its streams."""
    try:
        rig.sim.add_stream(*LIVE, "short")
        rig.sim.add_stream(*LIVE, "long")
        start(rig)
        for _ in range(2):
            await rig.tick()
        rig.sim.remove_stream(*LIVE, "short")
        await rig.tick()
        rig.sim.set_fault("500")
        for _ in range(8):
            await rig.tick()
        rig.sim.clear_faults()
        await rig.tick()
        assert [b for b in rig.hook.json_bodies() if "[ENDED]" in str(b["title"])] == []

    finally:
        await rig.stop()


def test_report_and_page_settings_are_checked() -> None:
    """An unknown report channel is an error at its position; the page settings load."""
    from omealert.errors import ConfigError

    bad = CONFIG.format(sim="http://127.0.0.1:1", hook=1).replace(
        "channels: [hook]\n  min", "channels: [hok]\n  min"
    )
    with pytest.raises(ConfigError) as exc:
        load_config_text(bad, "report.yaml", env={})
    assert any("unknown channel 'hok'" in str(i) for i in exc.value.issues)
    assert any(str(i).startswith("report.yaml:11:14:") for i in exc.value.issues), exc.value.issues
    page = CONFIG.format(sim="http://127.0.0.1:1", hook=1) + (
        "health:\n  stale_after: 20s\nlisten_auth:\n  username: ops\n  password: ${PW}\n"
    )
    settings = load_config_text(page, "page.yaml", env={"PW": "pw-1"})
    assert settings.page.stale_after_s == 20.0
    assert settings.page.listen_auth == ("ops", "pw-1")
    assert settings.page.report_channels == ("hook",) and settings.page.report_min_duration_s == 60
    assert "pw-1" not in repr(settings)


def test_a_targeted_poll_ends_no_stream_and_hides_none() -> None:
    """A poll of the few streams an OME event named lists too little to call others gone."""
    from omealert.model import Target
    from omealert.runner.watching import Watching
    from tests.helpers import poll

    settings = load_config_text(
        CONFIG.format(sim="http://127.0.0.1:1", hook=1).replace("1m", "0s"), "r.yaml", env={}
    )
    watching = Watching(settings, health=True)
    full = poll(0.0, {"default/live/cam1": {}, "default/live/cam2": {}})
    assert watching.observe([full], [], frozenset(), settings, 0.0) == []
    cam1 = Target("origin", "default", "live", "cam1")
    targeted = poll(10.0, {"default/live/cam1": {}})
    targeted.covers = frozenset({cam1})
    assert watching.observe([targeted], [], frozenset(), settings, 10.0) == []
    assert watching.health is not None and len(watching.health.streams) == 2
    gone = poll(20.0, {"default/live/cam1": {}})
    reports = watching.observe([gone], [], frozenset(), settings, 20.0)
    assert [m.targets for m in reports] == [["origin/default/live/cam2"]]
