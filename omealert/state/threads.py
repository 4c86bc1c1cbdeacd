"""The Slack messages omealert posted, kept so that later news about an alert joins its thread.

Slack names a message by its ``ts``; a reply names the message it answers by that ``ts``
(``thread_ts``) and an edit needs the channel's id and the ``ts``. Both live here, with the
text the message was posted with (an edit rewrites the whole text) and, per alert, whether
its resolve has been told. A restart reads them back, so a resolve after a restart still
lands in the firing message's thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .db import StateDB

__all__ = ["ThreadRoot", "ThreadRows"]

#: One alert: (rule, target key).
AlertKey = tuple[str, str]


@dataclass(slots=True)
class ThreadRoot:
    """One top-level Slack message and the alerts its thread is about."""

    ts: str
    slack_channel: str
    posted_at: float
    text: str
    #: each alert the message is about → when its resolve was told (None: still open)
    alerts: dict[AlertKey, float | None] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        return any(at is None for at in self.alerts.values())


class ThreadRows:
    """Reads and writes ``slack_messages`` and ``slack_threads`` of one state file."""

    def __init__(self, db: StateDB) -> None:
        self._db = db

    def load(self) -> dict[tuple[str, str], list[ThreadRoot]]:
        """Every kept message per (channel, service key), oldest first, with its alerts."""
        with self._db._use("read Slack threads") as conn:
            roots = conn.execute(
                "SELECT channel, service_key, ts, slack_channel, posted_at, text "
                "FROM slack_messages ORDER BY posted_at, ts"
            ).fetchall()
            alerts = conn.execute(
                "SELECT channel, service_key, ts, rule, target, resolved_at FROM slack_threads"
            ).fetchall()
        out: dict[tuple[str, str], list[ThreadRoot]] = {}
        by_ts: dict[tuple[str, str, str], ThreadRoot] = {}
        for channel, key, ts, slack_channel, posted_at, text in roots:
            root = ThreadRoot(ts, slack_channel, posted_at, text)
            out.setdefault((channel, key), []).append(root)
            by_ts[(channel, key, ts)] = root
        for channel, key, ts, rule, target, resolved_at in alerts:
            found = by_ts.get((channel, key, ts))
            if found is not None:
                found.alerts[(rule, target)] = resolved_at
        return out

    def save(self, channel: str, key: str, root: ThreadRoot) -> None:
        """Write ``root`` and its alerts; an alert of an older thread moves to this one."""
        rows = [
            (channel, key, rule, target, root.ts, root.posted_at, resolved_at)
            for (rule, target), resolved_at in root.alerts.items()
        ]
        with self._db._txn("record a Slack thread") as conn:
            conn.execute(
                "INSERT INTO slack_messages VALUES (?,?,?,?,?,?) ON CONFLICT "
                "(channel, service_key, ts) DO UPDATE SET text = excluded.text",
                (channel, key, root.ts, root.slack_channel, root.posted_at, root.text),
            )
            conn.executemany("INSERT OR REPLACE INTO slack_threads VALUES (?,?,?,?,?,?,?)", rows)
            # a message none of whose alerts point at it any more is of no use
            conn.execute(
                "DELETE FROM slack_messages WHERE channel = ? AND service_key = ? AND ts NOT IN "
                "(SELECT ts FROM slack_threads WHERE channel = ? AND service_key = ?)",
                (channel, key, channel, key),
            )

    def forget(self, channel: str, key: str, ts: str) -> None:
        """A thread whose alerts all resolved: nothing more will be said in it."""
        with self._db._txn("forget a Slack thread") as conn:
            args = (channel, key, ts)
            conn.execute(
                "DELETE FROM slack_threads WHERE channel = ? AND service_key = ? AND ts = ?", args
            )
            conn.execute(
                "DELETE FROM slack_messages WHERE channel = ? AND service_key = ? AND ts = ?", args
            )
