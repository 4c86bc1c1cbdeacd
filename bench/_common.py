"""What the benchmarks share: a simulator in its own process, the machine's description, tables.

The simulator runs as a separate process so the client under test has a core of its own
and the two never share an event loop or a GIL. It is scripted through its control
endpoint (``POST /_sim/<method>``), which is also how streams are spread over several apps.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "ome-access-token"


class SimProcess:
    """``python -m omealert.simulator`` with ``streams`` spread over ``apps`` apps of ``default``.

    Streams are named ``s00000``… and apps ``app0``…; ``manual_clock`` (an epoch) makes the
    simulator's clock move only through ``advance``.
    """

    def __init__(self, streams: int, apps: int = 1, *, manual_clock: float | None = None) -> None:
        self.streams = streams
        self.apps = max(1, apps)
        self.manual_clock = manual_clock
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None

    def layout(self) -> list[tuple[str, list[str]]]:
        """``(app, stream names)`` for every app, the streams dealt out in turn."""
        out: list[tuple[str, list[str]]] = [(f"app{a}", []) for a in range(self.apps)]
        for i in range(self.streams):
            out[i % self.apps][1].append(f"s{i:05d}")
        return out

    def start(self) -> SimProcess:
        cmd = [sys.executable, "-m", "omealert.simulator", "--streams", "0", "--app", "app0"]
        cmd += ["--token", TOKEN]
        if self.manual_clock is not None:
            cmd += ["--manual-clock", repr(self.manual_clock)]
        self._proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        self.url = self._proc.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError("the simulator did not start")
        for app, names in self.layout():
            if names:
                self.control("add_streams", vhost="default", app=app, names=names)
        return self

    def control(self, method: str, **kwargs: Any) -> Any:
        """Call one scripting method of the simulator and return its ``result``."""
        body = json.dumps(kwargs).encode()
        request = urllib.request.Request(f"{self.url}/_sim/{method}", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=30) as reply:
            answer = json.loads(reply.read())
        if not answer.get("ok"):
            raise RuntimeError(f"simulator {method}: {answer.get('error')}")
        return answer.get("result")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None

    def __enter__(self) -> SimProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def machine() -> str:
    """One line naming the machine: cores, CPU model, Python, and how busy it is right now."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}, load average {load}"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table: the first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        rest = [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        parts = [row[0].ljust(widths[0]), *rest]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) by linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


class _GcClock:
    """Seconds this process has spent in the cyclic garbage collector since it was installed."""

    total = 0.0
    _started = 0.0

    @classmethod
    def install(cls) -> None:
        if cls._callback not in gc.callbacks:
            gc.callbacks.append(cls._callback)

    @classmethod
    def _callback(cls, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            cls._started = time.perf_counter()
        else:
            cls.total += time.perf_counter() - cls._started


class Stopwatch:
    """Wall time, CPU time and garbage-collector time of this process over a ``with`` block."""

    wall = 0.0
    cpu = 0.0
    gc = 0.0

    def __enter__(self) -> Stopwatch:
        _GcClock.install()
        self._gc = _GcClock.total
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
        self.gc = _GcClock.total - self._gc
