"""The one-shot commands as an operator or a cron job runs them: real subprocesses, real servers.

Every command runs as ``python -m omealert ...`` in a temporary directory with a bare
environment, against the built-in OME simulator on loopback (real clock, since the
subprocess has one too) and loopback notification receivers. Where a test needs time to
have passed, it edits the state database instead of waiting.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from omealert import __version__
from omealert.config.load import load_config_text
from omealert.rules import Settings
from omealert.runner import Runner
from omealert.simulator import Simulator
from omealert.state.store import StateStore
from tests.helpers import bare_env
from tests.receivers import HttpReceiver, SmtpSink, free_port

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60.0
TOKEN = "sim-token-Q7pX"
#: how `status` sums up what omealert knows of the simulator's release
KNOWN_IN_0_18 = "(known behaviour, fixed in 0.19.0 0.20.5 0.21.0: see the watch log)"
WRONG_TOKEN = "not-the-token-Zr4"  # must never show up in any output
LIVE = ("default", "live")

RULES = """\
rules:
  - name: viewers-warn
    when: webrtc publishers > 500
    severity: warning
    summary: "{{ target }} has {{ value }} WebRTC viewers"
  - name: viewers-crit
    when: webrtc publishers > 1000
    severity: critical
"""

SLOW_RULE = """\
rules:
  - name: viewers-slow
    when: webrtc publishers > 500
    for: 1m
    severity: critical
"""

# -- running the command -------------------------------------------------------------------


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    @property
    def first(self) -> str:
        return self.lines[0] if self.lines else ""

    def doc(self) -> Any:
        return json.loads(self.out)


def start(tmp_path: Path, args: Sequence[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "omealert", *args],
        cwd=tmp_path,
        env=bare_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> Run:
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return Run(proc.returncode, out, err)


def cli(tmp_path: Path, *args: str) -> Run:
    return finish(start(tmp_path, args))


def cli_many(tmp_path: Path, *arg_lists: Sequence[str]) -> list[Run]:
    """Run independent commands side by side (start-up dominates; this halves the wait)."""
    procs = [start(tmp_path, args) for args in arg_lists]
    return [finish(p) for p in procs]


def text_and_json(tmp_path: Path, *args: str) -> tuple[Run, Run]:
    text, js = cli_many(tmp_path, list(args), [*args, "--format", "json"])
    return text, js


# -- set-up ----------------------------------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(access_token=TOKEN) as s:
        yield s


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def server(name: str, url: str, token: str = TOKEN) -> str:
    return f"  - name: {name}\n    url: {url}\n    access_token: {token}\n    timeout: 2s\n"


def write_config(
    tmp_path: Path,
    servers: Sequence[str],
    rules: str = RULES,
    channels: dict[str, str] | None = None,
    name: str = "config.yaml",
) -> str:
    text = "servers:\n" + "".join(servers)
    if channels:
        text += "channels:\n"
        for channel, url in channels.items():
            text += f'  {channel}:\n    urls: ["{url}"]\n    format: text\n'
        text += f"defaults:\n  channels: [{', '.join(channels)}]\n"
    else:
        text += "defaults:\n  channels: []\n"
    (tmp_path / name).write_text(text + rules, encoding="utf-8")
    return name


def streams(sim: Simulator, **viewers: int) -> None:
    for stream, count in viewers.items():
        sim.add_stream(*LIVE, stream, viewers={"webrtc": count})


def state_check(tmp_path: Path, *extra: str) -> Run:
    return cli(tmp_path, "check", "-c", "config.yaml", "--state", "state.db", *extra)


# -- check: the verdict ------------------------------------------------------------------------


def test_check_ok_when_streams_are_quiet(tmp_path: Path, sim: Simulator) -> None:
    """Nothing over a threshold: exit 0, a Nagios OK line, and an empty JSON verdict."""
    streams(sim, a=3, b=40)
    write_config(tmp_path, [server("origin-1", sim.url)])
    text, js = text_and_json(tmp_path, "check", "-c", "config.yaml")
    assert text.code == 0, text
    assert text.first.startswith("OMEALERT OK - ")
    assert text.first.endswith(" | firing=0 pending=0 targets=2")
    assert len(text.lines) == 1
    assert js.code == 0
    assert js.doc()["status"] == "OK" and js.doc()["exit_code"] == 0
    assert js.doc()["alerts"] == [] and js.doc()["errors"] == []
    assert text.err == js.err == ""


def test_check_warning_when_a_warning_rule_fires(tmp_path: Path, sim: Simulator) -> None:
    """One warning rule firing: exit 1 and the alert on its own line."""
    streams(sim, quiet=3, busy=600)
    write_config(tmp_path, [server("origin-1", sim.url)])
    text, js = text_and_json(tmp_path, "check", "-c", "config.yaml")
    assert text.code == 1, text
    assert text.lines == [
        "OMEALERT WARNING - 1 warning firing | firing=1 pending=0 targets=2",
        "WARNING firing viewers-warn: origin-1/default/live/busy has 600 WebRTC viewers",
    ]
    assert js.code == 1
    doc = js.doc()
    assert (doc["status"], doc["exit_code"]) == ("WARNING", 1)
    assert [(a["rule"], a["severity"], a["value"]) for a in doc["alerts"]] == [
        ("viewers-warn", "warning", 600)
    ]


def test_check_critical_counts_and_json_shape(tmp_path: Path, sim: Simulator) -> None:
    """A critical plus a warning alert: exact counts in the first line, the documented JSON."""
    streams(sim, quiet=3, huge=2000)
    write_config(tmp_path, [server("origin-1", sim.url)])
    text, js = text_and_json(tmp_path, "check", "-c", "config.yaml")
    assert text.code == 2, text
    assert (
        text.first
        == "OMEALERT CRITICAL - 1 critical, 1 warning firing | firing=2 pending=0 targets=2"
    )
    assert sorted(text.lines[1:]) == [
        "CRITICAL firing viewers-crit: origin-1/default/live/huge: "
        "webrtc publishers > 1000 (value 2000)",
        "WARNING firing viewers-warn: origin-1/default/live/huge has 2000 WebRTC viewers",
    ]
    assert js.code == 2
    doc = js.doc()
    assert {"status", "exit_code", "alerts", "errors"} <= doc.keys()
    assert (doc["status"], doc["exit_code"], doc["errors"]) == ("CRITICAL", 2, [])
    by_rule = {a["rule"]: a for a in doc["alerts"]}
    assert set(by_rule) == {"viewers-crit", "viewers-warn"}
    crit = by_rule["viewers-crit"]
    assert {"rule", "state", "severity", "value", "summary", "labels", "silenced"} <= crit.keys()
    assert (crit["state"], crit["severity"], crit["value"]) == ("firing", "critical", 2000)
    assert crit["silenced"] is False
    assert "huge" in crit["summary"]
    labels = crit["labels"]
    assert {k: labels[k] for k in ("server", "vhost", "app", "stream")} == {
        "server": "origin-1",
        "vhost": "default",
        "app": "live",
        "stream": "huge",
    }


def test_alerts_win_over_an_unreadable_second_server(tmp_path: Path, sim: Simulator) -> None:
    """CRITICAL beats UNKNOWN: the dead server is still listed under errors, not as an alert."""
    streams(sim, huge=2000)
    dead = f"http://127.0.0.1:{free_port()}"
    write_config(tmp_path, [server("origin-1", sim.url), server("origin-2", dead)])
    text, js = text_and_json(tmp_path, "check", "-c", "config.yaml")
    assert text.code == 2, text
    assert text.first.startswith("OMEALERT CRITICAL - 1 critical, 1 warning firing |")
    assert [ln for ln in text.lines if ln.startswith("ERROR origin-2: ")], text.out
    doc = js.doc()
    assert (doc["status"], js.code) == ("CRITICAL", 2)
    assert [(e["server"], e["kind"]) for e in doc["errors"]] == [("origin-2", "unreachable")]
    assert all(a["rule"] != "ome-api-down" for a in doc["alerts"])
    assert text.err == js.err == ""


def test_unreachable_server_is_unknown(tmp_path: Path) -> None:
    """A port nobody listens on: exit 3, the reason on the first line and under errors."""
    dead = f"http://127.0.0.1:{free_port()}"
    write_config(tmp_path, [server("origin-1", dead)])
    text, js = text_and_json(tmp_path, "check", "-c", "config.yaml")
    assert text.code == 3, text
    assert text.first.startswith("OMEALERT UNKNOWN - origin-1: unreachable")
    assert "cannot connect" in text.first
    doc = js.doc()
    assert (doc["status"], doc["exit_code"], js.code) == ("UNKNOWN", 3, 3)
    assert doc["alerts"] == []
    assert [e["server"] for e in doc["errors"]] == ["origin-1"]
    assert "cannot connect" in doc["errors"][0]["message"]
    assert "Traceback" not in text.err + js.err


def test_wrong_token_is_unknown_and_never_printed(tmp_path: Path, sim: Simulator) -> None:
    """A rejected token: UNKNOWN saying so, without the token or its base64 anywhere."""
    streams(sim, a=3)
    write_config(tmp_path, [server("origin-1", sim.url, token=WRONG_TOKEN)])
    text, js = text_and_json(tmp_path, "check", "-c", "config.yaml")
    assert (text.code, js.code) == (3, 3), text
    assert text.first.startswith("OMEALERT UNKNOWN - origin-1: unauthorized")
    message = js.doc()["errors"][0]["message"]
    assert "access_token" in message and "wrong" in message
    everything = text.out + text.err + js.out + js.err
    for secret in (
        WRONG_TOKEN,
        base64.b64encode(WRONG_TOKEN.encode()).decode().rstrip("="),
        base64.b64encode(f"{WRONG_TOKEN}:".encode()).decode().rstrip("="),
    ):
        assert secret not in everything


BAD_CONFIG = """\
servers:
  - name: origin-1
    url: ftp://127.0.0.1:1
rules:
  - name: r
    when: webrtc publishers >
    for: 30
"""
BAD_ERRORS = [
    "bad.yaml:3:10: server url must start with http:// or https://",
    "bad.yaml:6:30: expected a value after '>'",
    "bad.yaml:7:10: duration 30 has no unit: write 30s, 30m or 30h",
]


def test_invalid_config_is_unknown_with_every_error_on_stderr(tmp_path: Path) -> None:
    """A broken config: exit 3, UNKNOWN naming the first error, all of them as FILE:LINE:COL."""
    (tmp_path / "bad.yaml").write_text(BAD_CONFIG, encoding="utf-8")
    text, js = text_and_json(tmp_path, "check", "-c", "bad.yaml")
    assert (text.code, js.code) == (3, 3), text
    assert text.first.startswith(f"OMEALERT UNKNOWN - config invalid: {BAD_ERRORS[0]}")
    assert text.err.splitlines() == js.err.splitlines() == BAD_ERRORS
    doc = js.doc()
    assert (doc["status"], doc["exit_code"]) == ("UNKNOWN", 3)
    assert doc["reason"].startswith("config invalid: ")


def test_check_refuses_what_it_cannot_do_with_unknown(tmp_path: Path, sim: Simulator) -> None:
    """Usage errors, --notify without --state, an unopenable state file: UNKNOWN (3), never 2."""
    write_config(tmp_path, [server("origin-1", sim.url)])
    (tmp_path / "dir.db").mkdir()
    missing, unknown, as_json, other, notify, bad_state = cli_many(
        tmp_path,
        ["check"],
        ["check", "-c", "config.yaml", "--no-such-flag"],
        ["check", "--format", "json"],
        ["status", "--no-such-flag"],
        ["check", "-c", "config.yaml", "--notify"],
        ["check", "-c", "config.yaml", "--state", "dir.db"],
    )
    assert missing.code == 3, missing
    assert missing.first.startswith("OMEALERT UNKNOWN - usage error: ")
    assert "-c/--config" in missing.err
    assert unknown.code == 3
    assert "--no-such-flag" in unknown.first and "--no-such-flag" in unknown.err
    assert (as_json.code, as_json.doc()["status"]) == (3, "UNKNOWN")
    assert other.code == 2  # other commands keep the usual usage exit code
    assert notify.code == 3
    assert notify.first.startswith("OMEALERT UNKNOWN - --notify needs --state")
    assert bad_state.code == 3
    assert bad_state.first.startswith("OMEALERT UNKNOWN - state database unusable: ")
    runs = (missing, unknown, as_json, other, notify, bad_state)
    assert all("Traceback" not in r.err for r in runs)
    assert sim.request_count() == 0  # refused before polling anything


def test_rate_rule_is_sampled_over_the_window(tmp_path: Path, sim: Simulator) -> None:
    """Without state, rate() reads two polls --window apart instead of being silently OK."""
    streams(sim, a=3)
    rules = "rules:\n  - name: ingest-flowing\n    when: rate(totalBytesIn, 1m) > 1000\n"
    write_config(tmp_path, [server("origin-1", sim.url)], rules=rules)
    run = cli(tmp_path, "check", "-c", "config.yaml", "--window", "300ms", "--format", "json")
    assert run.code == 1, run
    doc = run.doc()
    assert doc["window_s"] == 0.3
    [alert] = doc["alerts"]
    assert alert["rule"] == "ingest-flowing"
    assert alert["value"] > 1000  # the simulator ingests 2.5 Mbit/s
    assert sim.request_count("/v1/stats") >= 2


def test_a_server_wide_failure_answers_without_waiting_the_window(
    tmp_path: Path, sim: Simulator
) -> None:
    """A rule needing history does not make check wait its window (5 s by default) when
    the first poll already failed on every server: 401, 404 and unreachable answer
    UNKNOWN at once, after one poll (issue 21, defect 5)."""
    streams(sim, a=3)
    rules = "rules:\n  - name: ingest-flowing\n    when: rate(totalBytesIn, 1m) > 1000\n"
    dead = f"http://127.0.0.1:{free_port()}"
    configs = {
        "unauthorized": server("origin-1", sim.url, token=WRONG_TOKEN),
        "not_found": server("origin-1", sim.url + "/not-ome"),
        "unreachable": server("origin-1", dead),
    }
    for kind, spec in configs.items():
        write_config(tmp_path, [spec], rules=rules, name=f"{kind}.yaml")
    runs = cli_many(
        tmp_path, *(["check", "-c", f"{kind}.yaml", "--format", "json"] for kind in configs)
    )
    for kind, run in zip(configs, runs, strict=True):
        assert run.code == 3, run
        doc = run.doc()
        assert [e["kind"] for e in doc["errors"]] == [kind]
        assert doc["window_s"] is None  # one poll, no window
    assert sim.request_count("/v1/vhosts") == 1  # the 401 was asked once, not twice
    assert sim.request_count("/not-ome/v1/vhosts") == 1  # so was the 404
    # one server readable and one not: the window is still sampled for the readable one
    write_config(tmp_path, [server("origin-1", sim.url), server("origin-2", dead)], rules=rules)
    run = cli(tmp_path, "check", "-c", "config.yaml", "--window", "300ms", "--format", "json")
    assert (run.code, run.doc()["window_s"]) == (1, 0.3), run


# -- check --state -----------------------------------------------------------------------------


def backdate(tmp_path: Path, rule: str, seconds: float) -> None:
    """Pretend the condition of ``rule`` began ``seconds`` earlier (instead of sleeping)."""
    with StateStore(tmp_path / "state.db") as store:
        records = [r for r in store.load_alerts() if r.rule == rule]
        assert records, f"no instance of {rule} in the state database"
        for record in records:
            assert record.active_since is not None
            record.active_since -= seconds
        store.save_tick(upsert=records)


def test_state_waits_for_for_then_fires(tmp_path: Path, sim: Simulator) -> None:
    """With --state a `for: 1m` rule is pending (exit 0) until it has held a minute, then fires."""
    streams(sim, quiet=3, busy=600)
    write_config(tmp_path, [server("origin-1", sim.url)], rules=SLOW_RULE)
    first = state_check(tmp_path, "--format", "json")
    assert first.code == 0, first
    doc = first.doc()
    assert doc["status"] == "OK"
    assert [(a["rule"], a["state"]) for a in doc["alerts"]] == [("viewers-slow", "pending")]

    backdate(tmp_path, "viewers-slow", 61)
    later = state_check(tmp_path)
    assert later.code == 2, later
    assert later.first.startswith("OMEALERT CRITICAL - 1 critical firing | firing=1 pending=0")
    assert later.lines[1].startswith("CRITICAL firing viewers-slow: origin-1/default/live/busy")


def test_notify_fires_once_then_resolves(
    tmp_path: Path, sim: Simulator, http: HttpReceiver
) -> None:
    """Cron-style runs: one [FIRING], nothing on the next run, [RESOLVED] after recovery."""
    streams(sim, quiet=3, busy=600)
    hook = f"json://127.0.0.1:{http.port}/omealert"
    write_config(tmp_path, [server("origin-1", sim.url)], channels={"ops": hook})

    first = state_check(tmp_path, "--notify")
    assert first.code == 1, first
    assert not [ln for ln in first.lines if ln.startswith("NOTIFY")]  # delivered: nothing owed
    [doc] = http.json_bodies()
    assert doc["title"] == "[FIRING] viewers-warn on origin-1/default/live/busy"
    assert "origin-1/default/live/busy has 600 WebRTC viewers" in doc["message"]

    second = state_check(tmp_path, "--notify")
    assert second.code == 1
    assert len(http.requests) == 1  # the repeat interval (1h) has not passed

    sim.set_viewers(*LIVE, "busy", "webrtc", 3)
    third = state_check(tmp_path, "--notify")
    assert third.code == 0, third
    titles = [d["title"] for d in http.json_bodies()]
    assert titles == [
        "[FIRING] viewers-warn on origin-1/default/live/busy",
        "[RESOLVED] viewers-warn on origin-1/default/live/busy",
    ]

    history, status = cli_many(
        tmp_path,
        ["history", "--state", "state.db", "--since", "1h"],
        ["status", "--state", "state.db"],
    )
    assert history.code == 0, history
    entries = history.lines
    assert any(
        "transition" in ln
        and "viewers-warn origin-1/default/live/busy" in ln
        and "inactive → firing" in ln
        for ln in entries
    ), history.out
    assert any("firing → resolved" in ln for ln in entries), history.out
    sent = [ln for ln in entries if re.search(r"Z sent\s", ln)]
    assert len(sent) == 2 and all("→ ops" in ln for ln in sent), history.out
    assert (status.code, status.lines) == (
        0,
        ["no pending or firing alerts", f"server origin-1: OME 0.18.0 {KNOWN_IN_0_18}"],
    )


def test_notify_by_mail_has_the_exact_subject(tmp_path: Path, sim: Simulator) -> None:
    """A mailto:// channel delivers to the SMTP relay with the alert's title as Subject."""
    streams(sim, busy=600)
    with SmtpSink() as smtp:
        mail = f"mailto://127.0.0.1:{smtp.port}?from=a@example.com&to=b@example.com"
        write_config(tmp_path, [server("origin-1", sim.url)], channels={"mail": mail})
        run = state_check(tmp_path, "--notify")
        assert run.code == 1, run
        [msg] = smtp.messages
    assert msg["Subject"] == "[FIRING] viewers-warn on origin-1/default/live/busy"
    assert smtp.envelopes == [("a@example.com", ["b@example.com"])]
    assert "Traceback" not in run.err


# -- silences, status, history --------------------------------------------------------------


def test_silence_round_trip_and_check(tmp_path: Path, sim: Simulator, http: HttpReceiver) -> None:
    """A silence marks the alert, keeps the status OK and stops notifications until expired."""
    streams(sim, quiet=3, busy=600)
    hook = f"json://127.0.0.1:{http.port}/omealert"
    write_config(tmp_path, [server("origin-1", sim.url)], channels={"ops": hook})
    added = cli(
        tmp_path, "silence", "add", "--state", "state.db",
        "--matcher", "stream=~bus.*", "--matcher", "rule=viewers-warn",
        "--for", "2h", "--comment", "encoder swap",
    )  # fmt: skip
    assert added.code == 0, added
    sid = added.lines[-1]
    assert re.fullmatch(r"[0-9a-f]{8}", sid), added.out

    listed, muted = cli_many(
        tmp_path,
        ["silence", "list", "--state", "state.db"],
        ["check", "-c", "config.yaml", "--state", "state.db", "--notify", "--format", "json"],
    )
    [row] = [ln for ln in listed.lines if ln.startswith(sid)]
    assert "active" in row and "stream=~bus.*" in row and "encoder swap" in row
    assert muted.code == 0, muted
    doc = muted.doc()
    assert doc["status"] == "OK"
    assert [(a["rule"], a["state"], a["silenced"]) for a in doc["alerts"]] == [
        ("viewers-warn", "firing", True)
    ]
    assert http.requests == []
    table, text = cli_many(
        tmp_path,
        ["status", "--state", "state.db"],
        ["check", "-c", "config.yaml", "--state", "state.db"],
    )
    [row] = [ln for ln in table.lines if "viewers-warn" in ln]
    assert row.split()[-1] == "yes"
    assert text.code == 0, text
    assert text.lines == [
        "OMEALERT OK - nothing warning or critical firing on 2 target(s) (1 silenced firing)"
        " | firing=1 pending=0 targets=2",
        "WARNING firing viewers-warn: origin-1/default/live/busy has 600 WebRTC viewers (silenced)",
    ]

    expired = cli(tmp_path, "silence", "expire", sid, "--state", "state.db")
    assert (expired.code, expired.lines[-1]) == (0, f"expired {sid}")
    after, everything, again, loud = cli_many(
        tmp_path,
        ["silence", "list", "--state", "state.db"],
        ["silence", "list", "--all", "--state", "state.db"],
        ["silence", "expire", sid, "--state", "state.db"],
        ["check", "-c", "config.yaml", "--state", "state.db", "--notify", "--format", "json"],
    )
    assert after.lines == ["no silences"]
    assert any(ln.startswith(sid) and "expired" in ln for ln in everything.lines)
    assert again.code == 1 and sid in again.err
    assert loud.code == 1, loud
    assert [a["silenced"] for a in loud.doc()["alerts"]] == [False]
    assert [d["title"] for d in http.json_bodies()] == [
        "[FIRING] viewers-warn on origin-1/default/live/busy"
    ]


def test_status_history_and_a_failed_delivery(tmp_path: Path, sim: Simulator) -> None:
    """After a --state run, status lists firing and pending alerts; history the transitions
    and the delivery that failed, which check itself also reported."""
    streams(sim, quiet=3, busy=600)
    rules = RULES + SLOW_RULE.removeprefix("rules:\n")
    dead = f"json://127.0.0.1:{free_port()}/omealert"
    write_config(tmp_path, [server("origin-1", sim.url)], rules=rules, channels={"ops": dead})
    run = state_check(tmp_path, "--notify")
    assert run.code == 1, run
    assert run.lines[-2:] == [
        "NOTIFY ops: 1 message(s) could not be delivered",
        "NOTIFY 1 message(s) queued for the next run with --notify",
    ]
    assert run.err == ""
    table, js, history = cli_many(
        tmp_path,
        ["status", "--state", "state.db"],
        ["status", "--state", "state.db", "--format", "json"],
        ["history", "--state", "state.db", "--since", "1h"],
    )
    assert table.code == js.code == history.code == 0
    assert table.lines[0].split() == [
        "STATE", "SEVERITY", "RULE", "TARGET", "HEALTH", "VALUE", "FOR", "SILENCED"
    ]  # fmt: skip
    assert table.lines[-1] == f"server origin-1: OME 0.18.0 {KNOWN_IN_0_18}"
    assert [ln.split()[:6] for ln in table.lines[1:-1]] == [  # check keeps no health: –
        ["firing", "warning", "viewers-warn", "origin-1/default/live/busy", "–", "600"],
        ["pending", "critical", "viewers-slow", "origin-1/default/live/busy", "–", "600"],
    ]
    rows = js.doc()
    assert [(r["state"], r["rule"], r["target"], r["silenced"]) for r in rows] == [
        ("firing", "viewers-warn", "origin-1/default/live/busy", False),
        ("pending", "viewers-slow", "origin-1/default/live/busy", False),
    ]
    assert rows[0]["summary"] == "origin-1/default/live/busy has 600 WebRTC viewers"
    assert any("viewers-warn" in ln and "inactive → firing" in ln for ln in history.lines)
    assert any("viewers-slow" in ln and "inactive → pending" in ln for ln in history.lines)
    [failed] = [ln for ln in history.lines if re.search(r"Z failed\s", ln)]
    assert "viewers-warn" in failed and "→ ops" in failed
    assert dead.split("//")[1] not in history.out + run.out  # a channel URL may hold secrets


def test_status_without_a_database_says_so(tmp_path: Path) -> None:
    """status and history on a missing state file: one line of explanation, exit 1."""
    status, history = cli_many(
        tmp_path,
        ["status", "--state", "nowhere.db"],
        ["history", "--state", "nowhere.db"],
    )
    for run in (status, history):
        assert run.code == 1
        assert "no state database at nowhere.db" in run.err
        assert "Traceback" not in run.err
    assert not (tmp_path / "nowhere.db").exists()


# -- validate ---------------------------------------------------------------------------------


def test_validate_good_and_bad_files(tmp_path: Path) -> None:
    """Valid files: one summary line, exit 0. Invalid ones: every error as FILE:LINE:COL, exit 1."""
    shutil.copy(REPO / "rules.example.yaml", tmp_path / "rules.example.yaml")
    (tmp_path / "bad.yaml").write_text(BAD_CONFIG, encoding="utf-8")
    write_config(tmp_path, [server("origin-1", "http://127.0.0.1:1")])
    good, bad = cli_many(
        tmp_path,
        ["validate", "config.yaml", "rules.example.yaml"],
        ["validate", "config.yaml", "bad.yaml", "missing.yaml"],
    )
    assert good.code == 0, good
    assert re.fullmatch(r"2 file\(s\) valid, \d+ rule\(s\)\n", good.out)
    assert good.err == ""
    assert (bad.code, bad.out) == (1, "")
    lines = bad.err.splitlines()
    assert lines[:3] == BAD_ERRORS
    assert len(lines) == 4 and lines[3].startswith("missing.yaml:1:1: ")
    assert "Traceback" not in bad.err


# -- demo, version, start-up ------------------------------------------------------------------


def test_demo_runs_the_story(tmp_path: Path) -> None:
    """demo at high speed completes, shows firing and resolved notices, and keeps stderr clean."""
    run = cli(tmp_path, "demo", "--speed", "200")
    assert run.code == 0, run.err
    assert "[FIRING] ingest-stalled" in run.out
    assert "[RESOLVED] ingest-stalled" in run.out
    assert "ome-api-down demo: pending → firing" in run.out
    assert "[RESOLVED] ome-api-down on demo" in run.out
    # OME 0.18's quirks in the story: the shutdown window resolves nothing, the garbage of a
    # restart and the partial window after a stall fire nothing (issue 21)
    assert run.out.count("webrtc-viewers-high demo/default/live/studio-b: firing → resolved") == 1
    assert "input-bitrate-low demo/default/live/studio-a" not in run.out
    assert run.err == ""
    # each notice is labelled by what it is, not by apprise's notify type (issue 21, 8)
    labels = re.findall(r"┌ notification \((\w+)\)", run.out)
    assert set(labels) == {"critical", "warning", "resolved"}, labels
    assert "OME API on demo answers again" in run.out
    assert "ingest at 300 kbps — for " in run.out  # its summary shows the value: not twice
    # a queue that congests, then drains (issue 15)
    assert re.search(r"queue-congested demo/default/live/cam-1/:queue/trs/filter_video#\d+: "
                     "pending → firing", run.out)  # fmt: skip
    assert "[RESOLVED] queue-congested on demo/default/live/cam-1/:queue/" in run.out
    # a capture card that freezes while its bytes flow, then moves again (issue 20)
    assert "[00:26] picture-frozen demo/default/live/cam-2: inactive → firing" in run.out
    assert "[00:30] picture-frozen demo/default/live/cam-2: firing → resolved" in run.out
    # OME's event for a stream that ends makes a targeted poll between two ticks (issue 16)
    assert (
        "[00:35] stream-ended demo/default/live/studio-c: inactive → firing (event-triggered poll)"
        "\n[00:35] ┌ notification (warning)\n        │ [FIRING] stream-ended" in run.out
    )
    # a push that starts retrying, then connects again (issue 15); its key never shows
    push = "push-not-pushing demo/default/live/studio-b/:push/rtmp://ingest.cdn.example/live#"
    assert re.search(re.escape(push) + r"\w+: pending → firing", run.out)
    assert re.search(re.escape(push) + r"\w+: firing → resolved", run.out)
    assert "studio-b to rtmp://ingest.cdn.example/live: error" in run.out
    assert "demo-stream-key" not in run.out


def test_version_and_light_start_up(tmp_path: Path) -> None:
    """--version prints the version, and importing the CLI pulls in none of the heavy libraries."""
    probe = (
        "import sys, omealert.cli.main; "
        "print(sorted(m for m in ('apprise', 'pydantic', 'httpx', 'jinja2', 'yaml', "
        "'prometheus_client', 'aiohttp') if m in sys.modules))"
    )
    version = start(tmp_path, ["--version"])
    imports = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=bare_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    run = finish(version)
    assert (run.code, run.out) == (0, f"omealert {__version__}\n")
    assert (imports.returncode, imports.stdout) == (0, "[]\n"), imports.stderr


def test_check_without_notify_never_imports_apprise(tmp_path: Path) -> None:
    """A check that sends nothing does not pay for loading apprise's plugins, nor for the
    watcher's metrics and listener (prometheus_client, aiohttp)."""
    config = tmp_path / "c.yaml"
    config.write_text(
        "servers: [{name: s, url: 'http://127.0.0.1:9'}]\n"
        "channels: {ops: {urls: ['json://127.0.0.1:9/x']}}\n"
        "rules: [{name: r, when: webrtc publishers > 1, channels: [ops]}]\n"
    )
    probe = (
        "import sys, io; from omealert.cli.main import main; "
        f"code = main(['check', '-c', {str(config)!r}], out=io.StringIO()); "
        "print(code, [m for m in ('apprise', 'prometheus_client', 'aiohttp') if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=bare_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.stdout == "3 []\n", done.stderr


# -- runner regressions found while writing these tests (fixed in runner.py) -----------------


class CreepingClock:
    """Simulated time that moves 1 ms on every read, as a real clock moves within a tick."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self.t = start

    def now(self) -> float:
        self.t += 0.001
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds
        await asyncio.sleep(0)


def _watch_config(sim: Simulator, rules: str) -> Settings:
    text = "servers:\n" + server("origin-1", sim.url) + "defaults:\n  channels: []\n" + rules
    return load_config_text(text, "watch.yaml", env={})


def test_watch_rate_counts_the_newest_poll() -> None:
    """Three polls 10 s apart fill half of a 30 s window, so rate() must have a value."""
    clock = CreepingClock()
    rules = "rules:\n  - name: ingest-flowing\n    when: rate(totalBytesIn, 30s) > 1000\n"

    async def three_ticks(sim: Simulator) -> list[str]:
        runner = Runner(_watch_config(sim, rules), clock=clock)
        try:
            for _ in range(3):
                await runner.tick()
                await clock.sleep(10)
            return [i.state.value for i in runner.engine.instances()]
        finally:
            await runner.aclose()

    with Simulator(clock=clock.now, access_token=TOKEN) as sim:
        sim.add_stream(*LIVE, "a")
        states = asyncio.run(three_ticks(sim))
    assert states == ["firing"]


def test_watch_saves_summaries_for_status(tmp_path: Path) -> None:
    """A firing alert that notifies nobody still has its summary in the state database."""
    clock = CreepingClock()
    rules = (
        "rules:\n  - name: viewers-warn\n    when: webrtc publishers > 5\n"
        '    summary: "{{ value }} viewers"\n'
    )

    async def one_tick(sim: Simulator, store: StateStore) -> None:
        runner = Runner(_watch_config(sim, rules), clock=clock, store=store)
        try:
            await runner.tick()
        finally:
            await runner.aclose()

    with (
        Simulator(clock=clock.now, access_token=TOKEN) as sim,
        StateStore(tmp_path / "state.db") as store,
    ):
        sim.add_stream(*LIVE, "a", viewers={"webrtc": 9})
        asyncio.run(one_tick(sim, store))
        records = store.load_alerts()
    assert [(r.state, r.summary) for r in records] == [("firing", "9 viewers")]


def test_demo_heartbeat_shows_the_dead_mans_switch(tmp_path: Path) -> None:
    """demo --heartbeat prints the pings: one per tick, /fail while OME does not answer."""
    run = cli(tmp_path, "demo", "--speed", "100", "--heartbeat")
    assert run.code == 0, run.err
    assert "heartbeat: POST /heartbeat/demo-check (a tick completed" in run.out
    assert "heartbeat: POST /heartbeat/demo-check/fail (every server failed" in run.out
    assert re.search(r"heartbeat: \d+ ping\(s\) received, [1-9]\d* of them /fail", run.out)
    assert run.err == ""
