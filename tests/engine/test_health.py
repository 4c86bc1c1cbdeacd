"""The health state of streams, apps and servers, derived from polls and the engine's alerts."""

from __future__ import annotations

from omealert.engine.engine import Engine
from omealert.engine.health import Health, HealthBook, absent_rules
from omealert.errors import SourceErrorKind
from omealert.model import Target
from tests.helpers import poll, rule, settings, ts

T0 = 1_767_225_600.0
CAM1 = Target("origin", "default", "live", "cam1")
CAM2 = Target("origin", "default", "live", "cam2")
APP = Target("origin", "default", "live")


def fields(idle: float, at: float, viewers: int = 3) -> dict[str, object]:
    return {
        "providers.lastRecvTime": ts(at - idle),
        "providers.avgThroughputIn": 2_000_000,
        "publishers.viewers": viewers,
    }


def step(engine: Engine, book: HealthBook, at: float, **streams: float) -> None:
    """One tick: each named stream last received input ``idle`` seconds ago."""
    polls = [poll(at, {f"default/live/{n}": fields(idle, at) for n, idle in streams.items()})]
    engine.step(polls, at)
    book.observe(polls, engine.instances(), absent_rules(engine.settings), at)


def test_quiet_ingest_is_stalled_and_rolls_up_with_counts() -> None:
    """No input for longer than stale_after makes a stream stalled, its app and server too."""
    engine, book = Engine(settings()), HealthBook(["origin"], 10.0)
    step(engine, book, T0, cam1=0.5, cam2=0.5)
    assert book.streams[CAM1].state is Health.HEALTHY
    step(engine, book, T0 + 10, cam1=42.0, cam2=0.5)
    assert (book.streams[CAM1].state, book.streams[CAM1].reason) == (
        Health.STALLED,
        "no input for 42s",
    )
    assert book.streams[CAM1].since == T0 + 10
    assert book.apps[APP].state is Health.STALLED
    assert book.servers["origin"].reason == "1 of 2 streams stalled"
    assert book.servers["origin"].counts == {"stalled": 1, "healthy": 1}
    step(engine, book, T0 + 20, cam1=52.0, cam2=0.5)
    assert book.streams[CAM1].since == T0 + 10  # still the same episode


def test_alerts_make_degraded_and_failing_with_the_rule_as_reason() -> None:
    """A firing warning makes degraded, a critical one failing; the reason names the rule."""
    rules = (
        rule("viewers-high", "publishers.viewers > 100"),
        rule("viewers-none", "publishers.viewers < 1", severity="critical"),
    )
    engine, book = Engine(settings(*rules)), HealthBook(["origin"], 10.0)
    at = T0 + 3 * 3600 + 3 * 60 + 10  # 03:03:10
    polls = [
        poll(
            at,
            {
                "default/live/cam1": fields(0.5, at, viewers=500),
                "default/live/cam2": fields(0.5, at, viewers=0),
            },
        )
    ]
    engine.step(polls, at)
    book.observe(polls, engine.instances(), absent_rules(engine.settings), at)
    assert book.streams[CAM1].state is Health.DEGRADED
    assert book.streams[CAM1].reason == "viewers-high firing since 03:03:10"
    assert book.streams[CAM2].state is Health.FAILING
    assert book.apps[APP].state is Health.FAILING


def test_unreadable_server_is_unknown_never_healthy() -> None:
    """A server whose poll fails is unknown, and so are the streams it listed before."""
    engine, book = Engine(settings()), HealthBook(["origin"], 10.0)
    assert book.servers == {}
    book.observe([], [], frozenset(), T0)
    assert book.servers["origin"].state is Health.UNKNOWN
    assert book.servers["origin"].reason == "no poll yet"
    step(engine, book, T0, cam1=0.5)
    failed = [poll(T0 + 10, error=SourceErrorKind.TIMEOUT)]
    book.observe(failed, engine.instances(), absent_rules(engine.settings), T0 + 10)
    assert book.servers["origin"].state is Health.UNKNOWN
    assert book.servers["origin"].reason.startswith("cannot be read: timeout")
    assert book.streams[CAM1].state is Health.UNKNOWN


def test_absent_stream_is_offline() -> None:
    """A stream an ``absent`` rule expects and the listing lacks is offline."""
    expected = rule("studio", "absent", match="default/studio/main", severity="critical")
    engine, book = Engine(settings(expected)), HealthBook(["origin"], 10.0)
    step(engine, book, T0, cam1=0.5)
    main = Target("origin", "default", "studio", "main")
    assert book.streams[main].state is Health.OFFLINE
    assert book.streams[main].reason.startswith("expected by studio, not listed since")
    assert book.apps[Target("origin", "default", "studio")].state is Health.OFFLINE
    assert book.servers["origin"].state is Health.OFFLINE


def test_trends_keep_a_bounded_series_per_stream_and_forget_ended_ones() -> None:
    """Sparkline points are capped per stream, and a stream that leaves is dropped."""
    engine, book = Engine(settings()), HealthBook(["origin"], 10.0)
    for i in range(200):
        step(engine, book, T0 + i, cam1=0.5, cam2=0.5)
    series = book.trends.get(CAM1)
    assert series is not None and len(series.times) == book.trends.points
    assert book.trends._series[CAM1].times.__len__() < book.trends.points * 3 // 2
    step(engine, book, T0 + 300, cam1=0.5)
    assert book.trends.get(CAM2) is None and CAM2 not in book.streams


def test_an_app_level_queue_is_not_an_app() -> None:
    """Internal queues listed under an app (no stream) are not counted as apps or streams."""
    engine, book = Engine(settings()), HealthBook(["origin"], 10.0)
    polls = [poll(T0, {"default/live/cam1": fields(0.5, T0)})]
    queue = Target("origin", "default", "live", None, "queue", "pvd/app_worker#101")
    polls[0].listed.add(queue)
    engine.step(polls, T0)
    book.observe(polls, engine.instances(), absent_rules(engine.settings), T0)
    assert list(book.apps) == [APP] and list(book.streams) == [CAM1]
