"""``status`` and ``history`` show OME's last events per target, from the watcher's state
file: the simulator as OME posts them over real HTTP, a runner with a store saves them."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

from omealert.cli.main import main
from omealert.clock import FakeClock
from omealert.metrics import Metrics
from omealert.ome.alert import AlertEvent, Source
from omealert.ome.events import SHOWN_PER_SOURCE, SHOWN_SOURCES, EventBook, Heard
from omealert.rules import ServerSpec
from omealert.runner import Runner
from omealert.simulator import Simulator
from omealert.state.store import StateStore
from omealert.web.listener import Listener
from omealert.web.ome_alert import AlertReceiver
from tests.helpers import rule, settings

KEY = "shown-key"


def run_cli(*argv: str) -> str:
    out = io.StringIO()
    assert main(list(argv), out=out) == 0
    return out.getvalue()


def test_status_and_history_show_the_last_events_of_each_target(tmp_path: Path) -> None:
    """A stream's BITRATE_LOW and OK, posted by the simulator, appear under its target in
    ``status`` (text and JSON, beside the alert they fired) and in ``history``."""

    async def body() -> None:
        clock = FakeClock()
        with Simulator(clock=clock.now) as sim:
            sim.add_stream("default", "live", "cam1", bitrate=3_000_000)
            book = EventBook()
            listener = Listener(Metrics())
            AlertReceiver({"origin": KEY.encode()}, book.record, listener.metrics).install(
                listener.app
            )
            await listener.start()
            url = f"http://127.0.0.1:{listener.port}/ome/alert"
            sim.set_alert_module(url, KEY, min_bitrate=1_000_000)
            server = ServerSpec("origin", sim.url, access_token=sim.access_token)
            store = StateStore(tmp_path / "s.db")
            low = rule("ome-low", 'ome_alert("INGRESS_BITRATE_LOW")')
            runner = Runner(settings(low, servers=(server,)), clock=clock, store=store, events=book)
            try:
                sim.set_bitrate("default", "live", "cam1", 300_000)
                assert await asyncio.to_thread(sim.alert_flush, 10.0)
                await runner.tick()
            finally:
                await runner.aclose()
                store.close()
                sim.alert_module_off()
                await listener.stop()

    asyncio.run(asyncio.wait_for(body(), 30))
    state = str(tmp_path / "s.db")
    text = run_cli("status", "--state", state)
    assert "last OME events (newest target first):" in text
    assert "origin/default/live/cam1: " in text and "INGRESS INGRESS_BITRATE_LOW" in text
    (row,) = json.loads(run_cli("status", "--state", state, "--format", "json"))
    assert row["target"] == "origin/default/live/cam1"
    assert [(e["type"], e["codes"]) for e in row["ome_events"]] == [
        ("INGRESS", ["INGRESS_BITRATE_LOW"])
    ]
    history = run_cli("history", "--state", state, "--since", "100000d")
    assert "ome-event  INGRESS origin/default/live/cam1: INGRESS_BITRATE_LOW" in history


def test_what_is_kept_for_status_is_bounded_per_target_and_overall() -> None:
    """A few events per source and a cap on sources, however many events OME sends."""
    book = EventBook()
    for i in range(10 * SHOWN_SOURCES):
        for n in range(5):
            source = Source("v", "a", f"s{i}")
            book.record(Heard(float(n), "origin", AlertEvent("INGRESS", ("OK",), source)))
    rows = book.shown()
    assert len(rows) == SHOWN_SOURCES
    assert rows[0]["target"] == f"origin/v/a/s{10 * SHOWN_SOURCES - 1}"
    assert all(len(r["events"]) == SHOWN_PER_SOURCE for r in rows)  # type: ignore[arg-type]
