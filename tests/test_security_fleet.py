"""The secrets the later features brought — an Alertmanager's bearer token and basic-auth
password, a Slack bot token, the status page's ``listen_auth`` password, a heartbeat URL
whose path is its check's secret — reach no output of any command, no page, no API answer,
no ``/metrics`` and no state file, on the success and the failure paths.

Like ``tests/test_security.py``, every command runs as a real subprocess and every byte it
prints is searched: ``check`` (with ``--notify``), ``validate`` on a config that puts each
secret where a careless error would quote it, ``watch --listen`` (logs, the page, its API,
``/metrics``), ``status`` and ``history``.
"""

from __future__ import annotations

import base64
import signal
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from omealert.simulator import Simulator
from tests.helpers import wait_until
from tests.receivers import HttpReceiver
from tests.test_security import LIVE, TOKEN, WatchProcess, run_all

AM_BEARER = "AM-BEARER-TOKEN-p3q9"
AM_PASSWORD = "AM-BASIC-PASSWORD-r5s2"
SLACK_TOKEN = "xoxb-SLACK-BOT-TOKEN-m8n4"
LISTEN_PASSWORD = "LISTEN-PASSWORD-h2j7"
PING_SECRET = "PING-PATH-SECRET-c6d1"

SECRETS = (AM_BEARER, AM_PASSWORD, SLACK_TOKEN, LISTEN_PASSWORD, PING_SECRET, TOKEN)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


ENCODED = (_b64(f"am:{AM_PASSWORD}"), _b64(f"ops:{LISTEN_PASSWORD}"))


def assert_clean(where: str, text: str) -> None:
    for secret in (*SECRETS, *ENCODED):
        assert secret not in text, f"a secret ({secret[:8]}…) leaked into {where}"
    assert "Traceback" not in text, f"a traceback in {where}:\n{text}"


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(sim: Simulator, am: HttpReceiver, ping: HttpReceiver) -> str:
    """One live Alertmanager (basic auth), one dead (bearer), a Slack API that refuses
    connections, a heartbeat URL with a secret path, and a password on the page."""
    dead_am, dead_slack = closed_port(), closed_port()
    return f"""\
servers:
  - name: origin
    url: {sim.url}
    access_token: ${{OME_TOKEN}}
    timeout: 2s
interval: 200ms
alertmanagers:
  - url: http://127.0.0.1:{am.port}
    basic_auth: {{username: am, password: "{AM_PASSWORD}"}}
  - url: http://127.0.0.1:{dead_am}
    bearer_token: "{AM_BEARER}"
    timeout: 1s
heartbeat:
  url: "http://127.0.0.1:{ping.port}/ping/{PING_SECRET}"
  timeout: 1s
listen_auth: {{username: ops, password: "{LISTEN_PASSWORD}"}}
defaults:
  channels: [ops]
  deliver: [channels, alertmanager]
channels:
  ops:
    slack_api: {{token: "{SLACK_TOKEN}", channel: "#ops", api_url: "http://127.0.0.1:{dead_slack}/api/"}}
rules:
  - name: viewers-high
    when: webrtc publishers > 500
    severity: critical
"""


#: Each secret where an error message could quote it.
BROKEN = f"""\
servers:
  - name: origin
    url: http://127.0.0.1:1
alertmanagers:
  - url: "ftp://am:{AM_PASSWORD}@127.0.0.1/{AM_BEARER}"
  - url: http://127.0.0.1:1
    bearer_token: [{AM_BEARER}]
    basic_auth: {{username: am, pasword: "{AM_PASSWORD}"}}
heartbeat:
  url: "gopher://127.0.0.1/{PING_SECRET}"
  method: "{PING_SECRET}"
listen_auth: {{username: "", password: "{LISTEN_PASSWORD}", extra: "{LISTEN_PASSWORD}"}}
channels:
  ops:
    slack_api: {{token: "{SLACK_TOKEN}", channel: "", api_url: "ftp://{SLACK_TOKEN}@x/"}}
rules:
  - name: r
    when: webrtc publishers > 500
"""


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(access_token=TOKEN) as server:
        server.add_stream(*LIVE, "busy", viewers={"webrtc": 600})
        yield server


def get(url: str, *, auth: bool = True) -> str:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + _b64(f"ops:{LISTEN_PASSWORD}"))
    with urllib.request.urlopen(request, timeout=5) as reply:
        assert reply.status == 200
        return str(reply.read().decode())


def test_no_fleet_or_page_secret_reaches_any_output(tmp_path: Path, sim: Simulator) -> None:
    """validate, check (with --notify), watch --listen (logs, page, API, /metrics), status
    and history never show an Alertmanager credential, the Slack token, the page password or
    the heartbeat URL's secret path; the state file holds none of them either."""
    outputs: dict[str, str] = {}
    with HttpReceiver() as am, HttpReceiver() as ping:
        (tmp_path / "omealert.yaml").write_text(config(sim, am, ping), encoding="utf-8")
        (tmp_path / "broken.yaml").write_text(BROKEN, encoding="utf-8")
        cfg, state = ["-c", "omealert.yaml"], ["--state", "state.db"]
        runs = run_all(
            tmp_path,
            ["validate", "broken.yaml"],
            ["check", "-c", "broken.yaml", "--format", "json"],
            ["check", *cfg, "--format", "json"],
        )
        assert [r.code for r in runs] == [1, 3, 2], runs
        assert len(runs[0].err.splitlines()) >= 6, runs[0].err
        runs += run_all(tmp_path, ["check", *cfg, *state, "--notify", "--format", "json"])
        assert runs[-1].code == 2, runs[-1]
        posted = [r for r in am.requests if r[1].endswith("/api/v2/alerts")]
        assert posted and posted[0][2].get("Authorization", "").startswith("Basic ")

        watch = WatchProcess(tmp_path, ["watch", *cfg, *state, "--listen", "127.0.0.1:0"])
        try:
            watch.wait_log("serving /metrics")
            assert wait_until(lambda: len(ping.requests) >= 2, 20), watch.err()
            assert wait_until(lambda: "failed (refused)" in watch.err(), 20), watch.err()
            base = watch.metrics_url().removesuffix("/metrics")
            outputs["/metrics"] = get(f"{base}/metrics")
            outputs["/"] = get(f"{base}/")
            outputs["/api/v1/alerts"] = get(f"{base}/api/v1/alerts")
            outputs["/api/v1/health"] = get(f"{base}/api/v1/health")
            assert "viewers-high" in outputs["/api/v1/alerts"]
            watch.proc.send_signal(signal.SIGTERM)
            assert watch.proc.wait(20) == 0, watch.err()
        finally:
            watch.kill()
        outputs["watch stdout"], outputs["watch stderr"] = watch.out(), watch.err()
        runs += run_all(
            tmp_path,
            ["status", *state],
            ["status", *state, "--format", "json"],
            ["history", *state, "--since", "1d"],
        )
        assert [r.code for r in runs[-3:]] == [0, 0, 0], runs[-3:]
        assert PING_SECRET in ping.requests[0][1]  # the ping really went to its secret path

    for r in runs:
        outputs[f"{' '.join(r.args)} stdout"] = r.out
        outputs[f"{' '.join(r.args)} stderr"] = r.err
    for where, text in outputs.items():
        assert_clean(where, text)
    for path in sorted(p for p in tmp_path.iterdir() if p.name.startswith("state.db")):
        assert_clean(path.name, path.read_bytes().decode("latin-1"))
