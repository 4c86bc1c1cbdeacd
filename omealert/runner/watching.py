"""What the runner keeps for people rather than for alerting: health states and stories.

The health states (``engine/health.py``) for the status page, ``status`` and ``/metrics``,
kept when the watcher serves the page; the stream-ended report's stories while
``stream_report:`` is set. Both need every stream's stats, so the poll plan asks for them.
Only full polls feed them: a targeted poll (a few streams an OME event named) lists too
little of its server to say which streams are gone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..engine.alerts import Instance
from ..engine.health import HealthBook
from ..engine.summary import health_json
from ..model import PollResult
from ..notify.report import Reporter
from ..ome.plan import PollPlan, with_stream_stats
from ..ome.shard import shard_plans
from ..rules import Settings
from ..state.records import OutboxMessage


class Watching:
    """The health book (None unless asked for) and the stream-report stories."""

    def __init__(self, settings: Settings, *, health: bool) -> None:
        names = [s.name for s in settings.servers]
        self.health = HealthBook(names, settings.page.stale_after_s) if health else None
        self.reporter = Reporter()

    def plans(self, settings: Settings) -> dict[str, PollPlan]:
        """Each server's plan (this shard's part of it), with every stream's stats when
        health states or stream reports need them."""
        plans = shard_plans(settings)
        if self.health is None and not settings.page.report_channels:
            return plans
        return {name: with_stream_stats(plan) for name, plan in plans.items()}

    def reload(self, settings: Settings) -> None:
        if self.health is not None:
            self.health.configure([s.name for s in settings.servers], settings.page.stale_after_s)

    def observe(
        self,
        polls: Sequence[PollResult],
        instances: Iterable[Instance],
        absent_rules: frozenset[str],
        settings: Settings,
        now: float,
    ) -> list[OutboxMessage]:
        """Take in a tick's polls; the reports of the streams that ended."""
        full = [p for p in polls if p.covers is None]
        live = list(instances)
        if self.health is not None and full:
            self.health.observe(full, live, absent_rules, now)
        return self.reporter.observe(full, live, settings, now)

    def meta(self) -> dict[str, str]:
        """What the state file keeps for ``omealert status``."""
        return {"health": health_json(self.health)} if self.health is not None else {}
