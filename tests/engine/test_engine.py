"""The alert state machine, driven on simulated time with polls built in memory."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from omealert.engine.engine import Engine, Instance, Transition
from omealert.errors import SourceErrorKind
from omealert.model import AlertState, PollResult, Sample, Scope, Target
from omealert.rules import API_DOWN_RULE

from ..helpers import poll, rule, settings, ts

T0 = 1_767_225_600.0
S1 = "default/app/s1"
WEBRTC = "publishers.connections.webrtc"
P, F, R = AlertState.PENDING, AlertState.FIRING, AlertState.RESOLVED


def states(engine: Engine) -> dict[tuple[str, str], AlertState]:
    return {i.key: i.state for i in engine.instances()}


def run(engine: Engine, steps: Sequence[tuple[float, PollResult]]) -> list[list[str]]:
    """Feed polls in order; return, per step, the transitions as 'rule target from→to'."""
    out = []
    for at, p in steps:
        out.append([_fmt(t) for t in engine.step([p], at)])
    return out


def _fmt(t: Transition) -> str:
    return f"{t.instance.rule} {t.instance.target.key} {t.from_state.value}→{t.to_state.value}"


def viewers(at: float, n: int | None) -> tuple[float, PollResult]:
    """A poll where s1 has ``n`` WebRTC viewers (None: s1 is not listed any more)."""
    return at, poll(at, {S1: {WEBRTC: n}} if n is not None else {})


class TestLifecycle:
    def test_for_holds_pending_then_fires(self) -> None:
        """A condition must hold for `for` before the alert fires; pending says nothing before."""
        engine = Engine(settings(rule("hi", "webrtc publishers > 500", for_s=30)))
        got = run(engine, [viewers(T0 + t, 600) for t in (0, 10, 20, 30, 40)])
        assert got == [
            ["hi origin/default/app/s1 inactive→pending"],
            [],
            [],
            ["hi origin/default/app/s1 pending→firing"],
            [],
        ]

    def test_pending_that_stops_holding_vanishes(self) -> None:
        """A pending alert that stops holding goes back to inactive and is forgotten."""
        engine = Engine(settings(rule("hi", "webrtc publishers > 500", for_s=30)))
        got = run(engine, [viewers(T0, 600), viewers(T0 + 10, 100)])
        assert got == [
            ["hi origin/default/app/s1 inactive→pending"],
            ["hi origin/default/app/s1 pending→inactive"],
        ]
        assert states(engine) == {}

    def test_for_zero_fires_at_once_and_resolves(self) -> None:
        """Without `for`, the first holding poll fires and the first clear poll resolves."""
        engine = Engine(settings(rule("hi", "webrtc publishers > 500")))
        got = run(engine, [viewers(T0, 600), viewers(T0 + 10, 100), viewers(T0 + 20, 100)])
        assert got == [
            ["hi origin/default/app/s1 inactive→firing"],
            ["hi origin/default/app/s1 firing→resolved"],
            [],
        ]

    def test_flapping_input_never_fires_with_for(self) -> None:
        """Input that holds every other poll never completes a `for` of two polls."""
        engine = Engine(settings(rule("hi", "webrtc publishers > 500", for_s=20)))
        steps = [viewers(T0 + 10 * i, 600 if i % 2 == 0 else 100) for i in range(10)]
        flat = [t for step in run(engine, steps) for t in step]
        assert not any("firing" in t for t in flat)
        assert flat.count("hi origin/default/app/s1 inactive→pending") == 5

    def test_keep_firing_for_delays_the_resolve(self) -> None:
        """A firing alert stays firing for keep_firing_for after its condition stops holding."""
        engine = Engine(settings(rule("hi", "webrtc publishers > 500", keep_firing_for_s=25)))
        got = run(
            engine,
            [viewers(T0, 600)] + [viewers(T0 + t, 100) for t in (10, 20, 30, 40)],
        )
        assert got == [
            ["hi origin/default/app/s1 inactive→firing"],
            [],
            [],
            [],
            ["hi origin/default/app/s1 firing→resolved"],
        ]

    def test_keep_firing_for_is_reset_when_the_condition_returns(self) -> None:
        """A condition that holds again inside keep_firing_for cancels the pending resolve."""
        engine = Engine(settings(rule("hi", "webrtc publishers > 500", keep_firing_for_s=25)))
        run(engine, [viewers(T0, 600), viewers(T0 + 10, 100), viewers(T0 + 20, 600)])
        inst = next(iter(engine.instances()))
        assert inst.state is F and inst.keep_firing_since is None
        got = run(engine, [viewers(T0 + t, 100) for t in (30, 40, 50)])
        assert got == [[], [], []]

    def test_hysteresis_resolves_only_below_the_resolve_line(self) -> None:
        """With resolve_when, a firing alert stays firing between the two thresholds."""
        r = rule("hi", "webrtc publishers > 500", resolve_when="webrtc publishers < 450")
        engine = Engine(settings(r))
        got = run(engine, [viewers(T0 + 10 * i, n) for i, n in enumerate([600, 470, 480, 449])])
        assert got == [
            ["hi origin/default/app/s1 inactive→firing"],
            [],
            [],
            ["hi origin/default/app/s1 firing→resolved"],
        ]
        assert engine.removed[-1].value == 449

    def test_no_value_changes_nothing_and_is_visible(self) -> None:
        """A missing field is 'no value': no transition, and the instance says so."""
        engine = Engine(settings(rule("stale", "lastRecvTime stale > 30s")))
        got = run(
            engine,
            [
                (T0, poll(T0, {S1: {"providers.lastRecvTime": ts(T0 - 60)}})),
                (T0 + 10, poll(T0 + 10, {S1: {}})),
            ],
        )
        assert got == [["stale origin/default/app/s1 inactive→firing"], []]
        inst = next(iter(engine.instances()))
        assert inst.state is F and inst.no_value
        assert engine.no_value == {"stale": [Target("origin", "default", "app", "s1")]}

    def test_targets_without_a_value_are_listed_even_without_an_instance(self) -> None:
        """A quiet target whose value cannot be computed is reported, not silently OK."""
        engine = Engine(settings(rule("stale", "lastRecvTime stale > 30s")))
        engine.step([poll(T0, {S1: {}, "default/app/s2": {"providers.lastRecvTime": ts(T0)}})], T0)
        assert states(engine) == {}
        assert engine.no_value == {"stale": [Target("origin", "default", "app", "s1")]}


class TestMissingData:
    def test_api_outage_keeps_state_and_fires_api_down(self) -> None:
        """An outage in the middle of `for` neither fires nor resolves; ome-api-down fires."""
        engine = Engine(settings(rule("hi", "webrtc publishers > 500", for_s=30)))
        down = [(T0 + t, poll(T0 + t, error=SourceErrorKind.TIMEOUT)) for t in (10, 20)]
        got = run(engine, [viewers(T0, 600), *down, viewers(T0 + 30, 600)])
        assert got == [
            ["hi origin/default/app/s1 inactive→pending"],
            ["ome-api-down origin inactive→firing"],
            [],
            ["ome-api-down origin firing→resolved", "hi origin/default/app/s1 pending→firing"],
        ]

    def test_api_down_value_names_the_kind_of_failure(self) -> None:
        """The built-in alert's value says what went wrong, never resolving anything else."""
        engine = Engine(settings(rule("hi", "webrtc publishers > 500")))
        run(
            engine, [viewers(T0, 600), (T0 + 10, poll(T0 + 10, error=SourceErrorKind.UNAUTHORIZED))]
        )
        by_rule = {i.rule: i for i in engine.instances()}
        assert by_rule["hi"].state is F
        assert by_rule[API_DOWN_RULE].state is F
        assert str(by_rule[API_DOWN_RULE].value).startswith("unauthorized")

    @pytest.mark.parametrize(
        ("policy", "expected"),
        [
            ("resolve", ["hi origin/default/app/s1 firing→resolved"]),
            ("keep", []),
            ("fire", []),
        ],
    )
    def test_on_missing_policies(self, policy: str, expected: list[str]) -> None:
        """A stream that leaves the listing resolves, keeps or stays firing per on_missing."""
        engine = Engine(settings(rule("hi", "webrtc publishers > 500", on_missing=policy)))
        got = run(engine, [viewers(T0, 600), viewers(T0 + 10, None)])
        assert got[1] == expected

    def test_on_missing_fire_fires_a_pending_alert_after_for(self) -> None:
        """With on_missing: fire, a vanished target counts as holding and completes `for`."""
        r = rule("hi", "webrtc publishers > 500", on_missing="fire", for_s=15)
        engine = Engine(settings(r))
        got = run(engine, [viewers(T0, 600), viewers(T0 + 10, None), viewers(T0 + 20, None)])
        assert got[2] == ["hi origin/default/app/s1 pending→firing"]

    def test_gone_between_listing_and_stats_counts_as_missing(self) -> None:
        """A stream that 404s after being listed has ended: it resolves like a missing one."""
        engine = Engine(settings(rule("hi", "webrtc publishers > 500")))
        got = run(engine, [viewers(T0, 600), (T0 + 10, poll(T0 + 10, gone=(S1,)))])
        assert got[1] == ["hi origin/default/app/s1 firing→resolved"]

    def test_target_error_keeps_the_state(self) -> None:
        """A stream whose own request failed (not 404) is unknown: nothing changes."""
        engine = Engine(settings(rule("hi", "webrtc publishers > 500")))
        got = run(engine, [viewers(T0, 600), (T0 + 10, poll(T0 + 10, target_errors=(S1,)))])
        assert got[1] == []
        assert states(engine) == {("hi", "origin/default/app/s1"): F}

    def test_a_vanished_app_keeps_its_alerts_until_the_next_poll(self) -> None:
        """An app gone whole with its streams (OME's shutdown window) is confirmed first."""
        engine = Engine(settings(rule("hi", "webrtc publishers > 500")))
        held = poll(T0 + 10)
        held.unconfirmed = {Target("origin", "default", "app")}
        got = run(engine, [viewers(T0, 600), (T0 + 10, held), viewers(T0 + 20, None)])
        assert got[1] == []
        assert got[2] == ["hi origin/default/app/s1 firing→resolved"]

    def test_absent_waits_for_a_vanished_vhost_to_be_confirmed(self) -> None:
        """`absent` does not fire under an unconfirmed vhost; the poll that confirms it does."""
        r = rule("gone", "absent", match=("default/app/s1",))
        engine = Engine(settings(r))
        held = poll(T0 + 10)
        held.unconfirmed = {Target("origin", "default")}
        got = run(engine, [(T0, poll(T0, {S1: {}})), (T0 + 10, held), (T0 + 20, poll(T0 + 20))])
        assert got == [[], [], ["gone origin/default/app/s1 inactive→firing"]]

    def test_absent_fires_for_literal_names_not_listed(self) -> None:
        """`absent` fires for each literal name the server does not list, and resolves on return."""
        r = rule("gone", "absent", match=("default/app/s1", "default/app/s2"))
        engine = Engine(settings(r))
        got = run(
            engine,
            [
                (T0, poll(T0, {S1: {}}, listed_extra=("default/app/s2",))),
                (T0 + 10, poll(T0 + 10, {S1: {}})),
                (T0 + 20, poll(T0 + 20, {S1: {}}, listed_extra=("default/app/s2",))),
            ],
        )
        assert got == [
            [],
            ["gone origin/default/app/s2 inactive→firing"],
            ["gone origin/default/app/s2 firing→resolved"],
        ]

    def test_match_globs_select_targets(self) -> None:
        """Only targets matching the rule's glob are evaluated."""
        r = rule("hi", "webrtc publishers > 500", match="default/live*/*")
        engine = Engine(settings(r))
        p = poll(T0, {"default/live1/a": {WEBRTC: 900}, "default/vod/b": {WEBRTC: 900}})
        engine.step([p], T0)
        assert set(states(engine)) == {("hi", "origin/default/live1/a")}


class TestRate:
    def test_rate_is_reset_safe(self) -> None:
        """A counter that drops (stream re-created) is a restart, not negative traffic."""
        r = rule("slow", "rate(totalBytesIn, 30s) < 1000")
        engine = Engine(settings(r))
        created_a, created_b = ts(T0 - 100), ts(T0 + 25)
        bytes_in = "providers.totalBytesIn"
        series = [
            (0, 100_000, created_a),
            (10, 200_000, created_a),
            (20, 300_000, created_a),
            (30, 5_000, created_b),  # new createdTime, counter from zero
            (40, 105_000, created_b),
        ]
        for t, value, created in series:
            engine.step([poll(T0 + t, {S1: {bytes_in: value, "createdTime": created}})], T0 + t)
        assert states(engine) == {}  # ~10 kB/s throughout: never below 1000 B/s
        view = engine.history.view(Target("origin", "default", "app", "s1"), T0 + 40)
        rate = view.rate(bytes_in, 30.0)
        assert rate is not None
        assert rate == pytest.approx((100_000 + 5_000 + 100_000) / 30)

    def test_rate_without_enough_history_is_no_value(self) -> None:
        """A window not yet covered gives no value, so nothing fires on the first poll."""
        engine = Engine(settings(rule("slow", "rate(totalBytesIn, 1m) < 1000")))
        engine.step([poll(T0, {S1: {"providers.totalBytesIn": 0}})], T0)
        engine.step([poll(T0 + 10, {S1: {"providers.totalBytesIn": 0}})], T0 + 10)
        assert states(engine) == {}
        for t in (20, 30, 40):
            engine.step([poll(T0 + t, {S1: {"providers.totalBytesIn": 0}})], T0 + t)
        assert states(engine) == {("slow", "origin/default/app/s1"): F}

    def test_a_reload_that_reads_a_new_field_starts_keeping_it(self) -> None:
        """A rule added by reload on a field nobody read before gets its window filled."""
        engine = Engine(settings(rule("in", "rate(totalBytesIn, 30s) < 1000")))
        out = "publishers.totalBytesOut"
        fields = {"providers.totalBytesIn": 0, out: 0}
        engine.step([poll(T0, {S1: fields})], T0)
        engine.reload(
            settings(
                rule("in", "rate(totalBytesIn, 30s) < 1000"),
                rule("out", "rate(totalBytesOut, 30s) < 1000"),
            ),
            T0 + 5,
        )
        for t in (10, 20, 30, 40):
            engine.step([poll(T0 + t, {S1: fields})], T0 + t)
        assert states(engine) == {
            ("in", "origin/default/app/s1"): F,
            ("out", "origin/default/app/s1"): F,
        }

    def test_a_reload_that_needs_nothing_new_keeps_the_history(self) -> None:
        """Windows already filled stay filled when the new rules read what the old ones did."""
        engine = Engine(settings(rule("in", "rate(totalBytesIn, 30s) < 1000")))
        for t in (0, 10, 20):
            engine.step([poll(T0 + t, {S1: {"providers.totalBytesIn": 0}})], T0 + t)
        kept = engine.history
        engine.reload(settings(rule("in2", "rate(totalBytesIn, 20s) < 1000")), T0 + 25)
        assert engine.history is kept
        engine.step([poll(T0 + 30, {S1: {"providers.totalBytesIn": 0}})], T0 + 30)
        assert states(engine) == {("in2", "origin/default/app/s1"): F}

    def test_history_of_vanished_targets_is_dropped(self) -> None:
        """History of a target that stopped appearing is forgotten after the longest window."""
        engine = Engine(settings(rule("slow", "rate(totalBytesIn, 1m) < 1000")))
        engine.step([poll(T0, {S1: {"providers.totalBytesIn": 0}})], T0)
        assert len(engine.history) == 1
        engine.step([poll(T0 + 120, {})], T0 + 120)
        assert len(engine.history) == 0


class TestRestartAndReload:
    def _saved(self, engine: Engine) -> list[Instance]:
        return [
            Instance(**{f: getattr(i, f) for f in Instance.__dataclass_fields__})
            for i in engine.instances()
        ]

    def test_pending_timer_survives_a_short_restart(self) -> None:
        """A pending `for` timer carries over when the watcher was down less than the tolerance."""
        cfg = settings(rule("hi", "webrtc publishers > 500", for_s=60))
        first = Engine(cfg)
        first.step([viewers(T0, 600)[1]], T0)
        second = Engine(cfg)
        second.restore(self._saved(first), T0 + 50, last_tick_at=T0)
        got = run(second, [viewers(T0 + 60, 600)])
        assert got == [["hi origin/default/app/s1 pending→firing"]]

    def test_pending_timer_restarts_after_a_long_outage(self) -> None:
        """After an outage longer than the tolerance the `for` timer starts again."""
        cfg = settings(rule("hi", "webrtc publishers > 500", for_s=60), outage_tolerance_s=30)
        first = Engine(cfg)
        first.step([viewers(T0, 600)[1]], T0)
        second = Engine(cfg)
        second.restore(self._saved(first), T0 + 50, last_tick_at=T0)
        got = run(second, [viewers(T0 + 60, 600), viewers(T0 + 120, 600)])
        assert got == [
            ["hi origin/default/app/s1 inactive→pending"],
            ["hi origin/default/app/s1 pending→firing"],
        ]

    def test_firing_alert_restored_without_a_new_transition(self) -> None:
        """A firing alert comes back firing, with its notified times, and no new transition."""
        cfg = settings(rule("hi", "webrtc publishers > 500"))
        first = Engine(cfg)
        first.step([viewers(T0, 600)[1]], T0)
        next(iter(first.instances())).notified["ops"] = T0
        second = Engine(cfg)
        assert second.restore(self._saved(first), T0 + 5, last_tick_at=T0) == []
        assert run(second, [viewers(T0 + 10, 600)]) == [[]]
        assert next(iter(second.instances())).notified == {"ops": T0}

    def test_keep_firing_timer_survives_a_restart(self) -> None:
        """keep_firing_for started before a restart still resolves on time after it."""
        cfg = settings(rule("hi", "webrtc publishers > 500", keep_firing_for_s=30))
        first = Engine(cfg)
        run(first, [viewers(T0, 600), viewers(T0 + 10, 100)])
        second = Engine(cfg)
        second.restore(self._saved(first), T0 + 15, last_tick_at=T0 + 10)
        got = run(second, [viewers(T0 + 20, 100), viewers(T0 + 40, 100)])
        assert got == [[], ["hi origin/default/app/s1 firing→resolved"]]

    def test_changed_rule_resolves_restored_firing_alerts(self) -> None:
        """An alert of a rule whose condition changed while we were down resolves on start."""
        first = Engine(settings(rule("hi", "webrtc publishers > 500")))
        first.step([viewers(T0, 600)[1]], T0)
        second = Engine(settings(rule("hi", "webrtc publishers > 900")))
        got = second.restore(self._saved(first), T0 + 5, last_tick_at=T0)
        assert [(t.reason, t.to_state) for t in got] == [("rule-changed", R)]

    def test_reload_keeps_unchanged_rules_and_resolves_removed_ones(self) -> None:
        """Reload carries state of unchanged rules and resolves firing alerts of removed ones."""
        keep = rule("keep", "webrtc publishers > 500", for_s=60)
        drop = rule("drop", "webrtc publishers > 100")
        engine = Engine(settings(keep, drop))
        engine.step([viewers(T0, 600)[1]], T0)
        assert states(engine) == {
            ("keep", "origin/default/app/s1"): P,
            ("drop", "origin/default/app/s1"): F,
        }
        got = engine.reload(settings(keep), T0 + 5)
        assert [(t.instance.rule, t.to_state, t.reason) for t in got] == [
            ("drop", R, "rule-removed")
        ]
        assert run(engine, [viewers(T0 + 60, 600)]) == [
            ["keep origin/default/app/s1 pending→firing"]
        ]


def test_a_push_alert_carries_the_latest_push_id_on_one_instance() -> None:
    """A push's OME id is a label, not its identity: a new id keeps the one instance and
    updates its push_id label."""
    engine = Engine(settings(rule("down", 'state != "pushing"', scope=Scope.PUSH)))
    target = Target("origin", "default", "app", "s1", "push", "rtmp://h/live#0a1b2c3d")
    for at, ident in ((0.0, "a1b2c3"), (10.0, "zz9y8x")):
        result = PollResult("origin", at, at)
        result.listed |= {Target("origin"), target}
        result.samples[target] = Sample(target, {"state": "error"}, at, at, {"push_id": ident})
        engine.step([result], at)
    [inst] = list(engine.instances())
    assert inst.target == target and inst.state is AlertState.FIRING
    assert inst.labels["push_id"] == "zz9y8x"
    assert inst.labels["destination"] == "rtmp://h/live"
