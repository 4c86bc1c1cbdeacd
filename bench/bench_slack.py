"""The native Slack service against a loopback Web API stand-in, next to a json:// webhook.

Run by hand: ``.venv/bin/python bench/bench_slack.py [--sends 200]``. Prints the median time
of one send per case (a first message: one ``chat.postMessage``; a later one: a thread reply
and a ``chat.update``; the same message to a json:// webhook through apprise) and how many
50 ms ticks the event loop made while one Slack send hung until its deadline: the send is
a coroutine, so the loop goes on. Last, the headline.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import machine, median, table
from omealert.notify.delivery import Deliverer
from omealert.notify.render import Message
from omealert.rules import ChannelSpec, SlackApiSpec
from omealert.state.records import OutboxMessage
from tests.receivers import HttpReceiver
from tests.slack_standin import TOKEN, SlackStandIn

MSG = Message("[FIRING] stalled on origin/default/live/cam1", "cam1 stalled", "text", "warning")


def queued(n: int, reason: str, stream: str) -> OutboxMessage:
    return OutboxMessage(
        id=n, channel="slack", url_index=0, created_at=float(n), next_attempt_at=0.0,
        attempts=0, title=MSG.title, body=MSG.body, format="text", notify_type="warning",
        reason=reason, rule="stalled", targets=[stream],
    )  # fmt: skip


async def timed(sends: int, send: object) -> float:
    times = []
    for n in range(sends):
        started = time.perf_counter()
        await send(n)  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return median(times) * 1000


async def main(sends: int) -> None:
    with SlackStandIn() as slack, HttpReceiver() as hook:
        spec = SlackApiSpec(TOKEN, "#ops", slack.api_url)
        channel = ChannelSpec("slack", (spec.service_url,), slack_api=spec)
        webhook = ChannelSpec("hook", (f"json://127.0.0.1:{hook.port}/hook",))
        deliverer = Deliverer()
        await deliverer.send(webhook, 0, MSG)  # apprise loads its plugins once
        await deliverer.send(channel, 0, MSG, queued(0, "first", "warm"))
        first = await timed(sends, lambda n: deliverer.send(
            channel, 0, MSG, queued(n + 1, "first", f"s{n}")))  # fmt: skip
        later = await timed(sends, lambda n: deliverer.send(
            channel, 0, MSG, queued(n + sends + 1, "repeat", f"s{n}")))  # fmt: skip
        apprise = await timed(sends, lambda n: deliverer.send(webhook, 0, MSG))
        slack.hold(5.0)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        task = asyncio.create_task(ticker())
        held = await Deliverer(timeout=1.0).send(channel, 0, MSG)
        task.cancel()
    print(machine())
    print(table(
        ["case", "median ms per send"],
        [["slack: first message (postMessage)", first],
         ["slack: later message (reply + update)", later],
         ["json:// webhook through apprise", apprise]],
    ))  # fmt: skip
    print(f"a Slack send hung for its 1 s deadline ({held.reason}): the loop ticked {ticks}x")
    print(f"headline: slack first {first:.2f} ms, later {later:.2f} ms, json {apprise:.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sends", type=int, default=200)
    asyncio.run(main(parser.parse_args().sends))
