"""Rendering messages: default and operator templates, ordinary and 20,000-character names.

Run by hand: ``.venv/bin/python bench/bench_render.py [--repeat N]``. Prints the median time
of one ``render_message`` per case and, last, the headline: the slowest hostile case. The
hostile stream name is a 19,000-space run without a line break followed by Markdown,
mentions and line breaks: the shape a backtracking pattern rescans from every position.
The bounded sandbox counts every loop step, call and character; the ordinary cases show
what that costs a template that stays inside its budget.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import machine, median, table
from omealert.notify.context import AlertView
from omealert.notify.render import render_message

HOSTILE = ("<!here>" + " " * 19_000 + "x" + ("\n" + "1" * 50 + ". _*<@U1> @here ") * 15)[:20_000]
OPERATOR_BODY = (
    "**{{ labels.stream }}** on {{ labels.server }}: {{ summary }}\n"
    "{% for a in alerts %}- {{ a.target | truncate(80) }} {{ a.value | humanize }} "
    "for {{ a.duration | duration }}\n{% endfor %}{{ description | wordwrap(72) }}"
)
NOW = 1_767_225_900.0


def alert(stream: str, i: int = 0) -> AlertView:
    target = f"origin-1/default/app/{stream}"
    return AlertView(
        rule="stream-down",
        severity="critical",
        status="firing",
        value=float(i),
        target=target,
        labels={"server": "origin-1", "vhost": "default", "app": "app", "stream": stream},
        since=NOW - 300,
        fired_at=NOW - 290,
        resolved_at=None,
        summary=f"{target}: no input",
        description=f"stream {stream} lost its input",
        sample={"bitrate": 2_500_000},
    )


def timed(alerts: list[AlertView], body: str | None, fmt: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        render_message(alerts, reason="first", now=NOW, fmt=fmt, body_src=body)
        times.append(time.perf_counter() - start)
    return median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    cases = [
        ("one alert, ordinary name", [alert("cam1")]),
        ("200 alerts, ordinary names", [alert(f"cam{i}", i) for i in range(200)]),
        ("one alert, 20,000-char name", [alert(HOSTILE)]),
    ]
    rows = []
    hostile = 0.0
    for label, alerts in cases:
        for fmt in ("text", "markdown", "html"):
            default_ms = timed(alerts, None, fmt, args.repeat) * 1000
            operator_ms = timed(alerts, OPERATOR_BODY, fmt, args.repeat) * 1000
            rows.append((f"{label}, {fmt}", default_ms, operator_ms))
            if "20,000" in label:
                hostile = max(hostile, default_ms, operator_ms)
    print(machine())
    print(table(["case", "default ms", "operator ms"], rows))
    print(f"headline: slowest 20,000-character name renders in {hostile:.1f} ms")


if __name__ == "__main__":
    main()
