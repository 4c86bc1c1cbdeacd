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

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from ..lang.fields import FIELDS, ORIGIN_PREFIX
from ..model import PollResult, Sample, Scope, Target

__all__ = ["RELAYED_SOURCE", "join_origins", "origin_fields"]

#: stream info's ``sourceType`` of a stream pulled over OVT
RELAYED_SOURCE = "Ovt"


def origin_fields(paths: Iterable[str]) -> dict[str, str]:
    """Of the fields rules read, each ``origin.*`` one's path on the origin → its own path:
    only these are copied (a sample of 10,000 relayed streams lends a few fields, not 58)."""
    return {
        p.removeprefix(ORIGIN_PREFIX): p
        for p in paths
        if p.startswith(ORIGIN_PREFIX) and p in FIELDS and p != _LISTED
    }


_LISTED = ORIGIN_PREFIX + "listed"


def join_origins(
    polls: Sequence[PollResult], origins: Mapping[str, str], fields: Mapping[str, str]
) -> None:
    """Add ``origin.*`` to every relayed stream sample of the edges in ``origins``
    (edge server → its origin server), from the origin's poll among ``polls``: the
    ``fields`` of ``origin_fields`` and ``origin.listed``."""
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
                    there = Target(name, target.vhost, target.app, target.stream)
                    _join(sample, origin, there, fields)


def _join(sample: Sample, origin: PollResult, there: Target, fields: Mapping[str, str]) -> None:
    if there in origin.unconfirmed:
        return  # the origin's shutdown window, perhaps: not known yet
    sample.fields[_LISTED] = there in origin.listed
    theirs = origin.samples.get(there)
    if theirs is None:
        return
    # origin clock → edge clock: each server's offset from the watcher's clock
    shift = timedelta(seconds=(sample.server_now - sample.at) - (theirs.server_now - theirs.at))
    mine, theirs_fields = sample.fields, theirs.fields
    for path, key in fields.items():
        value = theirs_fields.get(path)
        if value is not None:
            mine[key] = value + shift if isinstance(value, datetime) else value
