"""The README stays true: every command, field and filter it should mention, it mentions."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from omealert.cli.main import build_parser
from omealert.lang.fields import FIELDS, FieldSpec
from omealert.ome.unmeasured import SETTLE_S

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _subcommands() -> list[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(actions[0].choices)


def test_quick_start_is_two_make_commands() -> None:
    """The quick start names `make demo` and `make test`."""
    assert "make demo" in README
    assert "make test" in README


def test_every_command_is_documented() -> None:
    """Each `omealert` subcommand appears in the README."""
    missing = [c for c in _subcommands() if f"omealert {c}" not in README]
    assert missing == []


def test_every_field_is_in_the_units_table() -> None:
    """Each field of the catalogue (connection keys and an edge's origin.* by pattern) is in
    the README's table."""
    paths = [p for p in FIELDS if ".connections." not in p and not p.startswith("origin.")]
    missing = [p for p in paths if f"`{p}`" not in README]
    assert missing == []
    assert "`publishers.connections.<p>`" in README
    assert "`providers.connections.<p>`" in README
    assert "| `origin.<field>` |" in README
    assert "| `origin.listed` |" in README


def no_value_note(spec: FieldSpec) -> str:
    """The "no value when" cell of a field's row, from its catalogue entry."""
    notes = []
    if spec.warmup_s:
        notes.append(f"first {spec.warmup_s:g} s")
    if spec.windowed:
        notes.append(f"{SETTLE_S:g} s after an input gap")
    if spec.plausible is not None:
        low, high = spec.plausible
        text = f"< {low:g}"
        if high != math.inf:
            text += f" or > {_HIGHS.get(high, f'{high:g}')}"
        notes.append(text)
    return "; ".join(notes) or "—"


_HIGHS = {1e12: "1 Tbps", 1.25e11: "125 GB", 10_000.0: "10000", 65_536.0: "65536"}


def test_the_units_table_says_when_a_field_has_no_value() -> None:
    """Each field's row says when omealert leaves its value out (warm-up, input gap, range),
    as the catalogue decides it (issue 21)."""
    for path, spec in FIELDS.items():
        if ".connections." in path or path.startswith("origin."):
            continue
        row = next(line for line in README.splitlines() if line.startswith(f"| `{path}` |"))
        assert row.split(" | ")[4] == no_value_note(spec), row


def test_every_template_filter_is_documented() -> None:
    """Each Jinja filter omealert adds is described in the README."""
    for name in ("duration", "bitrate", "bytes", "humanize", "humanize1024", "percentage",
                 "timestamp"):  # fmt: skip
        assert f"`{name}`" in README, name
