"""The package's shape: wings per stage, imports without cycles, a guarded library API.

These read the source with ``ast`` (no import of the package under test), so a cycle hidden
behind a lazy or ``TYPE_CHECKING`` import is caught as well as one that breaks at import.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import omealert

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "omealert"

#: The modules allowed at the top of ``omealert/``: the shared ground, the runtime rules,
#: the tick, the metrics, and the package's own entry points.
TOP_LEVEL = {
    "__init__",
    "__main__",
    "clock",
    "durations",
    "errors",
    "logsetup",
    "matchers",
    "metrics",
    "model",
    "rules",
}
MAX_LINES = 450

#: The library API. Change it only on purpose: a name removed here breaks users' code.
LIBRARY_API = [
    "AlertState",
    "ConfigError",
    "ConfigIssue",
    "DeliveryError",
    "Engine",
    "ExprError",
    "OmeClient",
    "OmealertError",
    "PollResult",
    "Rule",
    "Sample",
    "Scope",
    "Settings",
    "Severity",
    "SourceError",
    "SourceErrorKind",
    "StateError",
    "StateStore",
    "Target",
    "__version__",
    "load_config",
    "load_config_text",
    "poll_all",
]


@dataclass(frozen=True, slots=True)
class Module:
    name: str  # dotted, e.g. omealert.ome.wire
    path: Path

    @property
    def package(self) -> str:
        return self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]

    @property
    def wing(self) -> str | None:
        """The sub-package it lives in, or None for a module at the top of ``omealert/``."""
        parts = self.name.split(".")
        if len(parts) > 2 or (len(parts) == 2 and self.path.name == "__init__.py"):
            return parts[1]
        return None


@dataclass(frozen=True, slots=True)
class Import:
    source: Module
    target: str  # the module imported from, dotted
    names: tuple[str, ...]
    line: int


def modules() -> list[Module]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out.append(Module(".".join(parts), path))
    return out


def imports(module: Module) -> Iterator[Import]:
    """Every import of another omealert module, lazy and ``TYPE_CHECKING`` ones included."""
    for node in ast.walk(ast.parse(module.path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] == "omealert":
                yield Import(module, target, tuple(a.name for a in node.names), node.lineno)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "omealert":
                    yield Import(module, alias.name, (), node.lineno)


def module_graph() -> dict[str, set[str]]:
    """Module → the modules it imports (``from pkg import mod`` counts as importing mod)."""
    known = {m.name for m in modules()}
    graph: dict[str, set[str]] = {m.name: set() for m in modules()}
    for m in modules():
        for imp in imports(m):
            targets = {f"{imp.target}.{n}" for n in imp.names} & known or {imp.target}
            graph[m.name] |= {t for t in targets if t in known and t != m.name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def wing_of(name: str) -> str:
    parts = name.split(".")
    if len(parts) > 1 and (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return name


class TestImports:
    def test_no_module_imports_one_that_imports_it_back(self) -> None:
        """No import cycle among the package's modules, however indirect."""
        assert cycles(module_graph()) == []

    def test_wings_import_each_other_without_a_cycle(self) -> None:
        """Wings form layers: no wing reaches, through its modules, one that reaches it."""
        graph: dict[str, set[str]] = {}
        for source, targets in module_graph().items():
            if source == "omealert":  # the library API re-exports from every wing
                continue
            a = wing_of(source)
            graph.setdefault(a, set())
            for t in targets:
                b = wing_of(t)
                graph.setdefault(b, set())
                if a != b and t != "omealert":
                    graph[a].add(b)
        assert cycles(graph) == []

    def test_the_cycle_finder_finds_a_cycle(self) -> None:
        """The check above can fail: a two-module loop and a three-module loop are found."""
        graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
        assert sorted(cycles(graph)) == [["a", "b"], ["c", "d", "e"]]

    def test_no_private_name_is_imported_across_wings(self) -> None:
        """A name starting with ``_`` is used only inside the wing that defines it."""
        crossings = [
            f"{imp.source.path.relative_to(REPO)}:{imp.line}: {name} from {imp.target}"
            for m in modules()
            for imp in imports(m)
            for name in imp.names
            if name.startswith("_")
            and not name.startswith("__")
            and wing_of(imp.target) != (m.wing or m.name)
        ]
        assert crossings == []

    def test_the_simulator_imports_nothing_from_the_rest(self) -> None:
        """The simulator stays an independent reading of OME's API (see its docstring)."""
        outside = [
            f"{imp.source.name}: {imp.target}"
            for m in modules()
            if m.wing == "simulator"
            for imp in imports(m)
            if not imp.target.startswith("omealert.simulator")
        ]
        assert outside == []


class TestShape:
    def test_only_shared_ground_sits_at_the_top(self) -> None:
        """Every module of a stage lives in its wing; the top holds only the listed few."""
        top = {m.name.split(".")[1] for m in modules() if m.wing is None and m.name != "omealert"}
        assert top | {"__init__"} == TOP_LEVEL

    def test_no_module_is_too_long_to_read(self) -> None:
        """Modules stay small enough to hold in one's head."""
        long = {
            str(m.path.relative_to(REPO)): n
            for m in modules()
            if (n := len(m.path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
        }
        assert long == {}

    @pytest.mark.parametrize(
        "wing", sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    )
    def test_a_wing_init_holds_only_a_docstring_and_its_own_names(self, wing: str) -> None:
        """A wing's ``__init__`` defines nothing; it may re-export its own modules' names."""
        tree = ast.parse((PACKAGE / wing / "__init__.py").read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                continue  # the docstring
            if isinstance(node, ast.ImportFrom) and (
                node.level == 1 or node.module == "__future__"
            ):
                continue
            if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == [
                "__all__"
            ]:
                continue
            pytest.fail(f"omealert/{wing}/__init__.py:{node.lineno}: {ast.unparse(node)[:60]}")


class TestLibraryApi:
    def test_all_is_the_agreed_list_sorted(self) -> None:
        """``omealert.__all__`` changes only with this list, and stays sorted."""
        assert omealert.__all__ == LIBRARY_API
        assert sorted(omealert.__all__) == omealert.__all__

    def test_all_names_exactly_the_lazy_homes(self) -> None:
        """The written-out ``__all__`` and the lazy-import table never drift apart."""
        assert set(omealert.__all__) - {"__version__"} == set(omealert._HOMES)

    @pytest.mark.parametrize("name", LIBRARY_API)
    def test_every_exported_name_resolves(self, name: str) -> None:
        """Each exported name is really there (loaded on first use)."""
        assert getattr(omealert, name) is not None

    def test_every_error_is_exported_under_the_base(self) -> None:
        """Callers can catch any omealert error by the exported base class."""
        from omealert import errors

        subclasses = {
            name
            for name, value in vars(errors).items()
            if isinstance(value, type) and issubclass(value, omealert.OmealertError)
        }
        assert subclasses <= set(omealert.__all__)

    def test_an_unknown_name_is_an_attribute_error(self) -> None:
        """A misspelt name fails the way Python's own modules fail."""
        with pytest.raises(AttributeError, match="no attribute 'Engin'"):
            _ = omealert.Engin  # type: ignore[attr-defined]

    def test_importing_the_package_loads_no_heavy_dependency(self) -> None:
        """``import omealert`` (run before every command) imports no pydantic, httpx, jinja2."""
        code = (
            "import sys, omealert; "
            "print(sorted(m for m in ('pydantic', 'httpx', 'jinja2', 'apprise') "
            "if m in sys.modules))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        )
        assert out.stdout.strip() == "[]"


class TestReadme:
    def section(self) -> str:
        text = (REPO / "README.md").read_text(encoding="utf-8")
        m = re.search(r"^### How the code is laid out\n(.*?)(?=^#|\Z)", text, re.M | re.S)
        assert m is not None, "README has no 'How the code is laid out' section"
        return m.group(1).split("Where new code goes")[0]  # the list of wings

    def test_every_wing_it_names_exists(self) -> None:
        """The layout the README draws is the one on disk."""
        named = set(re.findall(r"`(\w+)/`", self.section()))
        wings = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
        assert named == wings

    def test_every_top_level_module_it_names_exists(self) -> None:
        """Modules the README names at the top of the package are there."""
        named = set(re.findall(r"`(\w+)\.py`", self.section()))
        assert named
        assert named <= TOP_LEVEL
