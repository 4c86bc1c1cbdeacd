"""The messages sent when a rule has no template of its own, or its template failed.

Every piece of alert data they show is escaped for the channel's format, as a template's
output would be.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from .context import AlertView
from .escape import escape, plain
from .filters import as_float, bitrate, bytes_, duration, g4, humanize, timestamp

__all__ = ["Fmt", "default_body", "default_summary", "default_title", "show_value"]

#: Lines of a default group body; the rest are counted, not listed.
_MAX_BODY_LINES = 100

#: How a value in each unit reads (``Condition.value_unit``); other units print plainly.
_IN_UNIT: dict[str, Callable[[float], str]] = {
    "bits/s": bitrate,
    "bytes": bytes_,
    "bytes/s": lambda v: bytes_(v) + "/s",
    "seconds": duration,
    "frames/s": lambda v: f"{g4(v)} fps",
    "Hz": lambda v: humanize(v) + "Hz",
}


def show_value(value: Any, unit: str | None) -> str:
    """A value as default messages print it: humanised in its unit (``239.7 kbps``,
    ``1.5 MB``, ``40s``), else plainly (``612``, ``true``, ``n/a``)."""
    show = _IN_UNIT.get(unit or "")
    number = None if isinstance(value, bool) else as_float(value)
    if show is None or number is None or isinstance(value, str):
        return plain(value)
    return show(number)


def default_summary(alert: AlertView, condition_text: str = "") -> str:
    """``origin-1/default/app/s1: avgThroughputIn < 500kbps (value 239.7 kbps)``; for an
    alert resolved because its target vanished, ``(no longer listed; last value …)``: that
    value still met the condition."""
    what = condition_text or alert.rule
    value = show_value(alert.value, alert.unit)
    if alert.gone:
        return f"{alert.target}: {what} (no longer listed; last value {value})"
    return f"{alert.target}: {what} (value {value})"


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


class Fmt:
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


def _shows_value(summary: str, alert: AlertView) -> bool:
    """Whether the summary already shows the value, so the line need not repeat it: as
    default summaries and the unit filters print it (``300 kbps``, ``40s``) or plainly as
    ``{{ value }}`` does, as a whole word. The target is left out, so that ``origin-1``
    does not pass for a value of 1."""
    text = summary.replace(alert.target, " ")
    forms = {show_value(alert.value, alert.unit), plain(alert.value)}
    return any(re.search(rf"(?<![\w.-]){re.escape(s)}(?!\w|\.\d)", text) for s in forms if s)


def _alert_line(f: Fmt, alert: AlertView, now: float) -> str:
    status = f.strong("RESOLVED" if alert.status == "resolved" else "FIRING")
    summary = alert.summary or default_summary(alert)
    # Default summaries start with the target and end with the value; say neither twice.
    text = summary if summary.startswith(alert.target) else f"{alert.target}: {summary}"
    value = show_value(alert.value, alert.unit)
    facts = [] if _shows_value(summary, alert) else [f"value {value}"]
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
    if alert.also_affects:
        facts.append(alert.also_affects)
    tail = f" — {f.esc(', '.join(facts))}" if facts else ""
    return f"{status} {f.esc(text)}{tail}"


def default_body(alerts: Sequence[AlertView], reason: str, now: float, fmt: str) -> str:
    """One line per alert (summary, value, since/duration), a reminder note on repeats,
    and the description when the message is about a single alert."""
    f = Fmt(fmt)
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
