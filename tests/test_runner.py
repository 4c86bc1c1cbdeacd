"""The whole pipeline in one process on simulated time: simulator → client → engine →
planner → outbox → apprise → real SMTP and HTTP receivers, with the state in SQLite."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from omealert.clock import FakeClock
from omealert.config.load import load_config_text
from omealert.notify.outbox import retry_delay
from omealert.runner import Runner
from omealert.simulator import Simulator
from omealert.state.store import StateStore

from .helpers import run_async
from .receivers import HttpReceiver, SmtpSink
from .rig import RunnerRig

LIVE = ("default", "live")

CONFIG = """\
servers:
  - name: origin
    url: {sim}
    access_token: ome-access-token
interval: 10s
defaults:
  channels: [hook, mail]
  repeat_interval: 5m
channels:
  hook:
    urls: ["json://127.0.0.1:{hook}/omealert/s3cr3t-path"]
  mail:
    urls: ["mailto://127.0.0.1:{smtp}?from=omealert@example.com&to=oncall@example.com"]
    format: text
rules:
  - name: ingest-stalled
    when: lastRecvTime stale > 30s
    severity: critical
    summary: "{{{{ target }}}}: no input for {{{{ value | duration }}}}"
"""


class Rig(RunnerRig):
    """The shared rig, with an SMTP sink as a second channel."""

    def __init__(self, tmp: Path, clock: FakeClock, sim: Simulator, hook: HttpReceiver,
                 smtp: SmtpSink) -> None:  # fmt: skip
        super().__init__(tmp, clock, sim, hook)
        self.smtp = smtp
        text = CONFIG.format(sim=sim.url, hook=hook.port, smtp=smtp.port)
        self.settings = load_config_text(text, "rig.yaml", env={})

    def start(self) -> Runner:
        return self.start_with(self.settings)

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.smtp.messages]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    clock = FakeClock()
    sim = Simulator(clock=clock.now)
    sim.start()
    hook = HttpReceiver()
    hook.start()
    smtp = SmtpSink()
    smtp.start()
    sim.add_stream(*LIVE, "cam1", viewers={"webrtc": 5})
    sim.add_stream(*LIVE, "cam2", viewers={"webrtc": 5})
    try:
        yield Rig(tmp_path, clock, sim, hook, smtp)
    finally:
        smtp.stop()
        hook.stop()
        sim.stop()


FIRING = "[FIRING] ingest-stalled on origin/default/live/cam1"
RESOLVED = "[RESOLVED] ingest-stalled on origin/default/live/cam1"


@run_async
async def test_stall_fires_once_and_resolves_once_on_both_channels(rig: Rig) -> None:
    """A stalled ingest is announced once by webhook and email, and resolved once."""
    rig.start()
    await rig.tick()
    rig.sim.stall(*LIVE, "cam1")
    for _ in range(6):
        await rig.tick()
    assert rig.titles() == [FIRING]
    assert rig.subjects() == [FIRING]
    body = rig.hook.json_bodies()[0]
    assert "origin/default/live/cam1: no input for" in body["message"]
    assert body["type"] == "failure"
    rig.sim.resume(*LIVE, "cam1")
    await rig.tick()
    await rig.tick()
    assert rig.titles() == [FIRING, RESOLVED]
    assert rig.subjects() == [FIRING, RESOLVED]
    await rig.stop()


@run_async
async def test_repeat_interval_is_exact(rig: Rig) -> None:
    """While firing, the reminder comes exactly every repeat_interval (5m), not before."""
    rig.start()
    rig.sim.stall(*LIVE, "cam1")
    for _ in range(5):  # t = 0..40s: fires at the first tick where the age passes 30s
        await rig.tick()
    assert rig.titles() == [FIRING]
    for _ in range(29):  # up to 4m50s after the first notice
        await rig.tick()
    assert rig.titles() == [FIRING]
    await rig.tick()  # exactly 5m after
    assert rig.titles() == [FIRING, FIRING]
    assert [b["message"].startswith("Reminder") or "reminder" in b["message"].lower()
            for b in rig.hook.json_bodies()] == [False, True]  # fmt: skip
    await rig.stop()


@run_async
async def test_receiver_down_for_ten_minutes_gets_everything_once_in_order(rig: Rig) -> None:
    """A webhook down for 10 simulated minutes gets every message once, in order, later;
    email is not held back and polling goes on meanwhile."""
    rig.start()
    rig.hook.set_down(True)
    rig.sim.stall(*LIVE, "cam1")
    for _ in range(5):
        await rig.tick()
    rig.sim.resume(*LIVE, "cam1")
    for _ in range(55):  # ten minutes of 10 s ticks: fire, resolve, retries
        await rig.tick()
    assert rig.subjects() == [FIRING, RESOLVED]  # email went out on time
    assert rig.hook.json_bodies() == []
    assert rig.runner is not None and rig.runner.outbox is not None
    assert len(rig.runner.outbox) == 2
    rig.hook.set_down(False)
    for _ in range(int(retry_delay(10) / 10) + 2):
        await rig.tick()
    assert rig.titles() == [FIRING, RESOLVED]
    assert len(rig.runner.outbox) == 0
    await rig.stop()


@run_async
async def test_restart_neither_repeats_nor_forgets(rig: Rig) -> None:
    """After a restart, a firing alert already announced is not announced again, and its
    resolve still arrives."""
    rig.start()
    rig.sim.stall(*LIVE, "cam1")
    for _ in range(5):
        await rig.tick()
    assert rig.titles() == [FIRING]
    await rig.stop()
    rig.start()  # a new process: same state file, same clock
    for _ in range(3):
        await rig.tick()
    assert rig.titles() == [FIRING]
    rig.sim.resume(*LIVE, "cam1")
    await rig.tick()
    assert rig.titles() == [FIRING, RESOLVED]
    await rig.stop()


def _watch_config(rig: Rig) -> str:
    """The rig's servers and channels, 200 ms ticks and 300 ms requests, and two rules
    that fire on cam1 and cam2 (5 WebRTC viewers each): one info, one warning."""
    head = CONFIG.split("rules:\n")[0].format(
        sim=rig.sim.url, hook=rig.hook.port, smtp=rig.smtp.port
    )
    return head.replace("interval: 10s", "interval: 200ms").replace(
        "access_token: ome-access-token",
        "access_token: ome-access-token\n    timeout: 300ms",
    ) + (
        "rules:\n"
        "  - name: watched-info\n    when: webrtc publishers > 0\n    severity: info\n"
        "  - name: watched-warning\n    when: webrtc publishers > 0\n    severity: warning\n"
    )


def _logged(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "omealert"]


@run_async
async def test_an_info_rule_firing_is_not_a_warning(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """ "→ firing" is logged at INFO for an info rule, at WARNING for warning and critical
    ones (issue 21, defect 6)."""
    rig.start_with(load_config_text(_watch_config(rig), "rig.yaml", env={}))
    caplog.set_level(logging.INFO, logger="omealert")
    await rig.tick()
    rig.sim.set_fault("500")
    await rig.tick()  # ome-api-down (critical, for: 0s) fires
    await rig.stop()
    firing = [(level, m.split(":")[0]) for level, m in _logged(caplog) if "→ firing" in m]
    assert sorted(firing) == [
        ("INFO", "watched-info origin/default/live/cam1"),
        ("INFO", "watched-info origin/default/live/cam2"),
        ("WARNING", "ome-api-down origin"),
        ("WARNING", "watched-warning origin/default/live/cam1"),
        ("WARNING", "watched-warning origin/default/live/cam2"),
    ]


@run_async
async def test_slow_ticks_while_ome_hangs_are_two_lines(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """While OME hangs every tick overruns the interval: one WARNING when that starts, one
    INFO when ticks are on time again, and every slow tick counted (issue 21, defect 6)."""
    runner = rig.start_with(load_config_text(_watch_config(rig), "rig.yaml", env={}))
    hang = 4  # ticks: OME accepts the connection and never answers /v1/vhosts in time
    rig.sim.set_fault("slow", path="/v1/vhosts", times=hang, delay=5)
    stop = asyncio.Event()
    caplog.set_level(logging.INFO, logger="omealert")
    watching = asyncio.create_task(runner.watch(stop, flush_timeout=1))

    async def ticked() -> None:
        while runner.metrics.ticks < hang + 3 and not watching.done():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(ticked(), timeout=30)
    stop.set()
    await watching
    assert rig.store is not None
    rig.store.close()
    slow = [(level, m) for level, m in _logged(caplog) if "interval" in m]
    assert runner.metrics is not None
    assert runner.metrics.value("omealert_slow_ticks_total") == hang
    assert [level for level, _ in slow] == ["WARNING", "INFO"], slow
    assert "longer than the 0.20s interval" in slow[0][1]
    assert f"within the 0.20s interval again after {hang} slow tick(s)" in slow[1][1]


@run_async
async def test_undelivered_message_survives_a_restart(rig: Rig) -> None:
    """A message queued while its receiver is down is delivered by the next process."""
    rig.start()
    rig.hook.set_down(True)
    rig.sim.stall(*LIVE, "cam1")
    for _ in range(5):
        await rig.tick()
    await rig.stop()
    rig.hook.set_down(False)
    rig.start()
    for _ in range(3):
        await rig.tick(30)
    assert rig.titles() == [FIRING]
    await rig.stop()


@run_async
async def test_api_outage_does_not_resolve_and_fires_api_down(rig: Rig) -> None:
    """OME answering 500 keeps the stalled alert firing and raises ome-api-down once."""
    rig.start()
    rig.sim.stall(*LIVE, "cam1")
    for _ in range(5):
        await rig.tick()
    rig.sim.set_fault("500")
    for _ in range(3):
        await rig.tick()
    assert rig.titles() == [FIRING, "[FIRING] ome-api-down on origin"]
    rig.sim.clear_faults()
    await rig.tick()
    assert rig.titles()[-1] == "[RESOLVED] ome-api-down on origin"
    assert RESOLVED not in rig.titles()
    await rig.stop()


@run_async
async def test_exact_email_subject_and_body(rig: Rig) -> None:
    """The email carries the exact default subject and text body."""
    rig.start()
    rig.sim.stall(*LIVE, "cam1")
    for _ in range(5):
        await rig.tick()
    assert rig.smtp.wait_for(1)
    mail = rig.smtp.messages[0]
    assert str(mail["Subject"]) == FIRING
    body = (
        mail.get_content() if not mail.is_multipart() else mail.get_body(("plain",)).get_content()
    )  # type: ignore[union-attr]
    assert body.strip() == (
        "Rule ingest-stalled, severity critical\n\n"
        "- FIRING origin/default/live/cam1: no input for 40s — for 0s, "
        "since 2026-01-01 00:00:40 UTC"
    )
    await rig.stop()


@run_async
async def test_default_messages_speak_the_rules_units(rig: Rig) -> None:
    """Without templates, a value reads in its rule's unit (bit rate, byte rate, duration),
    and a resolved ome-api-down says the API answers again (issue 21, defect 8)."""
    head = CONFIG.split("rules:\n")[0].format(
        sim=rig.sim.url, hook=rig.hook.port, smtp=rig.smtp.port
    )
    text = head.replace("channels: [hook, mail]", "channels: [hook]") + (
        "rules:\n"
        "  - name: thin\n    match: default/live/cam1\n    when: avgThroughputIn < 500kbps\n"
        "  - name: slow-bytes\n    match: default/live/cam1\n"
        "    when: rate(totalBytesIn, 20s) < 100kB\n"
        "  - name: silent\n    match: default/live/cam2\n    when: lastRecvTime stale > 30s\n"
        "  - name: crowded\n    match: default/live/cam2\n    when: webrtc publishers > 3\n"
    )
    rig.start_with(load_config_text(text, "rig.yaml", env={}))
    rig.sim.set_bitrate(*LIVE, "cam1", 300_000)
    rig.sim.stall(*LIVE, "cam2")
    for _ in range(6):
        await rig.tick()
    rig.sim.set_fault("500")
    await rig.tick()
    rig.sim.clear_faults()
    await rig.tick()
    await rig.stop()
    # markdown escapes < and > (and brackets): read the text as a reader sees it
    bodies = {str(b["title"]): str(b["message"]).replace("\\", "") for b in rig.hook.json_bodies()}
    firing = "\n".join(m for t, m in bodies.items() if t.startswith("[FIRING]"))
    assert "cam1: avgThroughputIn < 500kbps (value 300 kbps)" in firing
    assert "cam1: rate(totalBytesIn, 20s) < 100kB (value 37.5 kB/s)" in firing
    assert "cam2: lastRecvTime stale > 30s (value 40s)" in firing
    assert "cam2: webrtc publishers > 3 (value 5)" in firing  # a count stays a number
    resolved = bodies["[RESOLVED] ome-api-down on origin"]
    assert "OME API on origin answers again (it was down: server_error: " in resolved
    assert "is not answering" not in resolved
    assert "is not answering (server_error: " in bodies["[FIRING] ome-api-down on origin"]


@run_async
async def test_many_streams_stalling_together_are_one_message(rig: Rig) -> None:
    """Thirty streams stalling in the same tick reach each channel as one message."""
    names = [f"s{i:02d}" for i in range(30)]
    rig.sim.add_streams(*LIVE, names)
    rig.start()
    await rig.tick()
    for name in names:
        rig.sim.stall(*LIVE, name)
    for _ in range(5):
        await rig.tick()
    assert rig.titles() == ["[FIRING:30] ingest-stalled (30 targets)"]
    assert rig.subjects() == ["[FIRING:30] ingest-stalled (30 targets)"]
    message = rig.hook.json_bodies()[0]["message"]
    assert all(f"origin/default/live/{n}" in message for n in names)
    await rig.stop()


@run_async
async def test_silence_added_by_another_process_stops_notices(rig: Rig) -> None:
    """A silence written into the state file (as `omealert silence add` does) mutes the
    alert; when it ends, the alert is announced."""
    rig.start()
    other = StateStore(rig.tmp / "state.db")  # the CLI's connection, while the runner's is open
    now = rig.clock.now()
    silence = other.add_silence(["stream=cam1"], now, now + 120, "ops", "swap encoder", now)
    other.close()
    rig.sim.stall(*LIVE, "cam1")
    for _ in range(10):
        await rig.tick()
    assert rig.titles() == []
    for _ in range(4):
        await rig.tick()
    assert rig.titles() == [FIRING]
    assert silence.id
    await rig.stop()


@run_async
async def test_status_shows_rules_without_a_value(rig: Rig) -> None:
    """A target whose value cannot be computed is reported by `omealert status`."""
    import io

    from omealert.cli.main import main

    text = CONFIG.format(sim=rig.sim.url, hook=rig.hook.port, smtp=rig.smtp.port)
    text = text.replace("lastRecvTime stale > 30s", "rate(totalBytesIn, 1m) < 1")
    rig.settings = load_config_text(text, "rig.yaml", env={})
    rig.start()
    await rig.tick()  # one poll: a one-minute rate has no value yet
    await rig.stop()
    out = io.StringIO()
    assert main(["status", "--state", str(rig.tmp / "state.db")], out=out) == 0
    assert "no pending or firing alerts" in out.getvalue()
    assert (
        "no value: ingest-stalled could not be computed for 2 target(s): "
        "origin/default/live/cam1, origin/default/live/cam2"
    ) in out.getvalue()


@run_async
async def test_status_and_reloads_show_each_servers_release(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """The first poll and every reload log each server's OME release and what omealert
    does about it; `omealert status` shows the same line."""
    import io

    from omealert.cli.main import main

    caplog.set_level(logging.INFO)
    runner = rig.start()
    await rig.tick()
    await runner.reload(rig.settings)
    await rig.stop()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("OME on ")]
    assert lines == [lines[0], lines[0]] and "is 0.18.0" in lines[0]
    out = io.StringIO()
    assert main(["status", "--state", str(rig.tmp / "state.db")], out=out) == 0
    assert "server origin: OME 0.18.0 (known behaviour, fixed in 0.19.0" in out.getvalue()


@run_async
async def test_sample_in_a_template_survives_the_target_vanishing(rig: Rig) -> None:
    """`sample.*` in a summary renders on a resolve by `on_missing` (the last sample seen),
    and after a restart, when there is no sample, as the documented empty one: no template
    failure either way (issue 21, defect 4)."""
    head = CONFIG.split("rules:\n")[0].format(
        sim=rig.sim.url, hook=rig.hook.port, smtp=rig.smtp.port
    )
    text = head + (
        "rules:\n"
        "  - name: llhls-watched\n"
        "    when: llhls publishers > 0\n"
        '    summary: "{{ target }}: {{ sample.publishers.connections.llhls }} LL-HLS viewers"\n'
    )
    rig.settings = load_config_text(text, "rig.yaml", env={})
    rig.sim.set_viewers(*LIVE, "cam1", "llhls", 3)
    rig.sim.set_viewers(*LIVE, "cam2", "llhls", 2)
    rig.start()
    await rig.tick()
    rig.sim.remove_stream(*LIVE, "cam1")
    await rig.tick()
    await rig.stop()
    rig.start()  # a new process: the firing cam2 alert comes back without a sample
    rig.sim.remove_stream(*LIVE, "cam2")
    await rig.tick()
    await rig.stop()
    messages = [str(b["message"]) for b in rig.hook.json_bodies()]
    assert [str(b["title"]) for b in rig.hook.json_bodies()] == [
        "[FIRING:2] llhls-watched (2 targets)",
        "[RESOLVED] llhls-watched on origin/default/live/cam1",
        "[RESOLVED] llhls-watched on origin/default/live/cam2",
    ]
    assert not [m for m in messages if "template failed" in m]
    assert "origin/default/live/cam1: 3 LL-HLS viewers" in messages[1]
    assert "origin/default/live/cam2: 0 LL-HLS viewers" in messages[2]
