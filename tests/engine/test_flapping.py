"""Flap detection's measure: Icinga's weights and thresholds, and what counts as a change."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from omealert.engine.alerts import Instance, Transition, api_down_rule
from omealert.engine.flapping import FlapBook, flap_share, slot_weights
from omealert.errors import SourceError, SourceErrorKind
from omealert.model import AlertState, PollResult, Sample, Target
from omealert.rules import API_DOWN_RULE, ApiDownSpec, FlapSpec

from ..helpers import rule, settings

CAM = Target("origin", "default", "live", "cam1")


def icinga_share(changes_oldest_first: list[bool]) -> float:
    """Icinga 2's formula for 20 slots, written out: slot i (0 = oldest) weighs 0.8 + 0.02 i."""
    return sum(0.8 + 0.02 * i for i, c in enumerate(changes_oldest_first) if c) / 20


def bits_of(changes_oldest_first: list[bool]) -> int:
    bits = 0
    for c in changes_oldest_first:
        bits = (bits << 1) | int(c)
    return bits


def test_weights_are_icingas_for_twenty_slots() -> None:
    """With 20 slots the oldest weighs 0.8 and the newest 1.18, as in Icinga 2."""
    newest_first = slot_weights(20)
    assert newest_first[-1] == pytest.approx(0.8)
    assert newest_first[0] == pytest.approx(1.18)
    assert list(reversed(newest_first)) == pytest.approx([0.8 + 0.02 * i for i in range(20)])


@pytest.mark.parametrize(
    "pattern",
    [
        [True] * 20,
        [False] * 19 + [True],
        [True] + [False] * 19,
        [i % 2 == 0 for i in range(20)],
        [i % 3 == 0 for i in range(20)],
        [False] * 14 + [True] * 6,
    ],
)
def test_share_matches_icinga_formula(pattern: list[bool]) -> None:
    """The share of a ring equals Icinga's weighted sum over 20 for any change pattern."""
    assert flap_share(bits_of(pattern), 20) == pytest.approx(icinga_share(pattern))


def test_other_windows_weigh_from_0_8_up_to_just_under_1_2() -> None:
    """A 10-slot window keeps the same span: oldest 0.8, newest 1.16."""
    w = slot_weights(10)
    assert (w[-1], w[0]) == pytest.approx((0.8, 1.16))
    assert flap_share((1 << 10) - 1, 10) == pytest.approx(sum(w) / 10)


def _tr(inst: Instance, old: AlertState, new: AlertState, reason: str = "condition") -> Transition:
    inst.state = new
    return Transition(inst, None, old, new, 0.0, reason)


def _book(**kw: object) -> tuple[FlapBook, Instance]:
    r = rule("low", "viewers < 1", flapping=FlapSpec(**kw))  # type: ignore[arg-type]
    s = settings(r)
    book = FlapBook()
    book.configure(s, api_down_rule(s))
    inst = Instance("low", CAM, {"rule": "low"}, identity="")
    return book, inst


def of(live: dict[tuple[str, Target], Instance]) -> Callable[[str], dict[Target, Instance]]:
    """The engine's ``instances_of`` over a plain dict of live instances."""
    return lambda rule: {t: i for (r, t), i in live.items() if r == rule}


def _poll(created: float | None = None) -> PollResult:
    p = PollResult("origin", 0.0, 0.0)
    fields = {} if created is None else {"createdTime": created}
    p.samples[CAM] = Sample(CAM, fields, 0.0, 0.0)  # type: ignore[arg-type]
    p.listed.add(CAM)
    return p


def test_hysteresis_enters_above_high_and_leaves_under_low() -> None:
    """Flapping starts once the share passes high and ends only once it is under low."""
    book, inst = _book(window=20, high=0.30, low=0.25)
    live = {("low", CAM): inst}
    shares = []
    states = [AlertState.FIRING, AlertState.RESOLVED] * 4
    prev = AlertState.INACTIVE
    for state in states:
        book.observe([_poll()], [_tr(inst, prev, state)], of(live), 0.0)
        prev = state
        shares.append(book.flaps[inst.key].share)
    first = next(i for i, s in enumerate(shares) if s > 0.30)
    events = book.take_events()
    assert [e.started for e in events] == [True]
    assert all(s <= 0.30 for s in shares[:first])
    # quiet evaluations age the changes out; it stays flapping while the share is >= 25%
    quiet = []
    while book.is_flapping(inst.key):
        book.observe([_poll()], [], of({}), 0.0)
        quiet.append(book.flaps[inst.key].share if inst.key in book.flaps else 0.0)
    assert all(s >= 0.25 for s in quiet[:-1]) and quiet[-1] < 0.25
    assert [e.started for e in book.take_events()] == [False]


def test_pending_and_bookkeeping_transitions_are_not_changes() -> None:
    """Only going into or out of firing counts; pending, removals and restarts do not."""
    book, inst = _book()
    live = {("low", CAM): inst}
    trs = [
        _tr(inst, AlertState.INACTIVE, AlertState.PENDING),
        _tr(inst, AlertState.PENDING, AlertState.INACTIVE),
    ]
    book.observe([_poll()], trs, of(live), 0.0)
    book.observe(
        [_poll()],
        [_tr(inst, AlertState.FIRING, AlertState.RESOLVED, "rule-changed")],
        live.get,
        0.0,
    )
    assert book.flaps == {}


def test_a_new_created_time_counts_for_a_live_alert_only() -> None:
    """A reconnect (new createdTime) is a change for a firing alert, not for a quiet stream."""
    book, inst = _book()
    live: dict[tuple[str, Target], Instance] = {}
    book.observe([_poll(100.0)], [], of(live), 0.0)
    book.observe([_poll(200.0)], [], of(live), 0.0)
    assert book.flaps == {}  # nothing fires on it: nothing to flap
    inst.state = AlertState.FIRING
    live[("low", CAM)] = inst
    book.observe([_poll(300.0)], [], of(live), 0.0)
    assert book.bits(inst.key) == 1
    book.observe([_poll(300.0)], [], of(live), 0.0)
    assert book.bits(inst.key) == 0b10


def test_a_server_that_did_not_answer_records_no_evaluation() -> None:
    """Ticks whose poll failed are not evaluations of the server's alerts (but are of its
    ome-api-down)."""
    r = rule("low", "viewers < 1")
    s = settings(r, api_down=ApiDownSpec())
    book = FlapBook()
    book.configure(s, api_down_rule(s))
    inst = Instance("low", CAM, {}, identity="")
    api = Instance(API_DOWN_RULE, Target("origin"), {}, identity="")
    book.observe(
        [_poll()],
        [
            _tr(inst, AlertState.INACTIVE, AlertState.FIRING),
            _tr(api, AlertState.INACTIVE, AlertState.FIRING),
        ],
        of({}),
        0.0,
    )
    error = SourceError("origin", SourceErrorKind.UNREACHABLE, "/v1/vhosts", "refused")
    down = PollResult("origin", 0.0, 0.0, error=error)
    book.observe([down], [], of({}), 0.0)
    assert book.bits(inst.key) == 1
    assert book.bits(api.key) == 0b10


def test_dump_and_load_keep_the_ring_and_the_flapping_state() -> None:
    """What the state file keeps reads back into the same tracker."""
    book, inst = _book()
    live = {("low", CAM): inst}
    prev = AlertState.INACTIVE
    for state in [AlertState.FIRING, AlertState.RESOLVED] * 4:
        book.observe([_poll()], [_tr(inst, prev, state)], of(live), 5.0)
        prev = state
    before = book.flaps[inst.key]
    again, _ = _book()
    again.load(book.dump())
    after = again.flaps[inst.key]
    assert (again.bits(inst.key), after.flapping, after.since, after.share) == (
        book.bits(inst.key),
        True,
        5.0,
        before.share,
    )
    assert again.is_flapping(inst.key)
    again.load("not json")  # a broken value is skipped with a warning, not a crash
    assert again.bits(inst.key) == book.bits(inst.key)


def test_a_targeted_poll_is_not_an_evaluation_and_forgets_no_created_time() -> None:
    """An OME event's targeted poll records changes but does not age the ring, and a
    stream it did not list keeps its createdTime (its reconnect is still seen later)."""
    book, inst = _book()
    inst.state = AlertState.FIRING
    live = {("low", CAM): inst}
    book.observe([_poll(100.0)], [_tr(inst, AlertState.INACTIVE, AlertState.FIRING)], of(live), 0.0)
    targeted = PollResult("origin", 0.0, 0.0, covers=frozenset({Target("origin", "default", "x")}))
    book.observe([targeted], [], of(live), 0.0)
    assert book.bits(inst.key) == 1  # still the newest evaluation
    book.observe([_poll(200.0)], [], of(live), 0.0)  # reconnected meanwhile
    assert book.bits(inst.key) == 0b11
