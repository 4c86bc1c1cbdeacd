"""``watch``'s fleet options: ``--shard K/N`` over the config's ``shard:``, and the hook.

Kept out of ``watch.py``: the shard is applied to every config the watcher loads (at
start and on each reload), and the Alertmanager senders, heartbeat and their metrics are
attached to the runner in one place.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from ..config.shard import parse_shard
from ..rules import ShardSpec

if TYPE_CHECKING:
    from ..clock import Clock
    from ..metrics import Metrics
    from ..rules import Settings
    from ..runner import Runner
    from ..runner.fleet import FleetHook

log = logging.getLogger("omealert")

__all__ = ["attach", "for_shard", "shard_option"]


def shard_option(text: str | None) -> tuple[int, int] | None:
    """``--shard``'s value; ValueError says what is wrong."""
    return None if text is None else parse_shard(text)


def for_shard(settings: Settings, cli: tuple[int, int] | None) -> Settings:
    """``settings`` with ``--shard`` (if given) over ``shard:``, cut to this shard's servers."""
    from ..ome.shard import shard_servers

    if cli is not None:
        settings = replace(settings, shard=ShardSpec(cli[0], cli[1], settings.shard.by))
    return shard_servers(settings)


def describe_shard(full: Settings, mine: Settings) -> str:
    shard = mine.shard
    if shard.count <= 1:
        return ""
    if shard.by == "app":
        return f"shard {shard} by app: this shard's apps of every server"
    line = f"shard {shard} by server: {len(mine.servers)} of {len(full.servers)} server(s)"
    if not mine.servers:
        line += " (none is this shard's: it polls nothing until the servers change)"
    return line


def shard_lines(stored: str | None) -> list[str]:
    """``status``: which shard the watcher writing this state file is (when sharded)."""
    shard, _, by = (stored or "").partition(" ")
    if not shard or shard.endswith("/1"):
        return []
    return [f"this watcher is shard {shard} of its fleet (by {by or 'server'})"]


def attach_for_check(runner: Runner, clock: Clock) -> None:
    """``check --notify``: post to the Alertmanagers and ping the heartbeat too."""
    from ..runner.fleet import FleetHook, wants_fleet

    if wants_fleet(runner.settings):
        runner.fleet = FleetHook(
            runner.settings,
            lambda inst, rule, now: runner.planner.view(inst, rule, now),
            clock=clock,
        )


async def flush_for_check(hook: FleetHook, timeout: float) -> dict[str, dict[str, int]]:
    """Post what the check's tick queued, once: the alerts each Alertmanager took, and the
    posts that failed."""
    await hook.flush(timeout)
    counts = list(hook.pool.counters())
    return {
        "alertmanager_sent": {name: c.sent for name, c in counts},
        "alertmanager_errors": {name: c.errors for name, c in counts if c.errors},
    }


def attach(runner: Runner, metrics: Metrics, clock: Clock) -> None:
    """Give ``runner`` its Alertmanager senders and heartbeat, and ``metrics`` their series."""
    from ..runner.fleet import FleetHook, wants_fleet
    from ..runner.fleet_metrics import FleetCollector

    hook = None
    if wants_fleet(runner.settings):
        hook = FleetHook(
            runner.settings,
            lambda inst, rule, now: runner.planner.view(inst, rule, now),
            clock=clock,
        )
    runner.fleet = hook
    collector = FleetCollector(hook, lambda: runner.settings)
    metrics.registry.register(collector)
    metrics.fleet = collector.fingerprint
    if hook is not None and runner.settings.alertmanagers:
        log.info(
            "posting alerts to %d alertmanager(s): %s",
            len(runner.settings.alertmanagers),
            ", ".join(hook.pool.names),
        )
