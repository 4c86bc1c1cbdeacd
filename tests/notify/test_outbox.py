"""A queued message belongs to its service (its URL), not to a position in the channel's list:
reloads that reorder or remove URLs never send it anywhere else, and old state files follow."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from omealert.clock import FakeClock
from omealert.config.load import load_config_text
from omealert.rules import Settings
from omealert.simulator import Simulator
from omealert.state import db as state_db
from omealert.state.db import SCHEMA_VERSION
from omealert.state.records import service_key
from tests.helpers import run_async
from tests.receivers import HttpReceiver
from tests.rig import RunnerRig

LIVE = ("default", "live")


def config(sim: Simulator, *hooks: HttpReceiver) -> Settings:
    """One channel whose URLs are ``hooks``, in that order; the stream fires at once."""
    urls = ", ".join(f'"json://127.0.0.1:{h.port}/hook-{h.port}"' for h in hooks)
    text = f"""\
servers:
  - name: origin
    url: {sim.url}
channels:
  ops:
    urls: [{urls}]
    format: text
defaults:
  channels: [ops]
rules:
  - name: busy
    when: webrtc publishers > 1
"""
    return load_config_text(text, "reload.yaml", env={})


class Rig(RunnerRig):
    """The shared rig with two webhooks: ``a`` (failing at first) and ``b``."""

    def __init__(self, tmp: Path, clock: FakeClock, sim: Simulator, a: HttpReceiver,
                 b: HttpReceiver) -> None:  # fmt: skip
        super().__init__(tmp, clock, sim, a)
        self.a, self.b = a, b


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    clock = FakeClock()
    sim = Simulator(clock=clock.now)
    sim.start()
    a, b = HttpReceiver(status=500), HttpReceiver()
    a.start()
    b.start()
    sim.add_stream(*LIVE, "cam1", viewers={"webrtc": 5})
    try:
        yield Rig(tmp_path, clock, sim, a, b)
    finally:
        b.stop()
        a.stop()
        sim.stop()


def log_kinds(db: Path) -> list[tuple[str, str, str]]:
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT kind, service, detail FROM notification_log ORDER BY id")
        return [(k, s, d) for k, s, d in rows]


@run_async
async def test_a_reordering_reload_keeps_each_message_with_its_own_url(rig: Rig) -> None:
    """A's failed message is retried to A after the URLs swap places; B never gets it."""
    runner = rig.start_with(config(rig.sim, rig.a, rig.b))
    await rig.tick()
    assert len(rig.b.requests) == 1 and len(rig.a.requests) == 1  # A failed, B got its own
    await runner.reload(config(rig.sim, rig.b, rig.a))
    rig.a.set_status(200)
    rig.clock.advance(60)
    await rig.deliver()
    assert len(rig.a.requests) == 2 and len(rig.b.requests) == 1
    assert rig.a.requests[-1][1] == f"/hook-{rig.a.port}"
    assert runner.outbox is not None and len(runner.outbox) == 0
    await rig.stop()


@run_async
async def test_a_reload_that_removes_a_url_drops_its_messages_and_records_why(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """A's queued message is dropped (log line, counter, notification log), never sent to B."""
    runner = rig.start_with(config(rig.sim, rig.a, rig.b))
    await rig.tick()
    assert runner.outbox is not None and len(runner.outbox) == 1  # A's, waiting for its retry
    caplog.set_level(logging.ERROR, "omealert.outbox")
    await runner.reload(config(rig.sim, rig.b))
    assert len(runner.outbox) == 0  # dropped by the reload itself, not when it fell due
    rig.clock.advance(600)
    await rig.tick()
    assert len(rig.b.requests) == 1 and len(rig.a.requests) == 1
    assert runner.outbox.counters.dropped == {"ops": 1}
    (line,) = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert "its service is no longer in channel 'ops'" in line
    dropped = [row for row in log_kinds(rig.tmp / "state.db") if row[0] == "dropped"]
    assert [(kind, service) for kind, service, _ in dropped] == [("dropped", "ops[removed]")]
    assert "(URL removed or changed)" in dropped[0][2]
    assert str(rig.a.port) not in dropped[0][2]
    await rig.stop()


def old_state_file(path: Path, channel: str, url_index: int) -> None:
    """A state file as schema version 1 wrote it, with one message queued by position."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for statement in state_db._MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (1, 0)")
        conn.execute(
            "INSERT INTO outbox (channel, url_index, created_at, next_attempt_at, attempts, "
            "title, body, format, notify_type, reason, rule, targets, last_error) "
            "VALUES (?, ?, ?, ?, 1, '[FIRING] busy', 'queued before the upgrade', 'text', "
            "'failure', 'first_notification', 'busy', '[]', 'HTTP 500')",
            (channel, url_index, FakeClock().now(), FakeClock().now()),
        )


@run_async
async def test_an_old_state_file_is_migrated_and_its_queue_bound_to_urls(rig: Rig) -> None:
    """A v1 file's message for position 1 is bound to the URL there at start (B), so a later
    reordering reload still delivers it to B and not to A."""
    db = rig.tmp / "state.db"
    old_state_file(db, "ops", 1)
    rig.a.set_status(200)
    runner = rig.start_with(config(rig.sim, rig.a, rig.b))
    assert rig.store is not None
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT max(version) FROM schema_version").fetchone() == (
            SCHEMA_VERSION,
        )
        (key,) = conn.execute("SELECT service_key FROM outbox").fetchone()
    assert key == service_key(f"json://127.0.0.1:{rig.b.port}/hook-{rig.b.port}")
    await runner.reload(config(rig.sim, rig.b, rig.a))
    await rig.deliver()
    assert [body["message"] for body in rig.b.json_bodies()] == ["queued before the upgrade"]
    assert rig.a.requests == []
    await rig.stop()


@run_async
async def test_a_message_whose_old_position_is_gone_is_dropped_as_such(rig: Rig) -> None:
    """A v1 message for a position the config no longer has is dropped and recorded, not
    sent to whatever URL comes closest."""
    db = rig.tmp / "state.db"
    old_state_file(db, "ops", 5)
    rig.a.set_status(200)
    runner = rig.start_with(config(rig.sim, rig.a, rig.b))
    await rig.deliver()
    assert rig.a.requests == [] and rig.b.requests == []
    assert runner.outbox is not None and runner.outbox.counters.dropped == {"ops": 1}
    assert [(k, s) for k, s, _ in log_kinds(db)] == [("dropped", "ops[removed]")]
    await rig.stop()


def test_service_keys_name_urls_without_holding_them() -> None:
    """Equal URLs share a key, different ones do not, and no part of the URL is in it."""
    url = "json://127.0.0.1:9/hooks/SECRET-TOKEN"
    assert service_key(url) == service_key(url)
    assert service_key(url) != service_key(url + "x")
    assert "SECRET" not in service_key(url) and len(service_key(url)) == 32
