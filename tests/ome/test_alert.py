"""OME's Alert POSTs, as a real OME 0.18 sent them: their signatures verify, their bodies parse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from omealert.ome.alert import (
    PayloadError,
    Source,
    parse_event,
    parse_source_uri,
    sign,
    signature_matches,
)

REAL = Path(__file__).resolve().parents[1] / "data" / "ome-real-0.18"
#: the <SecretKey> the real OME was run with (README of the capture)
KEY = b"alert-test-secret"


def real_post(n: int) -> tuple[bytes, str, dict[str, Any]]:
    """Post ``n``: its raw body, its X-OME-Signature header, and the capture's parsed body."""
    post = json.loads((REAL / f"alert-post-{n}.json").read_text())
    header = dict(post["headers"])["X-OME-Signature"]
    return post["rawBody"].encode(), header, post["body"]


@pytest.mark.parametrize("n", [1, 6, 7, 12, 13])
def test_every_real_post_verifies_with_the_test_key_and_sign_reproduces_it(n: int) -> None:
    """OME's own signature of each captured body matches, and ``sign`` computes the same text."""
    raw, header, _ = real_post(n)
    assert signature_matches(KEY, raw, header)
    assert sign(KEY, raw) == header
    assert len(header) == 27


@pytest.mark.parametrize("n", [1, 12])
def test_a_real_post_is_refused_for_another_key_or_a_changed_byte(n: int) -> None:
    """A wrong key, a body one byte different, no header or a padded header never verify."""
    raw, header, _ = real_post(n)
    assert not signature_matches(b"alert-test-secreT", raw, header)
    assert not signature_matches(KEY, raw.replace(b"#default#", b"#defaulT#"), header)
    assert not signature_matches(KEY, raw + b" ", header)
    assert not signature_matches(KEY, raw, None)
    assert not signature_matches(KEY, raw, header + "=")
    assert not signature_matches(KEY, raw, "\u00e9" * 27)


def test_real_ingress_posts_parse_to_their_codes_and_stream() -> None:
    """A bitrate alarm, three codes at once, and the OK that clears them, exactly as captured."""
    raw, _, body = real_post(1)
    event = parse_event(raw)
    assert event.type == "INGRESS" == body["type"]
    assert event.codes == ("INGRESS_BITRATE_LOW",)
    assert event.source == Source("default", "app", "stream1")
    assert not event.recovered
    event = parse_event(real_post(7)[0])
    assert event.codes == (
        "INGRESS_HAS_BFRAME",
        "INGRESS_LONG_KEY_FRAME_INTERVAL",
        "INGRESS_BITRATE_LOW",
    )
    assert event.source == Source("default", "alert", "stream2")
    ok = parse_event(real_post(6)[0])
    assert ok.recovered and ok.codes == ("OK",)
    assert ok.source == Source("default", "alert", "stream3")


def test_real_queue_posts_of_0_18_have_no_source_and_every_queue() -> None:
    """0.18's INTERNAL_QUEUE events carry no sourceUri, and list all queues (24 of them)."""
    raw, _, body = real_post(12)
    event = parse_event(raw)
    assert event.type == "INTERNAL_QUEUE"
    assert event.codes == ("INTERNAL_QUEUE_CONGESTION",)
    assert event.source is None
    assert event.queue_count == len(body["internalQueues"]) > 0
    assert parse_event(real_post(13)[0]).recovered


def test_a_transcoder_event_is_tied_to_its_parent_stream() -> None:
    """Transcoder events have no sourceUri; their parentSourceUri names the input stream."""
    raw = (
        b'{"extraInfo":{"errorCount":37},"messages":[{"code":"EGRESS_TRANSCODE_FAILED_DECODING",'
        b'"description":"Failed to decode frames"}],"parentSourceUri":"#default#app/stream",'
        b'"type":"EGRESS"}'
    )
    assert parse_event(raw).source == Source("default", "app", "stream")


@pytest.mark.parametrize(
    ("uri", "source"),
    [
        ("#default#app/stream", Source("default", "app", "stream")),
        ("#default#app", Source("default", "app", None)),
        ("#default#app/a/b", Source("default", "app", "a/b")),
        ("default#app/stream", None),
        ("#default#", None),
        ("##app/stream", None),
        ("#default#app/", None),
        ("#default#app#x/s", None),
        ("#v#" + "a" * 2000, None),
    ],
)
def test_source_uris_parse_or_are_refused(uri: str, source: Source | None) -> None:
    """``#vhost#app[/stream]`` is split; any other shape is not a source."""
    assert parse_source_uri(uri) == source


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"messages":[{"code":"OK"}]}', "'type'"),
        (b'{"type":"INGRESS","messages":[]}', "'messages'"),
        (b'{"type":"INGRESS","messages":[{"description":"x"}]}', "'code'"),
        (b'{"type":"INGRESS","messages":[{"code":"OK"}],"sourceUri":7}', "'sourceUri'"),
        (
            b'{"type":"INGRESS","messages":[' + b'{"code":"OK"},' * 64 + b'{"code":"OK"}]}',
            "1 to 64",
        ),
    ],
)
def test_a_body_that_is_not_an_alert_payload_says_why(raw: bytes, says: str) -> None:
    """Malformed JSON, a deep nest, a missing type or code, a bad URI: a PayloadError each."""
    with pytest.raises(PayloadError, match=says):
        parse_event(raw)
