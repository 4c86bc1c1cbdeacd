"""A watcher for ``test_reliability``'s kill test: the real Runner, tick after tick, on a
scripted scenario in simulated time, until the scenario ends.

The test starts it with ``sys.executable``, kills it with SIGKILL at random moments and
starts it again on the same state file, many times. Simulated time lives in the simulator
(a ManualClock in the test process, moved only through ``POST /_sim/advance``), so a new
process picks up exactly where the killed one stopped:

* at start, the time is the simulator's; if the state file says this time was already
  ticked, the clock moves one interval on first (a tick is never evaluated twice);
* before each tick the scenario for that moment is applied (stall/resume are idempotent,
  so applying it again after a kill changes nothing);
* each tick is one poll, one save (in the Runner), one delivery pass; then the clock moves.

It prints ``tick <offset>`` after each tick and ``done`` once the scenario is over and the
outbox is empty. Usage: ``crash_driver.py SIM_URL HOOK_PORT STATE_DB START_EPOCH``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.request
from typing import Any

from omealert.clock import FakeClock
from omealert.config.load import load_config_text
from omealert.notify.delivery import Deliverer
from omealert.runner import Runner
from omealert.state.store import StateStore

STREAMS = 12
STEP = 10.0
LIVE = ("default", "live")


def stalled(k: int, offset: float) -> bool:
    """Stream k's encoder hangs from 30+60k s to 100+60k s: it fires once and resolves once,
    60 s apart from its neighbours, so no two streams share a message."""
    return 30 + 60 * k <= offset < 100 + 60 * k


#: Offset at which every stream has stalled and recovered, plus a couple of quiet ticks.
END = 100 + 60 * (STREAMS - 1) + 2 * STEP

CONFIG = """\
servers:
  - name: origin
    url: {sim}
    access_token: ome-access-token
interval: 10s
defaults:
  channels: [hook]
channels:
  hook:
    urls: ["json://127.0.0.1:{hook}/omealert"]
    format: text
rules:
  - name: ingest-stalled
    when: lastRecvTime stale > 30s
"""


def control(sim: str, name: str, **kwargs: Any) -> Any:
    """Call the simulator's scripting endpoint; a refusal is a bug in this driver."""
    request = urllib.request.Request(
        f"{sim}/_sim/{name}", data=json.dumps(kwargs).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        answer = json.loads(reply.read())
    if not answer.get("ok"):
        raise RuntimeError(f"simulator refused {name}: {answer}")
    return answer.get("result")


def apply_scenario(sim: str, offset: float) -> None:
    for k in range(STREAMS):
        action = "stall" if stalled(k, offset) else "resume"
        control(sim, action, vhost=LIVE[0], app=LIVE[1], stream=f"s{k}")


async def main(sim: str, hook_port: int, db: str, start: float) -> int:
    settings = load_config_text(CONFIG.format(sim=sim, hook=hook_port), "crash.yaml", env={})
    store = StateStore(db)
    now = float(control(sim, "server_time"))
    last = store.get_meta("last_tick_at")
    if last is not None and float(last) >= now:
        control(sim, "advance", seconds=STEP)
        now += STEP
    clock = FakeClock(now)
    runner = Runner(settings, clock=clock, store=store, deliverer=Deliverer(timeout=10))
    outbox = runner.outbox
    assert outbox is not None
    try:
        while clock.now() - start <= END:
            offset = clock.now() - start
            apply_scenario(sim, offset)
            await runner.tick()
            await outbox.deliver_due()
            print(f"tick {offset:g}", flush=True)
            control(sim, "advance", seconds=STEP)
            clock.advance(STEP)
        for _ in range(10):  # what is left after the last tick (a failed attempt, say)
            if not len(outbox):
                break
            clock.advance(STEP)
            await outbox.deliver_due()
        print("done" if not len(outbox) else f"undelivered {len(outbox)}", flush=True)
    finally:
        await runner.aclose()
        store.close()
    return 0


if __name__ == "__main__":
    url, port, path, epoch = sys.argv[1:5]
    raise SystemExit(asyncio.run(main(url, int(port), path, float(epoch))))
