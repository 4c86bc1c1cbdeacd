"""Escaping for message formats: every value a template prints is inert text.

Everything that comes from OME (vhost, app and stream names, hence targets, labels and the
summaries built from them) is attacker-controlled *data*. It is never template source, and
every value a template prints passes through the environment's ``finalize`` hook, which
escapes it for the channel's format: Markdown punctuation is backslash-escaped, HTML is
entity-escaped, and chat control sequences (Slack's ``<!channel>``, ``<@U123>``, and
``@everyone``/``@here``) are defused in every format, so a stream name cannot ping a
channel or inject markup. Literal text written in a template is the operator's and passes
unchanged.
"""

from __future__ import annotations

import html
import math
import re
from datetime import datetime
from typing import Any

from .filters import Epoch, Seconds, g4, timestamp

__all__ = ["escape", "plain"]

# Slack's control sequences (<!channel>, <!here>, <@U123>, <#C123>) and the bare mention
# words other chat services act on. A zero-width space after "<" or "@" leaves the text
# readable and makes every one of them plain text.
_MENTION = re.compile(r"<(?=\s*[!@#])|@(?=(?:everyone|here|channel|all)\b)", re.IGNORECASE)
_ZWSP = "\u200b"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# Every pattern here runs over OME's text and must stay linear in its length: a match may
# only start where the previous one cannot have, so no pattern begins with a repeat that
# can run over the same whitespace again and again (``\s*[\r\n]`` is quadratic on a run of
# spaces without a line break). Runs of whitespace are found whole, then folded if they
# hold a line break.
_SPACE_RUN = re.compile(r"\s+")
_LINE_BREAKS = frozenset("\r\n\x85\u2028\u2029")
# Markdown punctuation that starts markup anywhere in a line. "_" only matters at a word
# edge (CommonMark and Slack ignore it inside words, so stream_1 stays readable); "#", "+",
# "-", ">" and "1." only at the start of a line, which is where an inline value can land.
_MD_ANYWHERE = re.compile(r"[\\`*\[\]<>|~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_MD_LINE_START = re.compile(r"^([ \t]*(?:\d+(?=[.)]))?)([#+\->]|(?<=\d)[.)])", re.MULTILINE)


def escape(value: Any, fmt: str, *, inline: bool = True) -> str:
    """``value`` as inert text for a ``fmt`` message (text, markdown or html).

    ``inline`` folds line breaks into one space, so a name cannot start a new Markdown block
    or forge a line of its own. Used for every value a template prints and for every piece
    of alert data the default messages show.
    """
    s = value if isinstance(value, str) else plain(value)
    s = _CONTROL.sub(" ", s)
    if inline and not _LINE_BREAKS.isdisjoint(s):
        s = _SPACE_RUN.sub(_fold_line_break, s)
    if fmt == "markdown":
        s = _MD_ANYWHERE.sub(lambda m: "\\" + m.group(0), s)
        s = _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), s)
    elif fmt == "html":
        s = html.escape(s, quote=True)
        if not inline:
            s = s.replace("\n", "<br>\n")
    return _MENTION.sub(lambda m: m.group(0) + _ZWSP, s)


def _fold_line_break(m: re.Match[str]) -> str:
    run = m.group(0)
    return run if _LINE_BREAKS.isdisjoint(run) else " "


def plain(value: Any) -> str:
    """How a non-string value prints in a message: numbers without noise, None as ``n/a``."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Seconds | Epoch):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return g4(value)
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return timestamp(value)
    return str(value)
