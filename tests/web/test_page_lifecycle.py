"""The page and ``/api/v1/alerts`` show what ``status`` shows of flapping and dependency
holds: a held edge alert names its cause, the cause counts what it holds (issue 17 §4)."""

from __future__ import annotations

import aiohttp

from omealert.metrics import Metrics
from omealert.web.listener import Listener
from omealert.web.site import install_site
from tests.engine.test_dependencies import LIVE, Rig, _ticks, rig
from tests.helpers import run_async

__all__ = ["rig"]  # the dependency rig's fixture, used here as is


@run_async
async def test_the_page_and_api_show_a_held_alert_and_its_cause(rig: Rig) -> None:
    """Origin API down, both edges' cam1 stalled: the API's rows carry ``held``/``holds``
    as ``status --format json`` does, and the page says "held by" and "also affects"."""
    rig.start_with(rig.settings(), health=True)  # the page as on watch --listen
    assert rig.runner is not None
    listener = Listener(Metrics())
    install_site(listener, rig.runner)
    await listener.start()
    try:
        await _ticks(rig, 1)
        rig.sims["origin-1"].set_fault("500")
        for edge in ("edge-1", "edge-2"):
            rig.sims[edge].stall(*LIVE, "cam1")
        await _ticks(rig, 6)
        base = f"http://127.0.0.1:{listener.port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/api/v1/alerts") as answer:
                assert answer.status == 200
                rows = {f"{a['rule']} {a['target']}": a for a in (await answer.json())["alerts"]}
            async with session.get(f"{base}/") as answer:
                assert answer.status == 200
                page = await answer.text()
        held = rows["stalled edge-1/default/live/cam1"]["held"]
        assert held == {"by": [{"rule": "ome-api-down", "target": "origin-1"}], "until": None}
        holds = rows["ome-api-down origin-1"]["holds"]
        assert holds == {"held": 2, "servers": ["edge-1", "edge-2"], "ended_at": None}
        assert "flapping" in rows["ome-api-down origin-1"]  # None: too few changes to track
        assert "held by ome-api-down on origin-1" in page
        assert "also affects edge-1, edge-2: 2 alert(s) held" in page
    finally:
        await listener.stop()
        await rig.runner.aclose()


def test_a_flapping_alert_says_so_in_the_alerts_table() -> None:
    """A row whose ``flapping`` says flapping shows its share in words, beside its state."""
    from tests.web.test_page_render import pages_with

    pages = pages_with("cam1")
    table = pages.env.get_template("macros.html").module.alerts_table  # type: ignore[attr-defined]
    row = {
        "rule": "stalled", "target": "origin/default/live/cam1", "state": "firing",
        "severity": "warning", "value": 40, "since": 0.0, "summary": "", "silenced_by": [],
        "inhibited_by": None, "ack": None, "silence": None, "held": None, "holds": None,
        "flapping": {"flapping": True, "share": 0.42, "window": 20},
    }  # fmt: skip
    html = str(table([row], 100.0))
    assert "⇅ flapping: 42% of the last 20 evaluations changed" in html
    row["flapping"] = {"flapping": False, "share": 0.1, "window": 20}
    assert "flapping" not in str(table([row], 100.0)).replace('class="a-firing"', "")
