"""The parts of a config file that validated, for the cross-checks to run on.

Kept apart from ``load`` (which runs the checks) and ``check`` (which reads the parts) so
that neither imports the other: the record both use lives below them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .model import (
    AlertmanagerModel,
    ApiDownModel,
    ChannelModel,
    ConfigModel,
    DefaultsModel,
    HealthModel,
    HeartbeatModel,
    InhibitModel,
    ListenAuthModel,
    OmeEventsModel,
    RouteModel,
    RuleModel,
    ServerModel,
    StreamReportModel,
)
from .time_intervals import NamedTimeIntervalModel

__all__ = ["Parts", "salvage"]

_M = TypeVar("_M", bound=BaseModel)


@dataclass(slots=True)
class Parts:
    """The valid pieces of a file, each with its index in the file for error positions."""

    servers: list[tuple[int, ServerModel]] = field(default_factory=list)
    channels: dict[str, ChannelModel] = field(default_factory=dict)
    defaults: DefaultsModel = field(default_factory=DefaultsModel)
    rules: list[tuple[int, RuleModel]] = field(default_factory=list)
    routes: list[tuple[int, RouteModel]] = field(default_factory=list)
    inhibit: list[tuple[int, InhibitModel]] = field(default_factory=list)
    api_down: ApiDownModel = field(default_factory=ApiDownModel)
    ome_events: OmeEventsModel | None = None
    interval: float = 10.0
    outage_tolerance: float = 3600.0
    delivery_max_age: float = 86400.0
    state_retention: float = 30 * 86400.0
    time_intervals: list[tuple[int, NamedTimeIntervalModel]] = field(default_factory=list)
    notify_acks: bool = True
    health: HealthModel = field(default_factory=HealthModel)
    listen_auth: ListenAuthModel | None = None
    stream_report: StreamReportModel | None = None
    dependency_grace: float = 120.0
    #: Names as written, valid or not, so a channel with a bad URL still "exists" for the
    #: rules that name it and only one error is reported.
    channel_names: list[str] = field(default_factory=list)
    server_names: list[str] = field(default_factory=list)
    time_interval_names: list[str] = field(default_factory=list)
    alertmanagers: list[tuple[int, AlertmanagerModel]] = field(default_factory=list)
    heartbeat: HeartbeatModel | None = None
    #: resend_delay, replica, shard and shard_by: the whole file's, or their defaults
    fleet: ConfigModel | None = None


def salvage(data: Any, model: ConfigModel | None) -> Parts:
    """The parts of ``data`` to cross-check: all of ``model`` if it validated, else
    whatever validates piece by piece (the whole-file errors are already reported)."""
    raw = data if isinstance(data, dict) else {}
    parts = Parts()
    channels = raw.get("channels")
    if isinstance(channels, dict):
        parts.channel_names = [str(k) for k in channels]
    servers = raw.get("servers")
    if isinstance(servers, list):
        parts.server_names = [
            s["name"] for s in servers if isinstance(s, dict) and isinstance(s.get("name"), str)
        ]
    intervals = raw.get("time_intervals")
    if isinstance(intervals, list):
        parts.time_interval_names = [
            t["name"] for t in intervals if isinstance(t, dict) and isinstance(t.get("name"), str)
        ]
    if model is not None:
        parts.time_intervals = list(enumerate(model.time_intervals))
        parts.notify_acks = model.notify_acks
        parts.servers = list(enumerate(model.servers))
        parts.channels = dict(model.channels)
        parts.defaults = model.defaults
        parts.rules = list(enumerate(model.rules))
        parts.routes = list(enumerate(model.routes))
        parts.inhibit = list(enumerate(model.inhibit))
        parts.api_down = model.ome_api_down
        parts.ome_events = model.ome_events
        parts.interval = model.interval
        parts.outage_tolerance = model.outage_tolerance
        parts.delivery_max_age = model.delivery_max_age
        parts.state_retention = model.state_retention
        parts.health, parts.listen_auth = model.health, model.listen_auth
        parts.stream_report = model.stream_report
        parts.alertmanagers = list(enumerate(model.alertmanagers))
        parts.heartbeat = model.heartbeat
        parts.fleet = model
        parts.dependency_grace = model.dependency_grace
        return parts
    parts.alertmanagers = _items(AlertmanagerModel, raw.get("alertmanagers"))
    if raw.get("heartbeat") is not None:
        parts.heartbeat = _one(HeartbeatModel, raw.get("heartbeat"))
    parts.servers = _items(ServerModel, raw.get("servers"))
    parts.rules = _items(RuleModel, raw.get("rules"))
    parts.routes = _items(RouteModel, raw.get("routes"))
    parts.inhibit = _items(InhibitModel, raw.get("inhibit"))
    parts.time_intervals = _items(NamedTimeIntervalModel, raw.get("time_intervals"))
    if isinstance(channels, dict):
        for name, value in channels.items():
            ok = _one(ChannelModel, value)
            if ok is not None:
                parts.channels[str(name)] = ok
    parts.defaults = _one(DefaultsModel, raw.get("defaults", {})) or DefaultsModel()
    parts.api_down = _one(ApiDownModel, raw.get("ome_api_down", {})) or ApiDownModel()
    if raw.get("ome_events") is not None:
        parts.ome_events = _one(OmeEventsModel, raw.get("ome_events"))
    parts.health = _one(HealthModel, raw.get("health", {})) or HealthModel()
    if raw.get("listen_auth") is not None:
        parts.listen_auth = _one(ListenAuthModel, raw.get("listen_auth"))
    if raw.get("stream_report") is not None:
        parts.stream_report = _one(StreamReportModel, raw.get("stream_report"))
    return parts


def _items(model: type[_M], value: Any) -> list[tuple[int, _M]]:
    if not isinstance(value, list):
        return []
    out = []
    for i, item in enumerate(value):
        ok = _one(model, item)
        if ok is not None:
            out.append((i, ok))
    return out


#: Keys whose value other checks depend on: if one of them is broken, putting its default
#: in its place would cause false errors elsewhere (a wrong scope fails every condition).
_ENTANGLED: dict[type[BaseModel], frozenset[str]] = {
    ServerModel: frozenset({"name", "api_version"}),
    RuleModel: frozenset({"scope", "match", "servers"}),
}


def _one(model: type[_M], value: Any) -> _M | None:
    """``value`` validated, or with its broken keys dropped (so defaults take their place)
    when that is safe, so a typo in one key does not hide the problems of the others."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        if not isinstance(value, dict):
            return None
        broken = {err["loc"][0] for err in exc.errors() if err["loc"]}
        if broken & _ENTANGLED.get(model, frozenset()):
            return None
    try:
        return model.model_validate({k: v for k, v in value.items() if k not in broken})
    except ValidationError:
        return None
