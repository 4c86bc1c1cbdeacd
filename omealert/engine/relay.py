"""``origin.*`` fields: an edge's relayed stream, as its origin saw it in the same tick.

An OVT edge (``servers[].role: edge``) pulls streams from its origin on demand; such a
stream is listed with ``sourceType: Ovt``. Its ``origin.*`` fields are the same stream's
fields on the origin (same vhost, app and stream names), read by the origin's poll of the
same tick, so ``lastRecvTime stale > 5s and not origin.lastRecvTime stale > 5s`` is a
broken relay: the origin has the input, the edge does not (``ome-beyond-stats.md`` §7).

The origin's times are moved onto the edge's clock (each server's offset from the
watcher's clock is estimated apart, ``ome/serverclock.py``), so ``stale`` compares them
with the edge's now as it compares the edge's own. When the origin was not read in this
tick (its poll failed, or an early poll read only the edge), every ``origin.*`` field has
no value; when it was read and does not list the stream, ``origin.listed`` is false and
the others have no value. Edge streams are created when a player asks and reaped when
unused, so an edge stream that is not listed is never an alert by itself: nothing here
makes targets, it only adds fields (and the label ``origin``, the origin server's name)
to the edge streams a poll listed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from ..lang.fields import FIELDS, ORIGIN_PREFIX
from ..model import PollResult, Sample, Scope, Target

__all__ = ["RELAYED_SOURCE", "join_origins"]

#: stream info's ``sourceType`` of a stream pulled over OVT
RELAYED_SOURCE = "Ovt"


def join_origins(polls: Sequence[PollResult], origins: Mapping[str, str]) -> None:
    """Add ``origin.*`` to every relayed stream sample of the edges in ``origins``
    (edge server → its origin server), from the origin's poll among ``polls``."""
    if not origins:
        return
    by_server = {p.server: p for p in polls}
    for poll in polls:
        name = origins.get(poll.server)
        if name is None or poll.error is not None:
            continue
        origin = by_server.get(name)
        readable = origin is not None and origin.error is None  # else: no value
        for target, sample in poll.samples.items():
            if target.scope is Scope.STREAM and sample.fields.get("sourceType") == RELAYED_SOURCE:
                sample.labels = {**(sample.labels or {}), "origin": name}
                if readable:
                    assert origin is not None
                    _join(sample, origin, Target(name, target.vhost, target.app, target.stream))


def _join(sample: Sample, origin: PollResult, there: Target) -> None:
    if there in origin.unconfirmed:
        return  # the origin's shutdown window, perhaps: not known yet
    sample.fields[ORIGIN_PREFIX + "listed"] = there in origin.listed
    theirs = origin.samples.get(there)
    if theirs is None:
        return
    # origin clock → edge clock: each server's offset from the watcher's clock
    shift = timedelta(seconds=(sample.server_now - sample.at) - (theirs.server_now - theirs.at))
    for path, value in theirs.fields.items():
        key = ORIGIN_PREFIX + path
        if key in FIELDS:
            sample.fields[key] = value + shift if isinstance(value, datetime) else value
