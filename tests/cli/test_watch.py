"""``omealert watch`` as a real long-running process against the simulator and loopback sinks.

Each test starts ``python -m omealert watch`` in a temporary directory, drives an OME scenario
through the in-process simulator (real clock, 200 ms interval, 1 s thresholds) and checks what
reached a loopback webhook (json://) and SMTP relay, what ``/metrics`` says and what the process
logged. Waiting means polling an observable condition with a deadline, never a fixed sleep;
every process is killed by its pid in a finalizer, which also checks that no secret and no
traceback ever reached the watcher's output.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from omealert.cli import watch as watch_command
from omealert.cli.watch import parse_listen
from omealert.config.load import load_config
from omealert.simulator import Simulator
from omealert.state.store import StateStore
from tests.helpers import wait_until
from tests.receivers import HttpReceiver, SmtpSink

REPO = Path(__file__).resolve().parents[2]

# Recognizable secrets: none of them may appear in the watcher's output or /metrics.
TOKEN = "ome-TOKEN-s3cr3t-81f2"
TOKEN_B64 = base64.b64encode(TOKEN.encode()).decode()
HOOK_SECRET = "HOOK-PATH-SECRET-5c1d"
HEADER_SECRET = "HOOK-HEADER-SECRET-0e9a"
SMTP_PASSWORD = "SMTP-PASSWORD-7a3b"
SECRETS = (TOKEN, TOKEN_B64, HOOK_SECRET, HEADER_SECRET, SMTP_PASSWORD)

CAM1 = "origin/default/live/cam1"
CAM2 = "origin/default/live/cam2"
TITLE = '"[{{ status | upper }}] {{ rule }} on {{ target }}"'

STALLED = """\
  - name: stalled
    when: lastRecvTime stale > 1s
"""
STALLED_TOO = """\
  - name: stalled-too
    when: lastRecvTime stale > 900ms
"""
#: A condition that does not parse; the marker locates its line and column in the file.
BROKEN = """\
  - name: broken
    when: lastRecvTime stale >> 1s
"""


def config_text(
    sim: Simulator,
    http: HttpReceiver,
    smtp: SmtpSink,
    rules: str = STALLED,
    *,
    relay: bool = False,
) -> str:
    """A watch config polling ``sim`` that notifies the webhook and the SMTP sink.

    ``relay`` adds a third channel whose URL carries an SMTP password; the sink offers no
    AUTH, so every delivery to it fails and its error path is exercised.
    """
    channels = "[hook, mail, relay]" if relay else "[hook, mail]"
    relay_channel = (
        f"""  relay:
    urls: ["mailto://alice:{SMTP_PASSWORD}@127.0.0.1:{smtp.port}?from=omealert@example.com&to=relay@example.com"]
    format: text
    title: {TITLE}
"""
        if relay
        else ""
    )
    return f"""\
servers:
  - name: origin
    url: {sim.url}
    access_token: {TOKEN}
    timeout: 2s
interval: 200ms
ome_api_down:
  for: 1m
defaults:
  channels: {channels}
channels:
  hook:
    urls: ["json://127.0.0.1:{http.port}/hooks/{HOOK_SECRET}?+X-Token={HEADER_SECRET}"]
    format: text
    title: {TITLE}
  mail:
    urls: ["mailto://127.0.0.1:{smtp.port}?from=omealert@example.com&to=oncall@example.com"]
    format: text
    title: {TITLE}
{relay_channel}rules:
{rules}"""


def write(path: Path, text: str) -> Path:
    """Replace the file in one step, as an editor's save or a config-management tool would."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def titles(http: HttpReceiver) -> list[str]:
    return [str(body["title"]) for body in http.json_bodies()]


def subjects(smtp: SmtpSink) -> list[str]:
    return [str(msg["Subject"]) for msg in smtp.messages]


_HUMAN_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (INFO|WARNING|ERROR) {1,4}\S")
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text format → {(name, labels): value}; fails on any line it cannot read."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in ("counter", "gauge", "histogram"), line
            typed.add(name)
            if kind == "histogram":
                typed.update(f"{name}{suffix}" for suffix in ("_bucket", "_count", "_sum"))
            continue
        if line.startswith("# HELP ") or not line:
            continue
        m = _SAMPLE.match(line)
        assert m is not None, f"not a Prometheus sample line: {line!r}"
        name, labels, value = m.groups()
        assert name in typed, f"{name} has no # TYPE line before it"
        pairs = frozenset(_LABEL.findall(labels or ""))
        samples[(name, pairs)] = float(value)
    return samples


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as /proc shows them) of sockets listening on TCP ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            address, _, hex_port = fields[1].partition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


class Watcher:
    """One ``omealert watch`` process; output goes to files so it can never block on a pipe."""

    def __init__(
        self, workdir: Path, config: Path, state: Path, name: str, extra: Sequence[str]
    ) -> None:
        self.out_path = workdir / f"{name}.stdout"
        self.err_path = workdir / f"{name}.stderr"
        args = [sys.executable, "-m", "omealert", "watch", "-c", str(config)]
        args += ["--state", str(state), *extra]
        if not any(a == "--listen" for a in extra):
            args += ["--listen", "127.0.0.1:0"]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(REPO),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                args, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )
        self.json_logs = "json" in extra
        self.host = ""
        self.port = 0

    # -- output ----------------------------------------------------------------------------

    def stderr(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def stdout(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    def count(self, needle: str) -> int:
        return self.stderr().count(needle)

    def wait_log(self, needle: str, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``needle`` was logged ``count`` times; fail early if the process died."""
        ok = wait_until(
            lambda: self.count(needle) >= count or self.proc.poll() is not None, timeout
        )
        assert ok and self.count(needle) >= count, (
            f"{needle!r} not logged {count}x (exit {self.proc.poll()}):\n{self.stderr()}"
        )

    def wait_ready(self) -> Watcher:
        self.wait_log(" server(s) with ", timeout=30)
        m = re.search(r"serving /metrics and /healthz on ([0-9.]+):(\d+)", self.stderr())
        assert m is not None, self.stderr()
        self.host, self.port = m.group(1), int(m.group(2))
        return self

    # -- HTTP ------------------------------------------------------------------------------

    def get(self, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read().decode()

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        status, text = self.get("/metrics")
        assert status == 200
        return parse_metrics(text)

    def metric(self, name: str, **labels: str) -> float | None:
        return self.metrics().get((name, frozenset(labels.items())))

    def wait_ticks(self, n: int) -> None:
        """Let ``n`` more evaluation ticks happen (observed on /metrics, not slept)."""
        start = self.metric("omealert_ticks_total") or 0
        assert wait_until(lambda: (self.metric("omealert_ticks_total") or 0) >= start + n), (
            self.stderr()
        )

    # -- lifecycle -------------------------------------------------------------------------

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout: float = 15.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"watcher still running {timeout}s after the signal:\n{self.stderr()}")

    def kill(self) -> None:
        """SIGKILL by pid: no handler runs, nothing is flushed."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


StartWatcher = Callable[..., Watcher]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(access_token=TOKEN) as server:
        server.add_stream("default", "live", "cam1")
        server.add_stream("default", "live", "cam2")
        yield server


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def start(
    tmp_path: Path, sim: Simulator, http: HttpReceiver, smtp: SmtpSink
) -> Iterator[StartWatcher]:
    """Start watchers on ``tmp_path/state.db``; kill them all afterwards and audit their output."""
    started: list[Watcher] = []

    def launch(config: Path, *extra: str, ready: bool = True) -> Watcher:
        w = Watcher(tmp_path, config, tmp_path / "state.db", f"watch-{len(started)}", extra)
        started.append(w)
        return w.wait_ready() if ready else w

    yield launch
    for w in started:
        w.kill()
    for w in started:
        text = w.stdout() + w.stderr()
        for secret in SECRETS:
            assert secret not in text, f"a secret leaked into {w.err_path.name}"
        assert "Traceback" not in text, text
        for line in w.stderr().splitlines():  # one line per event, in the chosen format
            if w.json_logs:
                assert isinstance(json.loads(line), dict), line
            else:
                assert _HUMAN_LINE.match(line), line


@pytest.fixture
def cfg_path(tmp_path: Path) -> Path:
    return tmp_path / "omealert.yaml"


# --------------------------------------------------------------------------- notifications


def test_stall_fires_once_and_resolves_once_on_every_channel(
    start: StartWatcher,
    sim: Simulator,
    http: HttpReceiver,
    smtp: SmtpSink,
    cfg_path: Path,
) -> None:
    """A stalled ingest brings one [FIRING] to the webhook and by mail; resuming, one [RESOLVED]."""
    w = start(write(cfg_path, config_text(sim, http, smtp)))
    sim.stall("default", "live", "cam1")
    assert wait_until(lambda: len(http.requests) >= 1 and len(smtp.messages) >= 1), w.stderr()
    sim.resume("default", "live", "cam1")
    assert wait_until(lambda: len(http.requests) >= 2 and len(smtp.messages) >= 2), w.stderr()
    w.wait_log("delivered resolved notice for stalled to mail")
    w.wait_log("delivered resolved notice for stalled to hook")
    w.wait_ticks(3)

    expected = [f"[FIRING] stalled on {CAM1}", f"[RESOLVED] stalled on {CAM1}"]
    assert titles(http) == expected
    assert subjects(smtp) == expected
    assert [(m, p) for m, p, _h, _b in http.requests] == [("POST", f"/hooks/{HOOK_SECRET}")] * 2
    assert [b["type"] for b in http.json_bodies()] == ["warning", "success"]
    assert smtp.envelopes == [("omealert@example.com", ["oncall@example.com"])] * 2
    assert w.count("inactive → firing") == 1 and w.count("firing → resolved") == 1


def test_metrics_healthz_and_default_loopback_bind(
    start: StartWatcher,
    sim: Simulator,
    http: HttpReceiver,
    smtp: SmtpSink,
    cfg_path: Path,
) -> None:
    """/metrics counts polls, errors, alerts per state, sends per channel and reload status."""
    w = start(write(cfg_path, config_text(sim, http, smtp)), "--listen", ":0")
    assert w.host == "127.0.0.1"
    assert listening_addresses(w.port) == {"0100007F"}  # 127.0.0.1 only, not 0.0.0.0
    assert w.get("/healthz") == (200, "ok\n")
    assert w.get("/nothing-here")[0] == 404

    sim.set_fault("500", path="/streams/cam2", times=1)  # one target request fails
    sim.stall("default", "live", "cam1")
    w.wait_log("delivered first notice for stalled to hook")
    w.wait_log("delivered first notice for stalled to mail")
    sim.set_fault("500")  # every request fails until cleared: whole polls fail
    w.wait_log("server origin cannot be read")
    sim.clear_faults()
    w.wait_log("server origin answers normally again", count=2)
    w.wait_ticks(2)

    m = w.metrics()
    origin = frozenset({("server", "origin")})
    assert m[("omealert_polls_total", origin)] >= 5
    assert m[("omealert_requests_total", origin)] >= m[("omealert_polls_total", origin)]
    assert 0 < m[("omealert_poll_duration_seconds", origin)] < 2
    assert m[("omealert_poll_errors_total", origin | {("kind", "server_error")})] >= 1
    assert m[("omealert_target_errors_total", origin)] >= 1
    alerts = {dict(k[1])["state"]: v for k, v in m.items() if k[0] == "omealert_alerts"}
    assert alerts == {"inactive": 0, "pending": 0, "firing": 1, "resolved": 0}
    for name, want in (("sent", {"hook": 1, "mail": 1}), ("failed", {"hook": 0, "mail": 0})):
        metric = f"omealert_notifications_{name}_total"
        assert {dict(k[1])["channel"]: v for k, v in m.items() if k[0] == metric} == want
    assert m[("omealert_config_last_reload_successful", frozenset())] == 1
    assert m[("omealert_ticks_total", frozenset())] >= 5
    assert w.count("cannot be read") == 1  # one line for the outage, however many ticks

    slow_before = w.metric("omealert_slow_ticks_total") or 0
    sim.set_fault("slow", times=1, delay=0.5)  # one request, so one tick, overruns
    w.wait_log("longer than the 0.20s interval")
    w.wait_ticks(3)
    assert (w.metric("omealert_slow_ticks_total") or 0) >= slow_before + 1

    assert w.get("/healthz") == (200, "ok\n")


def test_a_taken_metrics_port_is_one_clear_error(
    tmp_path: Path,
    sim: Simulator,
    http: HttpReceiver,
    smtp: SmtpSink,
    cfg_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When --listen cannot bind, the watcher logs why and exits 1 instead of a traceback."""
    write(cfg_path, config_text(sim, http, smtp))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = asyncio.run(
            watch_command._watch(
                load_config(cfg_path), str(cfg_path), str(tmp_path / "s.db"), ("127.0.0.1", port)
            )
        )
    assert code == (1, 0)
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        f"cannot serve /metrics on 127.0.0.1:{port}: Address already in use"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        (":9464", ("127.0.0.1", 9464)),
        ("9464", ("127.0.0.1", 9464)),
        ("0.0.0.0:9464", ("0.0.0.0", 9464)),
        ("[::1]:9464", ("::1", 9464)),
        ("localhost:http", None),
        ("127.0.0.1:99999", None),
    ],
)
def test_listen_address_defaults_to_loopback(text: str, expected: tuple[str, int] | None) -> None:
    """--listen without a host binds loopback; brackets around IPv6 are dropped; junk is refused."""
    assert parse_listen(text) == expected


# --------------------------------------------------------------------------- reload


def test_sighup_and_file_change_reload_good_and_bad_configs(
    start: StartWatcher,
    sim: Simulator,
    http: HttpReceiver,
    smtp: SmtpSink,
    cfg_path: Path,
) -> None:
    """A good reload resolves removed rules and keeps the rest; a bad one keeps the old config."""
    w = start(write(cfg_path, config_text(sim, http, smtp, STALLED + STALLED_TOO)))
    sim.stall("default", "live", "cam1")
    assert wait_until(lambda: len(http.requests) >= 2 and len(smtp.messages) >= 2), w.stderr()
    w.wait_log("delivered first notice for stalled to mail")
    w.wait_log("delivered first notice for stalled-too to mail")

    # Good config over SIGHUP: stalled-too is removed while firing, stalled is unchanged.
    write(cfg_path, config_text(sim, http, smtp, STALLED))
    w.signal(signal.SIGHUP)
    w.wait_log("config reloaded")
    resolved_too = f"[RESOLVED] stalled-too on {CAM1}"
    assert wait_until(lambda: resolved_too in titles(http) and resolved_too in subjects(smtp))
    w.wait_ticks(8)  # long enough for the file watcher to have looked at the file too
    firing = sorted([f"[FIRING] stalled on {CAM1}", f"[FIRING] stalled-too on {CAM1}"])
    assert sorted(titles(http)) == sorted([*firing, resolved_too])
    assert sorted(subjects(smtp)) == sorted([*firing, resolved_too])
    assert w.count("config reloaded") == 1
    assert w.metric("omealert_config_last_reload_successful") == 1
    assert w.metric("omealert_config_reloads_total", result="success") == 1

    # Bad config over SIGHUP: one ERROR line naming FILE:LINE:COL; the old config runs on.
    bad = config_text(sim, http, smtp, STALLED + BROKEN)
    line = bad.splitlines().index("    when: lastRecvTime stale >> 1s") + 1
    write(cfg_path, bad)
    w.signal(signal.SIGHUP)
    w.wait_log("reload failed")
    w.wait_ticks(8)
    errors = [ln for ln in w.stderr().splitlines() if " ERROR " in ln]
    assert len(errors) == 1, errors
    assert f"{cfg_path}:{line}:31:" in errors[0]
    assert w.metric("omealert_config_last_reload_successful") == 0
    assert w.metric("omealert_config_reloads_total", result="failure") == 1
    sim.resume("default", "live", "cam1")
    resolved = f"[RESOLVED] stalled on {CAM1}"
    assert wait_until(lambda: resolved in titles(http) and resolved in subjects(smtp)), w.stderr()

    # A fixed file is picked up without any signal.
    write(cfg_path, config_text(sim, http, smtp, STALLED + STALLED_TOO))
    w.wait_log("config reloaded", count=2)
    assert wait_until(lambda: w.metric("omealert_config_last_reload_successful") == 1)
    sim.stall("default", "live", "cam2")
    assert wait_until(lambda: f"[FIRING] stalled-too on {CAM2}" in titles(http)), w.stderr()
    assert w.count(" ERROR ") == 1


# --------------------------------------------------------------------------- delivery


def test_receiver_down_is_retried_once_back_and_mail_is_not_held_back(
    start: StartWatcher,
    sim: Simulator,
    http: HttpReceiver,
    smtp: SmtpSink,
    cfg_path: Path,
) -> None:
    """A refused webhook is retried after it comes back (once); mail goes out meanwhile."""
    w = start(write(cfg_path, config_text(sim, http, smtp)))
    http.set_down(True)
    sim.stall("default", "live", "cam1")
    assert wait_until(lambda: len(smtp.messages) >= 1), w.stderr()
    w.wait_log("delivery to hook")
    assert "retry in 5s" in w.stderr()
    assert subjects(smtp) == [f"[FIRING] stalled on {CAM1}"]

    http.set_down(False)
    assert wait_until(lambda: len(http.requests) >= 1, timeout=15), w.stderr()
    w.wait_log("delivered first notice for stalled to hook")
    w.wait_ticks(3)
    assert titles(http) == [f"[FIRING] stalled on {CAM1}"]
    assert subjects(smtp) == [f"[FIRING] stalled on {CAM1}"]
    assert w.metric("omealert_notifications_sent_total", channel="hook") == 1
    assert w.metric("omealert_notifications_failed_total", channel="hook", reason="refused") == 1
    assert w.count("failed (refused), attempt") == 1  # one line per failed attempt, not per tick


def test_hung_webhook_holds_back_neither_mail_nor_polling_nor_shutdown(
    start: StartWatcher,
    sim: Simulator,
    http: HttpReceiver,
    smtp: SmtpSink,
    cfg_path: Path,
) -> None:
    """While the webhook hangs, later mail still goes out, ticks go on and SIGTERM exits 0."""
    w = start(write(cfg_path, config_text(sim, http, smtp)))
    http.set_delay(60)
    sim.stall("default", "live", "cam1")
    assert wait_until(lambda: len(http.requests) >= 1 and len(smtp.messages) >= 1), w.stderr()
    sim.stall("default", "live", "cam2")  # fires while the first webhook call still hangs
    assert wait_until(lambda: len(smtp.messages) >= 2), w.stderr()
    assert subjects(smtp) == [f"[FIRING] stalled on {CAM1}", f"[FIRING] stalled on {CAM2}"]
    w.wait_ticks(3)
    assert len(http.requests) == 1  # the hook's second message waits behind its first

    w.signal(signal.SIGTERM)
    assert w.wait_exit(timeout=20) == 0
    assert "stopped" in w.stderr()
    with StateStore(cfg_path.parent / "state.db") as store:
        queued = sorted(m.targets[0] for m in store.pending_outbox())
        assert queued == [CAM1, CAM2]  # both kept for the next start, none lost


# --------------------------------------------------------------------------- restarts


def test_sigterm_persists_state_and_a_restart_does_not_announce_again(
    start: StartWatcher,
    sim: Simulator,
    http: HttpReceiver,
    smtp: SmtpSink,
    cfg_path: Path,
) -> None:
    """SIGTERM exits 0 with the firing alert saved; the next watcher does not re-send it."""
    cfg = write(cfg_path, config_text(sim, http, smtp))
    w = start(cfg)
    sim.stall("default", "live", "cam1")
    w.wait_log("delivered first notice for stalled to hook")
    w.wait_log("delivered first notice for stalled to mail")
    w.signal(signal.SIGTERM)
    assert w.wait_exit() == 0
    assert w.stderr().rstrip().endswith("stopped")

    with StateStore(cfg_path.parent / "state.db") as store:
        (alert,) = store.load_alerts()
        assert (alert.rule, alert.target, alert.state) == ("stalled", CAM1, "firing")
        assert sorted(alert.notified) == ["hook", "mail"]
        assert store.pending_outbox() == []

    again = start(cfg)
    again.wait_log("restored 1 alert instance(s), 1 firing")
    again.wait_ticks(3)
    assert titles(http) == [f"[FIRING] stalled on {CAM1}"]
    assert subjects(smtp) == [f"[FIRING] stalled on {CAM1}"]

    sim.resume("default", "live", "cam1")
    assert wait_until(lambda: len(http.requests) >= 2 and len(smtp.messages) >= 2)
    again.wait_ticks(3)
    assert titles(http)[1:] == subjects(smtp)[1:] == [f"[RESOLVED] stalled on {CAM1}"]


def test_sigkill_between_ticks_neither_repeats_a_firing_notice_nor_loses_a_resolve(
    start: StartWatcher,
    sim: Simulator,
    http: HttpReceiver,
    smtp: SmtpSink,
    cfg_path: Path,
) -> None:
    """After kill -9 a restart sends no second [FIRING], and a resolve that came due is sent."""
    cfg = write(cfg_path, config_text(sim, http, smtp))
    w = start(cfg)
    sim.stall("default", "live", "cam1")
    w.wait_log("delivered first notice for stalled to hook")
    w.wait_log("delivered first notice for stalled to mail")
    w.wait_ticks(1)
    w.kill()
    with StateStore(cfg_path.parent / "state.db") as store:
        (before,) = store.load_alerts()
        assert (before.state, sorted(before.notified)) == ("firing", ["hook", "mail"])
        assert store.pending_outbox() == []

    second = start(cfg)
    second.wait_log("restored 1 alert instance(s), 1 firing")
    second.wait_ticks(3)
    assert titles(http) == subjects(smtp) == [f"[FIRING] stalled on {CAM1}"]
    second.kill()
    with StateStore(cfg_path.parent / "state.db") as store:
        (after,) = store.load_alerts()
        # The repeat interval still counts from the first notice: a restart does not reset it.
        assert (after.fired_at, after.notified) == (before.fired_at, before.notified)

    sim.resume("default", "live", "cam1")  # recovers while no watcher runs
    third = start(cfg)
    third.wait_log("delivered resolved notice for stalled to hook")
    third.wait_log("delivered resolved notice for stalled to mail")
    third.wait_ticks(3)
    expected = [f"[FIRING] stalled on {CAM1}", f"[RESOLVED] stalled on {CAM1}"]
    assert titles(http) == subjects(smtp) == expected


def test_sigkill_with_a_queued_message_delivers_it_once_after_restart(
    start: StartWatcher,
    sim: Simulator,
    http: HttpReceiver,
    smtp: SmtpSink,
    cfg_path: Path,
) -> None:
    """A notice still in the outbox at kill -9 reaches the webhook once the watcher restarts."""
    cfg = write(cfg_path, config_text(sim, http, smtp))
    w = start(cfg)
    http.set_down(True)
    sim.stall("default", "live", "cam1")
    w.wait_log("delivered first notice for stalled to mail")
    w.wait_log("delivery to hook")
    w.kill()
    with StateStore(cfg_path.parent / "state.db") as store:
        (queued,) = store.pending_outbox()
        assert (queued.channel, queued.attempts, queued.reason) == ("hook", 1, "first")

    http.set_down(False)
    again = start(cfg)
    assert wait_until(lambda: len(http.requests) >= 1, timeout=15), again.stderr()
    again.wait_log("delivered first notice for stalled to hook")
    again.wait_ticks(3)
    assert titles(http) == subjects(smtp) == [f"[FIRING] stalled on {CAM1}"]
    with StateStore(cfg_path.parent / "state.db") as store:
        assert store.pending_outbox() == []


# --------------------------------------------------------------------------- logs and secrets


def test_json_logs_parse_and_no_secret_reaches_logs_metrics_or_state(
    start: StartWatcher,
    sim: Simulator,
    http: HttpReceiver,
    smtp: SmtpSink,
    cfg_path: Path,
) -> None:
    """--log-format json writes one JSON object per line; no secret appears anywhere we emit.

    The relay channel's password is refused by the sink, a bad reload names the file holding
    every secret, and the OME server fails: the error paths are where secrets tend to leak.
    """
    w = start(write(cfg_path, config_text(sim, http, smtp, relay=True)), "--log-format", "json")
    sim.stall("default", "live", "cam1")
    w.wait_log("delivered first notice for stalled to hook")
    w.wait_log("delivered first notice for stalled to mail")
    w.wait_log("delivery to relay")  # the password is refused: the failure path is logged
    bad = config_text(sim, http, smtp, STALLED + BROKEN, relay=True)
    write(cfg_path, bad)
    w.signal(signal.SIGHUP)
    w.wait_log("reload failed")
    sim.set_fault("500")
    w.wait_log("cannot be read")
    sim.clear_faults()
    status, metrics_text = w.get("/metrics")
    w.signal(signal.SIGINT)  # Ctrl-C stops it as cleanly as SIGTERM
    assert w.wait_exit() == 0

    records = [json.loads(line) for line in w.stderr().splitlines()]
    assert len(records) >= 8
    assert all(set(r) >= {"ts", "level", "logger", "msg"} for r in records)
    assert {r["level"] for r in records} >= {"info", "warning", "error"}
    assert records[-1]["msg"] == "stopped"
    assert w.stdout() == ""
    assert status == 200
    # the relay offers no AUTH for the channel's password: an auth failure, counted as one
    assert 'omealert_notifications_failed_total{channel="relay",reason="auth"} 1.0' in metrics_text
    state_files = [p for p in cfg_path.parent.iterdir() if p.name.startswith("state.db")]
    assert state_files
    emitted = [metrics_text] + [p.read_bytes().decode("latin-1") for p in state_files]
    for secret in SECRETS:
        for text in emitted:
            assert secret not in text
