"""What a tick writes to the state file's ``meta`` table besides alerts: the facts
``status``, ``history`` and a restarted watcher read back (values that could not be computed,
OME versions, OME's last events, the shard, flapping and dependency books, health).

Why its own module: every feature that shows something in ``status`` adds a key here, and
the tick itself should not grow with each of them.
"""

from __future__ import annotations

import json
from heapq import nsmallest
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine.engine import Engine
    from ..ome.events import EventBook
    from ..rules import Settings
    from .watching import Watching

__all__ = ["no_value_summary", "tick_meta"]


def tick_meta(
    engine: Engine, settings: Settings, events: EventBook | None, watching: Watching, now: float
) -> dict[str, str]:
    """The ``meta`` entries one tick saves, in the same transaction as its alerts."""
    return {
        "last_tick_at": repr(now),
        "no_value": no_value_summary(engine),
        "ome_versions": json.dumps(engine.versions, sort_keys=True),
        **(events.meta() if events is not None else {}),
        "shard": f"{settings.shard} {settings.shard.by}",
        "flapping": engine.flapping.dump(),
        "dependencies": engine.dependencies.dump(),
        **watching.meta(),
    }


def no_value_summary(engine: Engine) -> str:
    """JSON of the rules whose value could not be computed last tick, for ``status``."""
    # nsmallest on the targets themselves (tuples, compared in C): with 10,000 streams
    # and no value yet, sorting every key string each tick cost a tenth of the tick
    summary = {
        rule: {"count": len(targets), "examples": [t.key for t in nsmallest(5, targets)]}
        for rule, targets in sorted(engine.no_value.items())
    }
    return json.dumps(summary, sort_keys=True)
