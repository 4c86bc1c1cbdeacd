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

from collections.abc import Callable, Mapping
from functools import cache, lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .bounds import (
    MAX_OUTPUT,
    Budget,
    TemplateLimit,
    budget,
    check_format,
    check_int_power,
    check_int_product,
    check_percent_format,
    counted,
    need,
    size_of,
    within,
)
from .context import CONTEXT_NAMES
from .escape import escape
from .filters import FILTERS
from .guards import (
    UNREACHABLE_METHODS,
    BoundCalls,
    Literal,
    bound_tree,
    check_call,
    check_value,
    guard_filter,
    template_range,
)

__all__ = ["TemplateProblem", "check_template", "render_text", "try_render"]


class TemplateProblem(Exception):
    """A template that cannot work: a syntax error (with its line) or an unknown name."""


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with every operator, call and method that can build a big
    value checked *before* it does (``notify.bounds``): ``'x' * 10**9``, ``9**9**9`` and
    ``'{:>999999999}'.format(x)`` are refused, not computed."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        ints = isinstance(left, int) and isinstance(right, int)
        if operator == "**" and ints:
            check_int_power(left, right)
        elif operator == "*" and ints:
            check_int_product(left, right)
        elif operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int):
                    need(size_of(seq) * n, "repetition")
        elif operator == "+" and not ints:
            need(size_of(left) + size_of(right), "joined value")
        elif operator == "%" and isinstance(left, str):
            check_percent_format(left)
            check_value(right, "format argument")
        result = super().call_binop(context, operator, left, right)
        if isinstance(result, str):
            budget().spend(len(result))
        return result

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(getattr(__obj, "__self__", None), BoundCalls):
            return __obj(*args)  # the rewritten tree's own meters: not a template's call
        if isinstance(__obj, LoopContext) and args:
            # loop(children) in a recursive loop iterates outside the counted ``for``
            args = (counted(args[0]), *args[1:])
        check_call(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, str | list | tuple | dict):
            budget().spend(check_value(result, "call result"))
        return result

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        for kind, names in UNREACHABLE_METHODS.items():
            if isinstance(obj, kind) and attr in names:
                return False
        if isinstance(obj, bytes | bytearray):
            return False
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        formatter = super().wrap_str_format(value)
        if formatter is None:
            return None
        check_format(value.__self__)
        return formatter


def _finalize(fmt: str) -> Callable[[Any], str]:
    def finalize(value: Any) -> str:
        if type(value) is Literal:
            return value  # text the operator wrote; already paid for
        check_value(value, "printed value")
        out = escape(value, fmt)
        budget().spend(len(out))
        return out

    return finalize


@cache
def _environment(fmt: str) -> _Sandbox:
    env = _Sandbox(
        undefined=StrictUndefined,
        autoescape=False,  # escaping is per channel format, done by finalize below
        finalize=_finalize(fmt),
        keep_trailing_newline=False,
        extensions=[BoundCalls],
    )
    env.filters.update(FILTERS)
    env.filters = {name: guard_filter(name, f) for name, f in env.filters.items()}
    env.globals["range"] = template_range
    # lipsum only burns CPU; nothing in an alert needs it.
    env.globals.pop("lipsum", None)
    return env


@lru_cache(maxsize=1024)
def _compiled(fmt: str, source: str) -> Template:
    """``source`` compiled with its loops, joins and literal text counted (``guards``)."""
    env = _environment(fmt)
    tree = bound_tree(env.parse(source))
    return env.template_class.from_code(env, env.compile(tree), env.make_globals(None), None)


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
    """``(output, None)``, or ``("", why)`` when the template failed for any reason.

    The output is counted as it streams: past ``MAX_OUTPUT`` characters the render stops
    and fails, like any other failure, so the caller sends its default text instead.
    """
    parts: list[str] = []
    size = 0
    try:
        with within(Budget()):
            for part in _compiled(fmt, source).generate(dict(context)):
                size += len(part)
                if size > MAX_OUTPUT:
                    raise TemplateLimit(f"output over {MAX_OUTPUT} characters")
                parts.append(part)
    except Exception as exc:  # the template is operator code: any failure is a render failure
        return "", _describe_error(exc)
    return "".join(parts), None


def render_text(source: str, context: Mapping[str, Any], *, fmt: str = "text") -> str:
    """Render one template string; on failure return a line naming the error, never raise."""
    out, err = try_render(source, context, fmt)
    if err is not None:
        return f"[template failed: {err}]"
    return out
