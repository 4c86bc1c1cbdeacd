"""omealert under the faults production brings: a misbehaving OME, failing channels, a dying
disk, and SIGKILL at random points of a tick.

Everything runs on real parts over loopback — the simulator speaking OME's API, the OME
client, engine, planner, outbox, apprise, a webhook receiver and an SMTP relay, the state in
SQLite — on simulated time (``FakeClock`` driving the simulator), so minutes of outage pass
in milliseconds. Each test checks the guarantee the README states, not an implementation
detail: no false resolve, one log line per problem, every notice delivered once and in
order, at most one duplicate per kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from omealert.clock import FakeClock
from omealert.config.load import load_config_text
from omealert.model import AlertState, Value
from omealert.runner import Runner, TickReport
from omealert.simulator import ManualClock, Simulator
from omealert.state.store import StateStore

from . import crash_driver
from .helpers import run_async
from .receivers import LOOPBACK, HttpReceiver, SmtpSink, _SmtpHandler
from .rig import RunnerRig

REPO = Path(__file__).resolve().parent.parent
LIVE = ("default", "live")
TOKEN = "ome-access-token"

CONFIG = """\
servers:
  - name: origin
    url: {sim}
    access_token: {token}
    timeout: {timeout}
interval: 10s
defaults:
  channels: [{names}]
channels:
  hook:
    urls: ["json://127.0.0.1:{hook}/omealert"]
    format: text
{mail}rules:
  - name: ingest-stalled
    when: lastRecvTime stale > 30s
    on_missing: {on_missing}
{extra}"""


MAIL_CHANNEL = """\
  mail:
    urls: ["mailto://127.0.0.1:{port}?from=omealert@example.com&to=oncall@example.com"]
    format: text
"""


def firing(stream: str, rule: str = "ingest-stalled") -> str:
    return f"[FIRING] {rule} on origin/default/live/{stream}"


def resolved(stream: str, rule: str = "ingest-stalled") -> str:
    return f"[RESOLVED] {rule} on origin/default/live/{stream}"


API_DOWN = "[FIRING] ome-api-down on origin"
API_UP = "[RESOLVED] ome-api-down on origin"


class Rig(RunnerRig):
    """The shared rig, whose config each test shapes through ``start``."""

    def __init__(self, tmp: Path, sim: Simulator, hook: HttpReceiver, clock: FakeClock) -> None:
        super().__init__(tmp, clock, sim, hook)

    @contextlib.asynccontextmanager
    async def running(self, **kw: Any) -> AsyncIterator[Runner]:
        """A runner for the body of a test, closed (clients, state file) whatever happens."""
        runner = self.start(**kw)
        try:
            yield runner
        finally:
            await self.stop()

    def start(
        self,
        *,
        timeout: str = "5s",
        on_missing: str = "resolve",
        extra: str = "",
        smtp_port: int = 0,
        send_timeout: float = 5.0,
    ) -> Runner:
        """A runner on the rig's state file; ``smtp_port`` adds a ``mail`` channel."""
        text = CONFIG.format(
            sim=self.sim.url,
            token=TOKEN,
            timeout=timeout,
            names="hook, mail" if smtp_port else "hook",
            hook=self.hook.port,
            mail=MAIL_CHANNEL.format(port=smtp_port) if smtp_port else "",
            on_missing=on_missing,
            extra=extra,
        )
        settings = load_config_text(text, "reliability.yaml", env={})
        return self.start_with(settings, send_timeout=send_timeout)

    def state_of(self, rule: str, stream: str) -> AlertState | None:
        assert self.runner is not None
        key = f"origin/default/live/{stream}"
        for inst in self.runner.engine.instances():
            if inst.rule == rule and inst.target.key == key:
                return inst.state
        return None


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    clock = FakeClock()
    sim = Simulator(clock=clock.now, access_token=TOKEN)
    sim.start()
    hook = HttpReceiver()
    hook.start()
    for name in ("cam1", "cam2", "cam3"):
        sim.add_stream(*LIVE, name, viewers={"webrtc": 3})
    try:
        yield Rig(tmp_path, sim, hook, clock)
    finally:
        hook.stop()
        sim.stop()


class Records(logging.Handler):
    """Collects omealert's log records (the root logger's view, as a log shipper gets it)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def clear(self) -> None:
        self.records.clear()

    def lines(self, level: int = logging.WARNING) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


# --------------------------------------------------------------------------- OME faults


@dataclass(frozen=True)
class Fault:
    """One way OME (or what stands in front of it) can fail, and what the client must call it."""

    name: str
    kind: str  # the SourceErrorKind it must be reported as
    apply: Callable[[Simulator], None]
    undo: Callable[[Simulator], None] | None = None
    timeout: str = "5s"


def _fault(kind: str, **kw: object) -> Callable[[Simulator], None]:
    return lambda sim: sim.set_fault(kind, **kw)  # type: ignore[arg-type]


def _clear(sim: Simulator) -> None:
    sim.clear_faults()


def _stop(sim: Simulator) -> None:
    sim.stop()  # the port is closed: connections are refused


def _rotate(sim: Simulator) -> None:
    sim.set_token("rotated-token-nobody-told-omealert")


def _unrotate(sim: Simulator) -> None:
    sim.set_token(TOKEN)


#: A hang is a reply held back much longer than the configured timeout.
HANG_TIMEOUT = "800ms"

SERVER_FAULTS = [
    Fault("refused", "unreachable", _stop),
    Fault("hang", "timeout", _fault("slow", delay=3.0), _clear, HANG_TIMEOUT),
    Fault("http-500", "server_error", _fault("500"), _clear),
    Fault("proxy-html-502", "server_error", _fault("html"), _clear),
    Fault("garbage", "bad_response", _fault("garbage"), _clear),
    Fault("truncated-json", "bad_response", _fault("truncated"), _clear),
    Fault("wrong-shape", "bad_response", _fault("wrong_shape"), _clear),
    Fault("huge-body", "bad_response", _fault("huge"), _clear),
    Fault("dropped-connection", "unreachable", _fault("drop"), _clear),
    Fault("everything-404", "not_found", _fault("vanish"), _clear),
    Fault("token-rotated", "unauthorized", _rotate, _unrotate),
]

CAM1_STATS = "/stats/current/vhosts/default/apps/live/streams/cam1"
TARGET_FAULTS = [
    Fault("hang", "timeout", _fault("slow", path=CAM1_STATS, delay=3.0), _clear, HANG_TIMEOUT),
    Fault("http-500", "server_error", _fault("500", path=CAM1_STATS), _clear),
    Fault("proxy-html-502", "server_error", _fault("html", path=CAM1_STATS), _clear),
    Fault("garbage", "bad_response", _fault("garbage", path=CAM1_STATS), _clear),
    Fault("truncated-json", "bad_response", _fault("truncated", path=CAM1_STATS), _clear),
    Fault("wrong-shape", "bad_response", _fault("wrong_shape", path=CAM1_STATS), _clear),
    Fault("wrong-types", "bad_response", _fault("wrong_types", path=CAM1_STATS), _clear),
    Fault("huge-body", "bad_response", _fault("huge", path=CAM1_STATS), _clear),
    Fault("dropped-connection", "unreachable", _fault("drop", path=CAM1_STATS), _clear),
]

FAULT_TICKS = 4


async def _fire_cam1(rig: Rig) -> None:
    """cam1's encoder hangs and its alert fires and is announced, before any fault."""
    rig.sim.stall(*LIVE, "cam1")
    for _ in range(5):
        await rig.tick()
    assert rig.state_of("ingest-stalled", "cam1") is AlertState.FIRING
    assert rig.titles() == [firing("cam1")]


@pytest.mark.parametrize("fault", SERVER_FAULTS, ids=lambda f: f.name)
@run_async
async def test_server_wide_fault_keeps_alerts_and_fires_api_down_with_one_log_line(
    rig: Rig, records: Records, fault: Fault
) -> None:
    """A server that cannot be read resolves nothing, fires ome-api-down once and logs the
    problem in one line however many ticks it lasts; when it ends, api-down resolves."""
    async with rig.running(timeout=fault.timeout) as runner:
        await _fire_cam1(rig)
        records.clear()
        fault.apply(rig.sim)
        if fault.undo is not None:
            rig.sim.resume(*LIVE, "cam1")  # the recovery is not seen while OME cannot be read
        for _ in range(FAULT_TICKS):
            report = await runner.tick()
            error = report.polls[0].error
            assert error is not None and error.kind.value == fault.kind
            await rig.deliver()
            rig.clock.advance(10)

        assert rig.state_of("ingest-stalled", "cam1") is AlertState.FIRING
        api = [i for i in runner.engine.instances() if i.rule == "ome-api-down"]
        assert [(i.target.key, i.state) for i in api] == [("origin", AlertState.FIRING)]
        assert rig.titles() == [firing("cam1"), API_DOWN]
        problem = [m for m in records.lines() if m.startswith("server origin")]
        assert len(problem) == 1, records.lines()
        assert problem[0].startswith(f"server origin cannot be read: origin: {fault.kind} on GET ")
        others = [m for m in records.lines() if not m.startswith("server origin")]
        assert others == [
            f"ome-api-down origin: inactive → firing (value {api[0].value}, api-down)"
        ]
        assert not any(r.exc_info for r in records.records)

        if fault.undo is None:
            return
        fault.undo(rig.sim)
        records.clear()
        for _ in range(2):
            await rig.tick()
        assert rig.titles()[:2] == [firing("cam1"), API_DOWN]
        assert sorted(rig.titles()[2:]) == sorted([API_UP, resolved("cam1")])
        assert records.lines(logging.INFO).count("server origin answers normally again") == 1


@pytest.mark.parametrize("fault", TARGET_FAULTS, ids=lambda f: f.name)
@run_async
async def test_one_streams_fault_keeps_its_state_and_others_evaluate_normally(
    rig: Rig, records: Records, fault: Fault
) -> None:
    """When only one stream's stats fail, that stream's alert keeps its state (no resolve),
    another stream still fires, ome-api-down stays quiet, and one line names the problem."""
    async with rig.running(timeout=fault.timeout) as runner:
        await _fire_cam1(rig)
        records.clear()
        fault.apply(rig.sim)
        rig.sim.resume(*LIVE, "cam1")  # unseen: cam1's own request fails
        rig.sim.stall(*LIVE, "cam3")  # seen: cam3 is read normally and must fire
        for _ in range(FAULT_TICKS + 1):
            report = await runner.tick()
            poll = report.polls[0]
            assert poll.error is None
            assert [(t.key, e.kind.value) for t, e in poll.target_errors.items()] == [
                ("origin/default/live/cam1", fault.kind)
            ]
            await rig.deliver()
            rig.clock.advance(10)

        assert rig.state_of("ingest-stalled", "cam1") is AlertState.FIRING
        assert rig.state_of("ingest-stalled", "cam3") is AlertState.FIRING
        assert not [i for i in runner.engine.instances() if i.rule == "ome-api-down"]
        assert rig.titles() == [firing("cam1"), firing("cam3")]
        problem = [m for m in records.lines() if m.startswith("server origin")]
        assert len(problem) == 1, records.lines()
        assert problem[0].startswith(
            f"server origin: 1 target request(s) failed ({fault.kind} ×1); e.g. origin: "
            f"{fault.kind} on GET /v1{CAM1_STATS}"
        )
        others = [m for m in records.lines() if not m.startswith("server origin")]
        assert len(others) == 1 and others[0].startswith("ingest-stalled origin/default/live/cam3:")

        assert fault.undo is not None
        fault.undo(rig.sim)
        await rig.tick()
        assert rig.titles() == [firing("cam1"), firing("cam3"), resolved("cam1")]


@run_async
async def test_wrong_types_in_every_answer_keep_every_alert_with_one_line(
    rig: Rig, records: Records
) -> None:
    """Listings still readable but every stream's stats mistyped: each stream keeps its state
    (a per-target failure, not a recovery), and the whole problem is one log line."""
    async with rig.running() as runner:
        await _fire_cam1(rig)
        records.clear()
        rig.sim.set_fault("wrong_types")
        rig.sim.resume(*LIVE, "cam1")
        for _ in range(FAULT_TICKS):
            report = await runner.tick()
            kinds = {t.stream: e.kind.value for t, e in report.polls[0].target_errors.items()}
            assert kinds == dict.fromkeys(("cam1", "cam2", "cam3"), "bad_response")
            await rig.deliver()
            rig.clock.advance(10)
        assert rig.state_of("ingest-stalled", "cam1") is AlertState.FIRING
        assert rig.titles() == [firing("cam1")]
        (line,) = records.lines()
        assert line.startswith("server origin: 3 target request(s) failed (bad_response ×3)")
        assert "a field of the wrong type" in line


@run_async
async def test_a_stream_vanishing_between_listing_and_stats_follows_on_missing(
    rig: Rig, records: Records
) -> None:
    """A stream listed but gone by the time its stats are asked for has ended: with
    ``on_missing: keep`` its alert stays firing, and nothing is logged as an error."""
    async with rig.running(on_missing="keep") as runner:
        await _fire_cam1(rig)
        records.clear()
        rig.sim.set_fault("vanish", path=CAM1_STATS)
        for _ in range(FAULT_TICKS):
            report = await runner.tick()
            assert [t.key for t in report.polls[0].gone] == ["origin/default/live/cam1"]
            assert report.polls[0].target_errors == {}
            rig.clock.advance(10)
        assert rig.state_of("ingest-stalled", "cam1") is AlertState.FIRING
        assert records.lines() == []


@run_async
async def test_a_stream_vanishing_mid_poll_resolves_by_default(rig: Rig) -> None:
    """With the default ``on_missing: resolve`` a stream that ended mid-poll resolves once."""
    async with rig.running():
        await _fire_cam1(rig)
        rig.sim.set_fault("vanish", path=CAM1_STATS)
        for _ in range(3):
            await rig.tick()
        assert rig.state_of("ingest-stalled", "cam1") is None
        assert rig.titles() == [firing("cam1"), resolved("cam1")]


PRESENCE_RULES = """\
  - name: watched
    when: webrtc publishers > 0
  - name: cam2-gone
    match: default/live/cam2
    when: absent
  - name: ingest-low
    when: avgThroughputIn < 100kbps
  - name: peak-high
    when: maxThroughputIn > 100Mbps
  - name: video-low
    when: video.bitrateLatest < 100kbps
"""


@run_async
async def test_omes_shutdown_window_and_hang_resolve_nothing(rig: Rig) -> None:
    """SIGTERM as OME 0.18 answers it: a moment of ``200 []`` vhosts (404 below), then a hang.
    No alert resolves, nothing is absent, no message but ome-api-down; OME back after a
    restart with 0.18's first-second garbage fires nothing either (issue 21)."""
    watched = ["[FIRING:3] watched (3 targets)"]  # one group message, and no [RESOLVED] one
    async with rig.running(timeout=HANG_TIMEOUT, extra=PRESENCE_RULES) as runner:
        await rig.tick()
        assert sorted(rig.titles()) == watched
        rig.sim.set_fault("shutting_down")
        report = await runner.tick()
        assert report.transitions == []
        assert report.polls[0].error is None and report.polls[0].unconfirmed
        await rig.deliver()
        rig.clock.advance(10)
        rig.sim.clear_faults()
        rig.sim.set_fault("hang")
        report = await runner.tick()
        assert report.polls[0].error is not None
        await rig.deliver()
        rig.clock.advance(10)
        rig.sim.clear_faults()
        rig.sim.set_quirks(["first_second", "partial_window"])
        rig.sim.restart()
        for _ in range(3):
            report = await runner.tick()
            assert [t.instance.rule for t in report.transitions] in ([], ["ome-api-down"])
            await rig.deliver()
            rig.clock.advance(1)
        assert sorted(rig.titles()) == sorted([*watched, API_DOWN, API_UP])
        metrics = runner.metrics
        assert metrics is not None
        assert metrics.value("omealert_unconfirmed_vanishings_total", server="origin") == 1
        dropped = metrics.value(
            "omealert_values_dropped_total",
            server="origin",
            field="video.bitrateLatest",
            reason="implausible",
        )
        assert dropped == 3  # 3 cams, once each


RATE_RULES = """\
  - name: throughput-collapsed
    when: rate(totalBytesIn, 30s) < 10kB
  - name: bytes-shrinking
    when: rate(totalBytesIn) < 0
"""


def _cam(report: TickReport, name: str) -> dict[str, Value]:
    (poll,) = report.polls
    return next(s.fields for t, s in poll.samples.items() if t.stream == name)


@run_async
async def test_ome_restart_is_not_negative_traffic(rig: Rig, records: Records) -> None:
    """OME restarting (counters back to zero, new createdTime) fires no rate() rule and no
    api-down; a real stall afterwards still fires, so the rule is live."""
    async with rig.running(extra=RATE_RULES) as runner:
        for _ in range(6):
            await rig.tick()
        before = _cam(await runner.tick(), "cam1")
        rig.clock.advance(5)
        rig.sim.restart()
        rig.clock.advance(5)
        for _ in range(6):
            report = await runner.tick()
            assert report.transitions == []
            await rig.deliver()
            rig.clock.advance(10)
        after = _cam(report, "cam1")
        assert after["createdTime"] != before["createdTime"]
        assert after["providers.totalBytesIn"] < before["providers.totalBytesIn"]  # type: ignore[operator]
        assert rig.titles() == []
        assert records.lines() == []

        rig.sim.stall(*LIVE, "cam2")
        for _ in range(5):
            await rig.tick()
        assert rig.state_of("throughput-collapsed", "cam2") is AlertState.FIRING
        assert rig.state_of("bytes-shrinking", "cam2") is None


# --------------------------------------------------------------------------- SIGKILL


KILLS = 20


class Driver:
    """One run of ``crash_driver.py``; its output goes to files so it never blocks on a pipe."""

    def __init__(self, tmp: Path, n: int, args: list[str]) -> None:
        self.out = tmp / f"driver-{n}.out"
        self.err = tmp / f"driver-{n}.err"
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(Path(crash_driver.__file__)), *args],
                cwd=tmp,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )

    def ticks(self) -> int:
        return self.out.read_text().count("tick ")

    def wait_ticks(self, n: int, timeout: float = 30.0) -> bool:
        """True once ``n`` ticks are done; False if the process ended first."""
        deadline = time.monotonic() + timeout
        while self.ticks() < n:
            if self.proc.poll() is not None:
                return False
            assert time.monotonic() < deadline, self.err.read_text()
            time.sleep(0.005)
        return True

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def check_database(db: Path) -> None:
    """The file is a sound SQLite database, and no message is both settled and queued."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        settled_but_queued = conn.execute(
            "SELECT count(*) FROM outbox WHERE id IN (SELECT message_id FROM notification_log "
            "WHERE kind IN ('sent', 'dropped'))"
        ).fetchone()[0]
        assert settled_but_queued == 0
        twice = conn.execute(
            "SELECT message_id FROM notification_log WHERE kind = 'sent' "
            "GROUP BY message_id HAVING count(*) > 1"
        ).fetchall()
        assert twice == []
    finally:
        conn.close()


def test_sigkill_at_random_points_loses_nothing_and_duplicates_at_most_one_per_kill(
    tmp_path: Path,
) -> None:
    """Killed with SIGKILL at random moments 20 times and restarted on the same state file,
    the watcher still delivers every firing and resolved notice, in order per alert, with at
    most one duplicate per kill; the database stays sound and the outbox consistent."""
    rng = random.Random(20260101)
    clock = ManualClock()
    db = tmp_path / "state.db"
    names = [f"s{k}" for k in range(crash_driver.STREAMS)]
    with Simulator(clock=clock) as sim, HttpReceiver() as hook:
        sim.add_streams(*LIVE, names)
        hook.set_delay(0.02)  # a send takes a moment: kills land mid-delivery too
        args = [sim.url, str(hook.port), str(db), repr(clock.now())]
        kills = 0
        for n in range(KILLS):
            driver = Driver(tmp_path, n, args)
            try:
                if not driver.wait_ticks(rng.randint(1, 3)):
                    break  # the scenario ended before this kill
                time.sleep(rng.uniform(0.0, 0.05))  # somewhere inside the next tick
            finally:
                driver.kill()
            kills += driver.proc.returncode == -signal.SIGKILL
            check_database(db)
        last = Driver(tmp_path, KILLS, args)
        assert last.proc.wait(60) == 0, last.err.read_text()
        assert last.out.read_text().splitlines()[-1] == "done"
        titles = [str(b["title"]) for b in hook.json_bodies()]

    assert kills >= KILLS // 2, "the scenario ended before the driver could be killed enough"
    expected = [t for name in names for t in (firing(name), resolved(name))]
    counts = Counter(titles)
    assert set(counts) == set(expected), titles  # nothing lost, nothing unexpected
    duplicates = sum(c - 1 for c in counts.values())
    assert duplicates <= kills, (duplicates, kills, titles)
    for name in names:  # per alert: firing before resolved, duplicates only back to back
        mine = [t for t in titles if t.endswith(f"/{name}")]
        deduped = [t for i, t in enumerate(mine) if i == 0 or mine[i - 1] != t]
        assert deduped == [firing(name), resolved(name)], mine
    check_database(db)
    with StateStore(db) as store:
        assert store.pending_outbox() == []
        assert store.load_alerts() == []  # every alert resolved and was forgotten
        sent = [e for e in store.history(0.0, limit=10_000) if e.kind == "sent"]
        assert len(sent) == len(expected)


# --------------------------------------------------------------------------- disk


def fill_up(store: StateStore) -> Callable[[], None]:
    """Make the state file full for real: SQLite's page cap at its current size, and every
    table's last page filled, so the next write that needs room fails with SQLITE_FULL.

    Returns the undo (room again). A tiny file system would do the same but needs root.
    """
    conn = store._conn  # the store's own connection: the cap is per connection
    assert conn is not None
    conn.execute("PRAGMA synchronous=OFF")  # filling needs no fsync per row
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    fillers = [
        "INSERT INTO meta VALUES ('junk-' || hex(randomblob(8)), 'x')",
        "INSERT INTO transitions (at, rule, target, from_state, to_state, value) "
        "VALUES (0, 'junk', 'j', 'inactive', 'inactive', 'null')",
        "INSERT INTO notification_log (at, kind, message_id, rule, targets, channel, service, "
        "reason, detail) VALUES (0, 'junk', NULL, 'j', '[]', '', '', '', '')",
    ]
    for sql in fillers:
        with pytest.raises(sqlite3.OperationalError, match="full"):
            for _ in range(100_000):
                conn.execute(sql)
    conn.execute("PRAGMA synchronous=FULL")

    def undo() -> None:
        conn.execute("PRAGMA max_page_count = 1073741823")

    return undo


def immutable(path: Path) -> Callable[[], None]:
    """Make ``path`` unwritable even for root (``chattr +i``); returns the undo."""
    if os.geteuid() != 0:
        path.chmod(0o400)
        return lambda: path.chmod(0o600)
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip("running as root without a usable `chattr +i`: file modes are not enforced")

    def undo() -> None:
        subprocess.run(["chattr", "-i", str(path)], check=True)

    return undo


def state_errors(records: Records) -> list[str]:
    return [m for m in records.lines(logging.ERROR) if "state database" in m]


@run_async
async def test_disk_full_is_one_error_and_alerting_goes_on_from_memory(
    rig: Rig, records: Records
) -> None:
    """When the state file cannot grow, one error line says so, and alerts still fire,
    resolve and reach the webhook from memory, tick after tick."""
    async with rig.running() as runner:
        await _fire_cam1(rig)
        assert rig.store is not None
        fill_up(rig.store)
        rig.sim.resume(*LIVE, "cam1")
        rig.sim.stall(*LIVE, "cam2")
        for _ in range(12):  # two minutes: past a retry, which fails again without a word
            await rig.tick()
        assert rig.titles() == [firing("cam1"), resolved("cam1"), firing("cam2")]
        (error,) = state_errors(records)
        assert "cannot save the tick" in error and "full" in error
        assert "alerting continues from memory" in error
        assert runner.metrics.state_errors >= 2  # the retry was made, and failed
        assert runner.outbox is not None and len(runner.outbox) == 0


@run_async
async def test_after_the_disk_has_room_again_a_restart_neither_repeats_nor_loses(
    rig: Rig, records: Records
) -> None:
    """What happened while the disk was full is written once it has room again, so a restart
    sends no second notice for what was delivered from memory and still delivers what was
    only queued in memory."""
    async with rig.running():
        await _fire_cam1(rig)
        assert rig.store is not None
        room = fill_up(rig.store)
        rig.sim.resume(*LIVE, "cam1")
        rig.sim.stall(*LIVE, "cam2")
        for _ in range(5):  # cam1 resolves, cam2 fires: both delivered from memory
            await rig.tick()
        assert rig.titles() == [firing("cam1"), resolved("cam1"), firing("cam2")]
        rig.hook.set_down(True)
        rig.sim.stall(*LIVE, "cam3")
        for _ in range(5):  # cam3 fires; its notice waits in memory only
            await rig.tick()
        room()
        for _ in range(6):  # the next retry writes everything
            await rig.tick()
        assert len(state_errors(records)) == 1
        assert (
            records.lines(logging.INFO).count(
                "state database writable again: saved 2 changed alert(s) and 1 message(s) "
                "kept in memory"
            )
            == 1
        )
    # The process dies (no flush); a new one starts on the same file.
    rig.hook.set_down(False)
    async with rig.running():
        for _ in range(4):
            await rig.tick()
    assert rig.titles() == [firing("cam1"), resolved("cam1"), firing("cam2"), firing("cam3")]


@run_async
async def test_a_read_only_state_file_keeps_alerting_and_is_used_again_once_writable(
    rig: Rig, records: Records
) -> None:
    """Restarted on a state file it cannot write, the watcher restores from it, logs one
    error, announces nothing twice, keeps alerting; once writable, it saves again."""
    async with rig.running():
        await _fire_cam1(rig)
    db = rig.tmp / "state.db"
    undo = immutable(db)
    try:
        async with rig.running() as runner:
            rig.sim.resume(*LIVE, "cam1")
            rig.sim.stall(*LIVE, "cam2")
            for _ in range(5):
                await rig.tick()
            assert rig.titles() == [firing("cam1"), resolved("cam1"), firing("cam2")]
            (error,) = state_errors(records)
            assert "readonly" in error
            undo()
            undo = lambda: None  # noqa: E731 - nothing left to undo
            for _ in range(6):
                await rig.tick()
            assert "state database writable again" in "\n".join(records.lines(logging.INFO))
            assert runner.store is not None
            alerts = {(a.rule, a.target, a.state) for a in runner.store.load_alerts()}
            assert alerts == {("ingest-stalled", "origin/default/live/cam2", "firing")}
    finally:
        undo()


@run_async
async def test_silences_keep_working_while_the_disk_is_full(rig: Rig) -> None:
    """A full disk still reads: a silence added before it filled keeps muting alerts."""
    async with rig.running():
        assert rig.store is not None
        now = rig.clock.now()
        rig.store.add_silence(["stream=cam2"], now, now + 3600, "ops", "encoder swap", now)
        await rig.tick()
        fill_up(rig.store)
        rig.sim.stall(*LIVE, "cam2")
        rig.sim.stall(*LIVE, "cam3")
        for _ in range(12):
            await rig.tick()
        assert rig.state_of("ingest-stalled", "cam2") is AlertState.FIRING
        assert rig.titles() == [firing("cam3")]


@run_async
async def test_a_send_recorded_while_the_disk_was_full_is_written_later(
    rig: Rig, records: Records
) -> None:
    """A queued message delivered while the disk was full is recorded as sent once there is
    room, so the next process does not send it again."""
    async with rig.running():
        rig.hook.set_down(True)
        await _fire_cam1_unannounced(rig)
        assert rig.store is not None and len(rig.store.pending_outbox()) == 1
        room = fill_up(rig.store)
        rig.hook.set_down(False)
        for _ in range(3):
            await rig.tick()
        assert rig.titles() == [firing("cam1")]
        assert len(state_errors(records)) == 1
        room()
        for _ in range(7):
            await rig.tick()
        assert rig.store.pending_outbox() == []
        assert [e.kind for e in rig.store.history(0.0) if e.kind != "transition"][-1] == "sent"
    async with rig.running():
        for _ in range(3):
            await rig.tick()
    assert rig.titles() == [firing("cam1")]


async def _fire_cam1_unannounced(rig: Rig) -> None:
    rig.sim.stall(*LIVE, "cam1")
    for _ in range(5):
        await rig.tick()
    assert rig.state_of("ingest-stalled", "cam1") is AlertState.FIRING


# --------------------------------------------------------------------------- channels


def _smtp_refuses(rig: Rig, smtp: SmtpSink, on: bool) -> None:
    smtp.refuse(on)


def _hook_500(rig: Rig, smtp: SmtpSink, on: bool) -> None:
    rig.hook.set_status(500 if on else 200)


def _hook_down(rig: Rig, smtp: SmtpSink, on: bool) -> None:
    rig.hook.set_down(on)


CHANNEL_FAULTS = {
    "smtp-refuses": ("mail", _smtp_refuses),
    "http-500": ("hook", _hook_500),
    "http-refused": ("hook", _hook_down),
}


def subjects(smtp: SmtpSink) -> list[str]:
    return [str(m["Subject"]) for m in smtp.messages]


@pytest.mark.parametrize("name", sorted(CHANNEL_FAULTS))
@run_async
async def test_a_failing_channel_gets_everything_once_and_in_order_after_recovery(
    rig: Rig, name: str
) -> None:
    """While one channel fails, the other gets every notice on time and polling goes on;
    once the failing one recovers, it gets each notice exactly once, in order."""
    broken, toggle = CHANNEL_FAULTS[name]
    story = [firing("cam1"), resolved("cam1"), firing("cam2")]
    with SmtpSink() as smtp:
        async with rig.running(smtp_port=smtp.port) as runner:
            await rig.tick()
            toggle(rig, smtp, True)
            rig.sim.stall(*LIVE, "cam1")
            for _ in range(5):
                await rig.tick()
            rig.sim.resume(*LIVE, "cam1")
            rig.sim.stall(*LIVE, "cam2")
            for _ in range(5):
                await rig.tick()
            healthy = subjects(smtp) if broken == "hook" else rig.titles()
            assert healthy == story
            if broken == "mail":
                assert subjects(smtp) == []
            assert runner.metrics.ticks == 11  # polling went on meanwhile
            toggle(rig, smtp, False)
            attempts = len(rig.hook.requests)  # a 500 is recorded, but not delivered
            for _ in range(35):  # retries back off to 5 minutes at most
                await rig.tick()
            hook_got = rig.titles() if broken == "mail" else rig.titles()[attempts:]
            assert hook_got == subjects(smtp) == story
            assert runner.outbox is not None and len(runner.outbox) == 0


class SmtpAt(SmtpSink):
    """An SMTP sink on a given port: the one a hung relay held before it came back."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self._fixed = port

    def start(self) -> None:
        controller = Controller(_SmtpHandler(self), hostname=LOOPBACK, port=self._fixed)
        controller.start()
        self._controller, self.port = controller, self._fixed


async def until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait for something that happens on another thread (a delivery), polling every 10 ms."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


@run_async
async def test_a_hung_smtp_relay_holds_back_neither_polling_nor_the_webhook(rig: Rig) -> None:
    """An SMTP relay that accepts the connection and never answers keeps only its own worker
    busy: ticks go on, the webhook gets every notice; once a relay answers again, mail
    gets each notice exactly once, in order."""
    story = [firing("cam1"), resolved("cam1"), firing("cam2")]
    hung = socket.socket()
    hung.bind((LOOPBACK, 0))
    hung.listen(8)  # the kernel completes the handshake; nobody ever says "220"
    port = hung.getsockname()[1]
    try:
        async with rig.running(smtp_port=port, send_timeout=60.0) as runner:
            outbox = runner.outbox
            assert outbox is not None
            stop = asyncio.Event()
            background = asyncio.create_task(outbox.run(stop))  # as `watch` runs it
            try:
                rig.sim.stall(*LIVE, "cam1")
                for _ in range(5):
                    await runner.tick()
                    rig.clock.advance(10)
                await until(lambda: rig.titles() == story[:1])
                rig.sim.resume(*LIVE, "cam1")
                rig.sim.stall(*LIVE, "cam2")
                for _ in range(5):
                    await runner.tick()
                    rig.clock.advance(10)
                await until(lambda: rig.titles() == story and len(outbox) == 3)
                # Ten ticks and three webhook sends went by while the first mail still hangs.
                assert runner.metrics.ticks == 10
                assert outbox.counters.failed == {}

                hung.close()  # the relay dies: its queued connection is reset
                hung = socket.socket()  # (nothing to close in `finally` but this one)
                with SmtpAt(port) as smtp:
                    for _ in range(6):
                        await runner.tick()
                        rig.clock.advance(10)
                        await asyncio.sleep(0)
                    await until(lambda: len(smtp.messages) >= 3)
                    await outbox.deliver_due()
                    assert subjects(smtp) == story
                assert rig.titles() == story
                assert len(outbox) == 0
            finally:
                stop.set()
                await background
                await outbox.flush(1)
    finally:
        hung.close()
