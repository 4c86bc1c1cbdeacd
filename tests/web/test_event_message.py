"""Event → targeted poll → message, over real HTTP end to end: the simulator as OME (API and
Alert module), the watcher's receiver, its loop on the real clock with a 60 s interval, and
a webhook receiver getting the FIRING message long before the next tick."""

from __future__ import annotations

import asyncio

from omealert.clock import SystemClock
from omealert.config.load import load_config_text
from omealert.metrics import Metrics
from omealert.notify.delivery import Deliverer
from omealert.ome.events import EventBook, Heard, stream_of
from omealert.runner import Runner
from omealert.simulator import Simulator
from omealert.web.listener import Listener
from omealert.web.ome_alert import AlertReceiver
from tests.receivers import HttpReceiver

KEY = "message-key"
CONFIG = """\
servers:
  - name: origin
    url: {url}
    access_token: {token}
interval: 60s
ome_events:
  secret_key: {key}
channels:
  hook:
    urls: ["json://127.0.0.1:{port}/alerts"]
    title: "{{{{ status }}}} {{{{ rule }}}} {{{{ target }}}}"
defaults:
  channels: [hook]
rules:
  - name: gone
    when: absent
    match: default/live/cam1
"""


def test_a_stream_deleted_is_a_message_within_seconds_of_omes_event() -> None:
    """The FIRING message comes from the targeted poll OME's STREAM_DELETED asked for: no
    scheduled tick could have sent it (the next is a minute away)."""

    async def body() -> None:
        with Simulator() as sim, HttpReceiver() as hook:
            sim.add_stream("default", "live", "cam1")
            sim.add_stream("default", "live", "cam2")
            text = CONFIG.format(url=sim.url, token=sim.access_token, key=KEY, port=hook.port)
            metrics, book = Metrics(), EventBook()
            runner = Runner(
                load_config_text(text, "t.yaml", env={}),
                clock=SystemClock(),
                deliverer=Deliverer(),
                metrics=metrics,
                events=book,
            )

            def heard(h: Heard) -> None:
                book.record(h)
                runner.look(h.server, stream_of(h))

            listener = Listener(metrics)
            AlertReceiver({"origin": KEY.encode()}, heard, metrics).install(listener.app)
            await listener.start()
            stop = asyncio.Event()
            watch = asyncio.create_task(runner.watch(stop))
            try:
                url = f"http://127.0.0.1:{listener.port}/ome/alert"
                sim.set_alert_module(url, KEY, stream_status=True)
                while metrics.ticks < 1:
                    await asyncio.sleep(0.01)
                sim.remove_stream("default", "live", "cam1")
                async with asyncio.timeout(20):
                    while not hook.requests:
                        await asyncio.sleep(0.01)
                assert b"firing gone origin/default/live/cam1" in hook.requests[0][3]
                assert metrics.ticks == 1
                kinds = ("stream", "server")
                polls = [metrics.value("omealert_event_polls_total", server="origin", kind=k)
                         for k in kinds]  # fmt: skip
                assert polls == [1, None]
            finally:
                stop.set()
                await watch
                sim.alert_module_off()
                await listener.stop()

    asyncio.run(asyncio.wait_for(body(), 40))
