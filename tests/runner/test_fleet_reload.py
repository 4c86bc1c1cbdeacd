"""A reload that adds Alertmanagers or a heartbeat says they start at the next restart
(their senders are made once, when the watcher starts), instead of silently doing nothing."""

from __future__ import annotations

import logging

import pytest

from omealert.clock import FakeClock
from omealert.config.load import load_config_text
from omealert.runner import Runner
from tests.helpers import run_async

BASE = """\
servers:
  - {name: origin, url: "http://127.0.0.1:1"}
rules:
  - {name: r, when: "webrtc publishers > 5"}
"""


@run_async
async def test_adding_a_heartbeat_on_reload_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Without senders at start, a reload naming a heartbeat URL logs one warning; a reload
    that adds nothing logs none."""
    runner = Runner(load_config_text(BASE, "a.yaml", env={}), clock=FakeClock())
    try:
        with caplog.at_level(logging.WARNING, logger="omealert"):
            await runner.reload(load_config_text(BASE, "b.yaml", env={}))
            assert "next restart" not in caplog.text
            beat = BASE + 'heartbeat: {url: "http://127.0.0.1:1/ping"}\n'
            await runner.reload(load_config_text(beat, "c.yaml", env={}))
        assert "alertmanagers or a heartbeat were added: they start at the next restart" in (
            caplog.text
        )
    finally:
        await runner.aclose()
