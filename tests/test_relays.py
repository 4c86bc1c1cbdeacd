"""OVT origin → edge end to end: two simulators as an origin and its edge over real HTTP,
the runner joining each relayed stream with its origin's poll, and the example rule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from omealert.clock import FakeClock
from omealert.config.load import load_config_text
from omealert.errors import ConfigError
from omealert.lang.fields import Source
from omealert.model import Target
from omealert.ome.plan import plans_for
from omealert.rules import Settings
from omealert.runner import Runner
from omealert.simulator import Simulator

from .cli.test_main import TOKEN, cli
from .cli.test_queue_check import example_rules
from .helpers import run_async

APP = ("default", "app")


def config(origin: str, edge: str, rules: str, *, edge_origin: str = "origin-1") -> str:
    return (
        f"servers:\n"
        f"  - name: origin-1\n    url: {origin}\n    access_token: {TOKEN}\n    role: origin\n"
        f"  - name: edge-1\n    url: {edge}\n    access_token: {TOKEN}\n    role: edge\n"
        f"    origin: {edge_origin}\n"
        f"interval: 5s\ndefaults:\n  channels: []\n{rules}"
    )


#: the example rule as shipped, plus what an operator may read of the origin
RULES = example_rules(("relay-broken",)) + (
    "  - name: origin-lost\n    when: not origin.listed\n"
    "  - name: origin-fresh\n    when: origin.lastRecvTime stale < 5s and origin.totalBytesIn > 0\n"
)


@pytest.fixture
def fleet() -> Iterator[tuple[FakeClock, Simulator, Simulator]]:
    clock = FakeClock(1_780_000_000.0)
    with (
        Simulator(clock=clock.now, access_token=TOKEN) as origin,
        Simulator(clock=clock.now, access_token=TOKEN) as edge,
    ):
        origin.add_stream(*APP, "cam1")
        edge.relay_from(origin, *APP, "cam1")
        edge.add_stream(*APP, "local")  # ingested on the edge itself: no origin
        yield clock, origin, edge


def settings_for(origin: Simulator, edge: Simulator, rules: str = RULES) -> Settings:
    return load_config_text(config(origin.url, edge.url, rules), "relays.yaml", env={})


def firing(runner: Runner) -> dict[str, dict[str, str]]:
    return {
        f"{i.rule} {i.target.key}": i.labels
        for i in runner.engine.instances()
        if i.state.value == "firing"
    }


async def ticks(runner: Runner, clock: FakeClock, n: int) -> None:
    for _ in range(n):
        await runner.tick()
        clock.advance(5)


@run_async
async def test_a_broken_relay_fires_while_a_stalled_origin_does_not(
    fleet: tuple[FakeClock, Simulator, Simulator],
) -> None:
    """The example rule fires on the edge stream when the relay breaks and the origin stays
    fresh, resolves when it mends, and stays quiet when the origin's own input stalls (both
    stale); the edge's own stream has no origin and never fires."""
    clock, origin, edge = fleet
    runner = Runner(settings_for(origin, edge), clock=clock, notify=False)
    try:
        await ticks(runner, clock, 2)
        now = firing(runner)
        assert now.keys() == {"origin-fresh edge-1/default/app/cam1"}
        assert now["origin-fresh edge-1/default/app/cam1"]["origin"] == "origin-1"
        edge.break_relay(*APP, "cam1")
        await ticks(runner, clock, 5)  # stale > 5 s, then held for 10 s
        assert "relay-broken edge-1/default/app/cam1" in firing(runner)
        edge.mend_relay(*APP, "cam1")
        await ticks(runner, clock, 1)
        assert "relay-broken edge-1/default/app/cam1" not in firing(runner)
        origin.stall(*APP, "cam1")  # the edge follows its origin: both stale
        await ticks(runner, clock, 6)
        assert firing(runner) == {}
    finally:
        await runner.aclose()


@run_async
async def test_origin_fields_have_no_value_when_the_origin_was_not_read(
    fleet: tuple[FakeClock, Simulator, Simulator],
) -> None:
    """An origin that cannot be read leaves every origin.* field without a value: a broken
    relay then neither fires nor resolves, and origin.listed is not taken as false."""
    clock, origin, edge = fleet
    runner = Runner(settings_for(origin, edge), clock=clock, notify=False)
    try:
        edge.break_relay(*APP, "cam1")
        await ticks(runner, clock, 5)
        assert "relay-broken edge-1/default/app/cam1" in firing(runner)
        origin.set_fault("500")
        await ticks(runner, clock, 3)
        polled = await runner.tick()
        (edge_poll,) = [p for p in polled.polls if p.server == "edge-1"]
        sample = next(s for t, s in edge_poll.samples.items() if t.stream == "cam1")
        assert not any(k.startswith("origin.") for k in sample.fields)
        assert sample.labels == {"origin": "origin-1"}
        still = firing(runner)
        assert "relay-broken edge-1/default/app/cam1" in still  # held, not resolved
        assert not any(k.startswith("origin-lost") for k in still)
    finally:
        await runner.aclose()


@run_async
async def test_a_stream_the_origin_no_longer_lists_reads_listed_false(
    fleet: tuple[FakeClock, Simulator, Simulator],
) -> None:
    """The origin's stream ends: origin.listed is false on the still-listed edge stream;
    the edge reaping it afterwards is no alert at all."""
    clock, origin, edge = fleet
    runner = Runner(settings_for(origin, edge), clock=clock, notify=False)
    try:
        await ticks(runner, clock, 1)
        origin.remove_stream(*APP, "cam1")
        await ticks(runner, clock, 2)
        assert "origin-lost edge-1/default/app/cam1" in firing(runner)
        edge.remove_stream(*APP, "cam1")  # reaped by the edge: unused for 60 s
        await ticks(runner, clock, 2)
        assert firing(runner) == {}
    finally:
        await runner.aclose()


def test_origin_reads_only_the_streams_edge_rules_select(
    fleet: tuple[FakeClock, Simulator, Simulator],
) -> None:
    """An origin without rules of its own is asked for the stats of what its edges' origin.*
    rules select, and the edge for stream info (sourceType)."""
    rules = (
        "rules:\n  - name: r\n    match: default/app/cam*\n    servers: [edge-1]\n"
        "    when: not origin.lastRecvTime stale > 5s\n"
    )
    _, origin, edge = fleet
    plans = plans_for(settings_for(origin, edge, rules))
    cam, other = (
        Target("origin-1", "default", "app", "cam1"),
        Target("origin-1", "default", "x", "y"),
    )
    assert plans["origin-1"].sources(cam) == frozenset({Source.STATS})
    assert plans["origin-1"].sources(other) is None
    edge_sources = plans["edge-1"].sources(Target("edge-1", "default", "app", "cam1"))
    assert edge_sources == frozenset({Source.ORIGIN, Source.INFO})


def test_check_json_shows_the_origin_label_and_fields(
    tmp_path: Path, fleet: tuple[FakeClock, Simulator, Simulator]
) -> None:
    """`check --format json` over real HTTP: the broken relay's alert names its origin and
    its summary reads the origin.* field the rule reads through the template's sample."""
    _, origin, edge = fleet
    edge.break_relay(*APP, "cam1")
    rules = (
        "rules:\n  - name: relay\n    when: lastRecvTime stale > 5s and origin.listed\n"
        '    summary: "{{ labels.origin }} {{ sample.origin.listed }}"\n'
    )
    (tmp_path / "config.yaml").write_text(config(origin.url, edge.url, rules), encoding="utf-8")
    clock, _, _ = fleet
    clock.advance(30)  # the simulators run on the fixture's clock: 30 s without input
    run = cli(tmp_path, "check", "-c", "config.yaml", "--format", "json")
    doc = json.loads(run.out)
    [alert] = doc["alerts"]
    assert alert["labels"]["origin"] == "origin-1"
    assert alert["labels"]["server"] == "edge-1" and alert["labels"]["stream"] == "cam1"
    assert alert["summary"] == "origin-1 true"  # templates print bools as YAML does


@pytest.mark.parametrize(
    ("servers", "message", "place"),
    [
        ("    role: edge\n", "an edge needs 'origin': the name of its origin server", (9, 11)),
        ("    role: edge\n    origin: orign-1\n", "unknown server 'orign-1' — did you mean",
         (10, 13)),
        ("    role: edge\n    origin: edge-1\n", "an edge cannot be its own origin", (10, 13)),
        ("    origin: origin-1\n", "only a server with 'role: edge' has an origin", (9, 13)),
        ("    role: edge\n    origin: plain\n", "server 'plain' is not an origin", (10, 13)),
        ("    role: relay\n", "invalid role 'relay' (expected one of: origin, edge)", (9, 11)),
    ],
)  # fmt: skip
def test_role_and_origin_errors_name_their_place(
    servers: str, message: str, place: tuple[int, int]
) -> None:
    """Each wrong role/origin is an error at the FILE:LINE:COL where it is written."""
    text = (
        "servers:\n  - name: origin-1\n    url: http://127.0.0.1:9\n    role: origin\n"
        "  - name: plain\n    url: http://127.0.0.1:9\n"
        f"  - name: edge-1\n    url: http://127.0.0.1:9\n{servers}"
    )
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "roles.yaml", env={})
    [issue] = info.value.issues
    assert message in issue.message
    assert (issue.line, issue.col) == place, issue
