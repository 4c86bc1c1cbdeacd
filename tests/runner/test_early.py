"""What OME's events leave pending for the runner's early polls: coalesced, and bounded."""

from __future__ import annotations

from omealert.metrics import Metrics
from omealert.model import Target
from omealert.runner.early import EventPolls


def stream(i: int, server: str = "origin") -> Target:
    return Target(server, "default", "live", f"s{i}")


def test_the_same_stream_asked_many_times_is_polled_once() -> None:
    """One pending poll per target, however many events name it; take() empties the lot."""
    early = EventPolls()
    for _ in range(100):
        early.ask("origin", stream(1))
    early.ask("origin", stream(2))
    assert early.pending() and early.wake.is_set()
    assert early.take() == (frozenset(), {"origin": (stream(1), stream(2))})
    assert not early.pending() and not early.wake.is_set()


def test_too_many_streams_of_one_server_fold_into_one_poll_of_it_counted() -> None:
    """Past the cap a server is polled whole; its pending streams are let go and counted, and
    further streams of it are covered by that poll; another server keeps its own."""
    metrics = Metrics()
    early = EventPolls(metrics, max_streams=4)
    early.ask("edge", stream(0, "edge"))
    for i in range(5000):
        early.ask("origin", stream(i))
    assert metrics.value("omealert_event_polls_folded_total", server="origin") == 5
    assert early.take() == (frozenset({"origin"}), {"edge": (stream(0, "edge"),)})


def test_the_cap_over_all_servers_holds_and_an_event_naming_no_stream_polls_the_server() -> None:
    """MAX_PENDING bounds the streams of every server together; no stream: the whole server."""
    early = EventPolls(max_streams=10, max_pending=12)
    for server in ("a", "b"):
        for i in range(8):
            early.ask(server, stream(i, server))
    early.ask("c")
    servers, streams = early.take()
    assert servers == {"b", "c"} and streams == {"a": tuple(stream(i, "a") for i in range(8))}
    early.ask("a", stream(1, "a"))
    early.forget(frozenset({"b"}))
    assert not early.pending()
