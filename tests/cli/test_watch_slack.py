"""``omealert watch`` with a slack_api channel, as a real process against the simulator and a
loopback stand-in for Slack's Web API: one thread per alert, across a restart."""

from __future__ import annotations

import io
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from omealert.cli.main import main
from omealert.simulator import Simulator
from omealert.state.store import StateStore
from tests.cli.test_watch import TOKEN as OME_TOKEN
from tests.cli.test_watch import Watcher, write
from tests.slack_standin import TOKEN, SlackStandIn

CAM1 = "origin/default/live/cam1"


def config_text(sim: Simulator, slack: SlackStandIn) -> str:
    return f"""\
servers:
  - name: origin
    url: {sim.url}
    access_token: {OME_TOKEN}
    timeout: 2s
interval: 200ms
channels:
  slack:
    slack_api:
      token: {TOKEN}
      channel: "#ops"
      api_url: {slack.api_url}
defaults:
  channels: [slack]
rules:
  - name: stalled
    when: lastRecvTime stale > 1s
"""


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as standin:
        yield standin


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(access_token=OME_TOKEN) as server:
        server.add_stream("default", "live", "cam1")
        yield server


def test_a_stall_posts_once_and_its_resolve_after_a_restart_lands_in_the_thread(
    tmp_path: Path, sim: Simulator, slack: SlackStandIn
) -> None:
    """Stall: one message. The watcher stops and starts again; the resolve is a reply in
    that message's thread and the message is edited to RESOLVED. The token is never logged."""
    cfg = write(tmp_path / "omealert.yaml", config_text(sim, slack))
    watchers: list[Watcher] = []

    def start(name: str) -> Watcher:
        w = Watcher(tmp_path, cfg, tmp_path / "state.db", name, ())
        watchers.append(w)
        return w.wait_ready()

    try:
        first = start("first")
        sim.stall("default", "live", "cam1")
        assert slack.wait_for(lambda s: len(s.top_level()) == 1), first.stderr()
        first.wait_log("delivered first notice for stalled to slack")
        first.signal(signal.SIGTERM)
        assert first.wait_exit() == 0
        (root,) = slack.top_level()
        assert root.text.startswith(f"*[FIRING] stalled on {CAM1}*")
        with StateStore(tmp_path / "state.db") as store, store._use("read") as conn:
            kept = conn.execute("SELECT ts, slack_channel FROM slack_messages").fetchall()
        assert kept == [(root.ts, "C0OPS")]

        sim.resume("default", "live", "cam1")
        second = start("second")
        assert slack.wait_for(lambda s: bool(root.edits)), second.stderr()
        second.wait_log("delivered resolved notice for stalled to slack")
        second.wait_ticks(3)
        assert slack.top_level() == [root]
        (reply,) = slack.replies(root.ts)
        assert reply.text.startswith(f"*[RESOLVED] stalled on {CAM1}*")
        assert len(root.edits) == 1 and root.edits[0].startswith("*RESOLVED after ")
        assert [m for m, _ in slack.calls] == ["chat.postMessage"] * 2 + ["chat.update"]
    finally:
        for w in watchers:
            w.kill()
    for w in watchers:
        output = w.stdout() + w.stderr()
        assert TOKEN not in output and "Traceback" not in output


def test_a_refused_token_is_logged_and_counted_as_auth_without_showing_it(
    tmp_path: Path, sim: Simulator
) -> None:
    """The stand-in knows another token: the watcher logs ``failed (auth)`` with Slack's
    ``invalid_auth``, /metrics counts it under reason="auth", ``history`` says so, and the
    token shows nowhere."""
    with SlackStandIn(token="xoxb-the-right-one") as slack:
        cfg = write(tmp_path / "omealert.yaml", config_text(sim, slack))
        w = Watcher(tmp_path, cfg, tmp_path / "state.db", "auth", ())
        try:
            w.wait_ready()
            sim.stall("default", "live", "cam1")
            w.wait_log("failed (auth), attempt 1")
            assert "Slack chat.postMessage: invalid_auth: the bot token is not valid" in w.stderr()
            status, metrics = w.get("/metrics")
            assert status == 200
            assert 'omealert_notifications_failed_total{channel="slack",reason="auth"} 1.0' in (
                metrics
            )
            assert 'omealert_notifications_failed_total{channel="slack",reason="timeout"} 0.0' in (
                metrics
            )
        finally:
            w.kill()
        history = io.StringIO()
        assert main(["history", "--state", str(tmp_path / "state.db")], out=history) == 0
        (failed,) = [line for line in history.getvalue().splitlines() if " failed " in line]
        assert "attempt 1 failed (auth): Slack chat.postMessage: invalid_auth" in failed
        assert slack.top_level() == []
        assert TOKEN not in w.stdout() + w.stderr() + metrics + history.getvalue()
