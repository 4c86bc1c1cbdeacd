"""OME's v1 and v2 stats and stream info, normalized into one flat v2-shaped field map."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omealert.lang.fields import FIELDS, PUBLISHER_PROTOCOLS, VIEWER_PROTOCOLS, FieldType, Source
from omealert.ome.normalize import NormalizeError, normalize_info, normalize_stats, parse_time

# The stream example of ome-api.md §3, byte for byte as OME >= 0.18 prints it.
V1_WIRE = (
    '{"message":"OK","response":{"avgThroughputIn":2500000,"avgThroughputOut":10000000,'
    '"connections":{"file":0,"hlsv3":0,"llhls":1,"ovt":0,"push":0,"srt":0,"thumbnail":0,'
    '"webrtc":3},"createdTime":"2026-01-01T00:00:00.000+00:00",'
    '"lastRecvTime":"2026-01-01T00:00:09.750+00:00","lastSentTime":"2026-01-01T00:00:09.750+00:00",'
    '"lastThroughputIn":312500,"lastThroughputOut":1250000,'
    '"lastUpdatedTime":"2026-01-01T00:00:09.750+00:00","maxThroughputIn":2500000,'
    '"maxThroughputOut":10000000,"maxTotalConnectionTime":"2026-01-01T00:00:02.250+00:00",'
    '"maxTotalConnections":4,"totalBytesIn":3046875,"totalBytesOut":9375000,'
    '"totalConnections":4},"statusCode":200}'
)


def v1_stats() -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(V1_WIRE)["response"]
    return payload


def v2_stats() -> dict[str, Any]:
    """The same traffic as ``v1_stats`` in Enterprise's v2 shape (ome-api.md §6.9)."""
    v1 = v1_stats()
    return {
        "createdTime": v1["createdTime"],
        "lastUpdatedTime": v1["lastUpdatedTime"],
        "providers": {
            "avgThroughputIn": v1["avgThroughputIn"],
            "connections": {"rtmp": 1, "srt": 0, "webrtc": 0, "ovt": 0, "file": 0},
            "lastRecvTime": v1["lastRecvTime"],
            "lastThroughputIn": v1["lastThroughputIn"],
            "maxThroughputIn": v1["maxThroughputIn"],
            "totalBytesIn": v1["totalBytesIn"],
        },
        "publishers": {
            "avgThroughputOut": v1["avgThroughputOut"],
            "connections": v1["connections"],
            "lastSentTime": v1["lastSentTime"],
            "lastThroughputOut": v1["lastThroughputOut"],
            "maxThroughputOut": v1["maxThroughputOut"],
            "maxTotalConnectionTime": v1["maxTotalConnectionTime"],
            "maxTotalConnections": v1["maxTotalConnections"],
            "totalBytesOut": v1["totalBytesOut"],
            "totalConnections": v1["totalConnections"],
        },
    }


def at(seconds: float) -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)


# Stream info as a real OME 0.18.0 printed it: bitrates are JSON strings.
INFO_0_18: dict[str, Any] = {
    "input": {
        "createdTime": "2026-01-01T00:00:00.000+00:00",
        "sourceType": "Rtmp",
        "sourceUrl": "TCP://127.0.0.1:52110",
        "tracks": [
            {
                "id": 0,
                "name": "Video",
                "type": "Video",
                "video": {
                    "bitrate": "2500000",
                    "bitrateAvg": "2480000",
                    "bitrateConf": "2500000",
                    "bitrateLatest": "2512345",
                    "bypass": False,
                    "codec": "H264",
                    "deltaFramesSinceLastKeyFrame": 12,
                    "framerate": 30.0,
                    "framerateAvg": 29.969999313354492,
                    "framerateConf": 30.0,
                    "framerateLatest": 29.969999313354492,
                    "hasBframes": False,
                    "height": 720,
                    "keyFrameInterval": 60,
                    "keyFrameIntervalAvg": 60.0,
                    "keyFrameIntervalConf": 60.0,
                    "keyFrameIntervalLatest": 60,
                    "maxHeight": 720,
                    "maxWidth": 1280,
                    "width": 1280,
                },
            },
            {
                "id": 1,
                "name": "Audio",
                "type": "Audio",
                "audio": {
                    "bitrate": "128000",
                    "bitrateAvg": "127000",
                    "bitrateConf": "128000",
                    "bitrateLatest": "44458",
                    "bypass": False,
                    "channel": 2,
                    "codec": "AAC",
                    "samplerate": 48000,
                },
            },
            {"id": 2, "type": "Video", "video": {"width": 640, "height": 360, "codec": "VP8"}},
        ],
    },
    "name": "stream1",
    "outputs": [],
}


def test_v1_stream_lands_in_the_v2_shape() -> None:
    """Every v1 key moves under providers/publishers as the issue lists; times stay on top."""
    fields = normalize_stats(v1_stats())
    assert fields["createdTime"] == at(0)
    assert fields["lastUpdatedTime"] == at(9.75)
    assert fields["providers.lastRecvTime"] == at(9.75)
    assert fields["providers.totalBytesIn"] == 3046875
    assert fields["providers.avgThroughputIn"] == 2500000
    assert fields["providers.lastThroughputIn"] == 312500
    assert fields["providers.maxThroughputIn"] == 2500000
    assert fields["publishers.lastSentTime"] == at(9.75)
    assert fields["publishers.totalBytesOut"] == 9375000
    assert fields["publishers.avgThroughputOut"] == 10000000
    assert fields["publishers.lastThroughputOut"] == 1250000
    assert fields["publishers.maxThroughputOut"] == 10000000
    assert fields["publishers.totalConnections"] == 4
    assert fields["publishers.maxTotalConnections"] == 4
    assert fields["publishers.maxTotalConnectionTime"] == at(2.25)
    assert fields["publishers.connections.webrtc"] == 3
    assert fields["publishers.connections.llhls"] == 1
    assert fields["publishers.viewers"] == 4
    assert not any(p.startswith("providers.connections.") for p in fields)
    assert "connections" not in fields and "totalBytesIn" not in fields


def test_every_key_is_a_catalogue_path_or_a_connection() -> None:
    """Normalized keys are exactly the catalogue's dotted paths, so rules can read them all."""
    for payload in (v1_stats(), v2_stats()):
        fields = normalize_stats(payload)
        assert set(fields) <= set(FIELDS)
        stats_paths = {
            p for p, spec in FIELDS.items() if spec.source is Source.STATS and not spec.v2_only
        }
        assert stats_paths <= set(fields)


def test_v1_and_v2_of_the_same_traffic_agree_except_provider_connections() -> None:
    """The same traffic read over v1 and v2 gives identical fields apart from v2's ingest counts."""
    one = normalize_stats(v1_stats())
    two = normalize_stats(v2_stats())
    provider = {p: v for p, v in two.items() if p.startswith("providers.connections.")}
    assert provider == {
        "providers.connections.rtmp": 1,
        "providers.connections.srt": 0,
        "providers.connections.webrtc": 0,
        "providers.connections.ovt": 0,
        "providers.connections.file": 0,
    }
    assert {p: v for p, v in two.items() if p not in provider} == one


def test_missing_connection_keys_are_zero_and_unknown_ones_are_kept() -> None:
    """A 0.16-era key set gets zeros for the rest; a key no release had yet survives."""
    payload = v1_stats()
    payload["connections"] = {"file": 0, "llhls": 2, "ovt": 1, "push": 1, "webrtc": 5, "whep": 7}
    fields = normalize_stats(payload)
    for proto in PUBLISHER_PROTOCOLS:
        assert f"publishers.connections.{proto}" in fields
    assert fields["publishers.connections.hlsv3"] == 0
    assert fields["publishers.connections.srt"] == 0
    assert fields["publishers.connections.whep"] == 7
    assert fields["publishers.viewers"] == 7  # webrtc + llhls; not ovt, push or whep


def test_negative_connection_counts_pass_through() -> None:
    """An OME bookkeeping underflow shows as a negative count and is kept, not rejected."""
    payload = v1_stats()
    payload["connections"] = {"webrtc": -1, "llhls": 3}
    payload["totalConnections"] = -1
    fields = normalize_stats(payload)
    assert fields["publishers.connections.webrtc"] == -1
    assert fields["publishers.totalConnections"] == -1
    assert fields["publishers.viewers"] == 2


def test_times_keep_their_offset_and_compare_in_utc() -> None:
    """A Seoul-local OME time equals the same instant in UTC; the old +0900 form also parses."""
    seoul = parse_time("2026-01-01T09:00:00.000+09:00")
    assert seoul.utcoffset() == timedelta(hours=9)
    assert seoul == at(0)
    assert parse_time("2026-01-01T09:00:00.000+0900") == at(0)
    assert parse_time("2025-12-31T19:00:00.500-05:00") == at(0.5)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("2026-01-01T00:00:00.000", "without a UTC offset"),
        ("yesterday", "not an ISO-8601 time"),
        (1767225600, "expected a time string"),
        (None, "expected a time string"),
    ],
)
def test_bad_times_are_refused_with_the_field_name(text: object, why: str) -> None:
    """A time OME would never print raises NormalizeError naming the field, not a TypeError."""
    payload = v1_stats()
    payload["lastRecvTime"] = text
    with pytest.raises(NormalizeError, match=why) as info:
        normalize_stats(payload)
    assert info.value.field == "providers.lastRecvTime"


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("totalBytesIn", "lots", "providers.totalBytesIn"),
        ("totalBytesIn", True, "providers.totalBytesIn"),
        ("avgThroughputOut", None, "publishers.avgThroughputOut"),
        ("avgThroughputOut", [1], "publishers.avgThroughputOut"),
        ("connections", [1, 2], "publishers.connections"),
        ("connections", {"webrtc": "three"}, "publishers.connections.webrtc"),
        ("maxTotalConnections", float("nan"), "publishers.maxTotalConnections"),
    ],
)
def test_wrong_types_name_the_field(key: str, value: object, field: str) -> None:
    """A value of the wrong type raises a ValueError subclass that names the normalized path."""
    payload = v1_stats()
    payload[key] = value
    with pytest.raises(ValueError, match=field.replace(".", r"\.")) as info:
        normalize_stats(payload)
    assert isinstance(info.value, NormalizeError)
    assert info.value.field == field


def test_numeric_strings_in_stats_are_coerced() -> None:
    """A release that prints counters as strings still yields numbers."""
    payload = v1_stats()
    payload["totalBytesIn"] = "3046875"
    payload["connections"] = {"webrtc": "3"}
    fields = normalize_stats(payload)
    assert fields["providers.totalBytesIn"] == 3046875
    assert fields["publishers.viewers"] == 3


@pytest.mark.parametrize(
    "payload",
    [[], "OK", None, {"totalBytesIn": 1}, {**v2_stats(), "publishers": [1]}],
)
def test_wrong_shapes_are_refused(payload: object) -> None:
    """Not an object, no createdTime, or a v2 group that is not an object: NormalizeError."""
    with pytest.raises(NormalizeError):
        normalize_stats(payload)


def test_unknown_top_level_keys_are_ignored() -> None:
    """Fields outside the catalogue (old or new releases) are dropped, not errors."""
    payload = v1_stats()
    payload["avgBitrateIn"] = 123
    payload["requestTimeToOrigin"] = "whatever"
    fields = normalize_stats(payload)
    assert "avgBitrateIn" not in fields and "requestTimeToOrigin" not in fields


def test_stream_info_reads_the_first_video_and_audio_track() -> None:
    """Stream info gives sourceType/sourceUrl and the first tracks, bitrate strings as numbers."""
    fields = normalize_info(copy.deepcopy(INFO_0_18))
    assert fields["sourceType"] == "Rtmp"
    assert fields["sourceUrl"] == "TCP://127.0.0.1:52110"
    assert fields["video.bitrateLatest"] == 2512345
    assert isinstance(fields["video.bitrateLatest"], int)
    assert fields["video.bitrate"] == 2500000
    assert fields["video.width"] == 1280  # the first video track, not the 640 one
    assert fields["video.codec"] == "H264"
    assert fields["video.framerateLatest"] == pytest.approx(29.97)
    assert fields["video.keyFrameIntervalLatest"] == 60
    assert fields["video.hasBframes"] is False
    assert fields["audio.bitrateLatest"] == 44458
    assert fields["audio.samplerate"] == 48000
    assert fields["audio.channel"] == 2
    assert "video.maxWidth" not in fields
    assert "createdTime" in fields  # the stream's age, for rules that read info alone
    for path, value in fields.items():
        spec = FIELDS[path]
        assert spec.source is Source.INFO or path == "createdTime"
        if spec.type is FieldType.NUMBER:
            assert isinstance(value, int | float) and not isinstance(value, bool)


def test_stream_info_without_tracks_or_url() -> None:
    """A stream whose tracks are not known yet gives just its source type."""
    fields = normalize_info({"input": {"sourceType": "WebRTC", "tracks": []}, "name": "s"})
    assert fields == {"sourceType": "WebRTC"}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p["input"]["tracks"][0]["video"].update(bitrateLatest="fast"), "video."),
        (lambda p: p["input"]["tracks"][1]["audio"].update(samplerate=None), "audio.samplerate"),
        (lambda p: p["input"]["tracks"][0]["video"].update(hasBframes="maybe"), "video."),
        (lambda p: p["input"].update(sourceType=7), "sourceType"),
        (lambda p: p["input"].update(tracks={}), "input.tracks"),
        (lambda p: p.update(input=[]), "input"),
    ],
)
def test_stream_info_of_the_wrong_type_names_the_field(mutate: Any, field: str) -> None:
    """A track field of the wrong type raises NormalizeError naming it."""
    payload = copy.deepcopy(INFO_0_18)
    mutate(payload)
    with pytest.raises(NormalizeError) as info:
        normalize_info(payload)
    assert info.value.field.startswith(field)


def test_bool_strings_in_stream_info_are_read() -> None:
    """``"true"`` where a boolean belongs is read as True rather than refused."""
    payload = copy.deepcopy(INFO_0_18)
    payload["input"]["tracks"][0]["video"]["hasBframes"] = "true"
    assert normalize_info(payload)["video.hasBframes"] is True


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@given(key=st.sampled_from(sorted(v1_stats())), value=JSON)
def test_any_json_value_in_any_stats_field_never_crashes(key: str, value: object) -> None:
    """Whatever JSON sits in a stats field, the result is fields or a NormalizeError."""
    payload = v1_stats()
    payload[key] = value
    try:
        fields = normalize_stats(payload)
    except NormalizeError as exc:
        assert exc.field
    else:
        assert "publishers.viewers" in fields


@given(
    counts=st.dictionaries(
        st.sampled_from([*PUBLISHER_PROTOCOLS, "whep", "future"]),
        st.integers(min_value=-(2**31), max_value=2**31 - 1),
    )
)
def test_viewers_are_the_sum_of_audience_protocols(counts: dict[str, int]) -> None:
    """``publishers.viewers`` always equals the sum of the audience protocols present."""
    payload = v1_stats()
    payload["connections"] = counts
    fields = normalize_stats(payload)
    assert fields["publishers.viewers"] == sum(counts.get(p, 0) for p in VIEWER_PROTOCOLS)


def test_a_local_offset_is_kept_on_the_datetime() -> None:
    """Times keep OME's offset, so messages can show the server's local time."""
    payload = v1_stats()
    payload["createdTime"] = "2026-01-01T09:00:00.000+09:00"
    created = normalize_stats(payload)["createdTime"]
    assert isinstance(created, datetime)
    assert created.tzinfo == timezone(timedelta(hours=9))
