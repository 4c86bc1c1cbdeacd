"""Expected against actual in rule tests, shown as a unified diff of one-line YAML items.

Each alert or message is printed as a YAML flow mapping holding only the keys the test
wrote, so an item that matches prints the same on both sides and an item that does not
shows exactly the keys that differ::

    --- expected
    +++ actual
      {state: firing, labels: {stream: s1}}
    - {state: firing, labels: {stream: s2}, value: 40}
    + {state: firing, labels: {stream: s2}, value: 30}

Lines are valid YAML, so a ``+`` line can be pasted into the test file once it shows what
should happen. Alerts are a set (matched one to one, whatever the order); messages are a
sequence in time (aligned in order, so a missing or extra message shows where it falls).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..durations import format_offset

if TYPE_CHECKING:
    from .actual import ActualAlert, ActualMessage
    from .file import AlertExpectation, MessageExpectation

__all__ = ["compare_alerts", "compare_messages", "flow", "values_equal"]

HEADER = ["--- expected", "+++ actual"]
_MESSAGE_ORDER = ("at", "channel", "rule", "reason", "targets", "title", "body")
_DEFAULT_MESSAGE_KEYS = ("at", "channel", "reason", "title")
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./@+-]*")
#: Plain words YAML would read as something other than text: numbers, dates.
_NOT_TEXT = re.compile(
    r"[-+]?(\d[\d_]*)?\.?\d*([eE][-+]?\d+)?|0[xob][0-9a-fA-F_]+|\d{4}-\d\d?-\d\d?.*"
)
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "none", "y", "n", "~"})
_TARGET_LABELS = ("server", "vhost", "app", "stream")


# -- YAML flow text ------------------------------------------------------------------------


def flow(value: Any) -> str:
    """``value`` as compact YAML flow text: bare words where YAML reads them back unchanged."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".10g")
    if isinstance(value, str):
        if (
            _PLAIN.fullmatch(value)
            and value.lower() not in _YAML_WORDS
            and not _NOT_TEXT.fullmatch(value)
        ):
            return value
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{flow(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return json.dumps(str(value))


def values_equal(expected: Any, actual: Any) -> bool:
    """Numbers within a relative 1e-9 (float noise), everything else exactly."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-9)
    return bool(expected == actual)


# -- alerts ----------------------------------------------------------------------------------


def _alert_matches(e: AlertExpectation, a: ActualAlert) -> bool:
    if a.state != e.state:
        return False
    if any(a.labels.get(k) != v for k, v in e.labels.items()):
        return False
    if "value" in e.text_keys and not values_equal(e.value, a.value):
        return False
    if "summary" in e.text_keys and e.summary != a.summary:
        return False
    return not ("description" in e.text_keys and e.description != a.description)


def _expected_alert_text(e: AlertExpectation) -> str:
    item: dict[str, Any] = {}
    for key in e.text_keys:
        item[key] = e.labels if key == "labels" else getattr(e, key)
    return flow(item)


def _actual_alert_text(a: ActualAlert, keys: Sequence[str], label_names: Sequence[str]) -> str:
    item: dict[str, Any] = {}
    for key in keys:
        if key == "labels":
            item[key] = {n: a.labels.get(n) for n in label_names}
        else:
            item[key] = getattr(a, key)
    return flow(item)


def _ordered_labels(labels: dict[str, str]) -> list[str]:
    first = [n for n in _TARGET_LABELS if n in labels]
    return first + sorted(n for n in labels if n not in _TARGET_LABELS)


def compare_alerts(
    expected: Sequence[AlertExpectation], actual: Sequence[ActualAlert]
) -> list[str]:
    """Diff lines, or ``[]`` when they agree.

    Firing alerts are always compared (so ``exp_alerts: []`` means "nothing fires");
    pending and resolved ones only when some expectation asks for that state.
    """
    states = {"firing"} | {e.state for e in expected}
    actual = [a for a in actual if a.state in states]
    match = _match(len(expected), len(actual), lambda i, j: _alert_matches(expected[i], actual[j]))
    if len(match) == len(expected) == len(actual):
        return []
    lines = list(HEADER)
    used = set(match.values())
    spare = [j for j in range(len(actual)) if j not in used]
    extra_keys = ["state", "labels", "value"]
    for name in ("summary", "description"):
        if any(name in e.text_keys for e in expected):
            extra_keys.append(name)
    for i, e in enumerate(expected):
        if i in match:
            lines.append("  " + _expected_alert_text(e))
            continue
        lines.append("- " + _expected_alert_text(e))
        best = max(spare, key=lambda j: _alert_score(e, actual[j]), default=None)
        if best is not None and _alert_score(e, actual[best]) > 0:
            spare.remove(best)
            lines.append("+ " + _actual_alert_text(actual[best], e.text_keys, list(e.labels)))
    for j in spare:
        a = actual[j]
        lines.append("+ " + _actual_alert_text(a, extra_keys, _ordered_labels(a.labels)))
    return lines


def _alert_score(e: AlertExpectation, a: ActualAlert) -> int:
    """How much of ``e`` an unmatched ``a`` agrees with, to show the nearest one beside it."""
    score = 1 if a.state == e.state else 0
    score += sum(2 for k, v in e.labels.items() if a.labels.get(k) == v)
    if "value" in e.text_keys and values_equal(e.value, a.value):
        score += 1
    return score


def _match(n: int, m: int, ok: Callable[[int, int], bool]) -> dict[int, int]:
    """A maximum one-to-one matching (expected index → actual index), by augmenting paths."""
    edges = [[j for j in range(m) if ok(i, j)] for i in range(n)]
    owner: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        for j in edges[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or augment(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(n):
        augment(i, set())
    return {i: j for j, i in owner.items()}


# -- messages ----------------------------------------------------------------------------------


def _message_matches(e: MessageExpectation, a: ActualMessage) -> bool:
    for key, want in e.fields.items():
        got = a.get(key)
        if key == "at":
            if not math.isclose(want, got, abs_tol=1e-6):
                return False
        elif key == "targets":
            if sorted(want) != sorted(got):  # the order of a group's alerts is not promised
                return False
        elif want != got:
            return False
    return True


def _message_text(item: dict[str, Any]) -> str:
    shown = {k: (format_offset(v) if k == "at" else v) for k, v in item.items()}
    return flow(shown)


def _expected_message_text(e: MessageExpectation) -> str:
    return _message_text({k: e.fields[k] for k in _MESSAGE_ORDER if k in e.fields})


def _actual_message_text(a: ActualMessage, keys: Sequence[str]) -> str:
    return _message_text({k: a.get(k) for k in _MESSAGE_ORDER if k in keys})


def compare_messages(
    expected: Sequence[MessageExpectation], actual: Sequence[ActualMessage]
) -> list[str]:
    """Diff lines, or ``[]`` when the messages are the expected ones in the expected order."""
    pairs = _align(
        len(expected), len(actual), lambda i, j: _message_matches(expected[i], actual[j])
    )
    matched = sum(1 for i, j in pairs if i is not None and j is not None)
    if matched == len(expected) == len(actual):
        return []
    used = {k for e in expected for k in e.fields}
    extra_keys = [k for k in _MESSAGE_ORDER if k in used] or list(_DEFAULT_MESSAGE_KEYS)
    lines = list(HEADER)
    gap_exp: list[int] = []
    gap_act: list[int] = []

    def flush() -> None:
        for k, i in enumerate(gap_exp):
            lines.append("- " + _expected_message_text(expected[i]))
            if k < len(gap_act):
                keys = list(expected[i].fields) or extra_keys
                lines.append("+ " + _actual_message_text(actual[gap_act[k]], keys))
        for j in gap_act[len(gap_exp) :]:
            lines.append("+ " + _actual_message_text(actual[j], extra_keys))
        gap_exp.clear()
        gap_act.clear()

    for i, j in pairs:
        if i is not None and j is not None:
            flush()
            lines.append("  " + _expected_message_text(expected[i]))
        elif i is not None:
            gap_exp.append(i)
        elif j is not None:
            gap_act.append(j)
    flush()
    return lines


def _align(n: int, m: int, ok: Callable[[int, int], bool]) -> list[tuple[int | None, int | None]]:
    """The longest in-order matching of two sequences, with the unmatched items in place."""
    same = [[ok(i, j) for j in range(m)] for i in range(n)]
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            if same[i][j]:
                best[i][j] = best[i + 1][j + 1] + 1
            else:
                best[i][j] = max(best[i + 1][j], best[i][j + 1])
    out: list[tuple[int | None, int | None]] = []
    i = j = 0
    while i < n and j < m:
        if same[i][j] and best[i][j] == best[i + 1][j + 1] + 1:
            out.append((i, j))
            i, j = i + 1, j + 1
        elif best[i + 1][j] >= best[i][j + 1]:
            out.append((i, None))
            i += 1
        else:
            out.append((None, j))
            j += 1
    out.extend((k, None) for k in range(i, n))
    out.extend((None, k) for k in range(j, m))
    return out
