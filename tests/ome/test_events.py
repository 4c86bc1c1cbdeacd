"""The event memory: OME's codes per source, set and cleared by its events, bounded by design."""

from __future__ import annotations

from omealert.model import PollResult, Target
from omealert.ome.alert import AlertEvent, Source, parse_event
from omealert.ome.events import RECENT, EventBook, Heard, stream_of

CAM = Source("default", "live", "cam1")


def heard(codes: tuple[str, ...], source: Source | None = CAM, kind: str = "INGRESS") -> Heard:
    return Heard(at=1.0, server="origin", event=AlertEvent(kind, codes, source))


def test_codes_are_set_by_an_alarm_replaced_by_the_next_and_cleared_by_ok() -> None:
    """The last list OME sent is the source's state; OK empties it; an event (created) is kept
    apart: it neither wipes the alarm nor is cleared by OK, only replaced by the next event."""
    book = EventBook()
    book.record(heard(("INGRESS_HAS_BFRAME",)))
    book.record(heard(("INGRESS_HAS_BFRAME", "INGRESS_BITRATE_LOW")))
    assert book.codes("origin", CAM) == {"INGRESS_HAS_BFRAME", "INGRESS_BITRATE_LOW"}
    book.record(heard(("INGRESS_BITRATE_LOW",)))
    assert book.codes("origin", CAM) == {"INGRESS_BITRATE_LOW"}
    book.record(heard(("INGRESS_STREAM_CREATED",)))
    assert book.codes("origin", CAM) == {"INGRESS_BITRATE_LOW", "INGRESS_STREAM_CREATED"}
    book.record(heard(("OK",)))
    assert book.codes("origin", CAM) == {"INGRESS_STREAM_CREATED"}
    book.record(heard(("INGRESS_STREAM_DELETED",)))
    assert book.codes("origin", CAM) == {"INGRESS_STREAM_DELETED"}
    assert book.codes("edge", CAM) == frozenset()
    assert len(book.recent("origin")) == 6


def test_a_queue_ok_clears_only_the_queue_state() -> None:
    """INTERNAL_QUEUE and INGRESS states of one source are kept apart, as L21 keys them."""
    book = EventBook()
    book.record(heard(("INGRESS_BITRATE_LOW",)))
    book.record(heard(("INTERNAL_QUEUE_CONGESTION",), kind="INTERNAL_QUEUE"))
    book.record(heard(("OK",), kind="INTERNAL_QUEUE"))
    assert book.codes("origin", CAM) == {"INGRESS_BITRATE_LOW"}


def test_events_for_endless_invented_streams_cost_bounded_memory() -> None:
    """Past max_sources, the source heard from longest ago is forgotten; the log stays short."""
    book = EventBook(max_sources=100)
    for i in range(10_000):
        book.record(heard(("INGRESS_BITRATE_LOW",), Source("v", "a", f"s{i}")))
    assert book.sources("origin") == 100
    assert book.codes("origin", Source("v", "a", "s9999")) == {"INGRESS_BITRATE_LOW"}
    assert book.codes("origin", Source("v", "a", "s0")) == frozenset()
    assert len(book.recent("origin")) == RECENT
    book.forget(frozenset({"edge"}))
    assert book.sources("origin") == 0


def test_expire_forgets_the_streams_no_longer_listed_and_keeps_app_and_server_codes() -> None:
    """OME sends no OK for a stream that ends in alarm: the poll's listing expires it."""
    book = EventBook()
    book.record(heard(("INGRESS_BITRATE_LOW",)))
    other = Source("default", "live", "cam2")
    book.record(heard(("INGRESS_HAS_BFRAME",), other))
    book.record(heard(("INTERNAL_QUEUE_CONGESTION",), None, "INTERNAL_QUEUE"))
    assert book.expire("origin", lambda s: s == other) == 1
    assert book.codes("origin", CAM) == frozenset()
    assert book.codes("origin", other) == {"INGRESS_HAS_BFRAME"}
    assert book.codes("origin", None) == {"INTERNAL_QUEUE_CONGESTION"}
    assert book.expire("edge", lambda s: False) == 0


def test_a_targeted_poll_expires_only_the_streams_of_the_apps_it_listed() -> None:
    """A stream gone from the listed app loses its codes; one in an app not looked at keeps
    them, though the targeted poll does not list it either."""
    book = EventBook()
    book.record(heard(("INGRESS_BITRATE_LOW",)))
    elsewhere = Source("default", "other", "cam3")
    book.record(heard(("INGRESS_BITRATE_LOW",), elsewhere))
    app = Target("origin", "default", "live")
    poll = PollResult("origin", 0.0, 0.0, listed={Target("origin"), app}, covers=frozenset({app}))
    book.apply([poll])
    assert book.codes("origin", CAM) == frozenset()
    assert book.codes("origin", elsewhere) == {"INGRESS_BITRATE_LOW"}


def test_which_events_ask_for_a_targeted_poll_and_which_for_the_whole_server() -> None:
    """A stream's own event and a transcoder's (parentSourceUri) name their stream; a queue
    event (it needs the queues, read server-wide) or one naming no stream names none."""

    def event(doc: str) -> Heard:
        return Heard(0.0, "origin", parse_event(doc.encode()))

    ingress = '{"messages":[{"code":"OK"}],"sourceUri":"#default#live/cam1","type":"INGRESS"}'
    transcoder = (
        '{"messages":[{"code":"EGRESS_TRANSCODE_FAILED_DECODING"}],'
        '"parentSourceUri":"#default#live/cam1","type":"EGRESS"}'
    )
    queue = (
        '{"messages":[{"code":"INTERNAL_QUEUE_CONGESTION"}],'
        '"sourceUri":"#default#live/cam1","type":"INTERNAL_QUEUE"}'
    )
    app = '{"messages":[{"code":"OK"}],"sourceUri":"#default#live","type":"INGRESS"}'
    cam1 = Target("origin", "default", "live", "cam1")
    assert [stream_of(event(d)) for d in (ingress, transcoder, queue, app)] == [
        cam1,
        cam1,
        None,
        None,
    ]
