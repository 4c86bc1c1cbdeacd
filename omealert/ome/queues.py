"""OME's managed queues (``GET /v1/stats/current/internals/queues``) as labelled readings.

Facts and sources: ``../shared/ome-beyond-stats.md`` §3. A queue is identified by its
``id`` within one life of the server (issued from 100 up, new each time a stream is
created): URNs repeat (one ``streamworker_<type>`` per stream worker, one ``filter_video``
per rendition, all under the input stream's URN), so the URN only gives labels. Its
segments are not escaped, so the parser anchors on the known keys.

``drop`` is always 0 in every OME release examined (its increments sit behind
``SKIP_MESSAGE_ENABLED``, defined 0), so a rule may not read it: ``DROP_REFUSAL``.

The ``threshold`` OME 0.18 reports is not always the one the queue uses: the decoder and
encoder set their URN before their threshold, and the metric copies the threshold only
when the URN is set, so they report 0; ``filter_video`` reports 120 where 2 x the input
frame rate applies (A18 ``monitoring/queue_metrics.h:47-52``,
``transcoder/transcoder_decoder.cpp:332-333``, ``transcoder_encoder.cpp:341-342``; the same
order in 0.20.0). ``effective_threshold`` is the one that applies, where omealert knows it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeGuard

from ..lang.queuefields import DROP_REFUSAL, QUEUE_FIELDS
from ..lang.versions import release_key
from ..model import Sample, Scope, Target, Value
from .normalize import NormalizeError

__all__ = [
    "DROP_REFUSAL", "QUEUES_PATH", "QUEUE_FIELDS", "Queue", "effective_threshold", "parse_queues",
    "parse_urn", "queue_samples", "queue_target",
]  # fmt: skip

URN_RE = re.compile(
    r"^mngq(?::v=#(?P<vhost>[^#]*)#(?P<app>.*?))?(?::s=(?P<stream>.*?))?"
    r"(?::p=(?P<part>pvd|imr|trs|omr|pub|och))?(?::n=(?P<name>.*))?$"
)

_NUMBERS = tuple(f for f, _, _ in QUEUE_FIELDS if f != "effective_threshold")
_OPTIONAL = frozenset(f for f in _NUMBERS if f.startswith("dwell"))


@dataclass(frozen=True, slots=True)
class Queue:
    """One queue at one poll: its id, the labels from its URN, and its numbers."""

    id: int
    labels: dict[str, str]
    fields: dict[str, Value]


def parse_urn(urn: str) -> dict[str, str]:
    """``mngq:v=#default#app:s=stream1:p=trs:n=filter_video`` → vhost, app, stream, part, name.

    Segments OME left out (app-level queues have no stream) are left out here; a URN of
    another form (L21's ``"No Urn"``) gives ``{"urn": …}`` only, never an error.
    """
    match = URN_RE.match(urn)
    if match is None:
        return {"urn": urn}
    labels = {k: v for k, v in match.groupdict().items() if v}
    labels["urn"] = urn
    return labels


def parse_queues(payload: object, version: str | None) -> list[Queue]:
    """The queues of one answer; anything of the wrong shape raises ``NormalizeError``."""
    if not isinstance(payload, list):
        raise NormalizeError("internals/queues", "expected a list of queues")
    out: list[Queue] = []
    for index, item in enumerate(payload):
        if not isinstance(item, Mapping):
            raise NormalizeError(f"internals/queues[{index}]", "expected an object")
        qid, urn = item.get("id"), item.get("urn")
        if not _is_int(qid) or not isinstance(urn, str):
            raise NormalizeError(f"internals/queues[{index}]", "needs an integer id and a urn")
        fields: dict[str, Value] = {}
        for name in _NUMBERS:
            value = item.get(name)
            if value is None and name in _OPTIONAL:
                continue
            if not _is_int(value):
                raise NormalizeError(f"internals/queues[{index}].{name}", "expected an integer")
            fields[name] = value
        labels = parse_urn(urn)
        found = effective_threshold(labels, fields, version)
        if found is not None:
            fields["effective_threshold"] = found
        assert isinstance(qid, int)
        out.append(Queue(qid, labels, fields))
    return out


def effective_threshold(
    labels: Mapping[str, str], fields: Mapping[str, Value], version: str | None
) -> int | None:
    """The threshold the queue uses: the reported one unless the release is known to lie.

    Before 0.20.0 (read in 0.18.0's source): decoders 500, encoders 5, ``filter_audio`` 300,
    ``filter_video`` 2 x the input frame rate, estimated as 2 x ``inputPerSecond`` (no value
    while nothing comes in). From 0.20.0 until 0.21.0 decoders 300 and encoders 2 (filters
    report theirs). An unknown release or another queue: the reported threshold.
    """
    reported = fields.get("threshold")
    key = release_key(version)
    name = labels.get("name", "")
    if key is None or labels.get("part") != "trs" or key >= (0, 21, 0, 0):
        return reported if isinstance(reported, int) else None
    old = key < (0, 20, 0, 0)
    if name.startswith("dec_"):
        return 500 if old else 300
    if name.startswith("enc_"):
        return 5 if old else 2
    if old and name == "filter_audio":
        return 300
    if old and name == "filter_video":
        rate = fields.get("inputPerSecond")
        return 2 * rate if isinstance(rate, int) and rate > 0 else None
    return reported if isinstance(reported, int) else None


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


#: where OME lists its queues (OME ≥ 0.15.14 with these keys; a 404 before: no queues)
QUEUES_PATH = "/v1/stats/current/internals/queues"


def queue_target(server: str, queue: Queue) -> Target:
    """A queue's target: the names of its URN, and ``part/name#id`` as its leaf."""
    labels = queue.labels
    leaf = f"{labels.get('part', '')}/{labels.get('name', '')}#{queue.id}"
    return Target(
        server, labels.get("vhost"), labels.get("app") if "vhost" in labels else None,
        labels.get("stream") if "app" in labels else None, Scope.QUEUE.value, leaf,
    )  # fmt: skip


def queue_samples(
    server: str, queues: list[Queue], at: float, server_now: float
) -> dict[Target, Sample]:
    """One sample per queue, with the URN's parts as text fields (``part == "trs"``)."""
    out: dict[Target, Sample] = {}
    for queue in queues:
        fields = dict(queue.fields)
        for name in ("part", "name", "urn", "vhost", "app", "stream"):
            if name in queue.labels:
                fields["queue_name" if name == "name" else name] = queue.labels[name]
        target = queue_target(server, queue)
        out[target] = Sample(target, fields, at, server_now)
    return out
