"""The config keys of flap detection and server dependencies, checked and applied.

Kept beside ``check`` (which builds the rest of ``Settings``) rather than inside it: these
keys are checked across sections of their own — ``depends_on`` names other servers and
must not form a cycle — and then laid over the settings ``check`` built.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import ConfigIssue
from ..rules import FlapSpec, Settings
from .messages import suggest
from .model import FlapModel

if TYPE_CHECKING:
    from .parts import Parts
    from .yamlsource import KeyPath, YamlSource

__all__ = ["apply_lifecycle", "flap_spec"]


def flap_spec(value: FlapModel) -> FlapSpec | None:
    """``flapping:`` as the engine takes it: None when turned off."""
    if not value.enabled:
        return None
    return FlapSpec(window=value.window, high=value.high, low=value.low)


def apply_lifecycle(
    src: YamlSource, parts: Parts, issues: list[ConfigIssue], settings: Settings | None
) -> Settings | None:
    """Check ``depends_on`` (appending to ``issues``) and lay flapping, dependency causes,
    ``depends_on`` and ``dependency_grace`` over ``settings``."""
    _check_depends_on(src, parts, issues)
    if settings is None or issues:
        return None
    default_flap = flap_spec(parts.defaults.flapping)
    models = {r.name: r for _, r in parts.rules}
    rules = []
    for rule in settings.rules:
        model = models[rule.name]
        flap = default_flap if model.flapping is None else flap_spec(model.flapping)
        rules.append(replace(rule, flapping=flap, dependency_cause=model.dependency_cause))
    depends = {s.name: tuple(s.depends_on) for _, s in parts.servers}
    servers = tuple(replace(s, depends_on=depends.get(s.name, ())) for s in settings.servers)
    api = parts.api_down.flapping
    api_flap = default_flap if api is None else flap_spec(api)
    return replace(
        settings,
        rules=tuple(rules),
        servers=servers,
        api_down=replace(settings.api_down, flapping=api_flap),
        dependency_grace_s=parts.dependency_grace,
    )


def _check_depends_on(src: YamlSource, parts: Parts, issues: list[ConfigIssue]) -> None:
    """Known names, not itself, no cycles; each problem at the entry that causes it."""
    known = parts.server_names
    graph: dict[str, list[tuple[str, KeyPath]]] = {}
    for i, server in parts.servers:
        for j, parent in enumerate(server.depends_on):
            path: KeyPath = ("servers", i, "depends_on", j)
            if parent == server.name:
                issues.append(src.issue(path, f"server '{parent}' cannot depend on itself"))
            elif parent not in known:
                hint = suggest(parent, known, "servers")
                issues.append(src.issue(path, f"unknown server '{parent}' in depends_on{hint}"))
            else:
                graph.setdefault(server.name, []).append((parent, path))
    # A depth-first walk in file order; the edge that closes a cycle is where it is said.
    done: set[str] = set()
    for start in [s.name for _, s in parts.servers]:
        stack: list[str] = []
        _walk(start, graph, stack, done, src, issues)


def _walk(
    name: str,
    graph: dict[str, list[tuple[str, KeyPath]]],
    stack: list[str],
    done: set[str],
    src: YamlSource,
    issues: list[ConfigIssue],
) -> None:
    if name in done:
        return
    stack.append(name)
    for parent, path in graph.get(name, ()):
        if parent in stack:
            loop = [*stack[stack.index(parent) :], parent]
            issues.append(src.issue(path, f"depends_on makes a cycle: {' → '.join(loop)}"))
        else:
            _walk(parent, graph, stack, done, src, issues)
    stack.pop()
    done.add(name)
