"""``servers[].role`` and ``servers[].origin``: which servers are OVT origins and edges.

An edge relays its origin's streams over OVT; its relayed streams read the same stream on
the origin as ``origin.*`` fields (``engine/relay.py``). Checked here, across servers: an
edge names its origin, the origin is a configured server of role ``origin``, and only an
edge names one. Each problem is reported where it is written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..rules import ServerSpec
from .messages import suggest

if TYPE_CHECKING:
    from .model import ServerModel
    from .yamlsource import KeyPath

__all__ = ["with_roles"]


def with_roles(
    models: Sequence[tuple[int, ServerModel]],
    servers: Sequence[ServerSpec],
    add: Callable[[KeyPath, str], None],
) -> tuple[ServerSpec, ...]:
    """``servers`` with their role and origin, after reporting every problem to ``add``."""
    roles = {m.name: m.role for _, m in models}
    names = list(roles)
    for i, m in models:
        if m.role == "edge" and m.origin is None:
            add(("servers", i, "role"), "an edge needs 'origin': the name of its origin server")
        if m.origin is None:
            continue
        where: KeyPath = ("servers", i, "origin")
        if m.role != "edge":
            add(where, "only a server with 'role: edge' has an origin; add 'role: edge'")
        elif m.origin == m.name:
            add(where, "an edge cannot be its own origin")
        elif m.origin not in roles:
            hint = suggest(m.origin, names, "servers")
            add(where, f"unknown server '{m.origin}'{hint}")
        elif roles[m.origin] != "origin":
            add(where, f"server '{m.origin}' is not an origin: give it 'role: origin'")
    by_name = {m.name: m for _, m in models}
    out = []
    for spec in servers:
        model = by_name.get(spec.name)
        if model is not None:
            spec = dataclasses.replace(spec, role=model.role, origin=model.origin)
        out.append(spec)
    return tuple(out)
