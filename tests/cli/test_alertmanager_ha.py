"""Watchers posting to a real Alertmanager: one, and an HA pair of watchers on a two-peer cluster.

Real parts only: ``omealert watch`` processes against the simulator, Debian's
``prometheus-alertmanager`` on loopback (``tests/alertmanager.py``) whose webhook points at
an ``HttpReceiver``. Every process is stopped by its pid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from omealert.simulator import Simulator
from tests.alertmanager import AlertmanagerProc, binary
from tests.cli.test_watch import Watcher, write
from tests.helpers import wait_until
from tests.receivers import HttpReceiver

TOKEN = "ome-TOKEN-ha-77c1"
AM_PASSWORD = "AM-PASSWORD-2f9e"
CAM1 = ("default", "live", "cam1")


def watch_config(
    sim: Simulator, managers: list[str], replica: str, extra: str = "", *, auth: bool = False
) -> str:
    """A watcher delivering ``stalled`` to ``managers`` only; ``auth``: with basic_auth."""
    login = f"    basic_auth: {{username: omealert, password: {AM_PASSWORD}}}\n" if auth else ""
    urls = "".join(f"  - url: {url}\n{login}" for url in managers)
    return f"""\
servers:
  - name: origin
    url: {sim.url}
    access_token: {TOKEN}
    timeout: 2s
interval: 200ms
resend_delay: 500ms
replica: {replica}
ome_api_down:
  enabled: false
alertmanagers:
{urls}defaults:
  deliver: [alertmanager]
rules:
  - name: stalled
    when: lastRecvTime stale > 1s
    severity: critical
    labels:
      team: video
    summary: "{{{{ target }}}} stalled"
{extra}"""


def statuses(hook: HttpReceiver) -> list[str]:
    """The ``status`` of every webhook message Alertmanager sent (firing / resolved)."""
    return [str(body["status"]) for body in hook.json_bodies()]


def alerts_of(hook: HttpReceiver) -> list[dict[str, Any]]:
    return [alert for body in hook.json_bodies() for alert in body["alerts"]]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(access_token=TOKEN) as server:
        server.add_stream(*CAM1)
        server.add_stream("default", "live", "cam2")
        yield server


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[list[Any]]:
    """Everything a test starts; each stopped by its pid afterwards, watchers audited."""
    started: list[Any] = []
    yield started
    for p in reversed(started):
        if isinstance(p, Watcher):
            p.kill()
            text = p.stdout() + p.stderr()
            assert TOKEN not in text and AM_PASSWORD not in text
            assert "Traceback" not in text, text
        else:
            p.stop()


StartWatcher = Callable[..., Watcher]


@pytest.fixture
def start(tmp_path: Path, procs: list[Any]) -> StartWatcher:
    def launch(text: str, name: str, *extra: str) -> Watcher:
        config = write(tmp_path / f"{name}.yaml", text)
        w = Watcher(tmp_path, config, tmp_path / f"{name}.db", name, extra)
        procs.append(w)
        return w.wait_ready()

    return launch


def test_one_alertmanager_gets_the_alert_as_prometheus_sends_it(
    tmp_path: Path, sim: Simulator, hook: HttpReceiver, procs: list[Any], start: StartWatcher
) -> None:
    """A stall reaches Alertmanager with Prometheus' labels and annotations, and resolves."""
    binary()
    am = AlertmanagerProc(tmp_path, "am", hook.url + "/am")
    procs.append(am)
    am.wait_ready()
    w = start(watch_config(sim, [am.url], "replica-a"), "a")
    sim.stall(*CAM1)
    assert hook.wait_for(1, 15), w.stderr()
    assert statuses(hook) == ["firing"]
    (alert,) = alerts_of(hook)
    assert alert["labels"] == {
        "alertname": "stalled",
        "severity": "critical",
        "server": "origin",
        "vhost": "default",
        "app": "live",
        "stream": "cam1",
        "team": "video",
        "ome_version": "0.18.0",
    }
    assert alert["annotations"]["replica"] == "replica-a"
    assert alert["annotations"]["summary"] == "origin/default/live/cam1 stalled"
    assert "value" in alert["annotations"]
    sim.resume(*CAM1)
    assert hook.wait_for(2, 15), w.stderr()
    assert statuses(hook) == ["firing", "resolved"]
    assert alerts_of(hook)[1]["startsAt"] == alert["startsAt"]  # fired_at, kept
    sent = w.metric("omealert_alertmanager_sent_total", alertmanager=am.url)
    assert sent is not None and sent >= 2
    assert w.metric("omealert_alertmanager_errors_total", alertmanager=am.url) == 0
    assert w.metric("omealert_alertmanager_queue_length", alertmanager=am.url) is not None


def test_a_down_alertmanager_is_retried_and_never_holds_up_the_other(
    tmp_path: Path, sim: Simulator, hook: HttpReceiver, procs: list[Any], start: StartWatcher
) -> None:
    """An Alertmanager that is not there is logged once, counted, and the live one still alerts."""
    binary()
    am = AlertmanagerProc(tmp_path, "am", hook.url + "/am")
    procs.append(am)
    am.wait_ready()
    dead = "http://127.0.0.1:9"  # discard port: nothing listens on loopback
    w = start(watch_config(sim, [dead, am.url], "a", auth=True), "a")
    sim.stall(*CAM1)
    assert hook.wait_for(1, 15), w.stderr()
    assert wait_until(
        lambda: (w.metric("omealert_alertmanager_errors_total", alertmanager=dead) or 0) >= 3
    ), w.stderr()
    assert w.count(f"alertmanager {dead}: cannot connect") == 1, w.stderr()
    assert (w.metric("omealert_alertmanager_queue_length", alertmanager=dead) or 0) >= 1
    w.wait_ticks(3)  # polling goes on at its pace


def test_ha_pair_on_a_cluster_notifies_once_and_survives_a_killed_watcher(
    tmp_path: Path, sim: Simulator, hook: HttpReceiver, procs: list[Any], start: StartWatcher
) -> None:
    """Two watchers, two clustered Alertmanagers: one stall is one message; after one
    watcher is SIGKILLed the alert stays firing, and its resolve arrives once."""
    binary()
    am1 = AlertmanagerProc(tmp_path, "am1", hook.url + "/am", cluster=True)
    procs.append(am1)
    am2 = AlertmanagerProc(tmp_path, "am2", hook.url + "/am", peers=[am1])
    procs.append(am2)
    am1.wait_ready(peers=2)
    am2.wait_ready(peers=2)
    managers = [am1.url, am2.url]
    a = start(watch_config(sim, managers, "replica-a"), "a")
    b = start(watch_config(sim, managers, "replica-b"), "b")
    sim.stall(*CAM1)
    assert hook.wait_for(1, 20), a.stderr() + b.stderr()
    # the second peer waits one peer_timeout (1s) before it would send: wait well past it
    assert not hook.wait_for(2, 3), statuses(hook)
    assert statuses(hook) == ["firing"]
    assert all(len(am.alerts()) == 1 for am in (am1, am2))  # both watchers' posts, one alert
    a.kill()
    # past the 2s endsAt of a's last post: only b's resends keep the alert alive
    assert not hook.wait_for(2, 3), statuses(hook)
    for am in (am1, am2):
        (alert,) = am.alerts()
        assert alert["status"]["state"] == "active"
        assert alert["annotations"]["replica"] == "replica-b"
    sim.resume(*CAM1)
    assert hook.wait_for(2, 20), b.stderr()
    assert not hook.wait_for(3, 3), statuses(hook)
    assert statuses(hook) == ["firing", "resolved"]


def test_check_notify_posts_to_alertmanager(
    tmp_path: Path, sim: Simulator, hook: HttpReceiver, procs: list[Any]
) -> None:
    """``check --notify`` (one cron run) posts its firing alert; Alertmanager holds it."""
    import subprocess
    import sys

    from tests.helpers import bare_env

    binary()
    am = AlertmanagerProc(tmp_path, "am", hook.url + "/am")
    procs.append(am)
    am.wait_ready()
    sim.stall(*CAM1)
    config = write(tmp_path / "c.yaml", watch_config(sim, [am.url], "cron"))
    args = [sys.executable, "-m", "omealert", "check", "-c", str(config), "--notify"]
    args += ["--state", str(tmp_path / "s.db"), "--format", "json"]

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, env=bare_env(tmp_path), capture_output=True, text=True, timeout=60
        )

    assert wait_until(lambda: "stalled" in run().stdout, 10)
    result = run()
    assert f'"alertmanager_sent": {{"{am.url}": 1}}' in result.stdout, result.stdout
    (alert,) = am.alerts()
    assert alert["labels"]["alertname"] == "stalled"
    assert alert["annotations"]["replica"] == "cron"


def test_sigterm_does_not_wait_for_a_hung_alertmanager(
    sim: Simulator, hook: HttpReceiver, start: StartWatcher
) -> None:
    """An Alertmanager that never answers holds neither the polling nor the exit."""
    import signal

    hook.set_delay(60)
    w = start(watch_config(sim, [hook.url], "a"), "a")
    sim.stall(*CAM1)
    assert hook.wait_for(1, 15), w.stderr()  # the post is out, and hangs
    w.wait_ticks(5)
    w.signal(signal.SIGTERM)
    assert w.wait_exit(8) == 0, w.stderr()  # a hang guard: the post's own timeout is 10s
    hook.release()
