"""A real ``omealert watch --listen`` under a storm of OME events while it polls OME.

Eight kept-alive connections post as fast as the watcher answers for two seconds (thousands
of events a second on a quiet machine), half of them signed for invented streams and half
forged. The watcher must take every signed one, refuse every forged one, keep its event
memory bounded, and keep ticking on time: no slow tick, no failed poll.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from omealert.ome.alert import sign
from omealert.simulator import Simulator
from tests.helpers import wait_until
from tests.web.test_flood import TOKEN, WatchProcess

KEY = b"storm-key"
STORM_S = 2.0
CONNECTIONS = 8


def metric(text: str, name: str, labels: str = "") -> float:
    pattern = rf"^{re.escape(name)}{re.escape(labels)} (\S+)$"
    m = re.search(pattern, text, re.MULTILINE)
    return 0.0 if m is None else float(m.group(1))


def event_body(i: int) -> bytes:
    return (
        b'{"messages":[{"code":"INGRESS_BITRATE_LOW","description":"low"}],'
        b'"sourceUri":"#default#live/s%d","type":"INGRESS"}' % i
    )


async def storm(port: int) -> tuple[int, int]:
    """Post for STORM_S seconds on CONNECTIONS connections; (signed sent, forged sent)."""
    counts = [0, 0]
    deadline = time.monotonic() + STORM_S

    async def one(k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = k
        while time.monotonic() < deadline:
            body = event_body(i)
            forged = i % 2 == 1
            signature = sign(b"guess" if forged else KEY, body)
            head = (
                f"POST /ome/alert/origin HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                f"X-OME-Signature: {signature}\r\n\r\n"
            )
            writer.write(head.encode() + body)
            answer = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"Content-Length: (\d+)", answer).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            expected = b" 401 " if forged else b" 200 "
            assert expected in answer.split(b"\r\n", 1)[0], answer
            if forged:
                # a refused request's connection is closed (its body is never drained)
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            counts[forged] += 1
            i += CONNECTIONS
        writer.close()

    await asyncio.gather(*(one(k) for k in range(CONNECTIONS)))
    return counts[0], counts[1]


def test_an_event_storm_is_taken_and_refused_without_slowing_a_tick(
    tmp_path: Path,
) -> None:
    """Thousands of events, half forged, in two seconds: all counted, no slow tick or bad poll."""
    with Simulator(access_token=TOKEN) as sim:
        sim.add_stream("default", "live", "cam1")
        w = WatchProcess(
            tmp_path, sim, (256, 256), extra=f"ome_events:\n  secret_key: {KEY.decode()}\n",
            interval="500ms",
        )  # fmt: skip
        try:
            assert wait_until(lambda: w.polls(w.metrics()) >= 1, 10), w.stderr()
            ticks_before = metric(w.metrics(), "omealert_ticks_total")
            signed, forged = asyncio.run(storm(w.port))
            text = w.metrics()
        finally:
            w.stop()
    print(f"storm: {signed} signed, {forged} forged in {STORM_S}s")
    assert signed + forged >= 1000, (signed, forged)
    events = metric(text, "omealert_ome_events_total", '{server="origin",type="INGRESS"}')
    assert events == signed
    assert metric(text, "omealert_ome_events_rejected_total", '{reason="bad_signature"}') == forged
    assert metric(text, "omealert_slow_ticks_total") == 0
    assert metric(text, "omealert_ticks_total") > ticks_before
    assert "omealert_poll_errors_total{" not in text
    assert "longer than the" not in w.stderr()
    assert KEY.decode() not in w.stderr()
