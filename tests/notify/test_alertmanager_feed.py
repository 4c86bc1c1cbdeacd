"""The Alertmanager feed: what each tick posts, when it resends, how resolves are retained.

The engine runs on polls built in memory; the pool is real (its queues are what would be
posted), with no Alertmanager behind it: posting itself is tested against the real binary
in ``tests/cli/test_alertmanager_ha.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from omealert.clock import FakeClock
from omealert.engine.engine import Engine
from omealert.notify.alertmanager import RESOLVED_RETENTION_S, AlertFeed
from omealert.notify.am_sender import MAX_QUEUED, AlertmanagerPool
from omealert.notify.planner import Planner
from omealert.rules import AlertmanagerSpec, HeartbeatSpec, Matcher, RouteSpec
from tests.helpers import poll, rule, settings

WHEN = "webrtc publishers > 5"


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Rig:
    """An engine, a feed and a pool with one Alertmanager whose queue is read, not posted."""

    def __init__(self, **kw: Any) -> None:
        self.settings = settings(
            rule("stalled", WHEN, deliver=("alertmanager",), labels={"team": "a"}),
            rule("quiet", WHEN),
            alertmanagers=(AlertmanagerSpec("http://127.0.0.1:1"),),
            resend_delay_s=60.0,
            replica="r1",
            **kw,
        )
        self.engine = Engine(self.settings)
        self.planner = Planner(self.settings)
        self.pool = AlertmanagerPool(self.settings.alertmanagers, clock=FakeClock(0))
        self.feed = AlertFeed(self.settings, self.pool, self.planner.view)

    def tick(self, at: float, viewers: int) -> list[dict[str, Any]]:
        """One tick; what it added to the queue (the queue is emptied, as a post would)."""
        sample = poll(at, {"default/live/cam": {"publishers.connections.webrtc": viewers}})
        transitions = self.engine.step([sample], at)
        self.feed.observe(transitions, self.engine, at)
        (target,) = self.pool._targets
        queued = list(target.queue.values())
        target.queue.clear()
        return queued


def test_a_firing_alert_carries_prometheus_labels_and_the_replica_as_an_annotation() -> None:
    """Labels: alertname, severity, target and rule labels; replica only in annotations."""
    rig = Rig()
    rig.tick(1000.0, 0)
    (alert,) = rig.tick(1010.0, 9)
    assert alert["labels"] == {
        "alertname": "stalled",
        "severity": "warning",
        "server": "origin",
        "vhost": "default",
        "app": "live",
        "stream": "cam",
        "team": "a",
    }
    assert alert["annotations"]["replica"] == "r1"
    assert alert["annotations"]["value"] == "9"
    assert epoch(alert["startsAt"]) == 1010.0
    assert epoch(alert["endsAt"]) == 1010.0 + 4 * 60.0  # 4 × max(resend_delay, interval)


def test_firing_alerts_are_resent_every_resend_delay_with_a_later_ends_at() -> None:
    """Between resends nothing is posted; at the resend the alert goes again, same startsAt."""
    rig = Rig()
    rig.tick(1000.0, 0)
    (first,) = rig.tick(1010.0, 9)
    assert rig.tick(1020.0, 9) == []  # a tick inside the resend delay posts nothing
    (again,) = rig.tick(1061.0, 9)
    assert again["startsAt"] == first["startsAt"]
    assert epoch(again["endsAt"]) == 1061.0 + 240.0


def test_a_resolve_is_posted_at_once_and_resent_for_fifteen_minutes_only() -> None:
    """The resolve's endsAt is the resolve time; it rides the resends, then is forgotten."""
    rig = Rig()
    rig.tick(1000.0, 0)
    rig.tick(1010.0, 9)
    (resolved,) = rig.tick(1020.0, 0)
    assert epoch(resolved["endsAt"]) == 1020.0
    (again,) = rig.tick(1061.0, 0)
    assert again["endsAt"] == resolved["endsAt"]
    assert rig.tick(1020.0 + RESOLVED_RETENTION_S + 61.0, 0) == []


def test_a_resolve_right_after_a_restart_is_posted_too() -> None:
    """A feed that never posted the alert (the watcher restarted) still posts its resolve."""
    rig = Rig()
    rig.tick(1000.0, 0)
    (fired,) = rig.tick(1010.0, 9)
    rig.feed = AlertFeed(rig.settings, rig.pool, rig.planner.view)  # a new process
    (resolved,) = [a for a in rig.tick(1020.0, 0) if epoch(a["endsAt"]) == 1020.0]
    assert resolved["labels"] == fired["labels"]
    assert resolved["startsAt"] == fired["startsAt"]


def test_rules_that_deliver_only_to_channels_are_not_posted() -> None:
    """``quiet`` fires too (default deliver: channels) but never reaches Alertmanager."""
    rig = Rig()
    rig.tick(1000.0, 0)
    names = {a["labels"]["alertname"] for a in rig.tick(1010.0, 9)}
    assert names == {"stalled"}


def test_a_route_with_deliver_alertmanager_posts_what_it_matches() -> None:
    """A route ``{matchers: [team=b], deliver: [alertmanager]}`` posts the rule it matches."""
    route = RouteSpec((Matcher.parse("rule=quiet"),), (), None, ("alertmanager",))
    rig = Rig(routes=(route,))
    rig.tick(1000.0, 0)
    names = {a["labels"]["alertname"] for a in rig.tick(1010.0, 9)}
    assert names == {"stalled", "quiet"}


def test_the_watchdog_rides_every_resend() -> None:
    """With ``heartbeat.watchdog`` each resend carries ``omealert-watchdog``, always firing."""
    rig = Rig(heartbeat=HeartbeatSpec(watchdog=True))
    first = rig.tick(1000.0, 0)
    assert [a["labels"]["alertname"] for a in first] == ["omealert-watchdog"]
    assert rig.tick(1010.0, 0) == []
    (dog,) = rig.tick(1061.0, 0)
    assert epoch(dog["endsAt"]) == 1061.0 + 240.0


def test_a_queue_for_a_down_alertmanager_is_bounded_and_keeps_the_newest_state() -> None:
    """A newer state of an alert replaces the queued one; past ``MAX_QUEUED`` the oldest go."""
    pool = AlertmanagerPool((AlertmanagerSpec("http://127.0.0.1:1"),), clock=FakeClock(0))

    def alert(i: int, ends: str) -> dict[str, Any]:
        return {"labels": {"alertname": "a", "n": str(i)}, "annotations": {}, "endsAt": ends}

    pool.put([alert(0, "firing")])
    pool.put([alert(0, "resolved")])
    (target,) = pool._targets
    assert [a["endsAt"] for a in target.queue.values()] == ["resolved"]
    pool.put(alert(i, "x") for i in range(1, MAX_QUEUED + 5))
    assert len(target.queue) == MAX_QUEUED
    assert target.counters.dropped == 5
    assert alert_numbers(target.queue.values())[0] == 5


def alert_numbers(alerts: Any) -> list[int]:
    return [int(a["labels"]["n"]) for a in alerts]
