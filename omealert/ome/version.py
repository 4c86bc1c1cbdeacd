"""Which OME release a server runs, and what omealert knows about that release.

``GET /v1/version`` (OME ≥ 0.16.5, ``../shared/ome-beyond-stats.md`` §4) answers
``{"gitVersion": …, "version": "0.18.0"}``. The release is asked for on the first poll, again
after the server could not be read (it may have been restarted, perhaps upgraded) and every
``REFRESH_S``: not on every tick. ``gitVersion`` is ``"(From archive)"`` for tarball builds
and is never parsed. A 404 means a release older than 0.16.5.

``KNOWN`` lists releases with behaviour omealert compensates for or warns about; each entry
names its source. One log line per server names the ones that apply, when the release is
first learnt or changes, and again on every config reload.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..lang.versions import release_key

__all__ = [
    "BEFORE_VERSION_ENDPOINT", "KNOWN", "REFRESH_S", "Behaviour", "VersionWatch", "behaviours_of",
    "describe", "parse_version", "summary",
]  # fmt: skip

log = logging.getLogger("omealert.ome")

#: seconds between two ``/v1/version`` requests to a server that stays readable
REFRESH_S = 300.0
#: what ``version`` holds for a server whose ``/v1/version`` 404s
BEFORE_VERSION_ENDPOINT = "0.16.4"


@dataclass(frozen=True, slots=True)
class Behaviour:
    """Something releases before ``fixed_in`` (from ``since`` on) do that rules must know."""

    since: str
    fixed_in: str | None
    compensated: bool  # omealert corrects for it; otherwise it only warns
    text: str
    source: str

    def applies(self, version: str) -> bool:
        key = release_key(version)
        if key is None:
            return False
        since = release_key(self.since)
        fixed = release_key(self.fixed_in) if self.fixed_in else None
        assert since is not None
        return key >= since and (fixed is None or key < fixed)


KNOWN: tuple[Behaviour, ...] = (
    Behaviour(
        "0.0", "0.19.0", True,
        "a new stream's first ~2 s of throughput, bit rate and frame rate are uninitialised "
        "memory or 0: those fields have no value for 2 s after createdTime",
        "ome-api.md §0.2; CommonMetrics::UpdateThroughput, _last_total_bytes_in uninitialised",
    ),
    Behaviour(
        "0.0", "0.20.5", True,
        "avgThroughputIn/Out divide a window's bytes by 1 s even when the window was longer, "
        "so the window after an input gap overstates the rate: it has no value",
        "ome-api.md §1, §7; PR #2029 (OvenMediaLabs bbd1592de), common_metrics.cpp",
    ),
    Behaviour(
        "0.0", "0.21.0", False,
        "internal queues report a threshold other than the one they use (dec_*/enc_* report 0, "
        "filter_video 120 where 2 x fps applies): OME's own congestion alert misses them",
        "ome-beyond-stats.md §3.1; A18 monitoring/queue_metrics.h:47-52, "
        "transcoder_decoder.cpp:332-333, transcoder_encoder.cpp:341-342 (same order in 0.20.0; "
        "0.20.5 not examined): scope queue's effective_threshold",
    ),
    Behaviour(
        "0.0", "0.20.5", False,
        "AdmissionWebhooks 'closing' calls use a fixed 500 ms timeout, not <Timeout>",
        "ome-beyond-stats.md §5.4; A18 access_controller.cpp:70, A20 :222-228",
    ),
    Behaviour(
        "0.0", "0.16.5", False,
        "no GET /v1/version: the release is unknown (reported as older than 0.16.5)",
        "ome-beyond-stats.md §4; OME commit 2bb42b4",
    ),
)  # fmt: skip


def behaviours_of(version: str) -> list[Behaviour]:
    """The known behaviours of ``version``, in ``KNOWN`` order."""
    return [b for b in KNOWN if b.applies(version)]


def describe(server: str, version: str | None) -> str:
    """The log line for ``server``: its release, and what omealert does about it."""
    if version is None:
        return f"OME on {server}: release not known yet"
    found = behaviours_of(version)
    shown = "older than 0.16.5" if version == BEFORE_VERSION_ENDPOINT else version
    if not found:
        return f"OME on {server} is {shown}: no known behaviour to compensate for"
    fixed = [f"{b.text} (until {b.fixed_in})" for b in found if b.compensated]
    warned = [f"{b.text} (until {b.fixed_in})" for b in found if not b.compensated]
    parts = [f"OME on {server} is {shown}"]
    if fixed:
        parts.append("omealert compensates: " + "; ".join(fixed))
    if warned:
        parts.append("beware: " + "; ".join(warned))
    return ". ".join(parts)


def summary(server: str, version: str) -> str:
    """One short line for ``status``: the release and when its known behaviour ends."""
    shown = "older than 0.16.5" if version == BEFORE_VERSION_ENDPOINT else version
    fixed = sorted(
        {b.fixed_in for b in behaviours_of(version) if b.fixed_in},
        key=lambda text: release_key(text) or (),
    )
    if not fixed:
        return f"server {server}: OME {shown}"
    until = " ".join(fixed)
    return f"server {server}: OME {shown} (known behaviour, fixed in {until}: see the watch log)"


class VersionWatch:
    """When one server's release is due to be asked for again, and what it was."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.version: str | None = None
        self._asked_at: float | None = None

    def due(self, now: float) -> bool:
        return self._asked_at is None or now - self._asked_at >= REFRESH_S

    def lost(self) -> None:
        """The server could not be read: ask again once it answers."""
        self._asked_at = None

    def learnt(self, version: str | None, now: float) -> None:
        """Record an answer (None: the request failed, keep what was known)."""
        self._asked_at = now
        if version is None or version == self.version:
            return
        self.version = version
        log.info("%s", describe(self.server, version))


def parse_version(payload: object) -> str | None:
    """The ``version`` of a ``/v1/version`` answer if it is a release number, else None."""
    if not isinstance(payload, dict):
        return None
    text = payload.get("version")
    if not isinstance(text, str) or release_key(text) is None:
        return None
    return text.strip()
