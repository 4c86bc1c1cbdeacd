"""The watcher's own health as Prometheus metrics, kept in a ``prometheus_client`` registry.

One registry per watcher (not the library's global one): two watchers in one process, or a
test next to a watcher, never share or double-register a series. The library writes the
exposition text (``generate_latest``, or OpenMetrics when a scraper asks for it); nothing
here formats it. Counters and histograms get the ``_created`` series the library adds.

Importing ``prometheus_client`` costs ~25 ms, a sixth of a cold ``omealert check``'s
imports, so only the watcher imports this module: the runner takes a ``Metrics`` when given
one and records nothing otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

from .model import AlertState, PollResult

if TYPE_CHECKING:
    from .engine.alerts import Instance

#: Upper bounds (seconds) of the poll and tick histograms: a healthy OME answers in
#: milliseconds, a poll may run to its ``poll_timeout`` (60 s by default).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

#: Why an OME Alert request was not taken (``web/ome_alert.py``), each counted from 0.
OME_EVENT_REJECTIONS = (
    "unknown_server",
    "unsigned",
    "bad_signature",
    "too_large",
    "slow_body",
    "malformed",
    "duplicate",
)

#: Why a delivery failed (``notify.failure.FailureReason``), each counted from 0 per channel.
FAILURE_REASONS = ("auth", "rate_limited", "timeout", "refused", "server_error", "bad_request")

#: Per channel sent, per (channel, reason) failed, per channel dropped and deferred counts,
#: read from the outbox at each scrape.
DeliveryCounts = Callable[
    [], tuple[dict[str, int], dict[tuple[str, str], int], dict[str, int], dict[str, int]]
]


class Metrics:
    """The series the runner and the watcher update; ``render`` gives the exposition text."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self._polls = Counter(
            "omealert_polls_total", "Polls per OME server.", ["server"], registry=reg
        )
        self._poll_errors = Counter(
            "omealert_poll_errors_total",
            "Polls that could not read a server.",
            ["server", "kind"],
            registry=reg,
        )
        self._target_errors = Counter(
            "omealert_target_errors_total", "Failed per-target requests.", ["server"], registry=reg
        )
        self._values_dropped = Counter(
            "omealert_values_dropped_total",
            "Values OME printed but had not measured, left out as no value.",
            ["server", "field", "reason"],
            registry=reg,
        )
        self._unconfirmed = Counter(
            "omealert_unconfirmed_vanishings_total",
            "Vhosts and apps that vanished whole, held until the next poll confirms it.",
            ["server"],
            registry=reg,
        )
        self._requests = Counter(
            "omealert_requests_total", "HTTP requests made to OME.", ["server"], registry=reg
        )
        self._last_poll = Gauge(
            "omealert_poll_duration_seconds", "Duration of the last poll.", ["server"], registry=reg
        )
        self._poll_seconds = Histogram(
            "omealert_poll_seconds",
            "Durations of polls per OME server.",
            ["server"],
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self._ticks = Counter("omealert_ticks_total", "Evaluation ticks.", registry=reg)
        self._slow_ticks = Counter(
            "omealert_slow_ticks_total", "Ticks longer than the interval.", registry=reg
        )
        self._last_tick = Gauge(
            "omealert_tick_duration_seconds", "Duration of the last tick.", registry=reg
        )
        self._tick_seconds = Histogram(
            "omealert_tick_seconds",
            "Durations of evaluation ticks.",
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self._alerts = Gauge(
            "omealert_alerts", "Alert instances per state.", ["state"], registry=reg
        )
        for state in AlertState:
            self._alerts.labels(state=state.value).set(0)
        self._state_errors = Counter(
            "omealert_state_errors_total", "State database failures.", registry=reg
        )
        self._reload_ok = Gauge(
            "omealert_config_last_reload_successful",
            "1 if the last config reload worked.",
            registry=reg,
        )
        self._reload_ok.set(1)
        self._reloads = Counter(
            "omealert_config_reloads_total", "Config reloads by result.", ["result"], registry=reg
        )
        for result in ("success", "failure"):
            self._reloads.labels(result=result)
        self._ome_events = Counter(
            "omealert_ome_events_total",
            "Signed OME Alert events accepted, per server and event type.",
            ["server", "type"],
            registry=reg,
        )
        self._ome_rejected = Counter(
            "omealert_ome_events_rejected_total",
            "OME Alert requests refused or ignored, by reason.",
            ["reason"],
            registry=reg,
        )
        for reason in OME_EVENT_REJECTIONS:
            self._ome_rejected.labels(reason=reason)
        self._event_polls = Counter(
            "omealert_event_polls_total",
            "Polls outside the schedule asked for by OME Alert events: of the whole server "
            "(kind=server), or targeted at the streams they named (kind=stream).",
            ["server", "kind"],
            registry=reg,
        )
        self._event_folded = Counter(
            "omealert_event_polls_folded_total",
            "Streams named by OME Alert events not polled alone, too many being pending: "
            "folded into one early poll of the whole server.",
            ["server"],
            registry=reg,
        )
        #: configured channels: each gets its delivery counters at 0 before its first send,
        #: so rate() and alerting on them work from the start
        self.channels: tuple[str, ...] = ()
        #: set by the watcher: the outbox's counters, which live as long as the outbox
        self.delivery: DeliveryCounts | None = None
        #: set by the watcher: changes whenever the Alertmanager/heartbeat series do
        self.fleet: Callable[[], object] | None = None
        #: bumped by every write below: a cached scrape is reused only while it holds
        self.generation = 0
        reg.register(_DeliveryCollector(self))
        # process_open_fds / process_max_fds: what an idle-connection flood would exhaust
        ProcessCollector(registry=reg)

    # -- what the runner and the watcher report -------------------------------------------

    def observe_tick(
        self, polls: Iterable[PollResult], duration: float, instances: Iterable[Instance]
    ) -> None:
        self.generation += 1
        self._ticks.inc()
        self._last_tick.set(duration)
        self._tick_seconds.observe(duration)
        for poll in polls:
            server = poll.server
            self._polls.labels(server=server).inc()
            self._requests.labels(server=server).inc(poll.requests)
            self._last_poll.labels(server=server).set(poll.duration)
            self._poll_seconds.labels(server=server).observe(poll.duration)
            if poll.error is not None:
                self._poll_errors.labels(server=server, kind=poll.error.kind.value).inc()
            self._target_errors.labels(server=server).inc(len(poll.target_errors))
            for (path, reason), n in poll.dropped.items():
                self._values_dropped.labels(server=server, field=path, reason=reason).inc(n)
            if poll.unconfirmed:
                self._unconfirmed.labels(server=server).inc(len(poll.unconfirmed))
        counts = dict.fromkeys((s.value for s in AlertState), 0)
        for inst in instances:
            counts[inst.state.value] += 1
        for state, n in counts.items():
            self._alerts.labels(state=state).set(n)

    def slow_tick(self) -> None:
        self.generation += 1
        self._slow_ticks.inc()

    def state_error(self) -> None:
        self.generation += 1
        self._state_errors.inc()

    def reloaded(self, ok: bool) -> None:
        self.generation += 1
        self._reloads.labels(result="success" if ok else "failure").inc()
        self._reload_ok.set(1 if ok else 0)

    def ome_event(self, server: str, kind: str) -> None:
        """An accepted event; a type OME does not send is counted as ``other`` (bounded labels)."""
        self.generation += 1
        shown = kind if kind in ("INGRESS", "EGRESS", "INTERNAL_QUEUE") else "other"
        self._ome_events.labels(server=server, type=shown).inc()

    def event_poll(self, server: str, kind: str) -> None:
        self.generation += 1
        self._event_polls.labels(server=server, kind=kind).inc()

    def event_polls_folded(self, server: str, streams: int) -> None:
        self.generation += 1
        self._event_folded.labels(server=server).inc(streams)

    def observe_targeted(self, polls: Iterable[PollResult]) -> None:
        """Targeted polls (``ome.targeted``): counted apart from ticks and full polls, but
        their requests and failures are the server's like any poll's."""
        for poll in polls:
            self.generation += 1
            self._event_polls.labels(server=poll.server, kind="stream").inc()
            self._requests.labels(server=poll.server).inc(poll.requests)
            if poll.error is not None:
                self._poll_errors.labels(server=poll.server, kind=poll.error.kind.value).inc()

    def ome_event_rejected(self, reason: str) -> None:
        self.generation += 1
        self._ome_rejected.labels(reason=reason).inc()

    # -- reading -----------------------------------------------------------------------------

    def value(self, name: str, **labels: str) -> float | None:
        """One sample's current value (None: no such series yet), as a scrape would show it."""
        return self.registry.get_sample_value(name, labels)

    @property
    def ticks(self) -> int:
        return int(self.value("omealert_ticks_total") or 0)

    @property
    def state_errors(self) -> int:
        return int(self.value("omealert_state_errors_total") or 0)

    def fingerprint(self) -> tuple[object, ...]:
        """Changes whenever an omealert series does (the process_* ones change all the time)."""
        delivery = self.delivery() if self.delivery is not None else None
        fleet = self.fleet() if self.fleet is not None else None
        return (self.generation, self.channels, delivery, fleet)

    def render(self) -> bytes:
        """The Prometheus text exposition of every series, as the library writes it."""
        return generate_latest(self.registry)


class _DeliveryCollector:
    """Delivery counters per channel, read from the outbox (which owns them) at each scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        sent: dict[str, int] = {}
        failed: dict[tuple[str, str], int] = {}
        dropped: dict[str, int] = {}
        deferred: dict[str, int] = {}
        if self._metrics.delivery is not None:
            sent, failed, dropped, deferred = self._metrics.delivery()
        yield self._failed(failed)
        for name, help_text, counts in (
            ("omealert_notifications_sent", "Messages delivered per channel.", sent),
            ("omealert_notifications_dropped", "Messages given up per channel.", dropped),
            (
                "omealert_notifications_deferred",
                "Due messages held back while their service's last send still runs.",
                deferred,
            ),
        ):
            family = CounterMetricFamily(name, help_text, labels=["channel"])
            for channel in sorted({*counts, *self._metrics.channels}):
                family.add_metric([channel], counts.get(channel, 0))
            yield family

    def _failed(self, counts: dict[tuple[str, str], int]) -> Metric:
        """Failed attempts per channel and reason; every configured channel's reasons from 0."""
        family = CounterMetricFamily(
            "omealert_notifications_failed",
            "Failed delivery attempts per channel and reason.",
            labels=["channel", "reason"],
        )
        keys = {*counts, *((c, r) for c in self._metrics.channels for r in FAILURE_REASONS)}
        for channel, reason in sorted(keys):
            family.add_metric([channel, reason], counts.get((channel, reason), 0))
        return family

    def describe(self) -> Iterator[Metric]:
        """The families, without reading the outbox: lets the registry refuse a name clash."""
        yield CounterMetricFamily("omealert_notifications_failed", "", labels=["channel", "reason"])
        for name in ("sent", "dropped", "deferred"):
            yield CounterMetricFamily(f"omealert_notifications_{name}", "", labels=["channel"])
