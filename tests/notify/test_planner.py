"""Notification policy: first, repeat, resolved, grouping, silences, inhibition, routes."""

from __future__ import annotations

from typing import Any

from omealert.engine.engine import Engine
from omealert.errors import SourceErrorKind
from omealert.notify.planner import Planner
from omealert.rules import InhibitSpec, Matcher, RouteSpec, Rule
from omealert.state.acks import Ack
from omealert.state.records import OutboxMessage, Silence, service_key

from ..helpers import poll, rule, settings

T0 = 1_767_225_600.0
WEBRTC = "publishers.connections.webrtc"


class Scenario:
    """An engine and a planner over one config, stepped on simulated time."""

    def __init__(self, *rules_: Rule, **kw: Any) -> None:
        kw.setdefault("channels", {"ops": ["json://127.0.0.1:9/ops"]})
        self.settings = settings(*rules_, **kw)
        self.engine = Engine(self.settings)
        self.planner = Planner(self.settings)
        self.silences: list[Silence] = []
        self.acks: list[Ack] = []

    def tick(
        self, at: float, streams: dict[str, int] | None = None, **poll_kw: Any
    ) -> list[OutboxMessage]:
        targets = {f"default/app/{s}": {WEBRTC: n} for s, n in (streams or {}).items()}
        p = poll(at, targets, **poll_kw)
        transitions = self.engine.step([p], at)
        active = [s for s in self.silences if s.starts_at <= at < s.ends_at]
        return self.planner.plan(self.engine, transitions, at, active, self.acks)


def hi(**kw: Any) -> Rule:
    kw.setdefault("channels", ("ops",))
    return rule("hi", "webrtc publishers > 500", **kw)


def summary(msgs: list[OutboxMessage]) -> list[tuple[str, str, str, list[str]]]:
    return [(m.channel, m.reason, m.title, m.targets) for m in msgs]


class TestTiming:
    def test_first_notice_then_exact_repeat(self) -> None:
        """A firing alert is announced once, then again exactly when repeat_interval has passed."""
        sc = Scenario(hi(repeat_interval_s=60))
        assert summary(sc.tick(T0, {"s1": 600})) == [
            ("ops", "first", "[FIRING] hi on origin/default/app/s1", ["origin/default/app/s1"])
        ]
        assert sc.tick(T0 + 10, {"s1": 600}) == []
        assert sc.tick(T0 + 59.9, {"s1": 600}) == []
        assert [m.reason for m in sc.tick(T0 + 60, {"s1": 600})] == ["repeat"]
        assert sc.tick(T0 + 70, {"s1": 600}) == []
        assert [m.reason for m in sc.tick(T0 + 120, {"s1": 600})] == ["repeat"]

    def test_resolved_goes_to_channels_that_heard_of_the_firing(self) -> None:
        """The resolve notice is sent once, with a [RESOLVED] title, to the notified channel."""
        sc = Scenario(hi())
        sc.tick(T0, {"s1": 600})
        msgs = sc.tick(T0 + 10, {"s1": 100})
        assert summary(msgs) == [
            ("ops", "resolved", "[RESOLVED] hi on origin/default/app/s1", ["origin/default/app/s1"])
        ]
        assert msgs[0].notify_type == "success"
        assert sc.tick(T0 + 20, {"s1": 100}) == []

    def test_send_resolved_false_sends_nothing_on_resolve(self) -> None:
        """With send_resolved off, a resolve is silent."""
        sc = Scenario(hi(send_resolved=False))
        sc.tick(T0, {"s1": 600})
        assert sc.tick(T0 + 10, {"s1": 100}) == []

    def test_pending_alert_says_nothing(self) -> None:
        """Pending alerts never notify, and a pending alert that clears sends no resolve."""
        sc = Scenario(hi(for_s=60))
        assert sc.tick(T0, {"s1": 600}) == []
        assert sc.tick(T0 + 10, {"s1": 100}) == []

    def test_one_message_per_service(self) -> None:
        """A channel with two URLs gets one outbox entry per URL, each retried on its own."""
        sc = Scenario(hi(), channels={"ops": ["json://127.0.0.1:9/a", "json://127.0.0.1:9/b"]})
        msgs = sc.tick(T0, {"s1": 600})
        assert [(m.channel, m.url_index) for m in msgs] == [("ops", 0), ("ops", 1)]
        keys = [service_key("json://127.0.0.1:9/a"), service_key("json://127.0.0.1:9/b")]
        assert [m.service_key for m in msgs] == keys

    def test_a_url_listed_twice_is_one_service(self) -> None:
        """The same URL twice in a channel gets the message once: it is one service."""
        urls = ["json://127.0.0.1:9/a", "json://127.0.0.1:9/b", "json://127.0.0.1:9/a"]
        sc = Scenario(hi(), channels={"ops": urls})
        msgs = sc.tick(T0, {"s1": 600})
        assert [m.url_index for m in msgs] == [0, 1]


class TestGrouping:
    def test_many_streams_in_one_tick_are_one_message(self) -> None:
        """Thirty streams firing in the same tick become one [FIRING:30] message."""
        sc = Scenario(hi())
        msgs = sc.tick(T0, {f"s{i:02d}": 600 for i in range(30)})
        assert len(msgs) == 1
        assert msgs[0].title == "[FIRING:30] hi (30 targets)"
        assert len(msgs[0].targets) == 30
        resolved = sc.tick(T0 + 10, {f"s{i:02d}": 0 for i in range(30)})
        assert [m.title for m in resolved] == ["[RESOLVED] hi (30 targets)"]

    def test_group_wait_collects_alerts_that_fire_soon_after(self) -> None:
        """group_wait holds the first notice so alerts firing meanwhile join the same message."""
        sc = Scenario(hi(group_wait_s=30))
        assert sc.tick(T0, {"s1": 600, "s2": 0}) == []
        assert sc.tick(T0 + 10, {"s1": 600, "s2": 600}) == []
        msgs = sc.tick(T0 + 30, {"s1": 600, "s2": 600})
        assert [m.targets for m in msgs] == [["origin/default/app/s1"]]
        msgs = sc.tick(T0 + 40, {"s1": 600, "s2": 600})
        assert [m.targets for m in msgs] == [["origin/default/app/s2"]]

    def test_group_by_splits_messages_by_label(self) -> None:
        """group_by: [app] sends one message per app."""
        sc = Scenario(hi(group_by=("app",)))
        p = poll(T0, {"default/a1/s1": {WEBRTC: 600}, "default/a2/s2": {WEBRTC: 600},
                      "default/a2/s3": {WEBRTC: 600}})  # fmt: skip
        msgs = sc.planner.plan(sc.engine, sc.engine.step([p], T0), T0)
        assert sorted(len(m.targets) for m in msgs) == [1, 2]


class TestSilencesAndInhibition:
    def _silence(self, *matchers: str, start: float, end: float) -> Silence:
        return Silence("abcd1234", list(matchers), start, end, "me", "maintenance", start)

    def test_silenced_alert_is_quiet_until_the_silence_ends(self) -> None:
        """A silenced alert sends nothing; when the silence ends it is announced."""
        sc = Scenario(hi())
        sc.silences.append(self._silence("stream=~s.*", "rule=hi", start=T0, end=T0 + 60))
        assert sc.tick(T0, {"s1": 600}) == []
        assert sc.tick(T0 + 30, {"s1": 600}) == []
        assert [m.reason for m in sc.tick(T0 + 60, {"s1": 600})] == ["first"]

    def test_resolve_of_an_alert_notified_before_the_silence_is_still_sent(self) -> None:
        """A silence started after the firing notice does not swallow the resolve."""
        sc = Scenario(hi())
        assert len(sc.tick(T0, {"s1": 600})) == 1
        sc.silences.append(self._silence("rule=hi", start=T0 + 5, end=T0 + 600))
        assert [m.reason for m in sc.tick(T0 + 10, {"s1": 100})] == ["resolved"]

    def test_api_down_inhibits_the_servers_other_alerts(self) -> None:
        """While ome-api-down fires, matching alerts on the same server send no repeats."""
        inhibit = InhibitSpec(
            source=(Matcher.parse("rule=ome-api-down"),),
            target=(Matcher.parse("rule!=ome-api-down"),),
            equal=("server",),
        )
        sc = Scenario(hi(repeat_interval_s=10), inhibit=(inhibit,), default_channels=("ops",))
        assert len(sc.tick(T0, {"s1": 600})) == 1
        msgs = sc.tick(T0 + 10, error=SourceErrorKind.TIMEOUT)
        assert [m.rule for m in msgs] == ["ome-api-down"]
        msgs = sc.tick(T0 + 20, error=SourceErrorKind.TIMEOUT)
        assert msgs == []  # hi's repeat is inhibited; api-down repeats only hourly

    def test_routes_add_channels_by_severity(self) -> None:
        """A route sends every critical alert to the pager channel as well."""
        route = RouteSpec(matchers=(Matcher.parse("severity=critical"),), channels=("pager",))
        sc = Scenario(
            hi(severity="critical"),
            rule("lo", "webrtc publishers > 100", channels=("ops",)),
            routes=(route,),
            channels={"ops": ["json://127.0.0.1:9/ops"], "pager": ["json://127.0.0.1:9/pg"]},
        )
        msgs = sc.tick(T0, {"s1": 600})
        assert sorted((m.rule, m.channel) for m in msgs) == [
            ("hi", "ops"),
            ("hi", "pager"),
            ("lo", "ops"),
        ]
