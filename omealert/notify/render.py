"""Turn alerts into message titles and bodies with Jinja, without ever losing an alert.

Operator templates run in the sandbox of ``notify.sandbox``; anything that fails at render
time turns into the default text (``notify.defaults``) plus a line saying what failed.
Rendering never raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .context import AlertView, template_context
from .defaults import Fmt, default_body, default_summary, default_title
from .escape import escape
from .sandbox import try_render

__all__ = ["FORMATS", "NOTIFY_TYPE_MEANING", "Message", "render_alert_fields", "render_message"]

FORMATS = ("text", "markdown", "html")


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
    ctx = template_context([alert], "", now)
    fallback = default_summary(alert, condition_text)
    if summary_src:
        summary, err = try_render(summary_src, ctx, "text")
        if err is not None:
            summary = f"{fallback} [summary template failed: {err}]"
        summary = summary.strip() or fallback
    else:
        summary = fallback
    description = ""
    if description_src:
        description, err = try_render(description_src, ctx, "text")
        if err is not None:
            description = f"[description template failed: {err}]"
    return summary, description.strip()


# --------------------------------------------------------------------------- messages

_NOTIFY_TYPE = {"critical": "failure", "warning": "warning", "info": "info"}
_SEVERITY_RANK = {"critical": 3, "warning": 2, "info": 1}
#: What each notify type means, in the words of an alert: ``failure`` is a critical alert
#: firing, not a failed delivery; ``success`` means everything in the message resolved.
NOTIFY_TYPE_MEANING = {t: severity for severity, t in _NOTIFY_TYPE.items()} | {
    "success": "resolved"
}


def _notify_type(alerts: Sequence[AlertView]) -> str:
    firing = [a for a in alerts if a.status != "resolved"]
    if not firing:
        return "success"
    worst = max(firing, key=lambda a: _SEVERITY_RANK.get(a.severity, 2))
    return _NOTIFY_TYPE.get(worst.severity, "warning")


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
    ctx = template_context(alerts, reason, now)
    problems: list[str] = []

    title = ""
    if title_src:
        title, err = try_render(title_src, ctx, "text")
        if err is not None:
            problems.append(f"title template failed: {err}")
    title = " ".join(title.split()) or escape(default_title(alerts), "text")

    body = ""
    if body_src:
        body, err = try_render(body_src, ctx, fmt)
        if err is not None:
            problems.append(f"body template failed: {err}")
            body = ""
    if not body.strip():
        body = default_body(alerts, reason, now, fmt)
    if problems:
        f = Fmt(fmt)
        note = f.paragraphs([f.strong("Template error:") + " " + f.esc(p) for p in problems])
        body = f"{body}\n\n{note}" if fmt != "html" else f"{body}\n{note}"
    return Message(title=title, body=body, format=fmt, notify_type=_notify_type(alerts))
