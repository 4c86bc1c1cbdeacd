"""The running state of one field of one target: a counter's increase, and its changes.

``Counter`` sums a counter's increases for ``rate()`` across restarts; ``Steps`` counts a
field's changes and a counter's restarts for ``changes()`` and ``resets()``. Both can take
back their newest reading, for when the same poll is recorded twice.
"""

from __future__ import annotations

import math

_NAN = math.nan


class Counter:
    """Where a counter's running increase stands: its last value, that value's life, the sum.

    ``undo`` is the state before the newest point, for when that point is replaced.
    """

    __slots__ = ("created", "total", "undo", "value")

    def __init__(self) -> None:
        self.value: float | None = None
        self.created = 0.0
        self.total = 0.0
        self.undo: tuple[float | None, float, float] = (None, 0.0, 0.0)

    def add(self, value: float, created: float) -> float:
        """Account for a new reading; a drop or a new ``createdTime`` is a restart.

        After a restart the counter starts again from 0, so the new value itself is the
        increase since the restart, never a negative amount of traffic.
        """
        self.undo = (self.value, self.created, self.total)
        before = self.value
        if before is not None:
            same_life = created == self.created and value >= before
            self.total += value - before if same_life else value
        self.value, self.created = value, created
        return self.total

    def skip(self) -> None:
        """No reading this poll: the sum stands still, and replacing the point changes nothing."""
        self.undo = (self.value, self.created, self.total)

    def revert(self) -> None:
        self.value, self.created, self.total = self.undo


class Steps:
    """Running counts of a field's changes and (for a counter) restarts, for changes()/resets().

    A restart is what ``rate()`` takes for one: the value dropped, or ``createdTime`` moved.
    """

    __slots__ = ("changes", "created", "restarts", "undo", "value")

    def __init__(self) -> None:
        self.value = _NAN
        self.created = _NAN
        self.changes = 0.0
        self.restarts = 0.0
        self.undo: tuple[float, float, float, float] = (_NAN, _NAN, 0.0, 0.0)

    def add(self, value: float, created: float) -> None:
        self.undo = (self.value, self.created, self.changes, self.restarts)
        if value != value:  # NaN: no reading
            return
        before = self.value
        if before == before:
            if value != before:
                self.changes += 1
            if value < before or created != self.created:
                self.restarts += 1
        self.value, self.created = value, created

    def revert(self) -> None:
        self.value, self.created, self.changes, self.restarts = self.undo
