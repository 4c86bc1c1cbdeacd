"""Start-up: ``omealert --version`` and a cold ``omealert check`` on a small config.

Run by hand: ``.venv/bin/python bench/bench_startup.py [--runs 15]``.

Each command runs as a fresh process, interleaved with the others, against a simulator
(its own process) serving a few streams. A bare ``python -c pass`` of the same interpreter
is timed alongside as the floor no Python program can beat. Then ``-X importtime`` shows
which heavy packages each command loads: apprise must not be among them unless a
notification is sent, and the config's channel here is never sent to (``check`` without
``--notify``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import ROOT, TOKEN, SimProcess, machine, median, percentile, table

HEAVY = ("apprise", "aiohttp", "httpx", "pydantic", "jinja2", "yaml", "sqlite3")


def omealert_cmd() -> list[str]:
    script = Path(sys.executable).with_name("omealert")
    return [str(script)] if script.exists() else [sys.executable, "-m", "omealert"]


def config(url: str) -> str:
    return f"""\
servers:
  - name: origin
    url: {url}
    access_token: {TOKEN}
channels:
  ops:
    urls: ["json://127.0.0.1:9/omealert"]
defaults:
  channels: [ops]
rules:
  - name: ingest-stalled
    when: lastRecvTime stale > 30s
    severity: critical
  - name: viewers-high
    when: webrtc publishers > 500
    for: 1m
  - name: app-empty
    scope: app
    when: streams < 1
"""


def timed(cmd: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False)
    return time.perf_counter() - start, done.returncode


def imports(args: list[str]) -> dict[str, float]:
    """Heavy packages ``omealert ARGS`` imports, with their cumulative import time (ms)."""
    cmd = [sys.executable, "-X", "importtime", "-m", "omealert", *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    found: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if line.startswith("import time:"):
            _, cumulative, name = line[len("import time:") :].split("|")
            if name.strip() in HEAVY and cumulative.strip().isdigit():
                found[name.strip()] = int(cumulative) / 1000
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    with SimProcess(20, 2) as sim, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "small.yaml"
        path.write_text(config(sim.url))
        check = ["check", "-c", str(path)]
        commands = {
            "python -c pass (floor)": [sys.executable, "-c", "pass"],
            "omealert --version": [*omealert_cmd(), "--version"],
            "omealert check (small config)": [*omealert_cmd(), *check],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        codes: dict[str, int] = {}
        for name, cmd in commands.items():  # warm the page cache and .pyc files
            _, codes[name] = timed(cmd)
        for _ in range(args.runs):
            for name, cmd in commands.items():
                seconds, codes[name] = timed(cmd)
                times[name].append(seconds)
        loaded = {
            "omealert --version": imports(["--version"]),
            "omealert check (small config)": imports(check),
        }

    floor = median(times["python -c pass (floor)"])
    rows = []
    for name, values in times.items():
        ms = [v * 1000 for v in values]
        rows.append([name, median(ms), min(ms), percentile(ms, 90), median(values) / floor,
                     codes[name]])  # fmt: skip
    print(f"machine: {machine()}")
    print(f"start-up: {args.runs} runs each, interleaved (milliseconds)")
    print(table(["", "median", "min", "p90", "× python", "exit"], rows))
    print()
    for name, found in loaded.items():
        heaviest = sorted(found.items(), key=lambda kv: -kv[1])
        listed = ", ".join(f"{k} {v:.0f} ms" for k, v in heaviest)
        print(f"{name} imports: {listed or 'none of ' + ', '.join(HEAVY)}")
    version = median(times["omealert --version"]) * 1000
    check = median(times["omealert check (small config)"]) * 1000
    apprise = "yes" if "apprise" in loaded["omealert check (small config)"] else "no"
    print()
    print(
        f"headline: --version {version:.0f} ms (target ≤ 150 ms); check {check:.0f} ms; "
        f"apprise imported without a notification: {apprise}"
    )


if __name__ == "__main__":
    main()
