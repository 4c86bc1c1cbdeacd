"""Text from OME is handled in time linear in its length: escaping, default messages and
operator templates all take a 20,000-character stream name in their stride."""

from __future__ import annotations

import pytest

from omealert.notify.context import AlertView
from omealert.notify.escape import escape
from omealert.notify.render import render_message
from omealert.notify.scrub import scrub_reason
from tests.helpers import finishes_within

#: Each is a shape a backtracking pattern rescans from every position: runs of whitespace
#: with and without a line break, runs of ``<``, ``<`` before spaces, digits before a dot.
SHAPES = {
    "spaces": " " * 200_000 + "x",
    "tabs-at-line-start": "\n" + "\t" * 200_000 + "#",
    "lt": "<" * 200_000,
    "lt-spaces": ("<" + " " * 100) * 2_000,
    "spaced-newlines": " \n" * 100_000,
    "digits": "1" * 200_000 + "x",
    "letters": "a" * 200_000,
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_escape_is_linear(shape: str) -> None:
    """Escaping 200,000 characters of a hostile shape finishes, in every format and mode."""
    text = SHAPES[shape]

    def run() -> None:
        for fmt in ("text", "markdown", "html"):
            for inline in (True, False):
                escape(text, fmt, inline=inline)

    assert finishes_within(30, run)


def test_folding_keeps_what_it_did() -> None:
    """Runs of whitespace fold to one space only when they hold a line break."""
    assert escape("a  \t b", "text") == "a  \t b"
    assert escape("a \r\n\t b\u2028c", "text") == "a b c"
    assert escape("a\n\nb", "text", inline=False) == "a\n\nb"
    assert escape(" \n" * 5, "markdown") == " "


#: A 20,000-character stream name: a long run of spaces without a line break (which a
#: ``\s*[\r\n]`` pattern rescans from each of its positions), then Markdown, mentions and
#: line breaks over and over.
LONG_STREAM = ("<!here>" + " " * 19_000 + "x" + ("\n" + "1" * 50 + ". _*<@U1> @here ") * 15)[
    :20_000
]


def long_alert() -> AlertView:
    target = f"origin-1/default/app/{LONG_STREAM}"
    return AlertView(
        rule="stream-down",
        severity="critical",
        status="firing",
        value=0.0,
        target=target,
        labels={"server": "origin-1", "vhost": "default", "app": "app", "stream": LONG_STREAM},
        since=1_767_225_600.0,
        fired_at=1_767_225_600.0,
        resolved_at=None,
        summary=f"{target}: no input",
        description=f"stream {LONG_STREAM} lost its input",
        sample={},
    )


OPERATOR_BODY = (
    "**{{ labels.stream }}** on {{ labels.server }}: {{ summary }}\n"
    "{% for a in alerts %}- {{ a.target | truncate(80) }} {{ a.labels.stream | title }}\n"
    "{% endfor %}{{ description | wordwrap(72) }}"
)


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
@pytest.mark.parametrize("body_src", [None, OPERATOR_BODY], ids=["default", "operator"])
def test_long_stream_name_renders(fmt: str, body_src: str | None) -> None:
    """A 20,000-character stream name renders, escaped, in default and operator templates."""
    alerts = [long_alert()]

    def run() -> None:
        msg = render_message(
            alerts,
            reason="first",
            now=1_767_225_900.0,
            fmt=fmt,
            title_src=None if body_src is None else "{{ labels.stream }} is down",
            body_src=body_src,
        )
        for text in (msg.title, msg.body):
            assert "<!here>" not in text and "@here" not in text
        assert "Template error" not in msg.body
        assert len(msg.body) > 20_000

    assert finishes_within(5, run)
    run()  # and once more here, where a failing assertion shows its message


def test_error_text_scrub_is_linear() -> None:
    """A 200,000-letter error text from a service is scrubbed without rescanning it."""

    def run() -> None:
        out = scrub_reason("x1slack://T/B/C failed: " + "a" * 200_000 + "1slack://T/B/C", [])
        assert out.startswith("x1slack:// failed: aaa") and "T/B/C" not in out

    assert finishes_within(30, run)
