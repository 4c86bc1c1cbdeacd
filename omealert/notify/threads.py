"""Which Slack thread each alert's news goes to, in memory and mirrored to the state file.

The firing message about an alert starts a thread; whatever is said about that alert later
(a repeat, an acknowledgement, a flapping notice, the resolve) is a reply in it, until its
resolve has been told. One message may be about several alerts (a rule's group), and an
alert belongs to the newest thread that named it.

The state file is the memory across restarts. When it cannot be written, threads go on in
memory, and the failure is logged once: a restart then starts a new thread rather than
losing a message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ..errors import StateError
from ..state.threads import AlertKey, ThreadRoot, ThreadRows

__all__ = ["AlertKey", "ThreadBook", "ThreadRoot"]

log = logging.getLogger("omealert.slack")

#: One Slack service of one channel: (channel name, service key).
Service = tuple[str, str]


class ThreadBook:
    """The open threads of every Slack service, read from ``rows`` on first use."""

    def __init__(self, rows: ThreadRows | None = None) -> None:
        self._rows = rows
        self._roots: dict[Service, list[ThreadRoot]] = {}
        self._loaded = rows is None
        self._told_broken = False

    def _load(self) -> None:
        if self._loaded or self._rows is None:
            return
        self._loaded = True
        try:
            self._roots = self._rows.load()
        except StateError as exc:
            self._broken(exc)

    def _broken(self, exc: StateError) -> None:
        if not self._told_broken:
            self._told_broken = True
            log.error("Slack threads kept in memory only: %s", exc)

    def open_roots(self, service: Service, alerts: Iterable[AlertKey]) -> list[ThreadRoot]:
        """The threads (oldest first) in which any of ``alerts`` is still open."""
        self._load()
        wanted = set(alerts)
        return [
            root
            for root in self._roots.get(service, [])
            if any(root.alerts.get(a, 0.0) is None for a in wanted)
        ]

    def started(self, service: Service, root: ThreadRoot) -> None:
        """A new top-level message: its alerts leave whatever thread they were in."""
        self._load()
        roots = self._roots.setdefault(service, [])
        for old in roots:
            for alert in root.alerts:
                old.alerts.pop(alert, None)
        roots[:] = [r for r in roots if r.alerts]
        roots.append(root)
        self._write(service, root)

    def changed(self, service: Service, root: ThreadRoot) -> None:
        """``root``'s alerts or text changed; a thread with every alert resolved is forgotten."""
        roots = self._roots.get(service, [])
        if root.open:
            self._write(service, root)
            return
        roots[:] = [r for r in roots if r is not root]
        if self._rows is not None:
            try:
                self._rows.forget(*service, root.ts)
            except StateError as exc:
                self._broken(exc)

    def _write(self, service: Service, root: ThreadRoot) -> None:
        if self._rows is None:
            return
        try:
            self._rows.save(*service, root)
        except StateError as exc:
            self._broken(exc)
