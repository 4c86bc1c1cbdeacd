"""``engine/relay.py``: which edge samples get ``origin.*``, and on whose clock."""

from __future__ import annotations

from datetime import UTC, datetime

from omealert.engine.relay import join_origins, origin_fields
from omealert.lang.fields import FIELDS
from omealert.model import PollResult, Sample, Target, Value

NOW = 1_780_000_000.0
#: every origin.* field, as a rule set reading them all would have them copied
ALL = origin_fields(FIELDS)
STREAM = ("default", "app", "s1")


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def poll(server: str, fields: dict[str, Value], *, clock_ahead: float = 0.0) -> PollResult:
    """One stream of ``server``, polled at NOW, whose clock runs ``clock_ahead`` s ahead."""
    target = Target(server, *STREAM)
    sample = Sample(target, dict(fields), at=NOW, server_now=NOW + clock_ahead)
    listed = {Target(server), Target(server, "default"), Target(server, "default", "app"), target}
    return PollResult(server, NOW, NOW + clock_ahead, samples={target: sample}, listed=listed)


def edge_fields(poll_result: PollResult) -> dict[str, Value]:
    return next(iter(poll_result.samples.values())).fields


def test_origin_times_are_moved_onto_the_edges_clock() -> None:
    """An origin whose clock runs 30 s ahead: its lastRecvTime, 1 s old on its own clock,
    reads 1 s old on the edge's clock too; numbers and text are copied as they are."""
    edge = poll("edge", {"sourceType": "Ovt", "providers.lastRecvTime": at(NOW - 20)})
    origin = poll(
        "origin",
        {
            "providers.lastRecvTime": at(NOW + 30 - 1),
            "providers.totalBytesIn": 5,
            "sourceType": "Rtmp",
        },
        clock_ahead=30,
    )
    join_origins([origin, edge], {"edge": "origin"}, ALL)
    got = edge_fields(edge)
    assert got["origin.providers.lastRecvTime"] == at(NOW - 1)
    assert got["origin.providers.totalBytesIn"] == 5 and got["origin.sourceType"] == "Rtmp"
    assert got["origin.listed"] is True


def test_without_the_origins_poll_only_the_label_is_added() -> None:
    """An early poll of the edge alone (or a failed origin poll): no origin.* value at all."""
    edge = poll("edge", {"sourceType": "Ovt"})
    join_origins([edge], {"edge": "origin"}, ALL)
    assert edge_fields(edge) == {"sourceType": "Ovt"}
    assert next(iter(edge.samples.values())).labels == {"origin": "origin"}


def test_only_relayed_streams_of_edges_are_joined() -> None:
    """A stream the edge ingests itself, and any stream of a server that is no edge, get
    nothing from the origin; an origin not listing the stream says listed false only."""
    local = poll("edge", {"sourceType": "Rtmp"})
    other = poll("plain", {"sourceType": "Ovt"})
    origin = poll("origin", {"providers.totalBytesIn": 5})
    join_origins([origin, local, other], {"edge": "origin"}, ALL)
    assert edge_fields(local) == {"sourceType": "Rtmp"}
    assert edge_fields(other) == {"sourceType": "Ovt"}
    relayed = poll("edge", {"sourceType": "Ovt"})
    empty = PollResult("origin", NOW, NOW, listed={Target("origin")})
    join_origins([empty, relayed], {"edge": "origin"}, ALL)
    assert edge_fields(relayed) == {"sourceType": "Ovt", "origin.listed": False}


def test_an_unconfirmed_origin_listing_is_not_read_as_gone() -> None:
    """The origin's shutdown window (its app vanished whole, not confirmed yet): no value."""
    relayed = poll("edge", {"sourceType": "Ovt"})
    origin = PollResult("origin", NOW, NOW, listed={Target("origin")})
    origin.unconfirmed = {Target("origin", "default"), Target("origin", *STREAM)}
    join_origins([origin, relayed], {"edge": "origin"}, ALL)
    assert edge_fields(relayed) == {"sourceType": "Ovt"}


def test_only_the_origin_fields_rules_read_are_copied() -> None:
    """A rule set reading origin.lastRecvTime gets that (and origin.listed), nothing more."""
    edge = poll("edge", {"sourceType": "Ovt"})
    origin = poll("origin", {"providers.lastRecvTime": at(NOW), "providers.totalBytesIn": 5})
    wanted = origin_fields(["origin.providers.lastRecvTime", "providers.totalBytesIn"])
    join_origins([origin, edge], {"edge": "origin"}, wanted)
    assert edge_fields(edge) == {
        "sourceType": "Ovt",
        "origin.listed": True,
        "origin.providers.lastRecvTime": at(NOW),
    }
