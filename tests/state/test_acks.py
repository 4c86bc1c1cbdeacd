"""Acks and maintenance silences in the state file: stored, read, lifted and pruned."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from omealert.errors import StateError
from omealert.state.acks import ack_index
from omealert.state.store import StateStore

from .test_store import T0, alert

EPISODE = ("ingest-down", "origin-1/default/app/s1", T0 + 30.25)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state.db") as s:
        yield s


def add(store: StateStore, **kw: object) -> str:
    fields: dict[str, object] = {
        "matchers": ["stream=s1"], "rule": "", "alerts": [EPISODE], "created_by": "alice",
        "comment": "on it", "now": T0 + 40, "expires_at": None,
    }  # fmt: skip
    fields.update(kw)
    return store.add_ack(**fields).id  # type: ignore[arg-type]


def test_ack_round_trips_and_is_live_until_removed_or_expired(store: StateStore) -> None:
    """An ack reads back as written; expired or removed ones are no longer live."""
    sticky = add(store)
    expiring = add(store, now=T0 + 41, expires_at=T0 + 100, alerts=[("r", "t", 1.5)])
    (first, second) = store.list_acks()
    assert (first.id, first.alerts, first.created_by, first.comment) == (
        sticky, [EPISODE], "alice", "on it",
    )  # fmt: skip
    assert [a.id for a in store.live_acks(T0 + 99)] == [sticky, expiring]
    assert [a.id for a in store.live_acks(T0 + 100)] == [sticky]
    assert store.remove_ack(sticky[:3], T0 + 50)
    assert not store.remove_ack(sticky, T0 + 51)  # already lifted
    assert [a.id for a in store.live_acks(T0 + 60)] == [expiring]
    assert ack_index(store.live_acks(T0 + 60), T0 + 60) == {("r", "t", 1.5): second}


def test_remove_refuses_an_ambiguous_prefix_and_junk(store: StateStore) -> None:
    """A prefix shared by two acks is an error naming both; a non-hex id matches nothing."""
    ids = [add(store) for _ in range(40)]
    by_first = {}
    for i in ids:
        by_first.setdefault(i[0], []).append(i)
    shared = next(v for v in by_first.values() if len(v) > 1)
    with pytest.raises(StateError, match="ambiguous"):
        store.remove_ack(shared[0][0], T0 + 50)
    assert not store.remove_ack("'; DROP TABLE acks; --", T0 + 50)
    assert len(store.live_acks(T0 + 50)) == 40


def test_announced_is_saved_with_the_tick(store: StateStore) -> None:
    """``save_tick(acks_announced=…)`` marks the ack, so a restart does not announce it."""
    aid = add(store)
    store.save_tick(acks_announced=[(aid, T0 + 41)])
    assert store.list_acks()[0].announced_at == T0 + 41


def test_prune_keeps_sticky_acks_of_alerts_still_firing(store: StateStore) -> None:
    """Old lifted acks and old sticky ones of resolved alerts go; a sticky ack of an alert
    still firing stays however old it is."""
    store.save_tick(upsert=[alert()])
    firing = add(store)
    resolved = add(store, alerts=[("ingest-down", "origin-1/default/app/s2", T0)])
    lifted = add(store, expires_at=T0 + 45)
    recent = add(store, now=T0 + 500, expires_at=T0 + 600)
    store.prune(T0 + 100)
    assert [a.id for a in store.list_acks()] == [firing, recent]
    assert resolved and lifted


def test_maintenance_is_a_silence_of_its_own_kind_and_old_silences_stay_silences(
    tmp_path: Path,
) -> None:
    """A maintenance reads back with its kind; a silence from before the upgrade (the column
    left to its default) and one added as before are plain silences."""
    path = tmp_path / "state.db"
    with StateStore(path) as store:
        store.add_silence(["server=edge-3"], T0, T0 + 60, "bob", "kernel", T0, kind="maintenance")
        store.add_silence(["a=1"], T0, T0 + 60, "bob", "", T0)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, "
            "created_at) VALUES ('0ld', '[\"a=2\"]', ?, ?, 'eve', 'old', ?)",
            (T0, T0 + 60, T0),
        )
        conn.commit()
    with StateStore(path) as store:
        kinds = {s.comment: s.kind for s in store.active_silences(T0 + 1)}
    assert kinds == {"kernel": "maintenance", "": "silence", "old": "silence"}
