"""Config keys of the fleet: alertmanagers, deliver, shard, heartbeat; what validate says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from omealert.config.load import load_config_text
from omealert.errors import ConfigError
from tests.helpers import bare_env

SERVER = "servers:\n  - name: a\n    url: http://127.0.0.1:1\n"
RULE = "rules:\n  - name: r\n    when: webrtc publishers > 5\n"
PASSWORD = "am-pass-9d2c71"


def omealert(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A command in its own process: ``check`` and ``watch`` set up logging for the process."""
    return subprocess.run(
        [sys.executable, "-m", "omealert", *args],
        cwd=tmp,
        env=bare_env(tmp),
        capture_output=True,
        text=True,
        timeout=60,
    )


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "t.yaml", env={})
    return [str(i) for i in info.value.issues]


def test_alertmanagers_load_with_auth_prefix_and_deliver() -> None:
    """URLs lose a trailing slash and gain the api_prefix; deliver reaches the rule."""
    s = load_config_text(
        SERVER
        + "alertmanagers:\n  - url: http://am-1:9093/\n    api_prefix: /am\n"
        + f"    basic_auth: {{username: u, password: {PASSWORD}}}\n"
        + "  - url: https://am-2:9093\n    bearer_token: tok\n    timeout: 3s\n"
        + "resend_delay: 30s\nreplica: east\n"
        + RULE
        + "    deliver: [channels, alertmanager]\n",
        "t.yaml",
        env={},
    )
    assert [a.url for a in s.alertmanagers] == ["http://am-1:9093/am", "https://am-2:9093"]
    assert s.alertmanagers[0].basic_auth == ("u", PASSWORD)
    assert s.alertmanagers[1].bearer_token == "tok" and s.alertmanagers[1].timeout_s == 3.0
    assert s.rules[0].deliver == ("channels", "alertmanager")
    assert (s.resend_delay_s, s.replica) == (30.0, "east")
    assert PASSWORD not in repr(s.alertmanagers)


def test_validate_says_what_is_wrong_with_each_alertmanager_url() -> None:
    """A bad scheme, credentials in the URL and a query are each reported at their line."""
    text = (
        SERVER
        + "alertmanagers:\n  - url: ftp://am:9093\n"
        + f"  - url: http://u:{PASSWORD}@am:9093\n  - url: http://am:9093/?x=1\n"
        + RULE
    )
    found = errors(text)
    assert found == [
        "t.yaml:5:10: alertmanager url must start with http:// or https://",
        "t.yaml:6:10: alertmanager url must not contain a user or password; use basic_auth",
        "t.yaml:7:10: alertmanager url must not have a query (?...) or fragment (#...)",
    ]
    assert not any(PASSWORD in e for e in found)


def test_delivering_to_alertmanager_needs_one() -> None:
    """deliver: [alertmanager] and the watchdog without alertmanagers: are errors."""
    assert errors(SERVER + "defaults:\n  deliver: [alertmanager]\n" + RULE) == [
        "t.yaml:5:12: this delivers to alertmanager, but alertmanagers: lists none"
    ]
    assert errors(SERVER + RULE + "    deliver: [alertmanager]\n") == [
        "t.yaml:7:14: this delivers to alertmanager, but alertmanagers: lists none"
    ]
    assert errors(SERVER + "heartbeat:\n  watchdog: true\n" + RULE) == [
        "t.yaml:5:13: the watchdog alert needs alertmanagers: to go to"
    ]


def test_a_route_may_deliver_to_alertmanager_without_channels() -> None:
    """``deliver: [alertmanager]`` stands in for a route's channels; neither is an error."""
    am = "alertmanagers:\n  - url: http://am:9093\n"
    s = load_config_text(
        SERVER + am + "routes:\n  - severity: critical\n    deliver: [alertmanager]\n" + RULE,
        "t.yaml",
        env={},
    )
    assert s.routes[0].deliver == ("alertmanager",) and s.routes[0].channels == ()
    assert errors(SERVER + am + "routes:\n  - severity: critical\n" + RULE) == [
        "t.yaml:7:5: a route needs channels: (or deliver: [alertmanager])"
    ]


def test_shard_and_heartbeat_are_checked() -> None:
    """shard is K/N with K < N; a heartbeat must do something and its URL must be http(s)."""
    assert errors(SERVER + "shard: 3/3\n" + RULE) == [
        "t.yaml:4:8: shard 3/3: K must be below N (shards are 0 to 2)"
    ]
    assert "is not K/N" in errors(SERVER + "shard: half\n" + RULE)[0]
    assert (
        "a heartbeat needs watchdog: true, a url, or both"
        in errors(SERVER + "heartbeat:\n  method: GET\n" + RULE)[0]
    )
    assert errors(SERVER + "heartbeat:\n  url: hc-ping/abc\n" + RULE) == [
        "t.yaml:5:8: heartbeat url must start with http:// or https://"
    ]
    s = load_config_text(
        SERVER + "shard: 1/4\nshard_by: app\nheartbeat:\n  url: http://hc/x\n" + RULE,
        "t.yaml",
        env={},
    )
    assert (s.shard.index, s.shard.count, s.shard.by) == (1, 4, "app")
    assert s.heartbeat.url == "http://hc/x" and "hc/x" not in repr(s.heartbeat)


def test_watch_refuses_a_bad_shard_option(tmp_path: Path) -> None:
    """``watch --shard 5/2`` exits with a usage error naming the problem."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(SERVER + RULE)
    run = omealert(tmp_path, "watch", "-c", str(cfg), "--shard", "5/2", "--state", "s.db")
    assert run.returncode == 2
    assert "--shard: shard 5/2: K must be below N" in run.stderr


def test_check_with_a_sharded_config_polls_only_its_shard(tmp_path: Path) -> None:
    """``shard: 0/2`` in check: the other shard's server (down here) is not polled."""
    import json

    from omealert.simulator import Simulator

    with Simulator() as sim:
        sim.add_stream("default", "live", "cam")
        cfg = tmp_path / "c.yaml"
        cfg.write_text(  # origin-1 is shard 0's, origin-0 shard 1's (rendezvous of 2)
            f"servers:\n  - name: origin-1\n    url: {sim.url}\n"
            f"    access_token: {sim.access_token}\n"
            "  - name: origin-0\n    url: http://127.0.0.1:9\n    timeout: 1s\n"
            "shard: 0/2\n" + RULE
        )
        run = omealert(tmp_path, "check", "-c", str(cfg), "--format", "json")
    result = json.loads(run.stdout)
    assert (run.returncode, result["status"], result["alerts"]) == (0, "OK", []), result
