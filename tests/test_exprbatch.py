"""``Condition.holding``, the engine's whole-list loop, agrees with ``evaluate`` per sample."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omealert.expr import compile_condition
from omealert.exprbatch import compile_batch
from omealert.exprparse import Parser
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

values = st.one_of(
    st.none(),  # the field is missing
    st.integers(min_value=-10, max_value=1_000),
    st.floats(min_value=0, max_value=2e6, allow_nan=False),
    st.sampled_from(["Rtmp", "WebRTC", "", "garbage"]),  # text, where a number may belong
    st.floats(min_value=-120, max_value=120).map(lambda s: datetime.fromtimestamp(NOW - s, UTC)),
)


@pytest.mark.parametrize("text", CONDITIONS)
@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.lists(values, min_size=len(PATHS), max_size=len(PATHS)), max_size=12))
def test_holding_matches_evaluate(text: str, rows: list[list[Value | None]]) -> None:
    """Holding samples, their values, and the no-value samples are exactly evaluate's."""
    cond = compile_condition(text, S)
    samples = []
    for i, row in enumerate(rows):
        fields = {p: v for p, v in zip(PATHS, row, strict=True) if v is not None}
        samples.append(Sample(Target("o", "v", "a", f"s{i}"), fields, NOW, NOW))
    unknown: list[Sample] = []
    got = cond.holding(samples, None, unknown)
    expected = []
    expected_unknown = []
    for sample in samples:
        holds, value = cond.evaluate(sample.fields, sample.server_now, None)
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
        ("rate(totalBytesIn, 1m) < 10kB", False),
    ],
)
def test_only_the_simple_shapes_get_a_loop(text: str, has_loop: bool) -> None:
    """The loop covers `field op constant` and `age op constant`; the rest use closures."""
    assert (compile_batch(Parser(text, S).parse()) is not None) is has_loop
