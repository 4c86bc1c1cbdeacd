"""Acks, one-off maintenance and config time intervals against a real ``omealert watch``.

The watcher runs as a process (``tests/cli/test_watch.py``'s helpers: real clock, 200 ms
interval, killed by pid and audited for secrets and tracebacks); ``omealert ack`` and
``omealert maintenance`` run as separate processes on its state file while it runs, as an
operator would; the simulator plays OME and the webhook and SMTP sinks are on loopback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from omealert.simulator import Simulator
from tests.cli import test_watch
from tests.cli.test_watch import CAM1, CAM2, StartWatcher, config_text, subjects, titles, write
from tests.helpers import bare_env, wait_until
from tests.receivers import HttpReceiver, SmtpSink

# test_watch's fixtures, under the names the tests below ask for
sim, http, smtp, start, cfg_path = (
    test_watch.sim,
    test_watch.http,
    test_watch.smtp,
    test_watch.start,
    test_watch.cfg_path,
)

REPEATING = """\
  - name: stalled
    when: lastRecvTime stale > 1s
    repeat_interval: 1s
"""


def cli(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One ``omealert`` command on the watcher's state file, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "omealert", *args, "--state", str(tmp / "state.db")],
        cwd=tmp,
        env=bare_env(tmp),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def status(tmp: Path) -> list[dict[str, Any]]:
    run = cli(tmp, "status", "--format", "json")
    assert run.returncode == 0, run
    rows: list[dict[str, Any]] = json.loads(run.stdout)
    return rows


def test_ack_stops_repeats_tells_who_and_the_resolve_still_goes_everywhere(
    start: StartWatcher,
    sim: Simulator,
    http: HttpReceiver,
    smtp: SmtpSink,
    cfg_path: Path,
    tmp_path: Path,
) -> None:
    """Acked while repeating every second: one ack notice per channel, no more repeats, the
    resolve on both channels; the next stall is a new alert, announced as usual."""
    w = start(write(cfg_path, config_text(sim, http, smtp, REPEATING)))
    firing = f"[FIRING] stalled on {CAM1}"
    sim.stall("default", "live", "cam1")
    assert wait_until(lambda: titles(http).count(firing) >= 2, 15), w.stderr()  # it repeats

    added = cli(tmp_path, "ack", "-m", "stream=cam1", "--comment", "on it", "--by", "alice")
    assert added.returncode == 0, added
    ack_id = added.stdout.split()[-1]
    assert f"stalled {CAM1}" in added.stdout
    notice = f"[ACKNOWLEDGED] stalled on {CAM1} by alice"
    assert wait_until(lambda: notice in titles(http) and notice in subjects(smtp), 15), w.stderr()
    body = next(b for b in http.json_bodies() if b["title"] == notice)
    assert "acknowledged by alice: on it" in body["message"]
    assert body["type"] == "info"

    [row] = status(tmp_path)
    assert row["ack"]["by"] == "alice" and row["ack"]["comment"] == "on it"
    assert row["ack"]["id"] == ack_id and row["ack"]["expires_at"] is None
    listed = cli(tmp_path, "ack", "list")
    assert ack_id in listed.stdout and "active" in listed.stdout, listed

    after_ack = titles(http)
    w.wait_ticks(12)  # 2.4 s: two repeat intervals and more
    assert titles(http) == after_ack, "an acknowledged alert repeated"

    sim.resume("default", "live", "cam1")
    resolved = f"[RESOLVED] stalled on {CAM1}"
    assert wait_until(lambda: resolved in titles(http) and resolved in subjects(smtp), 15)
    assert "resolved" in cli(tmp_path, "ack", "list", "--all").stdout

    count = titles(http).count(firing)
    sim.stall("default", "live", "cam1")  # a new alert: not covered by the old ack
    assert wait_until(lambda: titles(http).count(firing) >= count + 2, 15), w.stderr()
    assert titles(http).count(notice) == 1 and subjects(smtp).count(notice) == 1


def test_ack_matching_no_firing_alert_is_refused(
    start: StartWatcher,
    sim: Simulator,
    http: HttpReceiver,
    smtp: SmtpSink,
    cfg_path: Path,
    tmp_path: Path,
) -> None:
    """With nothing firing, ``ack`` says so and stores nothing; ``ack remove`` of an unknown
    id fails clearly."""
    w = start(write(cfg_path, config_text(sim, http, smtp)))
    w.wait_ticks(2)
    refused = cli(tmp_path, "ack", "-m", "stream=cam1", "--comment", "x")
    assert refused.returncode == 1, refused
    assert "no firing alert matches stream=cam1" in refused.stderr
    assert cli(tmp_path, "ack", "list", "--all").stdout == "no acknowledgements\n"
    removed = cli(tmp_path, "ack", "remove", "abcdef12")
    assert removed.returncode == 1 and "no active acknowledgement" in removed.stderr


def test_maintenance_holds_new_alerts_lets_resolves_through_and_says_why(
    start: StartWatcher,
    sim: Simulator,
    http: HttpReceiver,
    smtp: SmtpSink,
    cfg_path: Path,
    tmp_path: Path,
) -> None:
    """During a maintenance: cam1 (told before) resolves and that is sent, saying why; cam3
    begins and ends inside and sends nothing; cam2 begins inside and still fires at the end,
    so it is told then, once."""
    sim.add_stream("default", "live", "cam3")
    w = start(write(cfg_path, config_text(sim, http, smtp)))
    sim.stall("default", "live", "cam1")
    assert wait_until(lambda: f"[FIRING] stalled on {CAM1}" in titles(http), 15), w.stderr()

    added = cli(
        tmp_path, "maintenance", "add", "-m", "stream=~cam.*", "--for", "1h",
        "--comment", "swapping the encoder", "--by", "bob",
    )  # fmt: skip
    assert added.returncode == 0, added
    mid = added.stdout.split()[-1]
    sim.stall("default", "live", "cam2")
    sim.stall("default", "live", "cam3")
    assert wait_until(lambda: len([r for r in status(tmp_path) if r["state"] == "firing"]) == 3)
    shown = cli(tmp_path, "status")
    assert f"maintenance {mid} of stream=~cam.* until " in shown.stdout
    assert "by bob: swapping the encoder" in shown.stdout
    assert {r["silence"]["kind"] for r in status(tmp_path)} == {"maintenance"}
    assert mid in cli(tmp_path, "maintenance", "list").stdout

    sim.resume("default", "live", "cam1")
    sim.resume("default", "live", "cam3")
    resolved = f"[RESOLVED] stalled on {CAM1}"
    assert wait_until(lambda: resolved in titles(http) and resolved in subjects(smtp), 15)
    body = next(b for b in http.json_bodies() if b["title"] == resolved)
    assert f"under maintenance {mid}: swapping the encoder" in body["message"]

    assert wait_until(lambda: [r["target"] for r in status(tmp_path)] == [CAM2])
    w.wait_ticks(3)
    cam2 = f"[FIRING] stalled on {CAM2}"
    assert cam2 not in titles(http)
    ended = cli(tmp_path, "maintenance", "remove", mid[:5])  # the window ends now
    assert ended.returncode == 0, ended
    assert wait_until(lambda: cam2 in titles(http) and cam2 in subjects(smtp), 20), w.stderr()
    w.wait_ticks(5)
    assert titles(http).count(cam2) == 1 and subjects(smtp).count(cam2) == 1
    assert not [t for t in titles(http) if t.endswith("cam3")]
    assert "ended" in cli(tmp_path, "maintenance", "list", "--all").stdout


def test_a_mute_interval_added_by_reload_holds_firing_but_not_the_resolve(
    start: StartWatcher,
    sim: Simulator,
    http: HttpReceiver,
    smtp: SmtpSink,
    cfg_path: Path,
) -> None:
    """A config reloaded with an always-active mute interval on every channel: a new stall
    sends nothing, a resolve of an alert told before is sent and says why; reloading it away
    tells the alert that began meanwhile, once."""
    base = config_text(sim, http, smtp)
    w = start(write(cfg_path, base))
    sim.stall("default", "live", "cam1")
    assert wait_until(lambda: f"[FIRING] stalled on {CAM1}" in titles(http), 15), w.stderr()

    muted = base.replace(
        "    format: text\n", "    format: text\n    mute_time_intervals: [always]\n"
    )
    muted = muted.replace(
        "rules:\n", "time_intervals:\n  - name: always\n    time_intervals: [{}]\nrules:\n"
    )
    write(cfg_path, muted)
    w.wait_log("config reloaded")
    sim.stall("default", "live", "cam2")
    sim.resume("default", "live", "cam1")
    resolved = f"[RESOLVED] stalled on {CAM1}"
    assert wait_until(lambda: resolved in titles(http) and resolved in subjects(smtp), 15)
    body = next(b for b in http.json_bodies() if b["title"] == resolved)
    assert "inside mute time interval 'always'" in body["message"]
    w.wait_ticks(5)
    cam2 = f"[FIRING] stalled on {CAM2}"
    assert cam2 not in titles(http)

    write(cfg_path, base)
    w.wait_log("config reloaded", 2)
    assert wait_until(lambda: cam2 in titles(http) and cam2 in subjects(smtp), 15), w.stderr()
    w.wait_ticks(5)
    assert titles(http).count(cam2) == 1
