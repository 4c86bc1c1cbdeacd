"""The simulator's internals/queues over real HTTP: the real OME 0.18 shape, congestion on cue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from omealert.clock import FakeClock
from omealert.ome.queues import parse_queues
from omealert.simulator import Simulator

REAL = Path(__file__).parent.parent / "data" / "ome-real-0.18"
TOKEN = "t"
AUTH = {"Authorization": "Basic dA=="}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[Simulator]:
    with Simulator(clock=clock.now, access_token=TOKEN) as s:
        s.add_stream("default", "app", "stream1")
        yield s


def queues(sim: Simulator) -> list[dict[str, Any]]:
    body = httpx.get(sim.url + "/v1/stats/current/internals/queues", headers=AUTH).json()
    assert sorted(body) == ["message", "response", "statusCode"]
    result: list[dict[str, Any]] = body["response"]
    return result


def by_name(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    [row] = [r for r in rows if r["urn"].endswith(f":n={name}")]
    return row


def test_each_queue_has_the_real_keys_and_types(sim: Simulator) -> None:
    """Every queue has exactly the keys and JSON types of a real OME 0.18 queue."""
    real = json.loads((REAL / "queues.json").read_text())["response"]
    shape = {k: type(v) for k, v in real[0].items()}
    sim.congest_queue("default", "app", "stream1")
    rows = queues(sim)
    assert rows and all({k: type(v) for k, v in r.items()} == shape for r in rows)
    loaded = json.loads((REAL / "queues-load-4k-t24.json").read_text())["response"]
    real_kinds = {q["urn"].rsplit(":p=", 1)[1] for q in real + loaded}
    assert {r["urn"].rsplit(":p=", 1)[1] for r in rows} <= real_kinds  # part and name
    assert by_name(rows, "enc_h264_0")["urn"].startswith("mngq:v=#default#app:s=stream1_")
    assert all(r["drop"] == 0 for r in rows)
    assert sorted(r["id"] for r in rows) == list(range(100, 100 + len(rows)))


def test_a_congested_filter_grows_and_drains(sim: Simulator, clock: FakeClock) -> None:
    """filter_video grows with nothing out, reports OME 0.18's 120, then drains after relief."""
    sim.congest_queue("default", "app", "stream1", items_per_s=20)
    clock.advance(10)
    jam = by_name(queues(sim), "filter_video")
    assert (jam["size"], jam["threshold"], jam["outputPerSecond"]) == (201, 120, 0)
    assert jam["avgWaitingTime"] > 2_000_000  # µs: seconds of backlog
    assert by_name(queues(sim), "dec_h264_0")["threshold"] == 0  # as 0.18 reports it
    sim.relieve_queue("default", "app", "stream1")
    clock.advance(0.5)
    assert by_name(queues(sim), "filter_video")["outputPerSecond"] == 300
    clock.advance(5)
    assert by_name(queues(sim), "filter_video")["size"] == 1
    assert by_name(queues(sim), "filter_video")["peak"] >= 200


def test_a_returning_stream_gets_new_ids(sim: Simulator) -> None:
    """Ids identify a queue within a life: a stream that comes back gets new ones."""
    first = {r["id"] for r in queues(sim) if ":s=stream1:" in r["urn"]}
    sim.remove_stream("default", "app", "stream1")
    assert not [r for r in queues(sim) if ":s=stream1:" in r["urn"]]
    sim.add_stream("default", "app", "stream1")
    again = {r["id"] for r in queues(sim) if ":s=stream1:" in r["urn"]}
    assert again and not first & again


def test_the_client_parser_reads_the_simulator(sim: Simulator, clock: FakeClock) -> None:
    """omealert's parser gives the congested queue an effective threshold of 2 x fps."""
    sim.congest_queue("default", "app", "stream1", items_per_s=20)
    clock.advance(5)
    parsed = parse_queues(queues(sim), "0.18.0")
    [jam] = [q for q in parsed if q.labels.get("name") == "filter_video"]
    assert jam.labels["stream"] == "stream1" and jam.fields["effective_threshold"] == 60


def test_congesting_an_unknown_stream_is_refused(sim: Simulator) -> None:
    """A typo in a test's congest call fails loudly."""
    with pytest.raises(Exception, match="nope"):
        sim.congest_queue("default", "app", "nope")


def test_congestion_can_be_driven_from_another_process(sim: Simulator) -> None:
    """POST /_sim/congest_queue congests a stream, as benchmarks and the demo drive it."""
    answer = httpx.post(
        sim.url + "/_sim/congest_queue",
        json={"vhost": "default", "app": "app", "stream": "stream1"},
    ).json()
    assert answer == {"ok": True}
    assert any(r["urn"].endswith(":n=filter_video") for r in queues(sim))
    refused = httpx.post(sim.url + "/_sim/relieve_queue", json={"nope": 1}).json()
    assert refused["ok"] is False and "TypeError" in refused["error"]
