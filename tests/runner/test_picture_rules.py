"""picture.* rules end to end: the runner polls the simulator, fetches its drawn thumbnails
and fires to a loopback webhook."""

from __future__ import annotations

from pathlib import Path

from omealert.clock import FakeClock
from omealert.config.load import load_config_text
from omealert.simulator import Simulator
from tests.helpers import run_async
from tests.receivers import HttpReceiver
from tests.rig import RunnerRig

CONFIG = """\
servers:
  - name: origin
    url: {sim}
    access_token: ome-access-token
    thumbnails: {{url: {sim}, every: 5s, max_in_flight: 4}}
interval: 5s
channels:
  hook:
    urls: ["json://127.0.0.1:{hook}/hook"]
    format: text
    title: "[{{{{ status | upper }}}}] {{{{ rule }}}} on {{{{ target }}}}"
rules:
  - name: frozen
    when: picture.frozen_for > 30s
    channels: [hook]
  - name: black
    when: picture.black
    for: 10s
    channels: [hook]
  - name: no-thumbnail
    when: picture.missing
    channels: [hook]
"""


@run_async
async def test_frozen_black_and_missing_pictures_fire_and_resolve(tmp_path: Path) -> None:
    """A frozen picture fires after 30 s, black after 10 s of it, a 404 at once; each resolves."""
    clock = FakeClock(1_000_000.0)
    with Simulator(clock=clock.now) as sim, HttpReceiver() as hook:
        sim.add_stream("default", "app", "cam1")
        rig = RunnerRig(tmp_path, clock, sim, hook)
        settings = load_config_text(CONFIG.format(sim=sim.url, hook=hook.port), "p.yaml", env={})
        runner = rig.start_with(settings)
        script = {
            2: "frozen",  # t=10
            12: "moving",
            14: "black",  # t=70
            20: "missing",
            22: "moving",
        }
        seen: list[tuple[int, str]] = []
        for i in range(25):
            if i in script:
                sim.set_picture("app", "cam1", script[i])
            before = len(hook.json_bodies())
            await rig.tick(5)
            thumbnails = runner.clients["origin"].thumbnails
            assert thumbnails is not None
            await thumbnails.settled()
            seen += [(i, str(b["title"])) for b in hook.json_bodies()[before:]]
        await rig.stop()
    on = "on origin/default/app/cam1"
    assert seen == [
        # tick 2's fetch shows tick 1's picture again: still from t=5, 35 s by tick 8's fetch
        (9, f"[FIRING] frozen {on}"),
        (13, f"[RESOLVED] frozen {on}"),  # tick 12's fetch moved
        (17, f"[FIRING] black {on}"),  # black in tick 15's fields, held for 10 s
        (21, f"[FIRING] no-thumbnail {on}"),  # the 404 of tick 20's fetch
        # no picture while it 404s: black has no value and is held, not resolved
        (23, f"[RESOLVED] black {on}"),
        (23, f"[RESOLVED] no-thumbnail {on}"),
    ]
