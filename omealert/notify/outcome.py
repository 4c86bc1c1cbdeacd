"""What one delivery attempt to one service came to, whichever way it was sent."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Outcome"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One delivery attempt to one service. ``error`` is safe to log; ``""`` when ok."""

    ok: bool
    service: str
    error: str
    elapsed: float
    #: not tried: the service's last send is still running, or no thread was free
    busy: bool = False
    #: why it failed (a ``FailureReason`` value); ``""`` when ok or busy
    reason: str = ""
    #: seconds the service asked us to wait before the next try (HTTP 429 ``Retry-After``)
    retry_after: float = 0.0
