"""The names ``mute_time_intervals`` and ``active_time_intervals`` refer to, checked.

Rules, routes and channels name intervals of the top-level ``time_intervals``; an unknown
name is an error at the reference, and a name defined twice an error at the second one.
The names end up on the runtime ``Rule``, ``RouteSpec`` and ``ChannelSpec``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from .messages import suggest
from .time_intervals import NamedInterval

if TYPE_CHECKING:
    from ..errors import ConfigIssue
    from ..rules import ChannelSpec, RouteSpec, Rule
    from .parts import Parts
    from .yamlsource import KeyPath, YamlSource

__all__ = ["check_time_intervals"]


def check_time_intervals(
    src: YamlSource,
    parts: Parts,
    issues: list[ConfigIssue],
    rules: tuple[Rule, ...],
    routes: tuple[RouteSpec, ...],
    channels: dict[str, ChannelSpec],
) -> tuple[
    tuple[Rule, ...], tuple[RouteSpec, ...], dict[str, ChannelSpec], dict[str, NamedInterval]
]:
    """Check every reference to a named interval and put the names on the runtime objects.

    An unknown name is an error at the reference; a name defined twice, at the second one.
    """
    known: dict[str, NamedInterval] = {}
    for i, named in parts.time_intervals:
        if named.name in known:
            issues.append(
                src.issue(("time_intervals", i, "name"), f"duplicate time interval '{named.name}'")
            )
        known[named.name] = NamedInterval(named.name, tuple(named.time_intervals))
    names = list(dict.fromkeys(parts.time_interval_names))

    def refs(path: KeyPath, model: object) -> tuple[tuple[str, ...], tuple[str, ...]]:
        out: list[tuple[str, ...]] = []
        for key in ("mute_time_intervals", "active_time_intervals"):
            listed: Iterable[str] = getattr(model, key, None) or ()
            for j, name in enumerate(listed):
                if name not in names:
                    hint = suggest(name, names, "defined time intervals")
                    message = f"unknown time interval '{name}'"
                    message += hint or " (no time_intervals: are defined)"
                    issues.append(src.issue((*path, key, j), message))
            out.append(tuple(listed))
        return out[0], out[1]

    by_name = {r.name: (i, r) for i, r in parts.rules}
    new_rules = []
    for rule in rules:
        i, model = by_name[rule.name]
        mute, active = refs(("rules", i), model)
        new_rules.append(replace(rule, mute_time_intervals=mute, active_time_intervals=active))
    new_routes = []
    for route, (i, route_model) in zip(routes, parts.routes, strict=True):
        mute, active = refs(("routes", i), route_model)
        new_routes.append(replace(route, mute_time_intervals=mute, active_time_intervals=active))
    new_channels = {}
    for name, ch in channels.items():
        ch_model = parts.channels[name]
        mute, active = refs(("channels", name), ch_model)
        new_channels[name] = replace(
            ch,
            notify_acks=ch_model.notify_acks,
            mute_time_intervals=mute,
            active_time_intervals=active,
        )
    return tuple(new_rules), tuple(new_routes), new_channels, known
