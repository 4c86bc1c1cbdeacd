"""A relay that trickles its greeting forever keeps only its own thread, never the others'."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable

from omealert.clock import FakeClock
from omealert.notify.delivery import Deliverer
from omealert.notify.outbox import Outbox
from omealert.notify.render import Message
from omealert.rules import ChannelSpec
from omealert.state.records import OutboxMessage, service_key
from tests.helpers import run_async
from tests.receivers import HttpReceiver, SmtpSink, TrickleSmtp

MAIL_CHANNELS = 8  # more than apprise's shared pool has threads on this box (cpu + 4)
ROUNDS = 4
HANG_GUARD = 30.0  # seconds; only there so a regression fails instead of hanging


def mail_url(port: int, i: int) -> str:
    return f"mailto://127.0.0.1:{port}?from=alerts@example.com&to=mail{i}@example.com"


def channels(smtp_port: int, hook_port: int) -> dict[str, ChannelSpec]:
    mail = {f"mail{i}": ChannelSpec(f"mail{i}", (mail_url(smtp_port, i),)) for i in range(8)}
    return mail | {"hook": ChannelSpec("hook", (f"json://127.0.0.1:{hook_port}/hook",))}


def message(channel: ChannelSpec, title: str, now: float) -> OutboxMessage:
    return OutboxMessage(
        id=None,
        channel=channel.name,
        url_index=0,
        created_at=now,
        next_attempt_at=now,
        attempts=0,
        title=title,
        body=title,
        format="text",
        notify_type="failure",
        reason="firing",
        rule="r",
        targets=[],
        service_key=service_key(channel.urls[0]),
    )


def send_threads() -> Counter[str]:
    """How many live send threads each channel holds, from the interpreter's own thread list."""
    names = (t.name for t in threading.enumerate() if t.name.startswith("omealert-send "))
    return Counter(name.split(" ", 1)[1].split("#", 1)[0] for name in names)


async def until(predicate: Callable[[], bool]) -> None:
    """Wait for something another thread does; fails (rather than hangs) after the guard."""
    deadline = time.monotonic() + HANG_GUARD
    while not predicate():
        assert time.monotonic() < deadline, "hang guard"
        await asyncio.sleep(0.01)


async def deliver(outbox: Outbox) -> int:
    async with asyncio.timeout(HANG_GUARD):
        return await outbox.deliver_due()


@run_async
async def test_a_trickling_relay_keeps_one_thread_per_service_and_its_mail_queued() -> None:
    """With eight mail channels on a relay that trickles its greeting, the webhook still gets
    every message; each mail service holds one thread and its messages wait (deferred, not
    retried in a loop), then go out exactly once when the relay is healthy again."""
    clock = FakeClock()
    with TrickleSmtp() as trickle, HttpReceiver() as hook:
        chans = channels(trickle.port, hook.port)
        outbox = Outbox(
            store=None,
            deliverer=Deliverer(timeout=3.0),  # generous: the webhook must not time out
            channels=chans,
            clock=clock,
            max_age_s=86_400,
        )
        deliverer = outbox.deliverer
        for r in range(ROUNDS):
            outbox.add(message(ch, f"round {r}", clock.now()) for ch in chans.values())
            await deliver(outbox)
            assert hook.wait_for(r + 1, HANG_GUARD)
            # (the webhook's thread may still be on its way out: only mail threads are counted)
            held = {name: n for name, n in send_threads().items() if name.startswith("mail")}
            assert set(held) == {f"mail{i}" for i in range(MAIL_CHANNELS)}
            assert max(held.values()) == 1  # a stuck service holds one thread, no more
            assert deliverer.stuck == MAIL_CHANNELS
            clock.advance(600)  # past any retry backoff: everything is due again
        assert [b["title"] for b in hook.json_bodies()] == [f"round {r}" for r in range(ROUNDS)]
        # Each mail service was tried once (it timed out); the later rounds waited for it.
        assert outbox.counters.failed == {f"mail{i}": 1 for i in range(MAIL_CHANNELS)}
        assert outbox.counters.deferred == {f"mail{i}": ROUNDS for i in range(MAIL_CHANNELS)}
        assert len(outbox) == MAIL_CHANNELS * ROUNDS
        assert trickle.accepted == MAIL_CHANNELS  # no second connection to a busy service
        port = trickle.port
    await until(lambda: deliverer.threads == 0)  # EOF ended every stuck send
    # a thread is counted out just before it returns: give the interpreter that moment
    await until(lambda: send_threads() == Counter())

    with SmtpSink(port=port) as relay:  # the relay is healthy again, on the same port
        clock.advance(600)
        await deliver(outbox)
        assert len(outbox) == 0
        got = Counter(
            (env[1][0], str(m["Subject"]))
            for env, m in zip(relay.envelopes, relay.messages, strict=True)
        )
    want = {(f"mail{i}@example.com", f"round {r}") for i in range(8) for r in range(ROUNDS)}
    assert got == Counter(want)  # each exactly once
    assert outbox.counters.sent["hook"] == ROUNDS


@run_async
async def test_a_stuck_services_messages_are_dropped_at_delivery_max_age() -> None:
    """Messages waiting for a service that stays stuck are dropped once older than
    delivery_max_age, as retried ones are, instead of piling up."""
    clock = FakeClock()
    with TrickleSmtp() as trickle:
        chan = ChannelSpec("mail0", (mail_url(trickle.port, 0),))
        outbox = Outbox(
            store=None,
            deliverer=Deliverer(timeout=1.0),  # socket timeout 0.5 s > the 0.3 s pace
            channels={"mail0": chan},
            clock=clock,
            max_age_s=3600,
        )
        outbox.add([message(chan, "first", clock.now())])
        await deliver(outbox)  # times out; the thread stays stuck
        assert outbox.counters.failed == {"mail0": 1}
        clock.advance(1800)
        outbox.add([message(chan, "second", clock.now())])
        await deliver(outbox)
        assert len(outbox) == 2 and outbox.counters.deferred == {"mail0": 2}
        assert outbox.next_due() is None  # the background loop waits for the thread, no spin
        clock.advance(1801)  # "first" is past delivery_max_age, "second" is not
        await deliver(outbox)
        assert outbox.counters.dropped == {"mail0": 1}
        assert len(outbox) == 1 and send_threads() == Counter({"mail0": 1})
    await until(lambda: outbox.deliverer.threads == 0)


@run_async
async def test_past_max_stuck_only_services_that_delivered_may_start_a_send() -> None:
    """Once max_stuck sends are stuck, a service whose last send failed or never ran is not
    started (busy), while one that delivered last time still gets its thread."""
    async with asyncio.timeout(HANG_GUARD):
        with TrickleSmtp() as trickle, HttpReceiver() as hook:
            deliverer = Deliverer(timeout=1.0, max_threads=4, max_stuck=2)
            good = ChannelSpec("hook", (f"json://127.0.0.1:{hook.port}/hook",))
            mail = [ChannelSpec(f"mail{i}", (mail_url(trickle.port, i),)) for i in range(3)]
            msg = Message("t", "b", "text", "failure")
            assert (await deliverer.send(good, 0, msg)).ok
            stuck = await asyncio.gather(*(deliverer.send(ch, 0, msg) for ch in mail[:2]))
            assert [o.error for o in stuck] == ["timed out after 1s"] * 2
            assert deliverer.stuck == 2 and not any(o.busy for o in stuck)

            again = await deliverer.send(mail[0], 0, msg)  # its own thread is still stuck
            third = await deliverer.send(mail[2], 0, msg)  # unproven, and the cap is reached
            assert again.busy and "still running" in again.error
            assert third.busy and "no send thread free" in third.error
            assert not deliverer.can_start(mail[2], 0) and deliverer.can_start(good, 0)
            assert (await deliverer.send(good, 0, msg)).ok
            assert len(hook.requests) == 2
            assert trickle.accepted == 2  # the busy services were never connected again
        await until(lambda: deliverer.threads == 0)
        assert deliverer.can_start(mail[2], 0) and deliverer.stuck == 0


EXIT_WHILE_STUCK = """
import asyncio, sys
from omealert.notify.delivery import Deliverer
from omealert.notify.render import Message
from omealert.rules import ChannelSpec

url = "mailto://127.0.0.1:%s?from=alerts@example.com&to=oncall@example.com" % sys.argv[1]
outcome = asyncio.run(
    Deliverer(timeout=1.0).send(ChannelSpec("mail", (url,)), 0, Message("t", "b", "text", "info"))
)
print(outcome.error, flush=True)
"""


def test_a_process_exits_while_a_send_is_still_stuck() -> None:
    """A send thread a trickling relay never lets go does not hold up the interpreter's exit."""
    with TrickleSmtp() as trickle:
        proc = subprocess.Popen(
            [sys.executable, "-c", EXIT_WHILE_STUCK, str(trickle.port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            out, _ = proc.communicate(timeout=HANG_GUARD)
        finally:
            if proc.poll() is None:
                proc.kill()  # by its pid: the hang guard fired
                proc.wait()
        assert out.strip() == "timed out after 1s"
        assert proc.returncode == 0
        assert trickle.accepted == 1
