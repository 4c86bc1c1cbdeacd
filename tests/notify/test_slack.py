"""The native Slack service: one thread per alert, edited to show its state, against a
loopback stand-in for Slack's Web API driven by a runner on a fake clock."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from omealert.clock import FakeClock
from omealert.config.load import load_config_text
from omealert.errors import ConfigError
from omealert.notify.delivery import Deliverer
from omealert.notify.render import Message
from omealert.notify.slack import slack_text, span
from omealert.notify.threads import ThreadBook, ThreadRoot
from omealert.rules import ChannelSpec, Settings, SlackApiSpec
from omealert.simulator import Simulator
from omealert.state.records import OutboxMessage, service_key
from omealert.state.store import StateStore
from omealert.state.threads import ThreadRows
from tests.helpers import run_async
from tests.receivers import HttpReceiver
from tests.rig import RunnerRig
from tests.slack_standin import TOKEN, SlackStandIn

LIVE = ("default", "live")
CAM1 = "origin/default/live/cam1"
CAM2 = "origin/default/live/cam2"


def config(sim: Simulator, slack: SlackStandIn, hook: HttpReceiver, *, token: str = TOKEN,
           channel: str = "#ops", repeat: str = "4h") -> Settings:  # fmt: skip
    """A Slack channel and a webhook channel; a stalled stream fires after 30 s."""
    text = f"""\
servers:
  - name: origin
    url: {sim.url}
    access_token: ome-token
interval: 10s
channels:
  slack:
    slack_api: {{token: "${{SLACK_BOT_TOKEN}}", channel: "{channel}", api_url: "{slack.api_url}"}}
  hook:
    urls: ["json://127.0.0.1:{hook.port}/hook"]
    format: text
defaults:
  channels: [slack, hook]
  repeat_interval: {repeat}
rules:
  - name: stalled
    when: lastRecvTime stale > 30s
"""
    return load_config_text(text, "slack.yaml", env={"SLACK_BOT_TOKEN": token})


class Rig(RunnerRig):
    def __init__(self, tmp: Path, clock: FakeClock, sim: Simulator, hook: HttpReceiver,
                 slack: SlackStandIn) -> None:  # fmt: skip
        super().__init__(tmp, clock, sim, hook)
        self.slack = slack

    async def ticks(self, n: int) -> None:
        for _ in range(n):
            await self.tick()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    clock = FakeClock()
    with (
        Simulator(access_token="ome-token", clock=clock.now) as sim,
        HttpReceiver() as hook,
        SlackStandIn() as slack,
    ):
        sim.add_stream(*LIVE, "cam1")
        sim.add_stream(*LIVE, "cam2")
        yield Rig(tmp_path, clock, sim, hook, slack)


@run_async
async def test_firing_posts_once_and_the_resolve_replies_in_its_thread_and_edits_it(
    rig: Rig,
) -> None:
    """A stall posts one message; its resolve 12 minutes later is a thread reply, and the
    first message then reads "RESOLVED after 12m"."""
    rig.start_with(config(rig.sim, rig.slack, rig.hook))
    rig.sim.stall(*LIVE, "cam1")
    await rig.ticks(5)
    (root,) = rig.slack.top_level()
    assert root.text.startswith(f"*[FIRING] stalled on {CAM1}*\n")
    assert root.channel == "C0OPS" and rig.slack.replies(root.ts) == []
    fired_text = root.text
    await rig.ticks(72)  # 12 minutes
    rig.sim.resume(*LIVE, "cam1")
    await rig.ticks(2)
    assert rig.slack.top_level() == [root]
    (reply,) = rig.slack.replies(root.ts)
    assert reply.text.startswith(f"*[RESOLVED] stalled on {CAM1}*")
    assert root.edits == [f"*RESOLVED after 12m*\n{fired_text}"]
    assert len(rig.hook.requests) == 2  # the webhook channel is told as before
    await rig.stop()


@run_async
async def test_repeats_reply_in_the_thread_and_a_later_firing_is_a_new_message(rig: Rig) -> None:
    """Each repeat is a reply that marks the message "still FIRING after ..."; after the
    resolve, the same alert firing again starts a thread of its own."""
    rig.start_with(config(rig.sim, rig.slack, rig.hook, repeat="1m"))
    rig.sim.stall(*LIVE, "cam1")
    await rig.ticks(5)
    (root,) = rig.slack.top_level()
    await rig.ticks(6)
    (repeat,) = rig.slack.replies(root.ts)
    assert repeat.text.startswith(f"*[FIRING] stalled on {CAM1}*")
    assert root.edits[-1].startswith("*still FIRING after 1m*\n*[FIRING]")
    rig.sim.resume(*LIVE, "cam1")
    await rig.ticks(1)
    assert root.edits[-1].startswith("*RESOLVED after 1m*")
    rig.sim.stall(*LIVE, "cam1")
    await rig.ticks(5)
    assert [m.ts for m in rig.slack.top_level()][::2] == [root.ts]
    assert len(rig.slack.top_level()) == 2
    await rig.stop()


@run_async
async def test_the_thread_survives_a_restart_between_firing_and_resolve(rig: Rig) -> None:
    """The message ts is in the state file: a new runner on it replies in the old thread."""
    rig.start_with(config(rig.sim, rig.slack, rig.hook))
    rig.sim.stall(*LIVE, "cam1")
    await rig.ticks(5)
    (root,) = rig.slack.top_level()
    await rig.stop()
    rig.start_with(config(rig.sim, rig.slack, rig.hook))
    rig.sim.resume(*LIVE, "cam1")
    await rig.ticks(2)
    assert rig.slack.top_level() == [root]
    assert [r.text.split("\n")[0] for r in rig.slack.replies(root.ts)] == [
        f"*[RESOLVED] stalled on {CAM1}*"
    ]
    assert root.edits[-1].startswith("*RESOLVED after ")
    await rig.stop()
    with StateStore(rig.tmp / "state.db") as store, store._use("t") as conn:
        assert conn.execute("SELECT count(*) FROM slack_threads").fetchone() == (0,)


@run_async
async def test_any_other_kind_of_message_about_the_alert_joins_its_thread(rig: Rig) -> None:
    """A message of a kind the planner may add (here an acknowledgement) about a firing
    alert is a reply, and the first message's status line becomes that message's title."""
    runner = rig.start_with(config(rig.sim, rig.slack, rig.hook))
    rig.sim.stall(*LIVE, "cam1")
    await rig.ticks(5)
    (root,) = rig.slack.top_level()
    assert runner.outbox is not None and runner.store is not None
    channel = runner.settings.channels["slack"]
    ack = OutboxMessage(
        id=None, channel="slack", url_index=0, created_at=rig.clock.now(),
        next_attempt_at=rig.clock.now(), attempts=0, title="acknowledged by alice: on it",
        body="alice is looking at it", format="text", notify_type="info", reason="ack",
        rule="stalled", targets=[CAM1], service_key=service_key(channel.urls[0]),
    )  # fmt: skip
    (ack.id,) = runner.store.save_tick(outbox=[ack])
    runner.outbox.add([ack])
    await rig.deliver()
    (reply,) = rig.slack.replies(root.ts)
    assert reply.text == "*acknowledged by alice: on it*\nalice is looking at it"
    assert root.edits[-1].split("\n")[0] == "*acknowledged by alice: on it*"
    await rig.stop()


def test_threads_go_on_in_memory_when_the_state_file_cannot_be_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A thread started while the file is unusable is kept in memory, and said once."""
    store = StateStore(tmp_path / "state.db")
    store.close()  # every read and write now fails with a StateError
    book = ThreadBook(ThreadRows(store))
    service = ("slack", "key")
    with caplog.at_level(logging.ERROR, "omealert.slack"):
        for n in range(3):
            root = ThreadRoot(f"1.{n}", "C0OPS", 0.0, "text", {("stalled", f"cam{n}"): None})
            book.started(service, root)
    assert [r.ts for r in book.open_roots(service, [("stalled", "cam2")])] == ["1.2"]
    assert len(book.open_roots(service, [("stalled", f"cam{n}") for n in range(3)])) == 3
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("Slack threads kept in memory only: state database ")


@run_async
async def test_a_group_resolving_one_by_one_says_how_many_are_resolved(rig: Rig) -> None:
    """Two streams in one message: the first resolve edits it to "1 of 2 resolved", the second
    to "RESOLVED"; both resolves are replies in the one thread."""
    rig.start_with(config(rig.sim, rig.slack, rig.hook))
    rig.sim.stall(*LIVE, "cam1")
    rig.sim.stall(*LIVE, "cam2")
    await rig.ticks(5)
    (root,) = rig.slack.top_level()
    rig.sim.resume(*LIVE, "cam1")
    await rig.ticks(1)
    assert root.edits[-1].startswith("*1 of 2 resolved, the latest after ")
    rig.sim.resume(*LIVE, "cam2")
    await rig.ticks(1)
    assert root.edits[-1].startswith("*RESOLVED after ")
    assert len(rig.slack.replies(root.ts)) == 2 and len(rig.slack.top_level()) == 1
    await rig.stop()


@run_async
async def test_a_429_waits_its_retry_after_without_holding_back_other_channels(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """Slack answers 429 with Retry-After 40: the webhook is told at once, the Slack message
    is retried no sooner than 40 s later (not after the usual 5 s), and then posted."""
    runner = rig.start_with(config(rig.sim, rig.slack, rig.hook))
    rig.slack.rate_limit(1, retry_after=40)
    rig.sim.stall(*LIVE, "cam1")
    with caplog.at_level(logging.WARNING, "omealert.outbox"):
        await rig.ticks(4)
        await runner.tick()
        await rig.deliver()
    assert len(rig.hook.requests) == 1 and rig.slack.top_level() == []
    (line,) = [r.getMessage() for r in caplog.records if "delivery to slack" in r.getMessage()]
    assert "failed (rate_limited)" in line and "retry in 40s" in line
    assert runner.outbox is not None
    assert runner.outbox.counters.failed_reasons == {("slack", "rate_limited"): 1}
    rig.clock.advance(30)
    await rig.deliver()
    assert rig.slack.top_level() == [] and len(rig.slack.calls) == 1
    rig.clock.advance(10)
    await rig.deliver()
    assert len(rig.slack.top_level()) == 1
    await rig.stop()


@pytest.mark.parametrize(
    ("token", "channel", "code"),
    [("xoxb-wrong-TOKEN-9f9f", "#ops", "invalid_auth"), (TOKEN, "#nowhere", "channel_not_found")],
)
@run_async
async def test_auth_errors_are_clear_and_never_show_the_token(
    rig: Rig, caplog: pytest.LogCaptureFixture, token: str, channel: str, code: str
) -> None:
    """A refused token or an unknown channel fails as ``auth`` with Slack's code and a hint,
    in the log line and in history, and the token appears in neither."""
    runner = rig.start_with(config(rig.sim, rig.slack, rig.hook, token=token, channel=channel))
    rig.sim.stall(*LIVE, "cam1")
    with caplog.at_level(logging.DEBUG):
        await rig.ticks(5)
    (line,) = [r.getMessage() for r in caplog.records if "delivery to slack" in r.getMessage()]
    assert "failed (auth), attempt 1" in line and f"Slack chat.postMessage: {code}: " in line
    assert runner.outbox is not None and runner.outbox.store is not None
    (failed,) = [e for e in runner.outbox.store.history(0) if e.kind == "failed"]
    assert f"(auth): Slack chat.postMessage: {code}" in failed.detail
    everything = caplog.text + failed.detail
    assert token not in everything and TOKEN not in everything
    await rig.stop()


@run_async
async def test_no_token_at_all_is_not_authed() -> None:
    """A client that sends no Authorization header gets Slack's ``not_authed``: auth."""
    with SlackStandIn() as slack:
        spec = SlackApiSpec("", "#ops", slack.api_url)
        channel = ChannelSpec("slack", (spec.service_url,), slack_api=spec)
        outcome = await Deliverer(timeout=5).send(channel, 0, Message("t", "b", "text", "info"))
    assert (outcome.ok, outcome.reason) == (False, "auth")
    assert outcome.error.startswith("Slack chat.postMessage: not_authed: ")


@run_async
async def test_a_slack_that_does_not_answer_is_a_timeout() -> None:
    """A Web API that holds its answer past the send deadline: ``timeout``, nothing posted."""
    with SlackStandIn() as slack:
        slack.hold(10.0)
        spec = SlackApiSpec(TOKEN, "#ops", slack.api_url)
        channel = ChannelSpec("slack", (spec.service_url,), slack_api=spec)
        outcome = await Deliverer(timeout=0.5).send(channel, 0, Message("t", "b", "text", "info"))
    assert (outcome.ok, outcome.reason) == (False, "timeout")
    assert outcome.error == "timed out after 0.5s"


@run_async
async def test_a_slack_that_is_down_is_refused() -> None:
    """Nothing listening at api_url: the connection is refused, and the reason says so."""
    with SlackStandIn() as slack:
        api_url = slack.api_url
    spec = SlackApiSpec(TOKEN, "#ops", api_url)
    channel = ChannelSpec("slack", (spec.service_url,), slack_api=spec)
    outcome = await Deliverer(timeout=5).send(channel, 0, Message("t", "b", "text", "info"))
    assert (outcome.ok, outcome.reason) == (False, "refused")
    assert outcome.error == "Slack chat.postMessage: ClientConnectorError"


@run_async
async def test_an_edit_that_fails_is_retried_without_repeating_the_reply(rig: Rig) -> None:
    """The resolve's reply went out but chat.update was rate limited: the retry only edits."""
    rig.start_with(config(rig.sim, rig.slack, rig.hook))
    rig.sim.stall(*LIVE, "cam1")
    await rig.ticks(5)
    (root,) = rig.slack.top_level()
    rig.slack.rate_limit(1, retry_after=30, method="chat.update")
    rig.sim.resume(*LIVE, "cam1")
    await rig.ticks(1)
    assert len(rig.slack.replies(root.ts)) == 1 and root.edits == []
    rig.clock.advance(30)
    await rig.deliver()
    assert len(rig.slack.replies(root.ts)) == 1
    assert [e.split("\n")[0] for e in root.edits] == ["*RESOLVED after 10s*"]
    await rig.stop()


def test_slack_text_is_mrkdwn_and_defuses_links_and_mentions() -> None:
    """Markdown bold becomes Slack bold, escapes go, and < > & can never form a link."""
    msg = Message("[FIRING] a<b", "**cam\\_1** <!channel> & <http://x|y>", "markdown", "warning")
    assert slack_text(msg) == "*[FIRING] a&lt;b*\n*cam_1* &lt;!channel&gt; &amp; &lt;http://x|y&gt;"
    html = Message("t", "<p><b>x</b> &amp; y</p>", "html", "info")
    assert slack_text(html) == "*t*\nx &amp; y"


def test_durations_read_the_way_people_say_them() -> None:
    """45s, 12m, 1h 5m, 2d 3h: two units at most."""
    assert [span(s) for s in (45, 720, 3900, 7200, 183600)] == [
        "45s",
        "12m",
        "1h 5m",
        "2h",
        "2d 3h",
    ]


@pytest.mark.parametrize(
    ("channel", "message"),
    [
        ("    slack_api: {token: '', channel: '#ops'}\n", "the Slack bot token is empty"),
        ("    format: text\n", "a channel needs urls (apprise URLs), slack_api, or both"),
        ("    slack_api: {token: 'xoxb-SECRET-77', channel: '#ops', api_url: 'ftp://x'}\n",
         "api_url must start with http:// or https://"),
    ],
)  # fmt: skip
def test_slack_api_config_errors_are_clear(channel: str, message: str) -> None:
    """Each mistake in a slack_api channel is named at its line, without the token."""
    text = "servers:\n  - name: o\n    url: http://127.0.0.1:1\nchannels:\n  slack:\n" + channel
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "c.yaml", env={})
    assert message in str(info.value) and "SECRET-77" not in str(info.value)
