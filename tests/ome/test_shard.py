"""Rendezvous ownership of servers and apps, and the plans cut to one shard."""

from __future__ import annotations

from dataclasses import replace

from omealert.model import Target
from omealert.ome.shard import owner, shard_plan, shard_servers
from omealert.rules import ServerSpec, ShardSpec
from tests.helpers import rule, settings

NAMES = [f"origin-{i}" for i in range(3000)]


def test_every_name_has_exactly_one_owner_and_the_split_is_even() -> None:
    """Each name maps to one shard in range, the same every time; shards get similar shares."""
    owners = [owner(n, 3) for n in NAMES]
    assert owners == [owner(n, 3) for n in NAMES]
    counts = [owners.count(k) for k in range(3)]
    assert all(800 < c < 1200 for c in counts), counts


def test_adding_a_shard_moves_only_what_the_new_shard_takes() -> None:
    """3 → 4 shards: the names that move all go to the new shard, about a quarter of them."""
    moved = [n for n in NAMES if owner(n, 3) != owner(n, 4)]
    assert {owner(n, 4) for n in moved} == {3}
    assert 0.18 < len(moved) / len(NAMES) < 0.32


def test_shard_by_server_keeps_only_the_owned_servers() -> None:
    """The shards' servers are disjoint and together the whole fleet."""
    servers = tuple(ServerSpec(f"s{i}", f"http://127.0.0.1:{i + 1}") for i in range(12))
    base = settings(servers=servers)
    parts = [shard_servers(replace(base, shard=ShardSpec(k, 3))).servers for k in range(3)]
    names = [s.name for part in parts for s in part]
    assert sorted(names) == sorted(s.name for s in servers)
    assert len(names) == len(set(names))
    assert shard_servers(base).servers == servers  # one shard: everything


def test_shard_by_app_raises_api_down_only_on_the_servers_shard() -> None:
    """By app every shard polls a dead server; only the server's owner alerts it."""
    from omealert.engine.engine import Engine
    from omealert.errors import SourceErrorKind
    from tests.helpers import poll

    firing = []
    for k in range(3):
        s = replace(settings(), shard=ShardSpec(k, 3, "app"))
        transitions = Engine(s).step([poll(100.0, error=SourceErrorKind.UNREACHABLE)], 100.0)
        firing.append(len(transitions))
    assert firing == [1 if owner("origin", 3) == k else 0 for k in range(3)]


def test_shard_by_app_plans_only_owned_apps_and_the_server_level_on_its_owner() -> None:
    """App stats are read only by the app's shard; server stats only by the server's owner."""
    r = rule("hi", "webrtc publishers > 5")
    srv = rule("srv", "webrtc publishers > 5", scope="server")
    apps = [Target("origin", "default", f"app{i}") for i in range(30)]
    reading = []
    for k in range(3):
        s = replace(settings(r, srv), shard=ShardSpec(k, 3, "app"))
        plan = shard_plan(s, s.rules, "origin")
        stream = [a.child("cam") for a in apps]
        reading.append({t.app for t in stream if plan.sources(t) is not None})
        assert plan.explores(Target("origin")) and plan.explores(Target("origin", "default"))
        assert (plan.sources(Target("origin")) is not None) == (owner("origin", 3) == k)
    assert sorted(a for part in reading for a in part) == sorted(a.app for a in apps if a.app)
