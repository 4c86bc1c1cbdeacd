"""Sparklines as inline SVG, drawn on the server: no script, no image request, no library.

A series becomes one ``<polyline>`` scaled to its own range (a flat line sits in the
middle); unknown points (NaN) break the line, so a poll that could not read a stream shows
as a gap rather than a drop to zero. Only numbers reach the markup, and the label is
escaped, so nothing OME says can become markup here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape


def _segments(values: Sequence[float]) -> list[list[tuple[int, float]]]:
    runs: list[list[tuple[int, float]]] = []
    run: list[tuple[int, float]] = []
    for i, v in enumerate(values):
        if math.isnan(v):
            if run:
                runs.append(run)
            run = []
        else:
            run.append((i, v))
    if run:
        runs.append(run)
    return runs


def sparkline(
    values: Sequence[float],
    *,
    width: int = 120,
    height: int = 24,
    label: str = "",
    css: str = "spark",
) -> Markup:
    """``values`` (oldest first) as an SVG polyline ``width`` × ``height`` pixels."""
    known = [v for v in values if not math.isnan(v)]
    title = f"<title>{escape(label)}</title>" if label else ""
    head = (
        f'<svg class="{css}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(label)}">{title}'
    )
    if len(values) < 2 or not known:
        return Markup(f'{head}<line class="none" x1="0" y1="{height - 1}" x2="{width}" '
                      f'y2="{height - 1}"/></svg>')  # fmt: skip
    low, high = min(known), max(known)
    span = high - low
    pad = 2.0
    step = (width - 2 * pad) / (len(values) - 1)
    lines = []
    for run in _segments(values):
        points = []
        for i, v in run:
            y = height / 2 if span == 0 else pad + (high - v) / span * (height - 2 * pad)
            points.append(f"{pad + i * step:.1f},{y:.1f}")
        if len(points) == 1:
            cx, cy = points[0].split(",")
            lines.append(f'<circle cx="{cx}" cy="{cy}" r="1.5"/>')
        else:
            lines.append(f'<polyline points="{" ".join(points)}"/>')
    return Markup(head + "".join(lines) + "</svg>")
