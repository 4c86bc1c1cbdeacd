"""The fleet's series on ``/metrics``: Alertmanager senders, heartbeat pings, the shard.

Read from the senders and the pinger (which own the counts) at each scrape, like the
delivery counters: ``omealert_alertmanager_sent_total{alertmanager}`` (alerts accepted),
``..._errors_total`` (failed posts), ``..._dropped_total`` (pushed out of a full queue),
``omealert_alertmanager_queue_length`` and ``omealert_alertmanager_up``; the pings by
result; and ``omealert_shard_info{shard, by}`` with the servers this shard polls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from ..rules import Settings
    from .fleet import FleetHook

__all__ = ["FleetCollector"]


class FleetCollector:
    """A ``prometheus_client`` collector over one watcher's fleet hook and settings."""

    def __init__(self, hook: FleetHook | None, settings: Callable[[], Settings]) -> None:
        self._hook = hook
        self._settings = settings

    def fingerprint(self) -> object:
        if self._hook is None:
            return None
        p = self._hook.pinger
        return (self._hook.pool.snapshot(), p.sent, p.failed, p.skipped)

    def collect(self) -> Iterator[Metric]:
        settings = self._settings()
        shard = settings.shard
        info = GaugeMetricFamily(
            "omealert_shard_info",
            "This watcher's shard (K/N) and what it splits by.",
            labels=["shard", "by"],
        )
        info.add_metric([str(shard), shard.by], 1)
        yield info
        servers = GaugeMetricFamily("omealert_shard_servers", "OME servers this shard polls.")
        servers.add_metric([], len(settings.servers))
        yield servers
        if self._hook is None:
            return
        families = {
            "sent": CounterMetricFamily(
                "omealert_alertmanager_sent",
                "Alerts an Alertmanager accepted.",
                labels=["alertmanager"],
            ),
            "errors": CounterMetricFamily(
                "omealert_alertmanager_errors",
                "Failed posts to an Alertmanager.",
                labels=["alertmanager"],
            ),
            "dropped": CounterMetricFamily(
                "omealert_alertmanager_dropped",
                "Alerts pushed out of a full queue.",
                labels=["alertmanager"],
            ),
        }
        queue = GaugeMetricFamily(
            "omealert_alertmanager_queue_length",
            "Alerts waiting to be posted.",
            labels=["alertmanager"],
        )
        up = GaugeMetricFamily(
            "omealert_alertmanager_up", "1 if the last post to it worked.", labels=["alertmanager"]
        )
        for name, c in self._hook.pool.counters():
            families["sent"].add_metric([name], c.sent)
            families["errors"].add_metric([name], c.errors)
            families["dropped"].add_metric([name], c.dropped)
            queue.add_metric([name], c.queued)
            up.add_metric([name], 1 if c.up else 0)
        yield from families.values()
        yield queue
        yield up
        pings = CounterMetricFamily(
            "omealert_heartbeat_pings", "Heartbeat pings by result.", labels=["result"]
        )
        p = self._hook.pinger
        for result, n in (("sent", p.sent), ("failed", p.failed), ("skipped", p.skipped)):
            pings.add_metric([result], n)
        yield pings

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("omealert_shard_info", "", labels=["shard", "by"])
