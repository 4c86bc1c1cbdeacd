"""Flapping and dependency holds as ``status`` and ``check --format json`` show them.

Both commands show the same three keys per alert, so a status page can read either:

* ``flapping``: None, or ``{"flapping", "share", "since", "evaluations", "window", "high",
  "low"}`` for an alert the flap detector tracks (``share`` is a fraction: 0.42 = 42%);
* ``held``: None, or ``{"by": [{"rule", "target"}], "until"}`` for a firing alert held
  by its parent server's cause (``until``: when its hold ends, None while a cause fires);
* ``holds``: None, or ``{"held", "servers", "ended_at"}`` for a cause holding alerts.

``check`` reads them from the engine it ran; ``status`` from what the watcher last wrote
into the state file's meta (``flapping`` and ``dependencies``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..engine.engine import Engine

__all__ = ["LifecycleView", "engine_view", "mark", "stored_view"]

Key = tuple[str, str]


class LifecycleView:
    """The three keys for any alert, by (rule, target key)."""

    def __init__(
        self,
        flapping: dict[Key, dict[str, Any]],
        held: dict[Key, dict[str, Any]],
        holds: dict[Key, dict[str, Any]],
        labels: dict[Key, dict[str, Any]] | None = None,
    ) -> None:
        self.flapping, self.held, self.holds = flapping, held, holds
        self.labels = labels or {}

    def between_flaps(self, shown: set[Key]) -> list[dict[str, Any]]:
        """``status`` rows for flapping alerts that are not pending or firing right now:
        state ``inactive``, so a page lists every alert whose messages are held."""
        rows = []
        for key, flap in sorted(self.flapping.items()):
            if key in shown or not flap.get("flapping"):
                continue
            labels = self.labels.get(key) or {}
            rows.append(
                {
                    "state": "inactive",
                    "rule": key[0],
                    "target": key[1],
                    "severity": str(labels.get("severity", "")),
                    "value": None,
                    "since": "",
                    "silenced": False,
                    "summary": "flapping; not firing now",
                    "ack": None,
                    "silence": None,
                    "ome_events": [],
                    **self.fields(*key),
                }
            )
        return rows

    def fields(self, rule: str, target: str) -> dict[str, Any]:
        key = (rule, target)
        return {
            "flapping": self.flapping.get(key),
            "held": self.held.get(key),
            "holds": self.holds.get(key),
        }


def engine_view(engine: Engine) -> LifecycleView:
    """What a ``check`` run's engine knows."""
    data = json.loads(engine.flapping.dump())
    deps = json.loads(engine.dependencies.dump())
    return _view(data, deps)


def stored_view(flapping: str | None, dependencies: str | None) -> LifecycleView:
    """What the watcher last wrote; a value that does not read shows nothing."""
    return _view(_object(flapping), _object(dependencies))


def _object(raw: str | None) -> dict[str, Any]:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _keyed(rows: Any, drop: tuple[str, ...] = ()) -> dict[Key, dict[str, Any]]:
    out: dict[Key, dict[str, Any]] = {}
    if not isinstance(rows, dict):
        return out
    for name, row in rows.items():
        rule, _, target = str(name).partition("\t")
        if target and isinstance(row, dict):
            out[(rule, target)] = {k: v for k, v in row.items() if k not in drop}
    return out


def _view(flapping: dict[str, Any], deps: dict[str, Any]) -> LifecycleView:
    labels = {k: v.get("labels") or {} for k, v in _keyed(flapping).items()}
    return LifecycleView(
        _keyed(flapping, drop=("bits", "told", "labels")),
        _keyed(deps.get("held")),
        _keyed(deps.get("causes")),
        labels,
    )


def mark(fields: dict[str, Any]) -> str:
    """The text marks of ``check`` and ``status``: `` (flapping)``, `` (held by …)``."""
    out = ""
    flap = fields.get("flapping")
    if flap and flap.get("flapping"):
        out += f" (flapping: {flap.get('share', 0):.0%})"
    held = fields.get("held")
    if held:
        by = ", ".join(f"{b['target']} {b['rule']}" for b in held.get("by", []))
        out += f" (held by {by})"
    holds = fields.get("holds")
    if holds:
        out += f" (holds {holds.get('held')} alert(s) on {', '.join(holds.get('servers', []))})"
    return out
