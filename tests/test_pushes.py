"""Pushes and recordings end to end: the example rules of rules.example.yaml against the
simulator over real HTTP, through the runner to a webhook and SMTP, and the commands an
operator runs; no push stream key reaches any of it."""

from __future__ import annotations

import gzip
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from omealert.clock import FakeClock
from omealert.config.load import load_config_text
from omealert.simulator import Simulator

from .helpers import bare_env, run_async
from .receivers import HttpReceiver, SmtpSink
from .rig import RunnerRig

REPO = Path(__file__).resolve().parent.parent
APP = ("default", "app")
#: push stream keys: one in OME's streamKey, one inside an RTMP url
KEY = "yt-KEY-7q2w-s3cr3t"
URL_KEY = "cdn-KEY-k8m1-s3cr3t"
KEYS = (KEY, URL_KEY)


def no_key(where: str, text: str) -> None:
    for key in KEYS:
        assert key not in text, f"a push stream key leaked into {where}"


def example_settings(sim: Simulator, hook: HttpReceiver, smtp: SmtpSink) -> object:
    """rules.example.yaml as shipped, pointed at the simulator and the local receivers."""
    text = (REPO / "rules.example.yaml").read_text(encoding="utf-8")
    text = text.replace("127.0.0.1:2525", f"127.0.0.1:{smtp.port}")
    env = {"OME_API_URL": sim.url, "OMEALERT_SLACK_URL": f"json://127.0.0.1:{hook.port}/hook"}
    return load_config_text(text, "rules.example.yaml", env=env)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[RunnerRig]:
    clock = FakeClock(1_780_000_000.0)
    with Simulator(clock=clock.now) as sim, HttpReceiver() as hook, SmtpSink() as smtp:
        sim.add_stream(*APP, "cam1")
        sim.start_push(*APP, "yt", "cam1", "rtmp://a.rtmp.youtube.com/live2", stream_key=KEY,
                       destination="refused")  # fmt: skip
        sim.start_push(*APP, "cdn", "cam1", f"rtmp://cdn.example.com/live/{URL_KEY}")
        sim.start_record(*APP, "rec-disk", "cam1", file_path="/small/${Sequence}.ts")
        sim.start_record(*APP, "rec1", "cam1")
        r = RunnerRig(tmp_path, clock, sim, hook)
        r.smtp = smtp  # type: ignore[attr-defined]
        r.start_with(example_settings(sim, hook, smtp))  # type: ignore[arg-type]
        yield r


def firing(rig: RunnerRig) -> dict[tuple[str, str], dict[str, str]]:
    assert rig.runner is not None
    return {
        (i.rule, i.target.key): i.labels
        for i in rig.runner.engine.instances()
        if i.state.value == "firing"
    }


@run_async
async def test_example_push_and_record_rules_fire_on_the_simulator_without_a_key(
    rig: RunnerRig, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused push fires push-not-pushing after 15s, a failed record record-error at
    once, a stalled source push-sending-nothing and record-not-growing; the healthy push
    never alerts as not pushing; labels name push_id and destination; no key anywhere."""
    caplog.set_level(logging.DEBUG)
    for _ in range(3):  # t = 0, 5, 10 s: not pushing for 10 s, not yet 15 s
        await rig.tick(5)
    assert not firing(rig)
    rig.sim.fail_record(*APP, "rec-disk")
    await rig.tick(5)
    await rig.tick(5)
    fired = firing(rig)
    [(push_key, labels)] = [(k, v) for (r, k), v in fired.items() if r == "push-not-pushing"]
    assert labels["push_id"] == "yt"
    assert labels["destination"] == "rtmp://a.rtmp.youtube.com/live2"
    assert [v["record"] for (r, _), v in fired.items() if r == "record-error"] == [
        "/small/${Sequence}.ts"
    ]
    rig.sim.stall(*APP, "cam1")
    for _ in range(30):  # 150 s of a stalled source
        await rig.tick(5)
    fired = firing(rig)
    [sending] = [v for (r, _), v in fired.items() if r == "push-sending-nothing"]
    assert sending["push_id"] == "cdn"
    assert sending["destination"] == "rtmp://cdn.example.com/live"  # the url's key cut off
    assert [v["record_id"] for (r, _), v in fired.items() if r == "record-not-growing"] == ["rec1"]
    title = f"[FIRING] push-not-pushing on {push_key}"
    assert push_key.startswith("origin-1/default/app/cam1/:push/rtmp://a.rtmp.youtube.com/live2#")
    assert title in rig.titles()
    bodies = [json.dumps(b) for b in rig.hook.json_bodies()]
    assert any("to rtmp://a.rtmp.youtube.com/live2 is error" in b for b in bodies)
    assert rig.runner is not None and rig.runner.metrics is not None
    metrics = rig.runner.metrics.render().decode()
    assert "omealert_polls_total" in metrics
    await rig.stop()
    no_key("/metrics", metrics)
    no_key("webhook bodies", "\n".join(bodies))
    no_key("mail", "\n".join(str(m) for m in rig.smtp.messages))  # type: ignore[attr-defined]
    no_key("logs", caplog.text)
    for path in rig.tmp.iterdir():
        if path.name.startswith("state.db"):
            no_key(path.name, path.read_bytes().decode("latin-1"))


# -- the commands, as real subprocesses ----------------------------------------------------


CONFIG = """\
servers:
  - name: origin
    url: {url}
    access_token: ome-access-token
interval: 1s
channels:
  hook:
    urls: ["json://127.0.0.1:{hook}/hook"]
defaults:
  channels: [hook]
rules:
  - name: push-down
    scope: push
    match: [default/app/*]
    when: state != "pushing" and stream_live
    summary: "{{{{ labels.destination }}}} {{{{ sample.state }}}}"
  - name: record-failed
    scope: record
    when: state == "error"
"""


def omealert(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omealert", *args],
        cwd=tmp,
        env=bare_env(tmp, PYTHONDONTWRITEBYTECODE="1"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_status_and_record_show_push_labels_and_never_the_key(tmp_path: Path) -> None:
    """`check --format json` lists push_id and destination; check, status and the recording
    `record` writes hold neither stream key."""
    with Simulator() as sim, HttpReceiver() as hook:
        sim.add_stream(*APP, "cam1")
        sim.start_push(*APP, "yt", "cam1", "rtmp://a.rtmp.youtube.com/live2", stream_key=KEY,
                       destination="refused")  # fmt: skip
        sim.start_push(*APP, "cdn", "cam1", f"rtmp://cdn.example.com/live/{URL_KEY}",
                       destination="refused")  # fmt: skip
        sim.start_record(*APP, "rec1", "cam1", fail=True)
        (tmp_path / "c.yaml").write_text(CONFIG.format(url=sim.url, hook=hook.port))
        time.sleep(1.2)  # past OME's first control tick: the pushes are attempted
        js = omealert(tmp_path, "check", "-c", "c.yaml", "--format", "json")
        text = omealert(tmp_path, "check", "-c", "c.yaml", "--state", "s.db", "--notify")
        status = omealert(tmp_path, "status", "--state", "s.db", "--format", "json")
        rec = omealert(tmp_path, "record", "-c", "c.yaml", "--out", "r.jsonl.gz",
                       "--duration", "0s")  # fmt: skip
    assert js.returncode == 1, js.stderr
    alerts = json.loads(js.stdout)["alerts"]
    pushes = sorted((a["labels"]["push_id"], a["labels"]["destination"]) for a in alerts
                    if a["rule"] == "push-down")  # fmt: skip
    assert pushes == [("cdn", "rtmp://cdn.example.com/live"),
                      ("yt", "rtmp://a.rtmp.youtube.com/live2")]  # fmt: skip
    assert [a["labels"]["record_id"] for a in alerts if a["rule"] == "record-failed"] == ["rec1"]
    assert rec.returncode == 0, rec.stderr
    recording = gzip.decompress((tmp_path / "r.jsonl.gz").read_bytes()).decode()
    assert ":pushes" in recording and "a.rtmp.youtube.com" in recording
    outputs = {
        "check json": js.stdout + js.stderr,
        "check": text.stdout + text.stderr,
        "status": status.stdout + status.stderr,
        "record": rec.stdout + rec.stderr,
        "recording": recording,
        "webhook": "\n".join(json.dumps(b) for b in hook.json_bodies()),
    }
    assert hook.json_bodies(), text.stdout + text.stderr
    for where, out in outputs.items():
        no_key(where, out)
