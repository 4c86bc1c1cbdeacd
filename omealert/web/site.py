"""Puts the status page, its API and its safety rules on the watcher's listener.

Also the ``omealert_target_health`` series for ``/metrics``: one per stream, app and server,
``1`` for its current state only (the state is a label), so a scrape carries as many
series as there are streams; ``--metrics-targets off`` leaves them out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric

from .api import StatusApi
from .page import StatusPages
from .safety import guard, warn_if_open

if TYPE_CHECKING:
    from ..engine.health import HealthBook
    from ..runner import Runner
    from .listener import Listener

TARGET_HEALTH = "omealert_target_health"


def install_site(listener: Listener, runner: Runner, *, target_metrics: bool = True) -> StatusPages:
    """The page, ``/api/v1``, GET-only and ``listen_auth`` on ``listener`` (before it starts)."""
    listener.app.middlewares.append(guard(lambda: runner.settings.page.listen_auth))
    pages = StatusPages(runner)
    pages.install(listener.app)
    StatusApi(pages).install(listener.app)
    if target_metrics and runner.health is not None:
        listener.metrics.registry.register(TargetHealthCollector(runner.health))
    warn_if_open(listener.host, runner.settings.page.listen_auth)
    return pages


class TargetHealthCollector:
    """``omealert_target_health{server,vhost,app,stream,state} 1``, read at each scrape."""

    def __init__(self, book: HealthBook) -> None:
        self.book = book

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            TARGET_HEALTH,
            "Health of each stream, app and server: 1 for its current state.",
            labels=["server", "vhost", "app", "stream", "state"],
        )
        book = self.book
        for h in (*book.servers.values(), *book.apps.values(), *book.streams.values()):
            t = h.target
            family.add_metric(
                [t.server, t.vhost or "", t.app or "", t.stream or "", h.state.value], 1
            )
        yield family

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            TARGET_HEALTH, "", labels=["server", "vhost", "app", "stream", "state"]
        )
