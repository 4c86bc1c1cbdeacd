"""What the status page and its JSON API show, as plain dicts with stable keys.

One builder for both, so a script reading ``/api/v1/streams`` sees exactly what a person
sees on the page. Everything comes from the running watcher (its health book, its engine's
alerts, its silences and inhibit rules); nothing here holds a secret: servers are shown by
name (never their URL or token), alerts by rule, target and value, silences by ID and
comment.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..engine.alerts import Instance
from ..engine.health import RANK, Health, HealthBook, TargetHealth
from ..engine.lifecycle import LifecycleView
from ..model import AlertState, Target
from ..notify.windows import Quiet
from ..rules import InhibitSpec, Matcher, matches_all
from ..state.records import Silence


def _value(value: object) -> object:
    if isinstance(value, float) and value != value:
        return None
    return value


def health_row(h: TargetHealth) -> dict[str, Any]:
    """One target's health: the keys ``/api/v1/health`` and ``/api/v1/streams`` promise."""
    t = h.target
    row: dict[str, Any] = {
        "key": t.key,
        "server": t.server,
        "vhost": t.vhost,
        "app": t.app,
        "stream": t.stream,
        "state": h.state.value,
        "reason": h.reason,
        "since": h.since,
        "viewers": _value(h.viewers),
        "bitrate": _value(h.bitrate),
    }
    if h.counts or t.stream is None:
        row["counts"] = dict(h.counts)
        row["streams"] = sum(h.counts.values())
    return row


def server_rows(book: HealthBook, now: float) -> list[dict[str, Any]]:
    """One line per server: reachable or not, OME's version, last poll age, streams by state."""
    out = []
    for name, h in book.servers.items():
        seen = book.seen.get(name)
        row = health_row(h)
        row["reachable"] = seen is not None and seen.at is not None and seen.error is None
        row["version"] = seen.version if seen is not None else None
        at = seen.at if seen is not None else None
        row["last_poll_age"] = None if at is None else max(0.0, now - at)
        out.append(row)
    return out


def sorted_streams(
    book: HealthBook, *, state: str | None = None, query: str = ""
) -> list[TargetHealth]:
    """Streams, problems first (worst state, then longest in it), narrowed by state and name."""
    rows: Iterable[TargetHealth] = book.streams.values()
    if state:
        rows = [h for h in rows if h.state.value == state]
    if query:
        q = query.lower()
        rows = [h for h in rows if q in h.target.key.lower()]
    return sorted(rows, key=lambda h: (-RANK[h.state], h.since, h.target))


@dataclass(frozen=True, slots=True)
class Muting:
    """Why an alert says nothing now: the silences that match it, the alert that inhibits it."""

    silences: tuple[tuple[Silence, tuple[Matcher, ...]], ...] = ()
    inhibit: tuple[InhibitSpec, ...] = ()
    #: silences and acknowledgements as ``status`` shows them (``notify/windows.py``)
    quiet: Quiet | None = None
    #: flapping and dependency holds as ``status`` shows them (``engine/lifecycle.py``)
    lifecycle: LifecycleView | None = None


def alert_rows(instances: Iterable[Instance], muting: Muting, now: float) -> list[dict[str, Any]]:
    """Alerts firing and pending, firing first, then by severity, rule and target.

    Each row is one dict, the API's and the page's alike: what later says more about an
    alert (an acknowledgement, flapping, the server's OME version or origin) is one more
    key set here, and one more cell in ``templates/macros.html``'s ``alerts_table``.
    """
    live = [i for i in instances if i.state in (AlertState.FIRING, AlertState.PENDING)]
    inhibitors = _inhibitors(live, muting.inhibit)
    order = {"critical": 0, "warning": 1, "info": 2}
    live.sort(
        key=lambda i: (
            i.state is not AlertState.FIRING,
            order.get(i.labels.get("severity", ""), 3),
            i.rule,
            i.target,
        )
    )
    out = []
    for inst in live:
        silenced = [s.id for s, m in muting.silences if matches_all(m, inst.labels)]
        held: dict[str, Any] = {"ack": None, "silence": None}
        if muting.quiet is not None:
            held = muting.quiet.view(inst.rule, inst.target.key, inst.fired_at, inst.labels)
        out.append(
            {
                "rule": inst.rule,
                "target": inst.target.key,
                "state": inst.state.value,
                "severity": inst.labels.get("severity", ""),
                "value": _value(inst.value),
                "since": inst.active_since,
                "fired_at": inst.fired_at,
                "summary": inst.summary,
                "silenced_by": silenced,
                "inhibited_by": inhibitors.get(inst.key),
                **held,
                **_lifecycle(muting.lifecycle, inst),
            }
        )
    return out


def _lifecycle(view: LifecycleView | None, inst: Instance) -> dict[str, Any]:
    """``flapping``, ``held`` and ``holds``, the keys ``status`` and ``check`` show too."""
    if view is None:
        return {"flapping": None, "held": None, "holds": None}
    return view.fields(inst.rule, inst.target.key)


def _inhibitors(
    live: Sequence[Instance], rules: Sequence[InhibitSpec]
) -> dict[tuple[str, str], str]:
    """Each inhibited alert's key → the firing alert muting it (``rule on target``)."""
    if not rules:
        return {}
    firing = [i for i in live if i.state is AlertState.FIRING]
    out: dict[tuple[str, str], str] = {}
    for spec in rules:
        sources = [i for i in firing if matches_all(spec.source, i.labels)]
        for inst in firing:
            if inst.key in out or not matches_all(spec.target, inst.labels):
                continue
            if matches_all(spec.source, inst.labels):
                continue
            mine = tuple(inst.labels.get(n, "") for n in spec.equal)
            for src in sources:
                if tuple(src.labels.get(n, "") for n in spec.equal) == mine:
                    out[inst.key] = f"{src.rule} on {src.target.key}"
                    break
    return out


def alerts_about(instances: Iterable[Instance], target: Target) -> list[Instance]:
    """The alerts on ``target`` itself or on one of its pushes and records."""
    base = (target.server, target.vhost, target.app, target.stream)
    return [
        i
        for i in instances
        if (i.target.server, i.target.vhost, i.target.app, i.target.stream) == base
        and i.target.output != "queue"
    ]


STATES = tuple(h.value for h in sorted(Health, key=lambda h: -RANK[h]))
