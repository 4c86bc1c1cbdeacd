"""The watcher's own health in Prometheus text format, and the tiny HTTP server that serves it.

Served on loopback by default: the numbers are harmless, but nothing here needs to be
reachable from elsewhere unless the operator says so with ``--listen``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .model import AlertState, PollResult

if TYPE_CHECKING:
    from .engine.alerts import Instance


class Metrics:
    """Counters and gauges the runner updates each tick."""

    def __init__(self) -> None:
        self.polls: Counter[str] = Counter()
        self.poll_errors: Counter[tuple[str, str]] = Counter()
        self.target_errors: Counter[str] = Counter()
        #: values left out as not measured, by (server, field, reason)
        self.values_dropped: Counter[tuple[str, str, str]] = Counter()
        #: vhosts and apps that vanished whole, awaiting the next poll's confirmation
        self.unconfirmed: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self.last_poll_duration: dict[str, float] = {}
        self.ticks = 0
        self.slow_ticks = 0
        self.last_tick_duration = 0.0
        self.instances: Counter[str] = Counter()
        self.state_errors = 0
        self.reloads_ok = 0
        self.reloads_failed = 0
        self.last_reload_ok = 1
        #: configured channels: each gets its delivery counters at 0 before its first send,
        #: so rate() and alerting on them work from the start
        self.channels: tuple[str, ...] = ()
        #: set by the runner: returns (sent, failed, dropped) counters per channel
        self.delivery: (
            Callable[[], tuple[dict[str, int], dict[str, int], dict[str, int]]] | None
        ) = None

    def observe_tick(
        self, polls: Iterable[PollResult], duration: float, instances: Iterable[Instance]
    ) -> None:
        self.ticks += 1
        self.last_tick_duration = duration
        for poll in polls:
            self.polls[poll.server] += 1
            self.requests[poll.server] += poll.requests
            self.last_poll_duration[poll.server] = poll.duration
            if poll.error is not None:
                self.poll_errors[(poll.server, poll.error.kind.value)] += 1
            self.target_errors[poll.server] += len(poll.target_errors)
            for (path, reason), n in poll.dropped.items():
                self.values_dropped[(poll.server, path, reason)] += n
            if poll.unconfirmed:
                self.unconfirmed[poll.server] += len(poll.unconfirmed)
        counts: Counter[str] = Counter({s.value: 0 for s in AlertState})
        for inst in instances:
            counts[inst.state.value] += 1
        self.instances = counts

    def render(self) -> str:
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, rows: Iterable[tuple[str, float]]) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in rows:
                lines.append(f"{name}{labels} {_num(value)}")

        metric("omealert_polls_total", "counter", "Polls per OME server.",
               [(_l(server=s), n) for s, n in sorted(self.polls.items())])  # fmt: skip
        metric("omealert_poll_errors_total", "counter", "Polls that could not read a server.",
               [(_l(server=s, kind=k), n)
                for (s, k), n in sorted(self.poll_errors.items())])  # fmt: skip
        metric("omealert_target_errors_total", "counter", "Failed per-target requests.",
               [(_l(server=s), n) for s, n in sorted(self.target_errors.items())])  # fmt: skip
        metric("omealert_values_dropped_total", "counter",
               "Values OME printed but had not measured, left out as no value.",
               [(_l(server=s, field=f, reason=r), n)
                for (s, f, r), n in sorted(self.values_dropped.items())])  # fmt: skip
        metric("omealert_unconfirmed_vanishings_total", "counter",
               "Vhosts and apps that vanished whole, held until the next poll confirms it.",
               [(_l(server=s), n) for s, n in sorted(self.unconfirmed.items())])  # fmt: skip
        metric("omealert_requests_total", "counter", "HTTP requests made to OME.",
               [(_l(server=s), n) for s, n in sorted(self.requests.items())])  # fmt: skip
        metric("omealert_poll_duration_seconds", "gauge", "Duration of the last poll.",
               [(_l(server=s), d) for s, d in sorted(self.last_poll_duration.items())])  # fmt: skip
        metric("omealert_ticks_total", "counter", "Evaluation ticks.", [("", self.ticks)])
        metric("omealert_slow_ticks_total", "counter", "Ticks longer than the interval.",
               [("", self.slow_ticks)])  # fmt: skip
        metric("omealert_tick_duration_seconds", "gauge", "Duration of the last tick.",
               [("", self.last_tick_duration)])  # fmt: skip
        metric("omealert_alerts", "gauge", "Alert instances per state.",
               [(_l(state=s), n) for s, n in sorted(self.instances.items())])  # fmt: skip
        sent: dict[str, int] = {}
        failed: dict[str, int] = {}
        dropped: dict[str, int] = {}
        if self.delivery is not None:
            sent, failed, dropped = self.delivery()
        for counts in (sent, failed, dropped):
            for channel in self.channels:
                counts.setdefault(channel, 0)
        metric("omealert_notifications_sent_total", "counter", "Messages delivered per channel.",
               [(_l(channel=c), n) for c, n in sorted(sent.items())])  # fmt: skip
        metric("omealert_notifications_failed_total", "counter",
               "Failed delivery attempts per channel.",
               [(_l(channel=c), n) for c, n in sorted(failed.items())])  # fmt: skip
        metric("omealert_notifications_dropped_total", "counter",
               "Messages given up per channel.",
               [(_l(channel=c), n) for c, n in sorted(dropped.items())])  # fmt: skip
        metric("omealert_state_errors_total", "counter", "State database failures.",
               [("", self.state_errors)])  # fmt: skip
        metric("omealert_config_last_reload_successful", "gauge",
               "1 if the last config reload worked.", [("", self.last_reload_ok)])  # fmt: skip
        metric("omealert_config_reloads_total", "counter", "Config reloads by result.",
               [(_l(result="success"), self.reloads_ok),
                (_l(result="failure"), self.reloads_failed)])  # fmt: skip
        return "\n".join(lines) + "\n"


def _l(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class MetricsServer:
    """Serves ``/metrics`` and ``/healthz`` over plain HTTP/1.1 (one request per connection)."""

    def __init__(self, metrics: Metrics, host: str = "127.0.0.1", port: int = 0) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            line = request.split(b"\r\n", 1)[0].decode("latin-1")
            parts = line.split(" ")
            path = parts[1] if len(parts) >= 2 else "/"
            path = path.split("?", 1)[0]
            if path == "/metrics":
                status, body, ctype = "200 OK", self.metrics.render(), "text/plain; version=0.0.4"
            elif path == "/healthz":
                status, body, ctype = "200 OK", "ok\n", "text/plain"
            else:
                status, body, ctype = "404 Not Found", "not found\n", "text/plain"
            data = body.encode()
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + data)
            await writer.drain()
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            ConnectionError,
            asyncio.LimitOverrunError,
        ):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
