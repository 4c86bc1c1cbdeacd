"""``omealert demo``: a one-minute story against the built-in simulator, nothing else needed.

Everything is real except time: the simulator is a real HTTP server on loopback, the
watcher polls it through the real client, and notifications are delivered by apprise to a
real webhook receiver on loopback, whose deliveries are printed. Simulated time moves two
seconds per tick; ``--speed N`` only shortens the real pause between ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..clock import FakeClock
from ..model import AlertState

if TYPE_CHECKING:
    from ..runner import Runner
    from ..runner.tick import TickReport

INTERVAL_S = 2.0
STORY_S = 60.0

DEMO_CONFIG = """\
# The demo's rule set: the same language as rules.example.yaml, tuned for a short story.
servers:
  - name: demo
    url: {sim_url}
    access_token: ome-access-token
    timeout: 500ms
    thumbnails: {{url: {sim_url}, every: 2s}}
interval: 2s
ome_events:
  secret_key: {alert_key}
defaults:
  channels: [webhook]
  repeat_interval: 1h
channels:
  webhook:
    urls: ["json://127.0.0.1:{hook_port}/omealert"]
    format: text
ome_api_down:
  for: 2s
inhibit:
  - source: ["rule=ome-api-down"]
    target: ["rule!=ome-api-down"]
    equal: [server]
rules:
  - name: ingest-stalled
    when: lastRecvTime stale > 5s
    severity: critical
    summary: "{{{{ target }}}}: no input for {{{{ value | duration }}}}"
  - name: webrtc-viewers-high
    when: webrtc publishers > 500
    resolve_when: webrtc publishers < 450
    for: 4s
    summary: "{{{{ target }}}} has {{{{ value }}}} WebRTC viewers (cap 500)"
  - name: input-bitrate-low
    when: avgThroughputIn < 500kbps
    for: 4s
    summary: "{{{{ target }}}} ingest at {{{{ value | bitrate }}}}"
  - name: queue-congested
    scope: queue
    when: size > threshold and threshold > 0 and inputPerSecond > 0
    for: 2s
    summary: "{{{{ labels.name }}}} of {{{{ labels.stream }}}} holds {{{{ value }}}} items"
  - name: stream-ended
    match: default/live/studio-c
    when: absent
    summary: "{{{{ target }}}} ended (OME's event made omealert list its app at once)"
  - name: push-not-pushing
    scope: push
    when: state != "pushing" and stream_live
    for: 6s
    severity: critical
    summary: "{{{{ labels.stream }}}} to {{{{ labels.destination }}}}: {{{{ sample.state }}}}"
  - name: picture-frozen
    match: default/live/cam-2
    when: picture.frozen_for > 6s
    summary: "{{{{ target }}}}: the picture has not moved for {{{{ value | duration }}}}"
  - name: stream-gone
    match: default/live/cam-2
    when: absent
    for: 2s
    severity: critical
    summary: "{{{{ target }}}} is not listed by OME"
"""


#: the key the simulator, as OME's Alert module, signs its events with
ALERT_KEY = "demo-alert-key"


@dataclass(frozen=True)
class Beat:
    at: float
    text: str
    act: Callable[[Any], None]
    #: between two ticks: the demo waits for OME's event and the early poll it makes
    early: bool = False


def story() -> list[Beat]:
    live = ("default", "live")
    return [
        Beat(6, "the encoder of studio-a hangs with its TCP session open",
             lambda s: s.stall(*live, "studio-a")),
        Beat(8, "the CDN ingest studio-b is pushed to starts refusing it: OME retries every "
                "second (error, connecting, error ...), never `pushing`",
             lambda s: s.set_push_destination(*live, "cdn", "refused")),
        Beat(14, "a link to studio-b goes viral: 620 WebRTC viewers",
             lambda s: s.set_viewers(*live, "studio-b", "webrtc", 620)),
        Beat(16, "studio-a's encoder comes back; OME's first window after the gap is partial "
                 "(250 kbps): no value, so input-bitrate-low stays quiet",
             lambda s: s.resume(*live, "studio-a")),
        Beat(18, "cam-2's capture card freezes: its bytes keep flowing, its thumbnail shows "
                 "the same picture", lambda s: s.set_picture("live", "cam-2", "frozen")),
        Beat(20, "cam-1 is transcoded and its video filter falls behind: the queue grows "
                 "by 30 frames a second", lambda s: s.congest_queue(*live, "cam-1", 30)),
        Beat(24, "the CDN ingest takes studio-b's push again",
             lambda s: s.set_push_destination(*live, "cdn", "ok")),
        Beat(26, "studio-b settles at 470 viewers (still above the 450 resolve line)",
             lambda s: s.set_viewers(*live, "studio-b", "webrtc", 470)),
        Beat(28, "cam-2's picture moves again",
             lambda s: s.set_picture("live", "cam-2", "moving")),
        Beat(30, "cam-1's transcoder catches up and drains its queue",
             lambda s: s.relieve_queue(*live, "cam-1")),
        Beat(32, "cam-2 disconnects and is gone from OME's listing",
             lambda s: s.remove_stream(*live, "cam-2")),
        Beat(35, "studio-c's publisher stops; OME's Alert module POSTs INGRESS_STREAM_DELETED, "
                 "and omealert polls that stream and its app at once, 1 s before the next tick",
             lambda s: s.remove_stream(*live, "studio-c"), early=True),
        Beat(40, "OME is stopped: for a moment it lists no vhosts (200 []); omealert waits "
                 "for the next poll before believing every stream ended (studio-b stays firing)",
             lambda s: s.set_fault("shutting_down")),
        Beat(42, "OME hangs on its way down: connections accepted, never answered",
             _hang),
        Beat(46, "OME is restarted; each stream's first second is garbage (bitrateLatest "
                 "-1977517884): no value, nothing fires", _restart),
        Beat(48, "cam-2 reconnects",
             lambda s: s.add_stream(*live, "cam-2", viewers={"webrtc": 40})),
        Beat(50, "cam-1's uplink degrades to 300 kbps",
             lambda s: s.set_bitrate(*live, "cam-1", 300_000)),
        Beat(52, "studio-b drops to 300 viewers",
             lambda s: s.set_viewers(*live, "studio-b", "webrtc", 300)),
        Beat(56, "cam-1's uplink recovers", lambda s: s.set_bitrate(*live, "cam-1", 2_500_000)),
    ]  # fmt: skip


def _hang(sim: Any) -> None:
    sim.clear_faults()
    sim.set_fault("hang")


def _restart(sim: Any) -> None:
    sim.clear_faults()
    sim.restart()


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.path.startswith("/heartbeat"):
            self.server.pings.append(self.path)  # type: ignore[attr-defined]
        with contextlib.suppress(ValueError):
            self.server.received.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def run_demo(
    *,
    speed: float = 1.0,
    out: TextIO,
    hold: bool = False,
    listen: tuple[str, int] | None = None,
    heartbeat: bool = False,
) -> int:
    # The story prints every transition itself; the watcher's own log lines would repeat them.
    logging.getLogger("omealert").setLevel(logging.CRITICAL)
    return asyncio.run(_run(speed, out, hold, listen or ("127.0.0.1", 0), heartbeat))


#: ``--heartbeat``: the dead man's switch pings the demo's receiver after every tick
HEARTBEAT_CONFIG = """\
heartbeat:
  url: http://127.0.0.1:{hook_port}/heartbeat/demo-check
  method: POST
  timeout: 1s
"""


async def _run(
    speed: float, out: TextIO, hold: bool, listen: tuple[str, int], heartbeat: bool = False
) -> int:
    from ..config.load import load_config_text
    from ..metrics import Metrics
    from ..notify.delivery import Deliverer
    from ..ome.events import EventBook, Heard, stream_of
    from ..runner import Runner
    from ..simulator import Simulator
    from ..state.store import StateStore
    from ..web.listener import Listener
    from ..web.ome_alert import AlertReceiver
    from ..web.site import install_site

    # the push connects two intervals before the story's 00:00, which is 2026-01-01 00:00 UTC
    clock = FakeClock(FakeClock().now() - 2 * INTERVAL_S)
    start = clock.now()
    hook = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    hook.received = []  # type: ignore[attr-defined]
    hook.pings = []  # type: ignore[attr-defined]
    hook_thread = threading.Thread(target=hook.serve_forever, daemon=True)
    hook_thread.start()
    # OME 0.18's wrong measurements (a new stream's first second, the window after a stall)
    sim = Simulator(clock=clock.now, quirks=["first_second", "partial_window"])
    sim.start()
    tmp = tempfile.TemporaryDirectory(prefix="omealert-demo-")
    store = StateStore(Path(tmp.name) / "demo.db")
    runner = None
    listener = Listener(Metrics(), listen[0], listen[1])
    try:
        for name in ("studio-a", "studio-b", "studio-c", "cam-1", "cam-2"):
            sim.add_stream("default", "live", name, viewers={"webrtc": 40, "llhls": 12})
        # a push to a CDN; its stream key never reaches a message
        sim.start_push("default", "live", "cdn", "studio-b", "rtmp://ingest.cdn.example/live",
                       stream_key="demo-stream-key")  # fmt: skip
        clock.advance(2 * INTERVAL_S)  # the story starts with the push connected
        start = clock.now()
        text = DEMO_CONFIG.format(
            sim_url=sim.url, hook_port=hook.server_address[1], alert_key=ALERT_KEY
        )
        if heartbeat:
            text += HEARTBEAT_CONFIG.format(hook_port=hook.server_address[1])
        settings = load_config_text(text, "demo.yaml", env={})
        book = EventBook()
        runner = Runner(
            settings,
            clock=clock,
            store=store,
            deliverer=Deliverer(),
            events=book,
            metrics=listener.metrics,
            health=True,
        )
        install_site(listener, runner)  # the status page, as on watch --listen
        pings = _Pings(runner, hook) if heartbeat else None
        looks = runner.look

        def heard(event: Heard) -> None:
            book.record(event)
            looks(event.server, stream_of(event))

        receiver = AlertReceiver({"demo": ALERT_KEY.encode()}, heard, listener.metrics)
        receiver.install(listener.app)
        await listener.start()
        page_url = f"http://{listener.host}:{listener.port}/"
        alert_url = f"http://{listener.host}:{listener.port}/ome/alert"
        sim.set_alert_module(alert_url, ALERT_KEY, stream_status=True)
        say = _Printer(out, start)
        say.line(f"omealert demo: a {int(STORY_S)}-second story, {speed:g}× speed")
        say.line(f"  OME simulator  {sim.url}  (5 streams in default/live, 1 push)")
        say.line(f"  OME's events   {alert_url}  (the simulator as OME's Alert module)")
        say.line(f"  webhook        http://127.0.0.1:{hook.server_address[1]}/omealert")
        say.line(f"  rules          {', '.join(r.name for r in settings.rules)}, ome-api-down")
        say.line(f"  status page    {page_url}  (open it while the story plays)")
        say.line("")
        beats = story()
        seen = 0
        while clock.now() - start <= STORY_S:
            elapsed = clock.now() - start
            while beats and beats[0].at <= elapsed:
                beat = beats.pop(0)
                beat.act(sim)
                say.at(clock.now(), f"story: {beat.text}")
            await asyncio.to_thread(sim.alert_flush, 5.0)
            runner.early.take()  # the tick polls everything: what events asked for is done
            seen = await _show(runner, await runner.tick(), say, hook, seen)
            await _pictures_fetched(runner)
            if beats and beats[0].early and beats[0].at < elapsed + INTERVAL_S:
                beat = beats.pop(0)
                clock.set(start + beat.at)
                await asyncio.sleep(INTERVAL_S / speed / 2)
                beat.act(sim)
                say.at(clock.now(), f"story: {beat.text}")
                await asyncio.to_thread(sim.alert_flush, 5.0)
                servers, streams = runner.early.take()
                report = await runner.tick(only=servers, streams=streams)
                seen = await _show(runner, report, say, hook, seen, " (event-triggered poll)")
                await asyncio.sleep(INTERVAL_S / speed / 2)
            else:
                await asyncio.sleep(INTERVAL_S / speed)
            clock.set(start + elapsed + INTERVAL_S)
            if pings is not None:
                pings.show(say, clock.now())
        say.line("")
        say.line(f"done: {seen} notification(s) delivered to the webhook.")
        if pings is not None:
            say.line(f"heartbeat: {pings.summary()}")
        say.line("Next: read rules.example.yaml, then `omealert check -c rules.example.yaml`.")
        if hold:
            say.line(f"holding: the page stays at {page_url}; Ctrl-C stops")
            await _hold(runner, speed)
        return 0
    finally:
        if runner is not None:
            if runner.fleet is not None:
                await runner.fleet.pinger.aclose()
            await runner.aclose()
        sim.alert_module_off()
        await listener.stop()
        store.close()
        sim.stop()
        hook.shutdown()
        hook.server_close()
        hook_thread.join()
        tmp.cleanup()


async def _pictures_fetched(runner: Runner) -> None:
    """Wait for the thumbnails the tick asked for, so the story reads the same at any speed."""
    for client in runner.clients.values():
        if client.thumbnails:
            await client.thumbnails.settled()


async def _hold(runner: Any, speed: float) -> None:
    """Keep polling the simulator as it was left, until SIGINT or SIGTERM."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    clock = runner.clock
    while not stop.is_set():
        await runner.tick()
        if runner.outbox is not None:
            await runner.outbox.deliver_due()
        clock.advance(INTERVAL_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), INTERVAL_S / speed)


async def _show(
    runner: Runner, report: TickReport, say: _Printer, hook: Any, seen: int, how: str = ""
) -> int:
    """Print a tick's transitions and deliver its messages; returns how many were received."""
    for tr in report.transitions:
        if tr.to_state is AlertState.INACTIVE:
            continue
        say.at(
            report.at,
            f"{tr.instance.rule} {tr.instance.target.key}: "
            f"{tr.from_state.value} → {tr.to_state.value}{how}",
        )
    if runner.outbox is not None:
        await runner.outbox.deliver_due()
    received: list[dict[str, Any]] = hook.received
    for doc in received[seen:]:
        say.notification(report.at, doc)
    return len(received)


class _Pings:
    """``--heartbeat``: the pings the receiver got, printed when they change kind."""

    def __init__(self, runner: Any, hook: Any) -> None:
        from ..runner.fleet import FleetHook

        runner.fleet = FleetHook(
            runner.settings,
            lambda inst, rule, now: runner.planner.view(inst, rule, now),
            clock=runner.clock,
        )
        self.hook = hook
        self.seen = 0
        self.last = ""

    def show(self, say: _Printer, now: float) -> None:
        got: list[str] = self.hook.pings
        for path in got[self.seen :]:
            kind = "fail" if path.endswith("/fail") else "ok"
            if kind != self.last:
                what = "every server failed this tick" if kind == "fail" else "a tick completed"
                say.at(now, f"heartbeat: POST {path} ({what}; one ping per tick from now on)")
            self.last = kind
        self.seen = len(got)

    def summary(self) -> str:
        got: list[str] = self.hook.pings
        fails = sum(1 for p in got if p.endswith("/fail"))
        return f"{len(got)} ping(s) received, {fails} of them /fail"


class _Printer:
    def __init__(self, out: TextIO, start: float) -> None:
        self.out = out
        self.start = start

    def line(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def at(self, now: float, text: str) -> None:
        t = int(now - self.start)
        self.line(f"[{t // 60:02d}:{t % 60:02d}] {text}")

    def notification(self, now: float, doc: dict[str, Any]) -> None:
        t = int(now - self.start)
        from ..notify.render import NOTIFY_TYPE_MEANING

        # apprise's notify type sets the colour; "failure" would read like a failed delivery
        kind = str(doc.get("type", "?"))
        label = NOTIFY_TYPE_MEANING.get(kind, kind)
        self.line(f"[{t // 60:02d}:{t % 60:02d}] ┌ notification ({label})")
        self.line(f"        │ {doc.get('title', '')}")
        for line in str(doc.get("message", "")).splitlines():
            self.line(f"        │ {line}")
        self.line("        └")
