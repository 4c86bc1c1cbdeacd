"""Queue readings parsed from real OME 0.18 answers: labels from URNs, the effective threshold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from omealert.ome.normalize import NormalizeError
from omealert.ome.queues import DROP_REFUSAL, effective_threshold, parse_queues, parse_urn

REAL = Path(__file__).parent.parent / "data" / "ome-real-0.18"


def real(name: str) -> Any:
    return json.loads((REAL / name).read_text())["response"]


def test_urns_become_labels() -> None:
    """Stream, part and name come out of a URN; app-level queues have no stream label."""
    assert parse_urn("mngq:v=#default#app:s=stream1:p=trs:n=filter_video") == {
        "vhost": "default", "app": "app", "stream": "stream1", "part": "trs",
        "name": "filter_video", "urn": "mngq:v=#default#app:s=stream1:p=trs:n=filter_video",
    }  # fmt: skip
    assert "stream" not in parse_urn("mngq:v=#default#app:p=imr:n=aw_0")
    assert parse_urn("mngq:v=#default#app:s=a:b:p=pub:n=x")["stream"] == "a:b"
    assert parse_urn("No Urn") == {"urn": "No Urn"}


def test_every_real_queue_parses_with_its_id_and_labels() -> None:
    """All 23 queues of a live stream in real OME 0.18 parse; ids are unique, URNs are not."""
    queues = parse_queues(real("queues.json"), "0.18.0")
    assert len(queues) == 23
    assert len({q.id for q in queues}) == 23
    assert len({q.labels["urn"] for q in queues}) < 23  # streamworker_llhls twice, ...
    assert {q.labels["part"] for q in queues} == {"imr", "omr", "pub", "trs"}
    assert all("drop" not in q.fields for q in queues)  # always 0: not a field
    assert all("dwellP99Us" not in q.fields for q in queues)  # 0.21+ only


def congested(name: str, *, effective: bool) -> set[int]:
    queues = parse_queues(real(name), "0.18.0")
    key = "effective_threshold" if effective else "threshold"
    return {
        q.id
        for q in queues
        if isinstance(t := q.fields.get(key), int) and t > 0 and q.fields["size"] > t  # type: ignore[operator]
    }


def test_the_1080p_overload_shows_only_with_the_effective_threshold() -> None:
    """Real 1080p overload: filter_video at 64 is under the reported 120, over the real 60."""
    assert congested("queues-load-1080p-t12.json", effective=False) == set()
    assert congested("queues-load-1080p-t12.json", effective=True) == {133}


def test_the_4k_overload_shows_either_way() -> None:
    """Real 4K overload: filter_video id 121 at 193 is over both thresholds."""
    assert 121 in congested("queues-load-4k-t24.json", effective=False)
    assert 121 in congested("queues-load-4k-t24.json", effective=True)


@pytest.mark.parametrize(
    ("version", "name", "reported", "rate", "expected"),
    [
        ("0.18.0", "dec_h264_0", 0, 30, 500),
        ("0.18.0", "enc_h264_0", 0, 30, 5),
        ("0.18.0", "filter_video", 120, 30, 60),
        ("0.18.0", "filter_video", 120, 0, None),  # no input: no estimate
        ("0.18.0", "filter_audio", 300, 44, 300),
        ("0.20.0", "dec_H264_t0", 0, 30, 300),
        ("0.20.0", "enc_H264_t1", 0, 30, 2),
        ("0.20.0", "filter_video", 5, 30, 5),
        ("0.21.0", "dec_H264_t0", 300, 30, 300),
        (None, "dec_h264_0", 0, 30, 0),
    ],
)
def test_effective_threshold_per_release(
    version: str | None, name: str, reported: int, rate: int, expected: int | None
) -> None:
    """The threshold a transcoder queue uses, per release; otherwise the reported one."""
    labels = {"part": "trs", "name": name}
    fields = {"threshold": reported, "inputPerSecond": rate}
    assert effective_threshold(labels, fields, version) == expected


def test_other_queues_keep_their_reported_threshold() -> None:
    """Mediarouter and publisher queues report the threshold they use."""
    fields = {"threshold": 600, "inputPerSecond": 74}
    assert effective_threshold({"part": "imr", "name": "streamworker"}, fields, "0.18.0") == 600


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"id": 1}, "internals/queues"),
        ([1], "internals/queues[0]"),
        ([{"id": "100", "urn": "mngq"}], "internals/queues[0]"),
        ([{"id": 100, "urn": "mngq", "size": "1"}], "internals/queues[0].size"),
        ([{"id": 100, "urn": "mngq", "size": True}], "internals/queues[0].size"),
    ],
)
def test_a_wrong_shape_names_the_place(payload: object, where: str) -> None:
    """A malformed answer is refused with the path of the first wrong value."""
    with pytest.raises(NormalizeError) as caught:
        parse_queues(payload, "0.18.0")
    assert caught.value.field == where


def test_the_drop_refusal_says_why() -> None:
    """The reason a rule on drop is refused tells what to watch instead."""
    assert "always 0" in DROP_REFUSAL and "avgWaitingTime" in DROP_REFUSAL
