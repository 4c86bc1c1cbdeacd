"""Input timelines for rule tests: a short notation per field, turned into polls on demand.

A rule test describes what OME reports, one value per *step* (``interval`` apart), in a
notation close to promtool's, so a timeline fits on one line and reads left to right:

==========================  ==================================================================
``400``                     one step with the value 400
``400x3``                   400 for 3 steps (``x3`` may also stand apart: ``400 x3``)
``400+50x4``                4 steps from 400 going up by 50: 400 450 500 550
``600-100x3``               600 500 400
``2.5Mbps x3 800kbps``      numbers may carry the field's unit (bits/s or bytes)
``_`` / ``_x3``             no value at this step (a stream with no value at all is not listed)
``true x5`` / ``H264 x5``   for true/false and text fields
==========================  ==================================================================

Unlike promtool, ``xN`` always means *N steps in all*: ``0x3`` is three zeros, not four.

Timestamp fields (``lastRecvTime``, ``createdTime`` …) say how the time moves instead:

* ``advancing`` — the timestamp is the step's own time: data keeps arriving;
* ``stalled`` (or ``frozen``) — the timestamp stays where the previous step left it;
* ``@30s`` / ``@-5m`` — a fixed time relative to the test's start (a ``createdTime``, or a
  stream that was already stalled before the test began).

So ``advancing x3 stalled x6`` is an encoder that sends for three steps and then hangs with
its connection open: at 60s, with 10s steps, ``lastRecvTime`` is 40s old.

A step applies until the next one. A field whose series has ended has no value, and a
stream none of whose fields has a value is not listed, as if it ended. Vhosts and apps that
hold an input stream are listed at every step (OME keeps configured apps), and every listed
server, vhost and app reports ``streams``, the number of input streams listed below it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..durations import parse_duration
from ..errors import SourceError, SourceErrorKind
from ..lang.fields import VIEWER_PROTOCOLS, FieldSpec, FieldType, Unit
from ..model import PollResult, Sample, Target, Value, stream_counts

__all__ = [
    "SERVER_KEY",
    "SeriesError",
    "SeriesInput",
    "parse_api_series",
    "parse_series",
    "parse_target",
    "step_index",
]

#: The input key naming the server itself rather than one of its vhosts, apps or streams.
SERVER_KEY = "/"

_WORD = re.compile(r"\S+")
_REPEAT = re.compile(r"x(\d+)")
_BITRATE_UNITS = {"bps": 1, "kbps": 10**3, "Kbps": 10**3, "Mbps": 10**6, "Gbps": 10**9}
_BYTE_UNITS = {
    "B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9,
    "KiB": 2**10, "MiB": 2**20, "GiB": 2**30,
}  # fmt: skip
_UNIT_RE = "|".join(sorted((*_BITRATE_UNITS, *_BYTE_UNITS), key=len, reverse=True))
_NUM = r"\d+(?:\.\d+)?"
_NUMBER = re.compile(
    rf"(?P<a>-?{_NUM})(?P<ua>{_UNIT_RE})?"
    rf"(?:(?P<op>[+-])(?P<b>{_NUM})(?P<ub>{_UNIT_RE})?)?"
    r"(?:x(?P<n>\d+))?"
)
_MISSING = re.compile(r"_(?:x(?P<n>\d+))?")
_AT = re.compile(r"@(?P<sign>-?)(?P<d>.+)")
_API_WORDS = {"up": None, "down": SourceErrorKind.UNREACHABLE} | {
    k.value: k for k in SourceErrorKind
}
#: The longest series accepted, so a typo like ``0x99999999`` cannot eat the memory.
MAX_STEPS = 1_000_000


class SeriesError(ValueError):
    """A series that does not parse; ``offset`` is the 0-based character it points at."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    offset: int


class _Advancing:
    pass


class _Stalled:
    pass


@dataclass(frozen=True, slots=True)
class _At:
    seconds: float


_ADVANCING, _STALLED = _Advancing(), _Stalled()
_Term = Value | None | _Advancing | _Stalled | _At


def _tokens(text: str) -> list[_Token]:
    return [_Token(m.group(0), m.start()) for m in _WORD.finditer(text)]


def _count(text: str | None, offset: int) -> int:
    if text is None:
        return 1
    n = int(text)
    if n < 1:
        raise SeriesError("a repeat count must be at least 1 (x1, x2, ...)", offset)
    if n > MAX_STEPS:
        raise SeriesError(f"a repeat count must be at most {MAX_STEPS}", offset)
    return n


def _expand(
    text: str, parse_term: Callable[[_Token], list[_Term]]
) -> list[tuple[list[_Term], int]]:
    """Split ``text`` into terms, each with the values it stands for and where it starts.

    A stand-alone ``xN`` repeats the term before it; ``parse_term`` handles the rest (and
    any ``xN`` glued to a number or to ``_``).
    """
    out: list[tuple[list[_Term], int]] = []
    total = 0
    if not text.strip():
        raise SeriesError("empty series: give at least one value, e.g. '0x5' or 'advancing x5'")
    for tok in _tokens(text):
        rep = _REPEAT.fullmatch(tok.text)
        if rep is not None:
            if not out:
                raise SeriesError(
                    f"'{tok.text}' repeats nothing: put a value before it", tok.offset
                )
            values, start = out[-1]
            if len(values) != 1:
                raise SeriesError(
                    f"'{tok.text}' follows a term that already has a count", tok.offset
                )
            n = _count(rep.group(1), tok.offset + 1)
            out[-1] = (values * n, start)
            total += n - 1
        else:
            values = parse_term(tok)
            out.append((values, tok.offset))
            total += len(values)
        if total > MAX_STEPS:
            raise SeriesError(f"a series may have at most {MAX_STEPS} steps", tok.offset)
    return out


class _TermParser:
    """Reads one whitespace-free term for a field of a given type and unit."""

    def __init__(self, spec: FieldSpec) -> None:
        self.spec = spec

    def __call__(self, tok: _Token) -> list[_Term]:
        missing = _MISSING.fullmatch(tok.text)
        if missing is not None:
            return [None] * _count(missing.group("n"), tok.offset + 2)
        spec = self.spec
        if spec.type is FieldType.NUMBER:
            return self._number(tok, spec)
        if spec.type is FieldType.TIME:
            return [self._time(tok, spec)]
        if spec.type is FieldType.BOOL:
            if tok.text in ("true", "false"):
                return [tok.text == "true"]
            hint = ""
            if tok.text.startswith(("true", "false")):
                hint = " (write 'true x3', with a space, to repeat)"
            raise SeriesError(
                f"{spec.path} is true/false: expected true, false or _, got '{tok.text}'{hint}",
                tok.offset,
            )
        return [tok.text]

    def _number(self, tok: _Token, spec: FieldSpec) -> list[_Term]:
        m = _NUMBER.fullmatch(tok.text)
        if m is None:
            raise SeriesError(
                f"{spec.path} is a number: expected a value such as 400, 400x3, 400+50x4 or _, "
                f"got '{tok.text}'",
                tok.offset,
            )
        scale_a = self._scale(m.group("ua"), spec, tok.offset + m.start("ua"))
        a = float(m.group("a")) * scale_a
        if m.group("op") is None:
            n = _count(m.group("n"), tok.offset + m.start("n") if m.group("n") else tok.offset)
            return [_tidy(a)] * n
        if m.group("n") is None:
            raise SeriesError(
                f"'{tok.text}' needs a step count: write e.g. {tok.text}x5",
                tok.offset + len(tok.text),
            )
        unit_b = m.group("ub")
        scale_b = self._scale(unit_b, spec, tok.offset + m.start("ub")) if unit_b else scale_a
        b = float(m.group("b")) * scale_b * (1 if m.group("op") == "+" else -1)
        n = _count(m.group("n"), tok.offset + m.start("n"))
        return [_tidy(a + k * b) for k in range(n)]

    def _scale(self, unit: str | None, spec: FieldSpec, offset: int) -> float:
        if unit is None:
            return 1.0
        if spec.unit is Unit.BITRATE and unit in _BITRATE_UNITS:
            return float(_BITRATE_UNITS[unit])
        if spec.unit is Unit.BYTES and unit in _BYTE_UNITS:
            return float(_BYTE_UNITS[unit])
        if spec.unit is Unit.BITRATE:
            allowed = "a bit rate unit (bps, kbps, Mbps, Gbps)"
        elif spec.unit is Unit.BYTES:
            allowed = "a size unit (B, kB, MB, GB, KiB, MiB, GiB)"
        else:
            allowed = "no unit"
        raise SeriesError(f"{spec.path} takes {allowed}, not '{unit}'", offset)

    def _time(self, tok: _Token, spec: FieldSpec) -> _Term:
        word = tok.text
        if word == "advancing":
            return _ADVANCING
        if word in ("stalled", "frozen"):
            return _STALLED
        at = _AT.fullmatch(word)
        if at is not None:
            try:
                seconds = parse_duration(at.group("d"))
            except ValueError:
                raise SeriesError(
                    f"'{word}' is not a time offset: write e.g. @0s, @90s or @-5m", tok.offset
                ) from None
            return _At(-seconds if at.group("sign") else seconds)
        hint = ""
        glued = re.fullmatch(r"(advancing|stalled|frozen)x(\d+)", word)
        if glued is not None:
            hint = f" (write '{glued.group(1)} x{glued.group(2)}', with a space, to repeat)"
        raise SeriesError(
            f"{spec.path} is a timestamp: expected advancing, stalled, @OFFSET or _, "
            f"got '{word}'{hint}",
            tok.offset,
        )


def _tidy(value: float) -> int | float:
    """Whole numbers stay ints, as OME prints counts; others are rounded off float noise."""
    if math.isfinite(value) and value == int(value) and abs(value) < 2**53:
        return int(value)
    return round(value, 9)


def parse_series(
    text: str, spec: FieldSpec, *, start: float, interval: float
) -> list[Value | None]:
    """One value (or None: no value) per step for field ``spec``; raises ``SeriesError``.

    Timestamps come out as UTC datetimes, computed from the test's ``start`` and the
    spacing of its steps (``interval``), exactly as OME would print them.
    """
    parser = _TermParser(spec)
    out: list[Value | None] = []
    last_time: datetime | None = None
    for values, offset in _expand(text, parser):
        for term in values:
            if isinstance(term, _Advancing):
                last_time = _utc(start + len(out) * interval)
                out.append(last_time)
            elif isinstance(term, _Stalled):
                if last_time is None:
                    raise SeriesError(
                        "'stalled' keeps the previous timestamp, but there is none yet: start "
                        "with advancing, or with @-1m for a stream stalled before the test",
                        offset,
                    )
                out.append(last_time)
            elif isinstance(term, _At):
                last_time = _utc(start + term.seconds)
                out.append(last_time)
            else:
                out.append(term)
    return out


def parse_api_series(text: str) -> list[SourceErrorKind | None]:
    """Whether the server's API answers at each step: ``up``, ``down`` or a failure kind."""

    def term(tok: _Token) -> list[_Term]:
        if tok.text not in _API_WORDS:
            words = ", ".join(_API_WORDS)
            raise SeriesError(f"expected one of {words}; got '{tok.text}'", tok.offset)
        kind = _API_WORDS[tok.text]
        return [kind.value if kind is not None else None]

    return [
        SourceErrorKind(v) if isinstance(v, str) else None
        for values, _ in _expand(text, term)
        for v in values
    ]


def parse_target(server: str, key: str) -> Target:
    """``default/app/s1`` (or ``/`` for the server itself) as a target of ``server``."""
    if key == SERVER_KEY:
        return Target(server)
    if "/:queue/" in key:  # a queue: default/app/s1/:queue/trs/filter_video#121
        return Target.from_key(f"{server}/{key}")
    if "/:push/" in key or "/:record/" in key:  # default/app/s1/:push/rtmp://host/live2
        output = Target.from_key(f"{server}/{key}")
        if output.stream is None or not output.leaf:
            raise ValueError(f"'{key}' is not a target: write vhost/app/stream/:push/DESTINATION")
        return output
    parts = key.split("/")
    if len(parts) > 3 or any(not p for p in parts):
        raise ValueError(
            f"'{key}' is not a target: write vhost, vhost/app or vhost/app/stream "
            f"(or {SERVER_KEY} for the server itself)"
        )
    names: list[str | None] = [*parts, None, None, None]
    return Target(server, names[0], names[1], names[2])


def step_index(elapsed: float, interval: float) -> int:
    """The input step in force ``elapsed`` seconds after the start (float noise forgiven)."""
    return math.floor(elapsed / interval + 1e-9)


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


_OUTAGE_REASON = "scripted outage (the test's api series)"


@dataclass(slots=True)
class SeriesInput:
    """Every series of one test, for one server; builds the poll of any moment."""

    server: str
    start: float
    interval: float
    fields: dict[Target, dict[str, list[Value | None]]] = field(default_factory=dict)
    api: list[SourceErrorKind | None] = field(default_factory=list)

    def poll(self, now: float) -> PollResult:
        """What a poll of the server at ``now`` (epoch seconds) would have produced."""
        return self.merge(PollResult(self.server, now, now), now)

    def merge(self, poll: PollResult, now: float) -> PollResult:
        """``poll`` with this input's targets (and outages) laid over it."""
        i = step_index(now - self.start, self.interval)
        kind = self.api[i] if 0 <= i < len(self.api) else None
        if kind is not None:
            error = SourceError(self.server, kind, "/v1/vhosts", _OUTAGE_REASON)
            return PollResult(self.server, poll.at, poll.server_now, error=error)
        if poll.error is not None:
            return poll
        values = self._values(i)
        listed = poll.listed
        listed.add(Target(self.server))
        for target in self.fields:
            # a target with values is listed, and so is everything above it; vhosts and
            # apps that only hold streams of the input are listed at every step
            node: Target | None = target if target in values else target.parent()
            while node is not None:
                if node in values or node not in self.fields:
                    listed.add(node)
                node = node.parent()
        counts = stream_counts(listed)
        at, server_now = poll.at, poll.server_now
        for target in listed:
            if target.stream is not None and target not in values:
                continue  # a stream, push or record without values is not listed
            old = poll.samples.get(target)
            fields: dict[str, Value] = dict(old.fields) if old is not None else {}
            fields.update(values.get(target, {}))
            if target.stream is None and "streams" not in values.get(target, {}):
                fields["streams"] = counts.get(target, 0)
            _add_viewers(fields, values.get(target, {}))
            poll.samples[target] = Sample(target, fields, at, server_now)
        return poll

    def _values(self, i: int) -> dict[Target, dict[str, Value]]:
        out: dict[Target, dict[str, Value]] = {}
        for target, series in self.fields.items():
            got: dict[str, Value] = {}
            for path, steps in series.items():
                value = steps[i] if 0 <= i < len(steps) else None
                if value is not None:
                    got[path] = value
            if got:
                out[target] = got
        return out


def _add_viewers(fields: dict[str, Value], given: Mapping[str, Value]) -> None:
    """``publishers.viewers`` is the sum of the audience protocols, as the client computes it."""
    if "publishers.viewers" in given:
        return
    paths = [f"publishers.connections.{p}" for p in VIEWER_PROTOCOLS]
    if not any(p in given for p in paths):
        return
    total: int | float = 0
    for p in paths:
        v = fields.get(p, 0)
        if isinstance(v, int | float) and not isinstance(v, bool):
            total += v
    fields["publishers.viewers"] = total
