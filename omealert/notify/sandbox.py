"""Jinja's immutable sandbox for operator templates: checked at load, never raising at render.

Templates come from the operator's config and run in Jinja's immutable sandbox with
``StrictUndefined``: a reference to something that does not exist is reported by
``check_template`` when the config loads, and anything that still fails at render time
(a label that is missing on one target, a filter given a string) comes back as the reason
instead of the output, for the caller to fall back on default text.

Everything that comes from OME is attacker-controlled *data*: it is never template source,
and every value a template prints passes through the environment's ``finalize`` hook,
which escapes it for the channel's format (``notify.escape``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .context import CONTEXT_NAMES
from .escape import escape
from .filters import FILTERS, as_float

__all__ = ["TemplateProblem", "check_template", "render_text", "try_render"]

#: Rendered templates longer than this are cut: a runaway loop must not build a 1 GB message.
_MAX_OUTPUT = 64 * 1024


class TemplateProblem(Exception):
    """A template that cannot work: a syntax error (with its line) or an unknown name."""


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, plus a cap on ``*`` and ``**`` so a template cannot build a
    billion-character string or a huge integer before the output cap applies."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            r = as_float(right)
            if r is not None and abs(r) > 1000:
                raise OverflowError("exponent too large in template")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(n, int)
                if sized and len(seq) * n > _MAX_OUTPUT:
                    raise OverflowError("repetition too large in template")
        return super().call_binop(context, operator, left, right)


@cache
def _environment(fmt: str) -> _Sandbox:
    env = _Sandbox(
        undefined=StrictUndefined,
        autoescape=False,  # escaping is per channel format, done by finalize below
        finalize=lambda v: escape(v, fmt),
        keep_trailing_newline=False,
    )
    env.filters.update(FILTERS)
    # lipsum only burns CPU; nothing in an alert needs it.
    env.globals.pop("lipsum", None)
    return env


@lru_cache(maxsize=1024)
def _compiled(fmt: str, source: str) -> Any:
    return _environment(fmt).from_string(source)


def check_template(source: str) -> None:
    """Raise TemplateProblem if ``source`` cannot work at all; called when the config loads.

    Finds Jinja syntax errors, unknown filters and tests (with the line inside the template),
    names that are not in the alert context (``CONTEXT_NAMES``), and include/import/extends,
    which have nothing to load here.
    """
    env = _environment("text")
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"line {exc.lineno}: {exc.message}") from None
    for node in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        raise TemplateProblem(
            f"line {node.lineno}: templates cannot include, import or extend other templates"
        )
    try:
        # find_undeclared_variables runs the code generator, which also rejects unknown
        # filters and tests (with their line).
        unknown = meta.find_undeclared_variables(tree) - CONTEXT_NAMES - set(env.globals)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"line {exc.lineno}: {exc.message}") from None
    if unknown:
        first = min(
            (n for n in tree.find_all(nodes.Name) if n.name in unknown),
            key=lambda n: n.lineno,
        )
        names = ", ".join(sorted(unknown))
        raise TemplateProblem(
            f"line {first.lineno}: unknown variable(s) {names}; "
            f"available: {', '.join(sorted(CONTEXT_NAMES))}"
        )
    try:
        env.compile(tree)  # unknown filters and tests are found here
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"line {exc.lineno}: {exc.message}") from None


def _describe_error(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, TemplateSyntaxError) and exc.lineno:
        text = f"line {exc.lineno}: {exc.message}"
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def try_render(source: str, context: Mapping[str, Any], fmt: str) -> tuple[str, str | None]:
    """``(output, None)``, or ``("", why)`` when the template failed for any reason."""
    try:
        out: str = _compiled(fmt, source).render(dict(context))
    except Exception as exc:  # the template is operator code: any failure is a render failure
        return "", _describe_error(exc)
    if len(out) > _MAX_OUTPUT:
        out = out[:_MAX_OUTPUT] + " [cut]"
    return out, None


def render_text(source: str, context: Mapping[str, Any], *, fmt: str = "text") -> str:
    """Render one template string; on failure return a line naming the error, never raise."""
    out, err = try_render(source, context, fmt)
    if err is not None:
        return f"[template failed: {err}]"
    return out
