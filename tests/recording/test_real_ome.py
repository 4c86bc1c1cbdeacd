"""Regression inputs from a real OME 0.18.0 (tests/data/recordings/real-ome-0.18, issue 21)."""

from __future__ import annotations

import asyncio
import functools
import gzip
import io
import json
from pathlib import Path
from typing import Any

from omealert.config.load import load_config_text
from omealert.metrics import Metrics
from omealert.recording.replay import replay, replay_polls

DATA = Path(__file__).parent.parent / "data" / "recordings" / "real-ome-0.18"
START = DATA / "session-start.jsonl.gz"  # stream4 connects just before the first poll
SESSION = DATA / "session.jsonl.gz"  # stream3 stalled; its maxThroughputIn is garbage

CONFIG = """
servers:
  - {{name: local-ome, url: "http://127.0.0.1:9", access_token: x}}
interval: {interval}
defaults: {{channels: [ops], on_missing: resolve}}
channels: {{ops: {{urls: ["json://127.0.0.1:9/x"]}}}}
ome_api_down: {{for: 0s}}
rules:
{rules}
"""
#: every rule here fired on the first-second garbage of OME 0.18 before issue 21
FIRST_SECOND_RULES = """
  - {name: video-low-10s, when: "min_over(video.bitrateLatest, 10s) < 100kbps"}
  - {name: video-low, when: "video.bitrateLatest < 100kbps"}
  - {name: audio-high, when: "audio.bitrateLatest > 1Mbps"}
  - {name: ingest-low, when: "avgThroughputIn < 100kbps"}
  - {name: ingest-high, when: "avgThroughputIn > 50Mbps"}
  - {name: fps-low, when: "video.framerateLatest < 20"}
  - {name: gop-short, when: "video.keyFrameIntervalLatest < 10"}
  - {name: peak-high, when: "maxThroughputIn > 100Mbps"}
"""
PRESENCE_RULES = """
  - {name: ingesting, when: "totalBytesIn > 0"}
  - {name: app-absent, scope: app, match: default/app, when: absent}
  - {name: stream1-absent, match: default/app/stream1, when: absent}
  - {name: few-streams, scope: app, when: "streams < 10"}
"""


def _settings(rules: str, interval: str = "1s") -> Any:
    return load_config_text(
        CONFIG.format(interval=interval, rules=rules), "cfg.yaml", {}, check_urls=False
    )


def _replay(path: Path, rules: str, interval: str = "1s") -> list[str]:
    out = io.StringIO()
    asyncio.run(replay(_settings(rules, interval), path, out))
    return [line for line in out.getvalue().splitlines()[1:-1] if "→" in line]


def _splice(tmp: Path, name: str, change: Any, at_poll: int) -> Path:
    """``session-start`` with the answers of poll ``at_poll`` and later passed through
    ``change(index, record) -> record | None``."""
    out = tmp / name
    poll = -1
    with gzip.open(START, "rt") as src, gzip.open(out, "wt") as dst:
        for line in src:
            record = json.loads(line)
            poll += record["type"] == "tick"
            if record["type"] == "response" and poll >= at_poll:
                record = change(poll - at_poll, record)
            if record is not None:
                dst.write(json.dumps(record) + "\n")
    return out


def _ok(response: Any) -> str:
    return json.dumps({"message": "OK", "response": response, "statusCode": 200})


def _vhost_404(record: dict[str, Any]) -> dict[str, Any]:
    text = "[HTTP] Could not find the virtual host: [default] (404)"
    return {**record, "status": 404, "body": json.dumps({"message": text, "statusCode": 404})}


def test_a_new_streams_first_second_is_no_value() -> None:
    """Uninitialised bitrateLatest, 0 before the first window and the 8.7e17 avgThroughputIn
    one poll later fire nothing; the values after the first windows are read as they are."""
    assert _replay(START, FIRST_SECOND_RULES) == []


def test_garbage_values_are_counted_in_metrics() -> None:
    """Each value left out is counted in /metrics by server, field and reason."""
    metrics = Metrics()
    asyncio.run(
        replay_polls(
            _settings(FIRST_SECOND_RULES), START, lambda at, p, now: metrics.observe_tick(p, 0, [])
        )
    )
    dropped = functools.partial(metrics.value, "omealert_values_dropped_total", server="local-ome")
    assert dropped(field="video.bitrateLatest", reason="implausible") == 1
    assert dropped(field="providers.avgThroughputIn", reason="implausible") == 1
    assert dropped(field="providers.avgThroughputIn", reason="warming_up") == 1


def test_a_garbage_peak_is_no_value_for_the_streams_life() -> None:
    """stream3's maxThroughputIn (3.2e17, its first window in OME < 0.19) never fires."""
    assert _replay(SESSION, FIRST_SECOND_RULES, "2s") == []


def test_the_shutdown_window_resolves_nothing(tmp_path: Path) -> None:
    """``/v1/vhosts`` answering ``200 []`` and then no API: ome-api-down, nothing else."""

    def shutdown(index: int, record: dict[str, Any]) -> dict[str, Any] | None:
        if index == 0:
            return {**record, "body": _ok([])} if record["path"] == "/v1/vhosts" else None
        return {**record, "status": None, "error": "NoConnection", "message": "refused"}

    path = _splice(tmp_path, "shutdown.jsonl.gz", shutdown, at_poll=6)
    lines = _replay(path, PRESENCE_RULES)
    after = [line for line in lines if not line.startswith("+0s")]
    assert len(after) == 2 and "ome-api-down local-ome: inactive → firing" in after[0]


def test_a_vhost_404_mid_poll_resolves_nothing(tmp_path: Path) -> None:
    """Listings still fine, every stats request 404s "Could not find the virtual host"."""

    def window(index: int, record: dict[str, Any]) -> dict[str, Any]:
        path = record["path"]
        if index == 0 and "/vhosts/default/" in path and not path.endswith(("/apps", "/streams")):
            return _vhost_404(record)
        return record

    path = _splice(tmp_path, "straddle.jsonl.gz", window, at_poll=6)
    assert [line for line in _replay(path, PRESENCE_RULES) if not line.startswith("+0s")] == []


def test_an_app_really_removed_resolves_one_poll_later(tmp_path: Path) -> None:
    """An app that is gone for good resolves its streams and fires `absent` one poll later."""

    def removed(index: int, record: dict[str, Any]) -> dict[str, Any] | None:
        if record["path"] == "/v1/vhosts/default/apps":
            return {**record, "body": _ok([])}
        return None if "/apps/app" in record["path"] else record

    path = _splice(tmp_path, "removed.jsonl.gz", removed, at_poll=6)
    later = [line for line in _replay(path, PRESENCE_RULES) if not line.startswith("+0s")]
    assert later and all(line.startswith("+7s") for line in later)  # removed at +6s
    assert any("app-absent local-ome/default/app: inactive → firing" in line for line in later)


# -- a stalled input and a frozen OME (recorded 2026-12-04, /work/shared's OME 0.18.0) ---------

STALL_RESUME = DATA / "stall-resume.jsonl.gz"  # 2 s polls; stream1's encoder stopped 15 s
FAST_STALL = DATA / "fastpoll-stall-resume.jsonl.gz"  # the same at 250 ms polls
OME_FREEZE = DATA / "ome-freeze.jsonl.gz"  # OME itself stopped 10 s; two polls time out

#: the rules the recordings were checked with live (``omealert.yaml``/``rec250.yaml``)
GAP_CONFIG = """
servers:
  - {{name: ome, url: "http://127.0.0.1:9", access_token: x, timeout: 3s}}
interval: {interval}
defaults: {{channels: [hook]}}
channels: {{hook: {{urls: ["json://127.0.0.1:9/hook"], format: text}}}}
ome_api_down: {{for: 0s}}
rules:
  - {{name: low-bitrate, when: "min_over(video.bitrateLatest, 10s) < 100kbps"}}
  - {{name: low-bitrate-now, when: "video.bitrateLatest < 100kbps"}}
  - {{name: low-throughput, when: "avgThroughputIn < 50kbps"}}
  - {{name: stale, when: "providers.lastRecvTime stale > 5s", severity: critical}}
  - {{name: few-streams, scope: app, match: default/app, when: "streams < 2"}}
  - {{name: stream1-absent, match: default/app/stream1, when: absent, severity: critical}}
  - {{name: tput-shown, when: "avgThroughputIn > 1kbps", severity: info, channels: []}}
  - {{name: fps-shown, when: "video.framerateLatest > 1", severity: info, channels: []}}
"""
#: both streams live at the first poll: the info rules fire for each, and stay firing
SHOWN = {
    f"+0s {rule} ome/default/app/{stream}: inactive → firing"
    for rule in ("tput-shown", "fps-shown")
    for stream in ("stream1", "stream2")
}


def _gap_transitions(path: Path, interval: str) -> tuple[set[str], list[str]]:
    """(the +0s transitions, the later ones), each as "OFFSET RULE TARGET: FROM → TO"."""
    out = io.StringIO()
    settings = load_config_text(
        GAP_CONFIG.format(interval=interval), "cfg.yaml", {}, check_urls=False
    )
    asyncio.run(replay(settings, path, out))
    lines = [
        " ".join(line.split(" (value")[0].split())
        for line in out.getvalue().splitlines()[1:-1]
        if ": " in line and " → " in line and "→ hook" not in line
    ]
    return {line for line in lines if line.startswith("+0s ")}, [
        line for line in lines if not line.startswith("+0s ")
    ]


def test_a_stall_at_2s_polls_fires_only_stale() -> None:
    """stream1 stalled 15 s at 2 s polls: `stale` fires at +16 s and resolves at +26 s,
    the catch-up window after it fires nothing."""
    first, later = _gap_transitions(STALL_RESUME, "2s")
    assert first == SHOWN
    assert later == [
        "+16s stale ome/default/app/stream1: inactive → firing",
        "+26s stale ome/default/app/stream1: firing → resolved",
    ]


def test_the_partial_window_served_for_a_second_fires_nothing() -> None:
    """At 250 ms polls OME serves the partial window (30.4 kbps, 2.73 fps) in four polls
    after the input resumes: none of them fires a low-bitrate rule; only `stale` moves."""
    first, later = _gap_transitions(FAST_STALL, "250ms")
    assert first == SHOWN
    assert later == [
        "+7.75s stale ome/default/app/stream1: inactive → firing",
        "+9.75s stale ome/default/app/stream1: firing → resolved",
    ]


def test_the_first_answer_after_ome_froze_fires_nothing() -> None:
    """OME frozen 10 s (polls time out, no poll saw a stale input): its first answer's
    partial windows (16 kbps) fire no low-bitrate or low-throughput rule."""
    first, later = _gap_transitions(OME_FREEZE, "2s")
    assert first == SHOWN
    assert later == [
        "+10s ome-api-down ome: inactive → firing",
        "+18s ome-api-down ome: firing → resolved",
    ]


def test_a_resolve_because_the_target_vanished_says_so(tmp_path: Path) -> None:
    """A stream alert resolved because its app was removed says "no longer listed" with its
    last value, which still met the condition, rather than passing for a cleared one."""

    def removed(index: int, record: dict[str, Any]) -> dict[str, Any] | None:
        if record["path"] == "/v1/vhosts/default/apps":
            return {**record, "body": _ok([])}
        return None if "/apps/app" in record["path"] else record

    path = _splice(tmp_path, "removed.jsonl.gz", removed, at_poll=6)
    out = io.StringIO()
    rules = '  - {name: ingesting, match: default/app/stream1, when: "totalBytesIn > 0"}'
    asyncio.run(replay(_settings(rules), path, out))
    resolved = [line for line in out.getvalue().splitlines() if "- **RESOLVED**" in line]
    assert len(resolved) == 1, out.getvalue()
    # the markdown channel escapes ">"; 6.764 MB is stream1's totalBytesIn at its last poll
    assert "stream1: totalBytesIn \\> 0 (no longer listed; last value 6.764 MB)" in resolved[0]
