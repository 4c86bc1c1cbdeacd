"""What a rule test saw: the alerts and messages its run produced, to compare with the file.

Both the runner (``run``) that builds them and the differ (``diff``) that reads them use
these records, so they live below both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..engine.alerts import AlertValue

__all__ = ["ActualAlert", "ActualMessage"]


@dataclass(frozen=True, slots=True)
class ActualAlert:
    rule: str
    state: str
    labels: dict[str, str]
    value: AlertValue
    summary: str
    description: str


@dataclass(frozen=True, slots=True)
class ActualMessage:
    at: float  # seconds from the start
    channel: str
    rule: str
    reason: str
    targets: list[str]
    title: str
    body: str

    def get(self, key: str) -> Any:
        return getattr(self, key)
