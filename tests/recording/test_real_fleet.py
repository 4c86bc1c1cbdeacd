"""A real OME 0.18.0 origin and OVT edge, recorded (tests/data/recordings/real-ome-0.18/
fleet-relay-push.jsonl.gz, issue 15): a blackholed relay, then a killed push destination."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

from omealert.config.load import load_config_text
from omealert.engine.engine import Engine
from omealert.model import AlertState, PollResult
from omealert.recording.replay import replay_polls

from ..cli.test_queue_check import example_rules

FLEET = Path(__file__).parent.parent / "data" / "recordings" / "real-ome-0.18"
FLEET = FLEET / "fleet-relay-push.jsonl.gz"
SERVERS = """\
servers:
  - {name: origin-1, url: "http://127.0.0.1:9", access_token: x, role: origin}
  - {name: edge-1, url: "http://127.0.0.1:9", access_token: x, role: edge, origin: origin-1}
interval: 2s
defaults: {channels: []}
"""
PUSH = "origin-1/default/app/stream1/:push/rtmp://127.0.0.1:11936/live#4e2f4b60"
EDGE = "edge-1/default/app/stream1"


def replayed(rules: str) -> list[tuple[float, str, str, str, str]]:
    settings = load_config_text(SERVERS + rules, "fleet.yaml", env={})
    engine = Engine(settings)
    seen: list[tuple[float, str, str, str, str]] = []
    first: list[float] = []

    def on_tick(at: float, polls: list[PollResult], now: float) -> None:
        first.append(at)
        for tr in engine.step(polls, now):
            if tr.to_state is not AlertState.INACTIVE or tr.from_state is AlertState.PENDING:
                seen.append((at - first[0], tr.instance.rule, tr.instance.target.key,
                             tr.to_state.value, tr.reason))  # fmt: skip

    asyncio.run(replay_polls(settings, FLEET, on_tick))
    return seen


def test_the_example_rules_raise_what_the_live_watcher_raised() -> None:
    """relay-broken fires on the edge 6 s after the relay was blackholed (the origin fresh)
    and resolves when the edge drops the stream 6 s later; push-not-pushing holds 16 s
    while the destination is dead and resolves when it is back: what `watch` logged live
    against the same OME, on the same target keys."""
    rules = example_rules(("push-not-pushing", "record-error", "relay-broken", "ingest-stalled"))
    assert replayed(rules) == [
        (12.0, "relay-broken", EDGE, "firing", "condition"),
        (18.0, "relay-broken", EDGE, "resolved", "missing"),
        (28.0, "push-not-pushing", PUSH, "pending", "condition"),
        (44.0, "push-not-pushing", PUSH, "firing", "condition"),
        (52.0, "push-not-pushing", PUSH, "resolved", "condition"),
    ]


def test_a_for_longer_than_the_edge_keeps_the_stream_never_fires() -> None:
    """Why relay-broken has no `for`: the real edge lists the dead relay's stream for only
    ~6 s after it went stale, so `for: 10s` ends pending, then inactive as it vanishes."""
    rules = example_rules(("relay-broken",)).replace("severity: critical", "for: 10s")
    assert replayed(rules) == [
        (12.0, "relay-broken", EDGE, "pending", "condition"),
        (18.0, "relay-broken", EDGE, "inactive", "missing"),
    ]


def test_the_recording_holds_no_stream_key_or_token() -> None:
    """The push's stream key and the API token were scrubbed when it was recorded."""
    text = gzip.decompress(FLEET.read_bytes()).decode()
    assert "s3cr3t-KEY-i15" not in text
    assert "ome-access-token" not in text and "b21lLWFjY2Vzcy10b2tlbg" not in text
