"""Turn alerts into message titles and bodies with Jinja, without ever losing an alert.

Templates come from the operator's config and run in Jinja's immutable sandbox with
``StrictUndefined``: a reference to something that does not exist is reported by
``check_template`` when the config loads, and anything that still fails at render time
(a label that is missing on one target, a filter given a string) turns into the default
text plus a line saying what failed. Rendering never raises.

Everything that comes from OME (vhost, app and stream names, hence targets, labels and the
summaries built from them) is attacker-controlled *data*. It is never template source, and
every value a template prints passes through the environment's ``finalize`` hook, which
escapes it for the channel's format: Markdown punctuation is backslash-escaped, HTML is
entity-escaped, and chat control sequences (Slack's ``<!channel>``, ``<@U123>``, and
``@everyone``/``@here``) are defused in every format, so a stream name cannot ping a
channel or inject markup. Literal text written in a template is the operator's and passes
unchanged.

Filters (all accept ints, floats, numeric strings and, for ``timestamp``, datetimes; a value
that is not a number comes back unchanged as text):

==============  ======================================  =================================
filter          example                                 Prometheus equivalent
==============  ======================================  =================================
duration        ``3723 → 1h 2m 3s``                     humanizeDuration
humanize        ``1234567 → 1.235M``, ``0.012 → 12m``   humanize
humanize1024    ``1048576 → 1Mi``, ``1536 → 1.5ki``     humanize1024
percentage      ``0.256 → 25.6%``                       humanizePercentage
timestamp       ``1767225609 → 2026-01-01 00:00:09 UTC`` (humanizeTimestamp, simpler form)
bytes           ``1500000 → 1.5 MB`` (decimal units)    —
bitrate         ``2500000 → 2.5 Mbps``                  —
==============  ======================================  =================================
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .durations import format_duration

__all__ = [
    "CONTEXT_NAMES",
    "FORMATS",
    "AlertView",
    "Message",
    "TemplateProblem",
    "check_template",
    "default_body",
    "default_summary",
    "default_title",
    "escape",
    "render_alert_fields",
    "render_message",
    "render_text",
]

#: Every top-level name a template may use. Single-alert templates (summary, description) get
#: the group names too (``alerts`` holding just that alert), so one list serves every template.
CONTEXT_NAMES: frozenset[str] = frozenset(
    {
        "rule",
        "severity",
        "status",
        "value",
        "target",
        "labels",
        "since",
        "duration",
        "sample",
        "summary",
        "description",
        "fired_at",
        "resolved_at",
        "silenced",
        "alerts",
        "reason",
        "count",
        "firing_count",
        "resolved_count",
        "now",
    }
)

FORMATS = ("text", "markdown", "html")

#: Rendered templates longer than this are cut: a runaway loop must not build a 1 GB message.
_MAX_OUTPUT = 64 * 1024
#: Lines of a default group body; the rest are counted, not listed.
_MAX_BODY_LINES = 100


class TemplateProblem(Exception):
    """A template that cannot work: a syntax error (with its line) or an unknown name."""


# --------------------------------------------------------------------------- filters


def _as_float(value: Any) -> float | None:
    """The number in ``value``, or None when it is not one (so filters can pass it through)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _g4(v: float) -> str:
    """Go's ``%.4g``: what Prometheus prints, including ``+Inf``/``-Inf``/``NaN``."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return f"{v:.4g}"


def humanize(value: Any) -> str:
    """SI prefixes with four significant digits, as Prometheus' ``humanize``.

    ``1234567 → 1.235M``, ``0.12 → 120m``, ``0.012 → 12m``, ``0 → 0``. Values of at least 1
    use k M G T P E Z Y, smaller ones m u n p f a z y.
    """
    v = _as_float(value)
    if v is None:
        return str(value)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    if abs(v) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
    else:
        for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
            if abs(v) >= 1:
                break
            prefix, v = p, v * 1000
    return _g4(v) + prefix


def humanize1024(value: Any) -> str:
    """Binary prefixes, as Prometheus' ``humanize1024``: ``1048576 → 1Mi``, ``1536 → 1.5ki``.

    Prometheus spells the first prefix ``ki`` (lower case) and leaves values with
    ``|v| <= 1`` alone (``0.12 → 0.12``); both are kept so alerts read the same in both tools.
    """
    v = _as_float(value)
    if v is None:
        return str(value)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix, v = p, v / 1024
    return _g4(v) + prefix


def percentage(value: Any) -> str:
    """A ratio as a percentage with four significant digits: ``0.256 → 25.6%``."""
    v = _as_float(value)
    if v is None:
        return str(value)
    return _g4(v * 100) + "%"


def duration(value: Any) -> str:
    """Seconds as people read them: ``3723 → 1h 2m 3s``, ``45 → 45s``, ``0.25 → 250ms``."""
    v = _as_float(value)
    if v is None:
        return str(value)
    if math.isinf(v):
        return _g4(v)
    return format_duration(v)


def _scaled(value: Any, units: Sequence[str]) -> str:
    v = _as_float(value)
    if v is None:
        return str(value)
    if math.isnan(v) or math.isinf(v):
        return f"{_g4(v)} {units[0]}"
    unit = units[0]
    for u in units[1:]:
        if abs(v) < 1000:
            break
        unit, v = u, v / 1000
    return f"{_g4(v)} {unit}"


def bytes_(value: Any) -> str:
    """A byte count in decimal (SI) units: ``1500000 → 1.5 MB``, ``950 → 950 B``."""
    return _scaled(value, ("B", "kB", "MB", "GB", "TB", "PB", "EB"))


def bitrate(value: Any) -> str:
    """Bits per second: ``2500000 → 2.5 Mbps``, ``800000 → 800 kbps``, ``950 → 950 bps``."""
    return _scaled(value, ("bps", "kbps", "Mbps", "Gbps", "Tbps"))


def timestamp(value: Any) -> str:
    """An epoch (seconds) or datetime as ``2026-01-01 00:00:09 UTC``.

    Prometheus' ``humanizeTimestamp`` prints Go's ``2026-01-01 00:00:09.5 +0000 UTC``; alert
    readers do not need the fraction or the redundant offset, so this prints whole seconds.
    """
    if isinstance(value, datetime):
        dt = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    else:
        v = _as_float(value)
        if v is None:
            return str(value)
        if math.isnan(v) or math.isinf(v):
            return _g4(v)
        try:
            dt = datetime.fromtimestamp(v, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return _g4(v)
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


FILTERS: dict[str, Callable[[Any], str]] = {
    "duration": duration,
    "humanize": humanize,
    "humanize1024": humanize1024,
    "percentage": percentage,
    "timestamp": timestamp,
    "bytes": bytes_,
    "bitrate": bitrate,
}


class Seconds(float):
    """A duration that prints as ``5m 0s`` but still compares and adds as a number."""

    def __str__(self) -> str:
        return duration(float(self))


class Epoch(float):
    """A point in time that prints as ``2026-01-01 00:00:09 UTC`` but stays a number."""

    def __str__(self) -> str:
        return timestamp(float(self))


# --------------------------------------------------------------------------- escaping

# Slack's control sequences (<!channel>, <!here>, <@U123>, <#C123>) and the bare mention
# words other chat services act on. A zero-width space after "<" or "@" leaves the text
# readable and makes every one of them plain text.
_MENTION = re.compile(r"<(?=\s*[!@#])|@(?=(?:everyone|here|channel|all)\b)", re.IGNORECASE)
_ZWSP = "\u200b"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_NEWLINES = re.compile(r"\s*[\r\n]+\s*")
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
    s = value if isinstance(value, str) else _plain(value)
    s = _CONTROL.sub(" ", s)
    if inline:
        s = _NEWLINES.sub(" ", s)
    if fmt == "markdown":
        s = _MD_ANYWHERE.sub(lambda m: "\\" + m.group(0), s)
        s = _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), s)
    elif fmt == "html":
        s = html.escape(s, quote=True)
        if not inline:
            s = s.replace("\n", "<br>\n")
    return _MENTION.sub(lambda m: m.group(0) + _ZWSP, s)


def _plain(value: Any) -> str:
    """How a non-string value prints in a message: numbers without noise, None as ``n/a``."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Seconds | Epoch):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return _g4(value)
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return timestamp(value)
    return str(value)


# --------------------------------------------------------------------------- environment


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, plus a cap on ``*`` and ``**`` so a template cannot build a
    billion-character string or a huge integer before the output cap applies."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            r = _as_float(right)
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


def _try_render(source: str, context: Mapping[str, Any], fmt: str) -> tuple[str, str | None]:
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
    out, err = _try_render(source, context, fmt)
    if err is not None:
        return f"[template failed: {err}]"
    return out


# --------------------------------------------------------------------------- alerts


@dataclass(slots=True)
class AlertView:
    """One alert as templates and default messages see it (built by the notifier)."""

    rule: str
    severity: str
    status: str  # "firing" | "resolved"
    value: float | str | bool | None
    target: str
    labels: dict[str, str]
    since: float | None  # epoch seconds: active (pending) since
    fired_at: float | None
    resolved_at: float | None
    summary: str
    description: str
    sample: dict[str, Any] = field(default_factory=dict)
    silenced: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered notification for one channel.

    ``notify_type`` is apprise's NotifyType value, which sets the colour or icon a service
    shows: ``failure`` while a critical alert fires, ``warning`` for a firing warning,
    ``info`` for a firing info alert, ``success`` once everything in the message resolved.
    """

    title: str
    body: str
    format: str
    notify_type: str


def _alert_fields(alert: AlertView, now: float) -> dict[str, Any]:
    since = Epoch(alert.since) if alert.since is not None else None
    end = alert.resolved_at if alert.status == "resolved" and alert.resolved_at else now
    return {
        "rule": alert.rule,
        "severity": alert.severity,
        "status": alert.status,
        "value": alert.value,
        "target": alert.target,
        "labels": dict(alert.labels),
        "since": since,
        "duration": Seconds(max(0.0, end - alert.since)) if alert.since is not None else None,
        "sample": alert.sample,
        "summary": alert.summary,
        "description": alert.description,
        "fired_at": Epoch(alert.fired_at) if alert.fired_at is not None else None,
        "resolved_at": Epoch(alert.resolved_at) if alert.resolved_at is not None else None,
        "silenced": alert.silenced,
    }


def _context(alerts: Sequence[AlertView], reason: str, now: float) -> dict[str, Any]:
    each = [_alert_fields(a, now) for a in alerts]
    firing = sum(1 for a in alerts if a.status != "resolved")
    ctx = dict(each[0])
    ctx.update(
        status="firing" if firing else "resolved",
        alerts=each,
        reason=reason,
        count=len(alerts),
        firing_count=firing,
        resolved_count=len(alerts) - firing,
        now=Epoch(now),
    )
    return ctx


def default_summary(alert: AlertView, condition_text: str = "") -> str:
    """``origin-1/default/app/s1: webrtc publishers > 500 (value 612)``."""
    what = condition_text or alert.rule
    return f"{alert.target}: {what} (value {_plain(alert.value)})"


def render_alert_fields(
    summary_src: str,
    description_src: str,
    alert: AlertView,
    now: float,
    *,
    condition_text: str = "",
) -> tuple[str, str]:
    """A rule's summary and description for one alert, as plain text.

    An empty summary source gives ``default_summary``; a failing template gives the default
    with the reason appended, so the alert is still told.
    """
    ctx = _context([alert], "", now)
    fallback = default_summary(alert, condition_text)
    if summary_src:
        summary, err = _try_render(summary_src, ctx, "text")
        if err is not None:
            summary = f"{fallback} [summary template failed: {err}]"
        summary = summary.strip() or fallback
    else:
        summary = fallback
    description = ""
    if description_src:
        description, err = _try_render(description_src, ctx, "text")
        if err is not None:
            description = f"[description template failed: {err}]"
    return summary, description.strip()


# --------------------------------------------------------------------------- messages

_NOTIFY_TYPE = {"critical": "failure", "warning": "warning", "info": "info"}
_SEVERITY_RANK = {"critical": 3, "warning": 2, "info": 1}


def _notify_type(alerts: Sequence[AlertView]) -> str:
    firing = [a for a in alerts if a.status != "resolved"]
    if not firing:
        return "success"
    worst = max(firing, key=lambda a: _SEVERITY_RANK.get(a.severity, 2))
    return _NOTIFY_TYPE.get(worst.severity, "warning")


def default_title(alerts: Sequence[AlertView]) -> str:
    """``[FIRING] rule on target``, ``[FIRING:30] rule (30 targets)``, ``[RESOLVED] ...``.

    Like Alertmanager, only firing titles carry a count, so ``[RESOLVED]`` is one fixed
    prefix a mail filter can match; a mixed group says both counts.
    """
    firing = sum(1 for a in alerts if a.status != "resolved")
    resolved = len(alerts) - firing
    rule = alerts[0].rule
    if len(alerts) == 1:
        tag = "[FIRING]" if firing else "[RESOLVED]"
        return f"{tag} {rule} on {alerts[0].target}"
    if not firing:
        return f"[RESOLVED] {rule} ({resolved} targets)"
    if not resolved:
        return f"[FIRING:{firing}] {rule} ({firing} targets)"
    return f"[FIRING:{firing}] {rule} ({firing} firing, {resolved} resolved)"


class _Fmt:
    """The handful of constructs a default body needs, in each output format."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt

    def esc(self, value: Any) -> str:
        return escape(value, self.fmt)

    def strong(self, text: str) -> str:
        if self.fmt == "markdown":
            return f"**{text}**"
        if self.fmt == "html":
            return f"<b>{text}</b>"
        return text

    def paragraphs(self, parts: list[str]) -> str:
        if self.fmt == "html":
            return "\n".join(p if p.startswith("<ul>") else f"<p>{p}</p>" for p in parts)
        return "\n\n".join(parts)

    def bullets(self, items: list[str]) -> str:
        if self.fmt == "html":
            return "<ul>\n" + "\n".join(f"<li>{i}</li>" for i in items) + "\n</ul>"
        return "\n".join(f"- {i}" for i in items)

    def block(self, text: str) -> str:
        return escape(text, self.fmt, inline=False)


def _alert_line(f: _Fmt, alert: AlertView, now: float) -> str:
    status = f.strong("RESOLVED" if alert.status == "resolved" else "FIRING")
    summary = alert.summary or default_summary(alert)
    # Default summaries start with the target and end with the value; say neither twice.
    text = summary if summary.startswith(alert.target) else f"{alert.target}: {summary}"
    value = _plain(alert.value)
    facts = [] if f"(value {value})" in summary else [f"value {value}"]
    if alert.status == "resolved":
        if alert.resolved_at is not None:
            facts.append(f"resolved {timestamp(alert.resolved_at)}")
            if alert.since is not None:
                facts.append(f"after {duration(max(0.0, alert.resolved_at - alert.since))}")
    elif alert.since is not None:
        facts.append(f"for {duration(max(0.0, now - alert.since))}")
        facts.append(f"since {timestamp(alert.since)}")
    if alert.silenced:
        facts.append("silenced")
    tail = f" — {f.esc(', '.join(facts))}" if facts else ""
    return f"{status} {f.esc(text)}{tail}"


def default_body(alerts: Sequence[AlertView], reason: str, now: float, fmt: str) -> str:
    """One line per alert (summary, value, since/duration), a reminder note on repeats,
    and the description when the message is about a single alert."""
    f = _Fmt(fmt)
    firing = sum(1 for a in alerts if a.status != "resolved")
    parts: list[str] = []
    if reason == "repeat" and firing:
        what = "this alert is" if firing == 1 else f"{firing} alerts are"
        parts.append(f.strong("Reminder:") + f" {what} still firing.")
    head = f"Rule {f.esc(alerts[0].rule)}, severity {f.esc(alerts[0].severity)}"
    parts.append(head)
    shown = list(alerts[:_MAX_BODY_LINES])
    lines = [_alert_line(f, a, now) for a in shown]
    if len(alerts) > len(shown):
        lines.append(f"... and {len(alerts) - len(shown)} more")
    parts.append(f.bullets(lines))
    if len(alerts) == 1 and alerts[0].description:
        parts.append(f.block(alerts[0].description))
    return f.paragraphs(parts)


def render_message(
    alerts: Sequence[AlertView],
    *,
    reason: str,
    now: float,
    fmt: str = "markdown",
    title_src: str | None = None,
    body_src: str | None = None,
) -> Message:
    """One message about a group of alerts of one rule, for one channel in format ``fmt``.

    Overrides see the first alert's fields plus ``alerts``, ``reason``, ``status``, ``count``,
    ``firing_count``, ``resolved_count`` and ``now``. A title is plain text in every service,
    so it is rendered and escaped as text whatever ``fmt`` is. A failing override falls back
    to the default, and the body says which template failed and why.
    """
    if not alerts:
        raise ValueError("render_message needs at least one alert")
    fmt = str(fmt)  # a MessageFormat member works too; the Message carries the plain value
    if fmt not in FORMATS:
        fmt = "text"
    ctx = _context(alerts, reason, now)
    problems: list[str] = []

    title = ""
    if title_src:
        title, err = _try_render(title_src, ctx, "text")
        if err is not None:
            problems.append(f"title template failed: {err}")
    title = " ".join(title.split()) or escape(default_title(alerts), "text")

    body = ""
    if body_src:
        body, err = _try_render(body_src, ctx, fmt)
        if err is not None:
            problems.append(f"body template failed: {err}")
            body = ""
    if not body.strip():
        body = default_body(alerts, reason, now, fmt)
    if problems:
        f = _Fmt(fmt)
        note = f.paragraphs([f.strong("Template error:") + " " + f.esc(p) for p in problems])
        body = f"{body}\n\n{note}" if fmt != "html" else f"{body}\n{note}"
    return Message(title=title, body=body, format=fmt, notify_type=_notify_type(alerts))
