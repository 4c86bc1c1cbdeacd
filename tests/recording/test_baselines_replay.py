"""An hour recorded from the simulator replays baseline rules: a bitrate under half its median
and a reconnect storm fire when, and only when, their windows have been seen."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from omealert.clock import FakeClock
from omealert.config.load import load_config_text
from omealert.recording.record import record
from omealert.recording.replay import replay
from omealert.rules import Settings
from omealert.simulator import Simulator

TOKEN = "sim-secret-token"
CONFIG = """\
servers:
  - name: origin-1
    url: {url}
    access_token: {token}
interval: 10s
rules:
  - name: bitrate-below-its-normal
    when: video.bitrateLatest < 50% * median_over(video.bitrateLatest, 1h)
  - name: reconnect-storm
    when: changes(createdTime, 1h) > 3
  - name: throughput-anomaly
    when: >-
      avgThroughputIn < median_over(avgThroughputIn, 30m)
      - 3 * stddev_over(avgThroughputIn, 30m)
"""
RECONNECTS = (50 * 60, 52 * 60, 54 * 60, 56 * 60)


@pytest.fixture(scope="module")
def hour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Settings]]:
    """65 minutes of one stream: 5 Mbps, a third of it from 40 min, reconnects at 50–56 min."""
    clock = FakeClock()
    start = clock.now()
    out = tmp_path_factory.mktemp("hour") / "hour.jsonl.gz"
    with Simulator(clock=clock.now, access_token=TOKEN) as sim:
        sim.add_stream("default", "app", "s1", bitrate=5_000_000)
        settings = load_config_text(CONFIG.format(url=sim.url, token=TOKEN), "cfg.yaml", env={})

        def script(now: float) -> None:
            if now - start == 40 * 60:
                sim.set_bitrate("default", "app", "s1", 1_500_000)
            if now - start in RECONNECTS:
                sim.remove_stream("default", "app", "s1")
                sim.add_stream("default", "app", "s1", bitrate=1_500_000)

        asyncio.run(record(settings, out, clock=clock, duration_s=65 * 60, before_poll=script))
    yield out, settings


def _firing(text: str) -> dict[str, tuple[float, str]]:
    """Each rule's first move to firing: (seconds from the start, value)."""
    out: dict[str, tuple[float, str]] = {}
    for line in text.splitlines():
        m = re.match(
            r"\+(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?\s+(\S+) \S+: \S+ → firing \(value ([^,]+),", line
        )
        if m and m.group(4) not in out:
            h, mins, s = (int(g or 0) for g in m.group(1, 2, 3))
            out[m.group(4)] = (h * 3600 + mins * 60 + s, m.group(5))
    return out


def test_an_hour_replays_the_baselines(hour: tuple[Path, Settings]) -> None:
    """The bitrate rule fires at the drop, the reconnect storm once an hour is watched."""
    path, settings = hour
    out = io.StringIO()
    summary = asyncio.run(replay(settings, path, out))
    fired = _firing(out.getvalue())
    assert summary.stats.missing == 0
    assert fired["bitrate-below-its-normal"] == (40 * 60, "1500000")
    at, value = fired["reconnect-storm"]
    assert 3600 <= at <= 3600 + 3 * 60 and value == "4"
    # the drop is 14 deviations under a steady input: an anomaly once 15 minutes are seen
    assert fired["throughput-anomaly"][0] >= 40 * 60
