"""Operator templates are bounded while they render: every way to build something huge is
refused before it is built, and the message still goes out with the default text.

Each vector runs in a forked child with a memory cap and a hang guard: without its bound
it would allocate gigabytes or loop for minutes, and the test fails instead of the
machine. The expected reason proves it was refused up front, not cut afterwards.
"""

from __future__ import annotations

from typing import Any

import pytest

from omealert.notify.bounds import MAX_OUTPUT, TemplateLimit, budget, check_percent_format
from omealert.notify.context import AlertView
from omealert.notify.render import render_alert_fields, render_message
from omealert.notify.sandbox import render_text
from tests.helpers import in_child

CONTEXT: dict[str, Any] = {"labels": {"stream": "cam1"}, "x": "a\nb\nc", "n": 5}


def refused(source: str) -> str:
    """The reason ``source`` failed, rendered in a child capped at 256 MB and 30 s."""
    out = in_child(lambda: render_text(source, CONTEXT), 30, memory_mb=256)
    assert isinstance(out, str) and out.startswith("[template failed: "), out
    return out.removeprefix("[template failed: ").removesuffix("]")


WIDTHS = [
    ("{{ x|center(10**12) }}", "center width over 65536 characters in template"),
    ("{{ x|indent(10**12) }}", "indent width over 65536 characters in template"),
    (
        "{{ ('a\n' * 30000)|indent(' ' * 60000) }}",
        "indented text over 65536 characters in template",
    ),
    ("{{ x|wordwrap(10**12) }}", "wordwrap width over 65536 characters in template"),
    (
        "{{ ('ab ' * 20000)|wordwrap(2, wrapstring='y' * 60000) }}",
        "wrapped text over 65536 characters in template",
    ),
    ("{{ '%1000000000000s'|format(x) }}", "formatted text over 65536 characters in template"),
    ("{{ '%60000s%60000s'|format(x, x) }}", "formatted text over 65536 characters in template"),
    ("{{ '%*s'|format(10**12, x) }}", "a '*' width is not allowed in templates"),
    ("{{ '%(a)1000000000000s' % {'a': x} }}", "formatted text over 65536 characters in template"),
    ("{{ '{:>1000000000000}'.format(x) }}", "formatted text over 65536 characters in template"),
    ("{{ '{:{w}}'.format(x, w=10**12) }}", "nested format fields are not allowed in templates"),
    ("{{ x.center(10**12) }}", "center width over 65536 characters in template"),
    ("{{ x.zfill(10**12) }}", "zfill width over 65536 characters in template"),
    ("{{ [1]|batch(10**12, 0)|list }}", "linecount count over 65536 characters in template"),
    ("{{ [1]|slice(10**12)|list }}", "slices count over 65536 characters in template"),
    ("{{ 1.5|round(10**12, 'floor') }}", "round precision over 100 in template"),
    ("{{ labels|tojson(indent=10**12) }}", "tojson indent over 100 in template"),
]


@pytest.mark.parametrize(("source", "why"), WIDTHS, ids=[w[0] for w in WIDTHS])
def test_width_arguments_are_capped(source: str, why: str) -> None:
    """Width, count and precision arguments over the cap are refused before they allocate."""
    assert refused(source) == why


GROWTH = [
    ("{{ 'x' * 10**12 }}", "repetition over 65536 characters in template"),
    ("{{ [labels] * 10**12 }}", "repetition over 65536 characters in template"),
    ("{% set s = 'x' * 60000 %}{{ [s] * 60000 }}", "repetition over 65536 characters in template"),
    ("{{ 9 ** (9 ** 9) }}", "integer over 8192 bits in template"),
    ("{{ 10 ** 100000000 }}", "integer over 8192 bits in template"),
    (
        "{% set ns = namespace(v=10**1000) %}{% for i in range(40) %}"
        "{% set ns.v = ns.v * ns.v %}{% endfor %}",
        "integer over 8192 bits in template",
    ),
    (
        "{% set ns = namespace(s='x') %}{% for i in range(60) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "joined text over 65536 characters in template",
    ),
    (
        "{% set ns = namespace(s='x') %}{% for i in range(60) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}",
        "joined value over 65536 characters in template",
    ),
    ("{{ x|replace('', 'y' * 60000) }}", "replaced text over 65536 characters in template"),
    ("{{ x.replace('', 'y' * 60000) }}", "replaced text over 65536 characters in template"),
    ("{{ range(10000)|join('y' * 60000) }}", "joined text over 65536 characters in template"),
    (
        "{{ ('y' * 60000).join(range(10000)|map('string')) }}",
        "joined text over 65536 characters in template",
    ),
    (
        "{% set s = 'x' * 60000 %}{% set a = [s, s, s, s] %}{% set b = [a, a, a, a] %}"
        "{% set c = [b, b, b, b] %}{% set d = [c, c, c, c] %}{{ [d, d, d, d] }}",
        "printed value over 65536 characters in template",
    ),
]


@pytest.mark.parametrize(("source", "why"), GROWTH, ids=[g[0][:60] for g in GROWTH])
def test_values_cannot_grow_past_the_cap(source: str, why: str) -> None:
    """Repetition, powers, products, joins and replaces are sized before they run."""
    assert refused(source) == why


LOOPS = [
    ("{% for i in range(10**12) %}{% endfor %}", "range over 10000 items in template"),
    (
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        "more than 100000 loop iterations and calls",
    ),
    (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(60) }}",
        "more than 100000 loop iterations and calls",
    ),
    (
        "{% for i in [0] recursive %}{{ loop(range(10000)) if loop.depth < 3 }}{% endfor %}",
        "more than 100000 loop iterations and calls",
    ),
    (
        "{% for i in range(9) %}{% set block %}{% for j in range(10000) %}"
        + "L" * 5000
        + "{% endfor %}{% endset %}{% endfor %}",
        "more than 10000000 characters of work",
    ),
    (
        "{% macro m() %}{% for j in range(9000) %}{{ 'y' * 60000 }}{% endfor %}{% endmacro %}"
        "{{ m() }}",
        "more than 10000000 characters of work",
    ),
]


@pytest.mark.parametrize(("source", "why"), LOOPS, ids=[lp[0][:60] for lp in LOOPS])
def test_loops_and_calls_are_counted(source: str, why: str) -> None:
    """Loops, recursion and text buffered in macros and blocks stop at the budget."""
    assert refused(source) == why


@pytest.mark.parametrize(
    "source",
    ["{{ x.encode() }}", "{{ (1).to_bytes(10**12, 'big') }}", "{{ x.expandtabs(10**12) }}"],
)
def test_text_multiplying_methods_are_unreachable(source: str) -> None:
    """Methods that only re-encode or multiply text do not exist for templates."""
    assert refused(source).endswith("object is unsafe.")


def test_output_is_counted_as_it_streams() -> None:
    """A template printing megabytes stops at the output cap, naming the cap."""
    source = "{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}"
    assert refused(source) == f"output over {MAX_OUTPUT} characters"


def alert() -> AlertView:
    return AlertView(
        rule="stream-down",
        severity="critical",
        status="firing",
        value=0.0,
        target="origin-1/default/app/cam1",
        labels={"server": "origin-1", "vhost": "default", "app": "app", "stream": "cam1"},
        since=1_767_225_600.0,
        fired_at=1_767_225_600.0,
        resolved_at=None,
        summary="origin-1/default/app/cam1: no input",
        description="",
        sample={},
    )


def test_over_the_cap_the_message_has_the_raw_facts() -> None:
    """A body over the cap gives the default body plus a line naming the body template."""
    msg = render_message(
        [alert()],
        reason="first",
        now=1_767_225_900.0,
        fmt="text",
        title_src="{{ 'T' * 10**12 }}",
        body_src="{% for i in range(100) %}{{ 'x' * 1000 }}{% endfor %}",
    )
    assert msg.title == "[FIRING] stream-down on origin-1/default/app/cam1"
    assert "FIRING origin-1/default/app/cam1: no input" in msg.body
    assert "title template failed: repetition over 65536 characters in template" in msg.body
    assert f"body template failed: output over {MAX_OUTPUT} characters" in msg.body
    assert "x" * 1000 not in msg.body


def test_over_the_cap_the_summary_is_the_default() -> None:
    """A summary template over the cap falls back to the default summary, saying why."""
    summary, _ = render_alert_fields("{{ labels.stream * 10**12 }}", "", alert(), 0.0)
    assert summary == (
        "origin-1/default/app/cam1: stream-down (value 0) "
        "[summary template failed: repetition over 65536 characters in template]"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ '%05.1f'|format(3.14159) }} {{ '{:>6}'.format(labels.stream) }}", "003.1   cam1"),
        ("{{ 'ab'|center(6) }}|{{ labels.stream|indent(2, first=True) }}", "  ab  |  cam1"),
        (
            "{% for i in range(3) %}{{ i }}{% if not loop.last %}, {% endif %}{% endfor %}",
            "0, 1, 2",
        ),
        ("{{ range(4)|map('string')|join('-') }} {{ 'ab'.replace('b', 'c') }}", "0-1-2-3 ac"),
        (
            "{{ (2 ** 64) * 3 }} {{ 'ab' * 3 }} {{ [1] + [2] }}",
            "55340232221128654848 ababab [1, 2]",
        ),
        ("{% set s %}lit {{ n }}{% endset %}{{ s ~ '!' }}", "lit 5!"),
    ],
)
def test_ordinary_templates_are_untouched(source: str, expected: str) -> None:
    """Everyday formatting, loops, joins and arithmetic render as before."""
    assert render_text(source, CONTEXT) == expected


@pytest.mark.parametrize(
    "source",
    [
        "{{ [s]|map('omealert literal')|first }}",
        "{{ [s]|map('literal')|first }}",
        "{{ s|literal }}",
        "{{ environment.extensions }}",
        "{{ s|attr('literal') }}",
    ],
)
def test_the_meters_cannot_unescape_data(source: str) -> None:
    """What passes literal text unescaped is out of a template's reach, by any name."""
    out = render_text(source, {"s": "<!channel> *x*"}, fmt="markdown")
    assert "<!channel>" not in out and "*x*" not in out


@pytest.mark.parametrize(
    ("fmt", "ok"),
    [
        ("%5s%%%(a)10s %-8.3f", True),
        ("%(a(b))40000s %(c)25000s", True),
        ("%(a(b))40000s %(c)26000s", False),
        ("%.70000f", False),
        ("%" * 50_000 + "s", True),
        ("%(" * 20_000, True),
    ],
)
def test_percent_formats_are_sized_in_one_pass(fmt: str, ok: bool) -> None:
    """``%`` widths and precisions add up across a format string, nested keys and all."""
    if ok:
        check_percent_format(fmt)
    else:
        with pytest.raises(TemplateLimit, match="formatted text over 65536"):
            check_percent_format(fmt)


def test_no_work_outside_a_metered_render() -> None:
    """Outside ``try_render`` there is no budget, so nothing can run unmetered."""

    with pytest.raises(RuntimeError, match="outside a metered render"):
        budget()
