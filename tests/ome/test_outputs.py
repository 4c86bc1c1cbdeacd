"""Pushes and records: real OME 0.18 answers parsed, destinations without keys, and the
client reading ``:pushes``/``:records`` from the simulator over HTTP as planned."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from omealert.clock import FakeClock
from omealert.model import Scope, Target
from omealert.ome.client import OmeClient
from omealert.ome.normalize import NormalizeError
from omealert.ome.outputs import destination, normalize_outputs, scrub_pushes
from omealert.ome.plan import plan_polls
from omealert.rules import ServerSpec
from omealert.simulator import Simulator

from ..helpers import poll_once, rule

REAL = Path(__file__).parents[1] / "data" / "ome-real-0.18"
KEY = "live-KEY-9f3a-s3cr3t"


def server(sim: Simulator) -> ServerSpec:
    return ServerSpec("origin", sim.url, access_token="ome-access-token")


def real(name: str) -> Any:
    return json.loads((REAL / name).read_text(encoding="utf-8"))


def one(scope: Scope, name: str, live: frozenset[str] = frozenset({"stream1"})) -> Any:
    [item] = normalize_outputs(scope, real(name)["response"], live)
    return item


# -- real OME 0.18 answers ---------------------------------------------------------------------


def test_a_pushing_push_of_real_ome_reads_as_its_fields() -> None:
    """A real 0.18 push while pushing: counters, state and seconds from OME's milliseconds."""
    push = one(Scope.PUSH, "pushes-pushing-1.json")
    f = push.fields
    assert (f["state"], f["protocol"], f["sequence"], f["isConfig"]) == (
        "pushing",
        "rtmp",
        0,
        False,
    )
    assert (f["sentBytes"], f["totalsentBytes"]) == (105412, 105412)
    assert f["sentTime"] == pytest.approx(2.801)
    assert f["stream_live"] is True
    assert isinstance(f["startTime"], datetime) and isinstance(f["createdTime"], datetime)
    assert push.labels == {"push_id": "push1"}
    assert push.stream == "stream1"
    assert push.leaf.startswith("rtmp://127.0.0.1:1936/live#")


def test_an_epoch_start_time_is_no_value_and_the_stream_may_be_unlisted() -> None:
    """A just-started push has startTime at the epoch: no value; stream_live follows the list."""
    push = one(Scope.PUSH, "pushes-just-started.json", frozenset())
    assert "startTime" not in push.fields
    assert push.fields["stream_live"] is False
    assert push.fields["state"] == "ready"


def test_real_retry_states_of_a_dead_and_a_blackholed_destination() -> None:
    """Refused reads `error`; blackholed `connecting`, with the app's other push `ready`."""
    assert one(Scope.PUSH, "pushes-dest-dead-t05.json").fields["state"] == "error"
    bh, ok = normalize_outputs(
        Scope.PUSH, real("pushes-dest-blackhole-t03.json")["response"], {"stream1"}
    )
    assert (bh.fields["state"], ok.fields["state"]) == ("connecting", "ready")
    assert "startTime" not in ok.fields  # never attempted
    assert bh.leaf != ok.leaf  # two destinations, two targets


def test_a_real_record_leaves_out_what_ome_leaves_out() -> None:
    """recording without bytes yet, recording, stopped and error: absent keys are no value."""
    started = one(Scope.RECORD, "records-just-started.json").fields
    assert started["state"] == "recording"
    assert not {"recordBytes", "recordTime", "sequence", "finishTime"} & started.keys()
    recording = one(Scope.RECORD, "records-recording-1.json").fields
    assert recording["recordBytes"] == 103406
    assert recording["recordTime"] == pytest.approx(2.203)
    assert "sequence" not in recording
    stopped = one(Scope.RECORD, "records-stream-ended-t01.json", frozenset()).fields
    assert stopped["state"] == "stopped" and stopped["sequence"] == 1
    assert "recordBytes" not in stopped and isinstance(stopped["finishTime"], datetime)
    assert stopped["totalRecordTime"] == pytest.approx(46.334)
    assert stopped["stream_live"] is False
    records = normalize_outputs(Scope.RECORD, real("records-errors-t08.json")["response"], set())
    assert [(r.leaf, r.fields["state"]) for r in records] == [
        ("/chmod000/chmod_${Sequence}.ts", "recording"),
        ("/notadir/err_${Sequence}.ts", "error"),
        ("/small/full_${Sequence}.ts", "error"),
    ]
    assert "recordBytes" not in records[1].fields  # failed at start: nothing recorded
    assert records[2].labels == {"record_id": "rec-full"}


def test_a_list_of_the_wrong_shape_is_refused_naming_the_field() -> None:
    """A push without a stream name, or a count as a string, is a NormalizeError naming it."""
    body = real("pushes-pushing-1.json")["response"]
    with pytest.raises(NormalizeError, match=r"response\[0\]\.sentBytes"):
        normalize_outputs(Scope.PUSH, [{**body[0], "sentBytes": "12"}], set())
    with pytest.raises(NormalizeError, match=r"stream\.name"):
        normalize_outputs(Scope.PUSH, [{**body[0], "stream": {}}], set())
    with pytest.raises(NormalizeError, match="expected a list"):
        normalize_outputs(Scope.RECORD, {"id": "x"}, set())


def test_total_sent_bytes_is_read_in_either_spelling() -> None:
    """OME writes totalsentBytes; a totalSentBytes answer lands in the same field."""
    body = dict(real("pushes-pushing-1.json")["response"][0])
    body["totalSentBytes"] = body.pop("totalsentBytes")
    [push] = normalize_outputs(Scope.PUSH, [body], set())
    assert push.fields["totalsentBytes"] == 105412


# -- destinations: never the key ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "key", "expected"),
    [
        ("rtmp://a.rtmp.youtube.com/live2", KEY, "rtmp://a.rtmp.youtube.com/live2"),
        (f"rtmp://a.rtmp.youtube.com/live2/{KEY}", "", "rtmp://a.rtmp.youtube.com/live2"),
        (f"rtmps://user:{KEY}@cdn.example.com:443/app", "", "rtmps://cdn.example.com:443/app"),
        (f"srt://cdn.example.com:9000?streamid={KEY}", "", "srt://cdn.example.com:9000"),
        (f"rtmp://h/app/{KEY}/x", KEY, "rtmp://h/app/x"),
        ("udp://[::1]:5000", "", "udp://[::1]:5000"),
    ],
)
def test_destination_is_scheme_host_and_path_without_the_key(
    url: str, key: str, expected: str
) -> None:
    """The key, credentials, query and an RTMP URL's trailing stream name never survive."""
    assert destination(url, key) == expected
    assert KEY not in destination(url, key)


def test_recorded_push_answers_hold_no_key() -> None:
    """What `record` stores of a :pushes answer has neither the key nor a URL holding it."""
    body = json.dumps(
        {
            "message": "OK",
            "statusCode": 200,
            "response": [
                {"url": "rtmp://h/live", "streamKey": KEY, "id": "a", "stream": {"name": "s"}},
                {"url": f"rtmp://h/live/{KEY}", "id": "b", "stream": {"name": "s"}},
            ],
        }
    ).encode()
    scrubbed = scrub_pushes(body)
    assert KEY.encode() not in scrubbed
    pushes = json.loads(scrubbed)["response"]
    assert [p["url"] for p in pushes] == ["rtmp://h/live", "rtmp://h/live"]
    assert scrub_pushes(b"not json") == b"not json"


# -- the client over HTTP ----------------------------------------------------------------------


@pytest.fixture
def sim() -> Any:
    clock = FakeClock(1_767_225_600.0)
    with Simulator(clock=clock.now) as s:
        s.add_stream("default", "app", "stream1")
        s.add_stream("default", "other", "x")
        s.start_push("default", "app", "p1", "stream1", "rtmp://cdn.example.com/live",
                     stream_key=KEY)  # fmt: skip
        s.start_push("default", "app", "p2", "gone", "srt://cdn.example.com:9000")
        s.start_record("default", "app", "rec1", "stream1")
        s.set_publishers("default", "other", file=False)
        clock.advance(3)
        yield s, clock


def test_pushes_are_read_once_per_matching_app_only_when_a_rule_needs_them(sim: Any) -> None:
    """A push rule matching default/app/* GETs app:pushes once, and nothing of other apps."""
    s, clock = sim
    rules = [rule("p", 'state != "pushing"', scope=Scope.PUSH, match=["default/app/*"])]
    result = poll_once(server(s), clock, rules)
    assert result.error is None, result.error
    paths = [p for _, p in s.requests]
    assert paths.count("/v1/vhosts/default/apps/app:pushes") == 1
    assert not [p for p in paths if "other:" in p or ":records" in p]
    pushes = {t: smp for t, smp in result.samples.items() if t.scope is Scope.PUSH}
    assert len(pushes) == 2
    by_id = {smp.labels["push_id"]: smp for smp in pushes.values() if smp.labels}
    assert by_id["p1"].fields["state"] == "pushing"
    assert by_id["p1"].fields["stream_live"] is True
    assert by_id["p2"].fields == {**by_id["p2"].fields, "state": "ready", "stream_live": False}
    target = by_id["p1"].target
    assert target.labels()["destination"] == "rtmp://cdn.example.com/live"
    assert KEY not in target.key and target in result.listed
    assert Target.from_key(target.key) == target


def test_no_push_rule_no_push_request(sim: Any) -> None:
    """Stream rules alone never ask for :pushes or :records."""
    s, clock = sim
    poll_once(server(s), clock, [rule("s", "totalBytesIn > 0")])
    assert not [p for _, p in s.requests if ":" in p.rsplit("/", 1)[-1]]


def test_an_app_without_a_file_publisher_has_no_records_not_an_error(sim: Any) -> None:
    """app `other` answers :records with 404: none there, and app's record is read."""
    s, clock = sim
    rules = [rule("r", 'state == "error"', scope=Scope.RECORD)]
    result = poll_once(server(s), clock, rules)
    assert result.error is None and not result.target_errors
    paths = [p for _, p in s.requests]
    assert "/v1/vhosts/default/apps/other:records" in paths
    records = [t for t in result.samples if t.scope is Scope.RECORD]
    assert [t.labels()["record"] for t in records] == ["rec1"]
    assert result.samples[records[0]].fields["state"] == "recording"


def test_a_failing_push_list_keeps_the_pushes_it_showed_last(sim: Any) -> None:
    """A 500 on :pushes is an error of the pushes seen before (kept, not resolved), never
    of the server; a list of the wrong shape is a bad_response the same way."""
    s, clock = sim
    rules = [rule("p", 'state != "pushing"', scope=Scope.PUSH)]

    async def go() -> list[Any]:
        plan = plan_polls(rules, "origin")
        async with OmeClient(server(s), clock=clock) as client:
            first = await client.poll(plan)
            s.set_fault("500", path="/app:pushes", times=1)
            failed = await client.poll(plan)
            s.set_fault("wrong_types", path="/app:pushes", times=1)
            garbled = await client.poll(plan)
            return [first, failed, garbled]

    first, failed, garbled = asyncio.run(go())
    known = {t for t in first.samples if t.scope is Scope.PUSH}
    assert len(known) == 2
    assert failed.error is None
    assert set(failed.target_errors) == known and known <= failed.listed
    assert not {t for t in failed.samples if t.scope is Scope.PUSH}
    assert {e.kind.value for e in failed.target_errors.values()} == {"server_error"}
    assert set(garbled.target_errors) == known
    assert {e.kind.value for e in garbled.target_errors.values()} == {"bad_response"}


def test_a_streammap_push_keeps_its_target_when_ome_gives_it_a_new_id(sim: Any) -> None:
    """OME re-creates a <StreamMap> push under a new random id when its stream returns:
    the target (stream and destination) stays the same, only push_id changes."""
    s, clock = sim
    s.start_push("default", "app", "map1", "stream1", "rtmp://map.example.com/live",
                 stream_key=KEY, is_config=True)  # fmt: skip
    rules = [rule("p", 'state != "pushing"', scope=Scope.PUSH)]

    def streammap_push() -> tuple[Target, str] | None:
        result = poll_once(server(s), clock, rules)
        found = [(t, smp.labels or {}) for t, smp in result.samples.items()
                 if t.scope is Scope.PUSH and "map.example.com" in t.key]  # fmt: skip
        return None if not found else (found[0][0], found[0][1]["push_id"])

    clock.advance(2)
    before = streammap_push()
    assert before is not None and before[1] == "map1"
    s.remove_stream("default", "app", "stream1")
    clock.advance(1)
    assert streammap_push() is None  # deleted with its stream
    s.add_stream("default", "app", "stream1")
    clock.advance(2)
    after = streammap_push()
    assert after is not None
    assert after[0] == before[0]
    assert after[1] != "map1" and len(after[1]) == 6
