"""Maintenance windows and acks in the planner, on simulated time: the pinned semantics."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from omealert.config.time_intervals import NamedInterval, TimeIntervalModel
from omealert.rules import ChannelSpec, Matcher, RouteSpec
from omealert.state.acks import Ack
from omealert.state.records import OutboxMessage, Silence

from .test_planner import Scenario, hi

BERLIN = ZoneInfo("Europe/Berlin")
OPS = "json://127.0.0.1:9/ops"


def at(text: str) -> float:
    """A Berlin wall-clock time (``2026-03-28 22:00``) as a unix time."""
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp()


def interval(name: str, *specs: dict[str, Any]) -> NamedInterval:
    return NamedInterval(name, tuple(TimeIntervalModel.model_validate(s) for s in specs))


#: Every night from 22:00 to 02:00 Berlin time: across midnight, so two intervals.
NIGHTLY = interval(
    "nightly",
    {"times": [{"start_time": "22:00", "end_time": "24:00"}], "location": "Europe/Berlin"},
    {"times": [{"start_time": "00:00", "end_time": "02:00"}], "location": "Europe/Berlin"},
)


def reasons(msgs: list[OutboxMessage]) -> list[str]:
    return [m.reason for m in msgs]


def nightly_rule(**kw: Any) -> Scenario:
    kw.setdefault("repeat_interval_s", 3600.0)
    return Scenario(hi(mute_time_intervals=("nightly",), **kw), time_intervals={"nightly": NIGHTLY})


class TestWindowSemantics:
    def test_alert_notified_before_the_window_is_not_renotified_when_it_ends(self) -> None:
        """Told at 21:30, muted 22:00-02:00: nothing at 02:00; the next repeat is 02:30."""
        sc = nightly_rule()
        assert reasons(sc.tick(at("2026-06-10 21:30"), {"s1": 600})) == ["first"]
        for t in ("22:30", "23:30"):
            assert sc.tick(at(f"2026-06-10 {t}"), {"s1": 600}) == []
        for t in ("00:30", "01:30", "02:00", "02:10", "02:29"):
            assert sc.tick(at(f"2026-06-11 {t}"), {"s1": 600}) == [], t
        assert reasons(sc.tick(at("2026-06-11 02:30"), {"s1": 600})) == ["repeat"]
        assert sc.tick(at("2026-06-11 03:00"), {"s1": 600}) == []

    def test_alert_that_began_inside_and_still_fires_is_told_once_at_the_end(self) -> None:
        """Firing from 23:00 inside the window: one first notice at 02:00, then its repeats."""
        sc = nightly_rule()
        assert sc.tick(at("2026-06-10 23:00"), {"s1": 600}) == []
        assert sc.tick(at("2026-06-11 01:59"), {"s1": 600}) == []
        assert reasons(sc.tick(at("2026-06-11 02:00"), {"s1": 600})) == ["first"]
        assert sc.tick(at("2026-06-11 02:01"), {"s1": 600}) == []
        assert sc.tick(at("2026-06-11 02:59"), {"s1": 600}) == []
        assert reasons(sc.tick(at("2026-06-11 03:00"), {"s1": 600})) == ["repeat"]

    def test_resolve_inside_the_window_is_delivered_and_says_why(self) -> None:
        """An alert told before the window resolves inside it: the resolve goes out, noted."""
        sc = nightly_rule()
        sc.tick(at("2026-06-10 21:00"), {"s1": 600})
        (msg,) = sc.tick(at("2026-06-10 23:00"), {"s1": 1})
        assert msg.reason == "resolved"
        assert "inside mute time interval 'nightly'" in msg.body
        assert "its resolve is always sent" in msg.body

    def test_alert_that_began_and_ended_inside_the_window_sends_nothing(self) -> None:
        """Firing 22:30 to 01:00, all inside the window: no message at all, not even later."""
        sc = nightly_rule()
        assert sc.tick(at("2026-06-10 22:30"), {"s1": 600}) == []
        assert sc.tick(at("2026-06-11 01:00"), {"s1": 1}) == []
        assert sc.tick(at("2026-06-11 02:30"), {"s1": 1}) == []

    def test_resolve_under_a_silence_or_maintenance_says_so(self) -> None:
        """A silence or a maintenance added after the firing lets the resolve through, named."""
        for kind, words in (("silence", "silenced by abcd1234"), ("maintenance", "upgrade")):
            sc = Scenario(hi())
            sc.tick(1000.0, {"s1": 600})
            sc.silences.append(
                Silence("abcd1234", ["rule=hi"], 1001, 9000, "me", "upgrade", 1001, None, kind)
            )
            assert sc.tick(1010.0, {"s1": 600}) == []
            (msg,) = sc.tick(1020.0, {"s1": 1})
            assert (msg.reason, words in msg.body) == ("resolved", True), msg.body

    def test_maintenance_longer_than_the_repeat_does_not_repeat_at_its_end(self) -> None:
        """Repeats that fall due under a maintenance are skipped, not sent when it ends."""
        sc = Scenario(hi(repeat_interval_s=60.0))
        sc.tick(0.0, {"s1": 600})
        sc.silences.append(Silence("m1", ["rule=hi"], 5, 200, "me", "x", 5, None, "maintenance"))
        for t in (60.0, 120.0, 180.0, 200.0, 239.0):
            assert sc.tick(t, {"s1": 600}) == [], t
        assert reasons(sc.tick(240.0, {"s1": 600})) == ["repeat"]


class TestNamedZoneClock:
    def test_window_across_the_spring_dst_change_lasts_its_wall_clock_hours(self) -> None:
        """01:00-04:00 Berlin on 2026-03-29 is two real hours (02:00 is skipped)."""
        spring = interval(
            "night",
            {"times": [{"start_time": "01:00", "end_time": "04:00"}], "location": "Europe/Berlin"},
        )
        start = datetime(2026, 3, 29, 0, 0, tzinfo=ZoneInfo("UTC")).timestamp()  # 01:00 CET
        assert not spring(start - 60)
        assert spring(start)
        assert spring(start + 2 * 3600 - 60)  # 03:59 CEST
        assert not spring(start + 2 * 3600)  # 04:00 CEST: end is exclusive
        day_before = start - 86400
        assert spring(day_before + 3 * 3600 - 60) and not spring(day_before + 3 * 3600)

    def test_window_across_the_autumn_dst_change_holds_the_repeated_hour(self) -> None:
        """01:00-04:00 Berlin on 2026-10-25 is four real hours (02:00-03:00 happens twice)."""
        autumn = interval(
            "night",
            {"times": [{"start_time": "01:00", "end_time": "04:00"}], "location": "Europe/Berlin"},
        )
        start = datetime(2026, 10, 24, 23, 0, tzinfo=ZoneInfo("UTC")).timestamp()  # 01:00 CEST
        assert not autumn(start - 1)
        assert all(autumn(start + h * 3600) for h in (0, 1, 2, 3))
        assert not autumn(start + 4 * 3600)

    def test_planner_across_dst_tells_the_alert_when_the_local_window_ends(self) -> None:
        """An alert firing through the DST night is first told at 04:00 CEST, 02:00 UTC."""
        spring = interval(
            "night",
            {"times": [{"start_time": "01:00", "end_time": "04:00"}], "location": "Europe/Berlin"},
        )
        sc = Scenario(hi(mute_time_intervals=("night",)), time_intervals={"night": spring})
        midnight_utc = datetime(2026, 3, 29, 0, 0, tzinfo=ZoneInfo("UTC")).timestamp()
        assert sc.tick(midnight_utc + 600, {"s1": 600}) == []
        assert sc.tick(midnight_utc + 2 * 3600 - 1, {"s1": 600}) == []
        assert reasons(sc.tick(midnight_utc + 2 * 3600, {"s1": 600})) == ["first"]


class TestWhereWindowsApply:
    def test_active_time_intervals_allow_notices_only_inside(self) -> None:
        """With office hours active 09:00-17:00, a 08:00 alert is first told at 09:00."""
        office = interval(
            "office",
            {"times": [{"start_time": "09:00", "end_time": "17:00"}], "location": "Europe/Berlin"},
        )
        sc = Scenario(hi(active_time_intervals=("office",)), time_intervals={"office": office})
        assert sc.tick(at("2026-06-10 08:00"), {"s1": 600}) == []
        assert reasons(sc.tick(at("2026-06-10 09:00"), {"s1": 600})) == ["first"]

    def test_a_muted_route_quiets_only_the_channel_it_adds(self) -> None:
        """The route's pager is muted at night; the rule's own ops channel still hears it."""
        sc = Scenario(
            hi(repeat_interval_s=86400.0),
            channels={
                "ops": ChannelSpec("ops", (OPS,)),
                "pager": ChannelSpec("pager", (OPS + "2",)),
            },
            routes=(
                RouteSpec(
                    (Matcher.parse("rule=hi"),), ("pager",), mute_time_intervals=("nightly",)
                ),
            ),
            time_intervals={"nightly": NIGHTLY},
        )
        assert [m.channel for m in sc.tick(at("2026-06-10 23:00"), {"s1": 600})] == ["ops"]
        assert [m.channel for m in sc.tick(at("2026-06-11 02:00"), {"s1": 600})] == ["pager"]

    def test_a_muted_channel_is_quiet_for_every_rule(self) -> None:
        """A channel's own mute_time_intervals hold back what it would hear."""
        sc = Scenario(
            hi(),
            channels={"ops": ChannelSpec("ops", (OPS,), mute_time_intervals=("nightly",))},
            time_intervals={"nightly": NIGHTLY},
        )
        assert sc.tick(at("2026-06-10 23:00"), {"s1": 600}) == []
        assert reasons(sc.tick(at("2026-06-11 02:00"), {"s1": 600})) == ["first"]


def ack(alerts: list[tuple[str, str, float]], **kw: Any) -> Ack:
    return Ack(
        kw.pop("id", "ac1d"), ["stream=s1"], "", alerts, "alice", "on it", kw.pop("at", 5.0), **kw
    )


class TestAcks:
    def scenario(self, **kw: Any) -> Scenario:
        return Scenario(hi(repeat_interval_s=60.0), **kw)

    def tick(self, sc: Scenario, t: float, n: int) -> list[OutboxMessage]:
        return sc.tick(t, {"s1": n})

    def test_ack_sends_one_notice_then_no_repeats_but_the_resolve(self) -> None:
        """Acked: one '[ACKNOWLEDGED] … by alice' message, no repeats, the resolve still sent."""
        sc = self.scenario()
        assert reasons(self.tick(sc, 0.0, 600)) == ["first"]
        sc.acks.append(ack([("hi", "origin/default/app/s1", 0.0)]))
        (notice,) = self.tick(sc, 10.0, 600)
        assert notice.reason == "acknowledged"
        assert notice.title == "[ACKNOWLEDGED] hi on origin/default/app/s1 by alice"
        assert "acknowledged by alice: on it" in notice.body
        assert sc.planner.acks.announced == [("ac1d", 10.0)]
        for t in (20.0, 60.0, 120.0, 180.0):
            assert self.tick(sc, t, 600) == [], t
        assert reasons(self.tick(sc, 190.0, 1)) == ["resolved"]

    def test_a_later_firing_of_the_same_alert_is_not_acknowledged(self) -> None:
        """After the acked episode resolved, a new firing is announced like any new alert."""
        sc = self.scenario()
        self.tick(sc, 0.0, 600)
        sc.acks.append(ack([("hi", "origin/default/app/s1", 0.0)]))
        self.tick(sc, 10.0, 600)
        assert reasons(self.tick(sc, 20.0, 1)) == ["resolved"]
        assert reasons(self.tick(sc, 30.0, 600)) == ["first"]
        assert reasons(self.tick(sc, 90.0, 600)) == ["repeat"]

    def test_expiring_ack_resumes_repeats_on_schedule(self) -> None:
        """An ack expiring at 150s: the 60s and 120s repeats are skipped, the 180s one sent."""
        sc = self.scenario()
        self.tick(sc, 0.0, 600)
        sc.acks.append(ack([("hi", "origin/default/app/s1", 0.0)], expires_at=150.0))
        assert reasons(self.tick(sc, 10.0, 600)) == ["acknowledged"]
        for t in (60.0, 120.0, 150.0, 179.0):
            assert self.tick(sc, t, 600) == [], t
        assert reasons(self.tick(sc, 180.0, 600)) == ["repeat"]

    def test_notify_acks_false_keeps_the_ack_silent(self) -> None:
        """With notify_acks off, the ack still stops repeats but sends no message."""
        sc = self.scenario(notify_acks=False)
        self.tick(sc, 0.0, 600)
        sc.acks.append(ack([("hi", "origin/default/app/s1", 0.0)]))
        assert self.tick(sc, 10.0, 600) == []
        assert self.tick(sc, 60.0, 600) == []
        assert sc.planner.acks.announced == [("ac1d", 10.0)]
