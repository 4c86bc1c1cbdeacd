"""``Condition.holding``, the engine's whole-list loop, agrees with ``evaluate`` per sample."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omealert.lang.batch import compile_batch
from omealert.lang.condition import compile_condition
from omealert.lang.parse import Parser
from omealert.model import Sample, Scope, Target, Value

NOW = 1_767_225_600.0
S = Scope.STREAM

#: Shapes with a whole-list loop first, then shapes that take the per-sample closure.
CONDITIONS = [
    "webrtc publishers > 500",
    "avgThroughputIn < 500kbps",
    "totalConnections >= 3",
    "sourceType == 'Rtmp'",
    "lastRecvTime stale > 30s",
    "age(lastSentTime) <= 1m",
    "rate(totalBytesIn, 1m) < 10kB",
    "rate(totalBytesIn) >= 1MB",
    "delta(totalBytesIn, 1m) < 1kB",
    "avg_over(avgThroughputIn, 5m) > 800kbps",
    "webrtc publishers + llhls publishers > 10",
    "lastRecvTime stale > 30s and viewers > 0",
    "500 < webrtc publishers",
    "not (viewers > 3)",
]

PATHS = [
    "publishers.connections.webrtc",
    "publishers.connections.llhls",
    "publishers.viewers",
    "providers.avgThroughputIn",
    "publishers.totalConnections",
    "sourceType",
    "providers.lastRecvTime",
    "publishers.lastSentTime",
]


class History:
    """One answer for every history question about a target (None: too little history)."""

    def __init__(self, answer: float | None) -> None:
        self.answer = answer

    def rate(self, path: str, window: float | None) -> float | None:
        return self.answer

    def delta(self, path: str, window: float) -> float | None:
        return self.answer

    def avg_over(self, path: str, window: float) -> float | None:
        return self.answer

    def min_over(self, path: str, window: float) -> float | None:
        return self.answer

    def max_over(self, path: str, window: float) -> float | None:
        return self.answer


answers = st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e7, allow_nan=False))

values = st.one_of(
    st.none(),  # the field is missing
    st.integers(min_value=-10, max_value=1_000),
    st.floats(min_value=0, max_value=2e6, allow_nan=False),
    st.sampled_from(["Rtmp", "WebRTC", "", "garbage"]),  # text, where a number may belong
    st.floats(min_value=-120, max_value=120).map(lambda s: datetime.fromtimestamp(NOW - s, UTC)),
)


@pytest.mark.parametrize("text", CONDITIONS)
@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.lists(values, min_size=len(PATHS), max_size=len(PATHS)), answers),
        max_size=12,
    ),
    with_history=st.booleans(),
)
def test_holding_matches_evaluate(
    text: str, rows: list[tuple[list[Value | None], float | None]], with_history: bool
) -> None:
    """Holding samples, their values, and the no-value samples are exactly evaluate's."""
    cond = compile_condition(text, S)
    samples = []
    histories: dict[Target, History] = {}
    for i, (row, answer) in enumerate(rows):
        fields = {p: v for p, v in zip(PATHS, row, strict=True) if v is not None}
        target = Target("o", "v", "a", f"s{i}")
        samples.append(Sample(target, fields, NOW, NOW))
        histories[target] = History(answer)
    history_for = histories.__getitem__ if with_history else None
    unknown: list[Sample] = []
    got = cond.holding(samples, history_for, unknown)
    expected = []
    expected_unknown = []
    for sample in samples:
        history = histories[sample.target] if with_history else None
        holds, value = cond.evaluate(sample.fields, sample.server_now, history)
        if holds:
            expected.append((sample, value))
        elif holds is None:
            expected_unknown.append(sample)
    assert got == expected
    assert unknown == expected_unknown


@pytest.mark.parametrize(
    ("text", "has_loop"),
    [
        ("webrtc publishers > 500", True),
        ("lastRecvTime stale > 30s", True),
        ("age(lastSentTime) <= 1m", True),
        ("webrtc publishers + llhls publishers > 10", False),
        ("500 < webrtc publishers", False),
        ("rate(totalBytesIn, 1m) < 10kB", True),
        ("rate(totalBytesOut, 1m) < 100kB and viewers > 10", False),
    ],
)
def test_only_the_simple_shapes_get_a_loop(text: str, has_loop: bool) -> None:
    """Loops cover `field`, `age` and history functions against a constant; not the rest."""
    assert (compile_batch(Parser(text, S).parse()) is not None) is has_loop
