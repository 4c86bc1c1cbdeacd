"""The input notation of rule tests, and the polls a timeline turns into."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from omealert.durations import format_offset
from omealert.errors import SourceErrorKind
from omealert.lang.fields import FIELDS
from omealert.model import Target
from omealert.ruletest.series import (
    SeriesError,
    SeriesInput,
    parse_api_series,
    parse_series,
    parse_target,
)

T0 = 1_767_225_600.0
WEBRTC = FIELDS["publishers.connections.webrtc"]
RECV = FIELDS["providers.lastRecvTime"]
BITRATE = FIELDS["video.bitrateLatest"]
BYTES_OUT = FIELDS["publishers.totalBytesOut"]


def numbers(text: str) -> list[object]:
    return parse_series(text, WEBRTC, start=T0, interval=10)


def times(text: str) -> list[float | None]:
    out = []
    for v in parse_series(text, RECV, start=T0, interval=10):
        assert v is None or isinstance(v, datetime)
        out.append(None if v is None else v.timestamp() - T0)
    return out


def error(text: str, spec: object = WEBRTC) -> tuple[int, str]:
    with pytest.raises(SeriesError) as info:
        parse_series(text, spec, start=T0, interval=10)  # type: ignore[arg-type]
    return info.value.offset, info.value.message


class TestNumbers:
    def test_counts_mean_steps_in_all(self) -> None:
        """``xN`` is N steps (not promtool's N+1), glued or standing apart."""
        assert numbers("400x3 7 x2") == [400, 400, 400, 7, 7]

    def test_ramps_up_and_down(self) -> None:
        """``a+bxN`` and ``a-bxN`` step by b for N values in all."""
        assert numbers("400+50x4 600-100x3") == [400, 450, 500, 550, 600, 500, 400]

    def test_gaps_and_negatives(self) -> None:
        """``_`` is a step without a value; negative counts (an OME bug) can be written."""
        assert numbers("1 _x2 -3") == [1, None, None, -3]

    def test_fractions_stay_floats_and_whole_numbers_ints(self) -> None:
        """Float noise from ramps is rounded away; whole values come out as ints."""
        assert parse_series(
            "29.97 0.1+0.1x3", FIELDS["video.framerateLatest"], start=0, interval=1
        ) == [
            29.97,
            0.1,
            0.2,
            0.3,
        ]

    def test_units_of_the_field(self) -> None:
        """Bit rates and sizes may carry their unit; a ramp's step inherits the start's unit."""
        assert parse_series("2.5Mbps x2 1Mbps-100kbpsx2", BITRATE, start=0, interval=1) == [
            2_500_000,
            2_500_000,
            1_000_000,
            900_000,
        ]
        assert parse_series("1KiB 2MB-1x2", BYTES_OUT, start=0, interval=1) == [
            1024,
            2_000_000,
            1_000_000,
        ]

    @pytest.mark.parametrize(
        ("text", "offset", "message"),
        [
            ("", 0, "empty series"),
            ("x3", 0, "'x3' repeats nothing"),
            ("1 100+10", 8, "'100+10' needs a step count"),
            ("5 abc", 2, "publishers.connections.webrtc is a number"),
            ("5Mbps", 1, "takes no unit, not 'Mbps'"),
            ("0x0", 2, "a repeat count must be at least 1"),
            ("1+1x3 x2", 6, "follows a term that already has a count"),
        ],
    )
    def test_errors_point_at_the_character(self, text: str, offset: int, message: str) -> None:
        """Every mistake names itself and the 0-based character it starts at."""
        got_offset, got_message = error(text)
        assert (got_offset, message in got_message) == (offset, True), got_message

    def test_wrong_unit_dimension(self) -> None:
        """A size on a bit-rate field is refused with the units that would fit."""
        message = "video.bitrateLatest takes a bit rate unit (bps, kbps, Mbps, Gbps), not 'MB'"
        assert error("3MB", BITRATE) == (1, message)


class TestTimestamps:
    def test_advancing_then_stalled(self) -> None:
        """advancing follows the step's time; stalled keeps the last timestamp."""
        assert times("advancing x3 stalled x2 advancing") == [0, 10, 20, 20, 20, 50]

    def test_fixed_offsets(self) -> None:
        """@OFFSET pins a time relative to the start, before it or after."""
        assert times("@-1m stalled @15s _") == [-60, -60, 15, None]

    def test_timestamps_are_utc_datetimes(self) -> None:
        """Values are aware datetimes, as the client's normalization produces them."""
        assert parse_series("advancing", RECV, start=T0, interval=10) == [
            datetime(2026, 1, 1, tzinfo=UTC)
        ]

    def test_stalled_needs_a_time_before_it(self) -> None:
        """A stall with nothing to freeze is an error that suggests the fix."""
        offset, message = error("stalled advancing", RECV)
        assert offset == 0 and "start with advancing, or with @-1m" in message

    def test_glued_count_on_a_word_gets_a_hint(self) -> None:
        """``stalledx3`` is a typo for ``stalled x3``; the message says so."""
        assert "(write 'stalled x3', with a space, to repeat)" in error("stalledx3", RECV)[1]


class TestOtherKinds:
    def test_bools_and_text(self) -> None:
        """true/false for flags; any word for text fields."""
        flag = FIELDS["video.hasBframes"]
        assert parse_series("true x2 false _", flag, start=0, interval=1) == [
            True,
            True,
            False,
            None,
        ]
        codec = FIELDS["video.codec"]
        assert parse_series("H264 x2 VP8", codec, start=0, interval=1) == ["H264", "H264", "VP8"]

    def test_api_series(self) -> None:
        """up/down or a failure kind per step."""
        assert parse_api_series("up x2 down timeout") == [
            None,
            None,
            SourceErrorKind.UNREACHABLE,
            SourceErrorKind.TIMEOUT,
        ]
        with pytest.raises(SeriesError) as info:
            parse_api_series("up sideways")
        assert info.value.offset == 3

    def test_targets(self) -> None:
        """Keys are vhost[/app[/stream]] below the test's server, or / for the server."""
        assert parse_target("o", "/") == Target("o")
        assert parse_target("o", "default/app") == Target("o", "default", "app")
        with pytest.raises(ValueError, match="is not a target"):
            parse_target("o", "a//b")

    def test_format_offset_reads_back(self) -> None:
        """Offsets print compactly, in the form durations are written."""
        assert [format_offset(s) for s in (0, 45, 90, 3600, 90061, 1.5)] == [
            "0s",
            "45s",
            "1m30s",
            "1h",
            "1d1h1m1s",
            "1.5s",
        ]


class TestPolls:
    def timeline(self) -> SeriesInput:
        s1, s2 = Target("o", "default", "live", "s1"), Target("o", "default", "live", "s2")
        app = Target("o", "default", "events")
        return SeriesInput(
            "o",
            T0,
            10,
            fields={
                s1: {
                    "publishers.connections.webrtc": [5, 6, None],
                    "publishers.connections.llhls": [1, 1, 1],
                },
                s2: {"publishers.connections.webrtc": [7]},
                app: {"streams": [3, None]},
            },
            api=[None, None, None, SourceErrorKind.TIMEOUT],
        )

    def test_listing_counts_and_viewers(self) -> None:
        """Streams with values are listed under their app; counts and viewers are derived."""
        poll = self.timeline().poll(T0)
        assert sorted(t.key for t in poll.listed) == [
            "o",
            "o/default",
            "o/default/events",
            "o/default/live",
            "o/default/live/s1",
            "o/default/live/s2",
        ]
        s1 = poll.samples[Target("o", "default", "live", "s1")]
        assert s1.fields["publishers.viewers"] == 6
        assert poll.samples[Target("o", "default", "live")].fields["streams"] == 2
        assert poll.samples[Target("o")].fields["streams"] == 2
        assert poll.samples[Target("o", "default", "events")].fields["streams"] == 3

    def test_a_stream_whose_series_ended_is_not_listed(self) -> None:
        """After its last step s2 is gone, and so are explicit targets without values."""
        poll = self.timeline().poll(T0 + 25)  # step 2
        keys = sorted(t.key for t in poll.listed)
        assert "o/default/live/s2" not in keys and "o/default/events" not in keys
        assert "o/default/live" in keys  # apps holding input streams stay listed
        assert poll.samples[Target("o", "default", "live")].fields["streams"] == 1

    def test_api_outage(self) -> None:
        """A failure step makes the whole poll fail with that kind."""
        poll = self.timeline().poll(T0 + 30)
        assert poll.error is not None and poll.error.kind is SourceErrorKind.TIMEOUT
        assert poll.samples == {}
