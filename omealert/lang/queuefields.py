"""What a rule can read of an OME internal queue (``scope: queue``), and why not ``drop``.

Kept apart from the catalogue so that ``ome/queues.py`` (which reads the queues) and
``lang/fields.py`` (which types the rules) share one list. Facts and sources:
``../shared/ome-beyond-stats.md`` §3.
"""

from __future__ import annotations

__all__ = ["DROP_REFUSAL", "EVENT_FIELDS", "EVENT_PREFIX", "EVENT_QUEUE_FIELDS", "QUEUE_FIELDS"]

#: the message a rule reading ``drop`` is refused with
DROP_REFUSAL = (
    "drop is always 0 in OME (its counter is compiled out in every release examined, and a "
    "full exceed-wait queue deletes items without counting them): watch size, "
    "avgWaitingTime or delta(size, 10s) instead"
)

#: (field, unit, meaning) of a queue reading; the integers OME sends, as they are
QUEUE_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("size", "count", "items queued at OME's last metrics update (at most once a second)"),
    ("peak", "count", "most items ever queued since the queue was created"),
    ("threshold", "count", "the threshold OME reports; 0 = none (wrong in 0.18-0.20: "
     "effective_threshold)"),
    ("effective_threshold", "count", "the threshold the queue really uses, where omealert "
     "knows it for the release; else the reported one"),
    ("avgWaitingTime", "µs", "moving average (0.9 old + 0.1 new) of each dequeued item's wait; "
     "freezes while nothing is dequeued"),
    ("inputPerSecond", "count/s", "items queued over the last stats interval"),
    ("outputPerSecond", "count/s", "items dequeued over the last stats interval"),
    *(
        (f"dwell{window}{stat}Us", "µs", f"dwell time {stat} over "
         f"{'the last ~1 s' if window else 'the queue life'} (OME 0.21+)")
        for window in ("", "Latest")
        for stat in ("Min", "Avg", "P50", "P90", "P99", "Max")
    ),
)  # fmt: skip

#: the prefix of the fields that read a queue as OME's last congestion event sent it
EVENT_PREFIX = "event."
#: the numbers of a queue an ``INTERNAL_QUEUE`` event carries (all but omealert's own
#: ``effective_threshold``)
EVENT_FIELDS = frozenset(name for name, _, _ in QUEUE_FIELDS if name != "effective_threshold")
EVENT_QUEUE_FIELDS: tuple[tuple[str, str, str], ...] = tuple(
    (
        EVENT_PREFIX + name,
        unit,
        f"{name} as OME's current INTERNAL_QUEUE_CONGESTION event for the queue's source "
        "sent it (same id and urn); 0 while none lists the queue (none yet, or after OK)",
    )
    for name, unit, _ in QUEUE_FIELDS
    if name in EVENT_FIELDS
)
