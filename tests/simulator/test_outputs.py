"""The simulator's ``:pushes`` and ``:records`` over HTTP: the shapes a real OME 0.18 sent,
key for key, and OME's state machines driven through the control endpoints."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from omealert.simulator import Simulator
from omealert.simulator.clock import ManualClock

REAL = Path(__file__).parents[1] / "data" / "ome-real-0.18"
APP = ("default", "app")
AUTH = {"Authorization": "Basic " + base64.b64encode(b"ome-access-token").decode()}


@pytest.fixture
def sim() -> Iterator[tuple[Simulator, ManualClock]]:
    clock = ManualClock(1_780_000_000.0)
    with Simulator(clock=clock) as s:
        s.add_stream(*APP, "stream1")
        yield s, clock


def call(sim: Simulator, path: str, method: str = "POST", body: bytes | None = None) -> Any:
    request = urllib.request.Request(sim.url + path, data=body, method=method, headers=AUTH)
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def pushes(sim: Simulator, method: str = "POST") -> list[dict[str, Any]]:
    return list(call(sim, "/v1/vhosts/default/apps/app:pushes", method, b"{}")["response"])


def records(sim: Simulator) -> list[dict[str, Any]]:
    return list(call(sim, "/v1/vhosts/default/apps/app:records", "POST", b"{}")["response"])


def shape(value: Any) -> Any:
    """Keys and JSON types, recursively: what must match a real answer exactly."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


def real(name: str, index: int = 0) -> dict[str, Any]:
    body = json.loads((REAL / name).read_text(encoding="utf-8"))
    return dict(body["response"][index])


def control(sim: Simulator, method: str, **kwargs: Any) -> Any:
    request = urllib.request.Request(
        f"{sim.url}/_sim/{method}", data=json.dumps(kwargs).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        answer = json.loads(reply.read())
    assert answer["ok"], answer
    return answer.get("result")


def test_push_bodies_have_the_real_shape_in_every_state(
    sim: tuple[Simulator, ManualClock],
) -> None:
    """ready at start (epoch startTime), pushing, error, ended: keys and types as 0.18's."""
    s, clock = sim
    start = control(s, "start_push", vhost="default", app="app", id="push1", stream="stream1",
                    url="rtmp://127.0.0.1:1936/live/", stream_key="<stream-key>")  # fmt: skip
    assert shape(start) == shape(real("pushes-just-started.json"))
    assert start["startTime"] == "1970-01-01T00:00:00.000+00:00"
    assert start["url"] == "rtmp://127.0.0.1:1936/live"  # trailing / stripped, as OME does
    clock.advance(3)
    [pushing] = pushes(s)
    assert shape(pushing) == shape(real("pushes-pushing-1.json"))
    assert pushing["state"] == "pushing" and pushing["sentBytes"] > 0
    assert pushes(s, "GET")[0]["state"] == "pushing"  # GET, "will be deprecated", still works
    control(s, "set_push_destination", vhost="default", app="app", id="push1",
            destination="refused")  # fmt: skip
    frozen = None
    for _ in range(5):
        clock.advance(1)
        [dead] = pushes(s)
        assert dead["state"] == "error"  # on every poll
        assert frozen is None or dead["sentBytes"] == frozen
        frozen = dead["sentBytes"]
    assert shape(dead) == shape(real("pushes-dest-dead-t05.json"))
    s.remove_stream(*APP, "stream1")
    clock.advance(1)
    [ended] = pushes(s)
    assert shape(ended) == shape(real("pushes-stream-ended-t01.json"))
    assert (ended["state"], ended["sequence"], ended["sentBytes"]) == ("ready", 1, 0)
    assert ended["totalsentBytes"] == frozen


def test_a_blackholed_push_connects_for_seconds_and_holds_the_others_ready(
    sim: tuple[Simulator, ManualClock],
) -> None:
    """Mostly `connecting`, sometimes `error`; the app's other push waits in `ready`."""
    s, clock = sim
    s.start_push(*APP, "push-bh", "stream1", "rtmp://127.0.0.1:1937/live",
                 stream_key="k", destination="blackhole")  # fmt: skip
    s.start_push(*APP, "push-ok", "stream1", "rtmp://127.0.0.1:1936/live", stream_key="k")
    states: list[tuple[str, str]] = []
    for _ in range(15):
        clock.advance(1)
        bh, ok = pushes(s)
        states.append((bh["state"], ok["state"]))
        assert shape(bh) == shape(real("pushes-dest-blackhole-t03.json", 0))
    assert {ok for _, ok in states} == {"ready"}
    bh_states = [bh for bh, _ in states]
    assert bh_states.count("connecting") >= 10 and "error" in bh_states
    assert bh_states.count("error") <= 4
    s.stop_push(*APP, "push-bh")
    clock.advance(2)
    [ok] = pushes(s)
    assert ok["state"] == "pushing"


def test_record_bodies_leave_out_what_ome_leaves_out(sim: tuple[Simulator, ManualClock]) -> None:
    """just started, recording, error at start and stopped: the real key sets."""
    s, clock = sim
    started = s.start_record(*APP, "rec1", "stream1")
    assert shape(started) == shape(real("records-just-started.json"))
    failed = control(s, "start_record", vhost="default", app="app", id="rec-err",
                     stream="stream1", file_path="/x/e_${Sequence}.ts", fail=True)  # fmt: skip
    assert failed["state"] == "error"  # 200 with state error, as OME answers
    assert shape(failed) == shape(real("records-errors-t08.json", 1))
    clock.advance(3)
    recording, still_failed = records(s)
    assert shape(recording) == shape(real("records-recording-1.json"))
    assert recording["recordBytes"] > 0
    assert still_failed["state"] == "error"
    s.remove_stream(*APP, "stream1")
    clock.advance(1)
    stopped, _ = records(s)
    assert shape(stopped) == shape(real("records-stream-ended-t01.json"))
    assert (stopped["state"], stopped["sequence"]) == ("stopped", 1)


def test_a_record_in_error_stays_there(sim: tuple[Simulator, ManualClock]) -> None:
    """A failed write sets `error` with frozen counters on every later poll (OME never retries)."""
    s, clock = sim
    s.start_record(*APP, "rec-full", "stream1", file_path="/small/full_${Sequence}.ts",
                   info_path="/small/full.xml")  # fmt: skip
    clock.advance(2)
    control(s, "fail_record", vhost="default", app="app", id="rec-full")
    [first] = records(s)
    for _ in range(5):
        clock.advance(2)
        [later] = records(s)
        assert later["state"] == "error"
        assert later["recordBytes"] == first["recordBytes"]
    assert shape(later) == shape(real("records-errors-t08.json", 2))


def test_an_app_without_a_file_publisher_answers_404_and_without_push_an_empty_list(
    sim: tuple[Simulator, ManualClock],
) -> None:
    """OME 0.18's answers for an app without <FILE> and without <Push>, byte for byte."""
    s, _ = sim
    assert records(s) == [] and pushes(s) == []
    s.set_publishers(*APP, push=False, file=False)
    missing = call(s, "/v1/vhosts/default/apps/app:records")
    expected = json.loads((REAL / "records-app-without-file-publisher.json").read_text())
    assert missing == {**expected, "message": expected["message"].replace("alert", "app")}
    assert pushes(s) == []
    stats_post = call(s, "/v1/stats/current", "POST", b"{}")
    assert stats_post["statusCode"] == 404  # only the output lists answer POST
