"""Three ``watch --shard K/3`` processes over one fleet of simulators cover each stream once.

Each watcher has the same rules (an alert on every stream) and its own webhook path, so
what reached the receiver tells which watcher evaluated which stream. Split by server
(several simulators) and by app (one simulator with many apps).
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from omealert.cli.main import main
from omealert.ome.shard import owner
from omealert.simulator import Simulator
from tests.cli.test_watch import Watcher, write
from tests.helpers import wait_until
from tests.receivers import HttpReceiver

SHARDS = 3
FIRING = re.compile(r"FIRING (\S+): ")


def config(servers: dict[str, Simulator], hook: HttpReceiver, shard: int, by: str) -> str:
    listed = "".join(
        f"  - name: {name}\n    url: {sim.url}\n    access_token: {sim.access_token}\n"
        for name, sim in servers.items()
    )
    return f"""\
servers:
{listed}interval: 200ms
shard_by: {by}
defaults:
  channels: [hook]
channels:
  hook:
    urls: ["json://127.0.0.1:{hook.port}/shard{shard}"]
    format: text
    title: "{{{{ target }}}}"
rules:
  - name: every-stream
    when: publishers.viewers >= 0
"""


def firing(hook: HttpReceiver) -> list[tuple[str, str]]:
    """(shard's path, target) of every alert in every message (one message lists a tick's)."""
    out = []
    for (_, path, _, _), body in zip(hook.requests, hook.json_bodies(), strict=True):
        out += [(path.strip("/"), t) for t in FIRING.findall(str(body["message"]))]
    return out


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def run_shards(
    tmp_path: Path, servers: dict[str, Simulator], hook: HttpReceiver, by: str, expected: int
) -> tuple[dict[str, set[str]], list[Watcher]]:
    """Start the three shards, wait for ``expected`` alerts; which shard sent which target."""
    watchers = []
    try:
        for k in range(SHARDS):
            path = write(tmp_path / f"shard{k}.yaml", config(servers, hook, k, by))
            w = Watcher(tmp_path, path, tmp_path / f"s{k}.db", f"shard{k}", ["--shard", f"{k}/3"])
            watchers.append(w)
        for w in watchers:
            w.wait_ready()
        assert wait_until(lambda: len(firing(hook)) >= expected, 20), [w.stderr() for w in watchers]
        for k, w in enumerate(watchers):
            w.wait_ticks(3)  # time enough for a duplicate to show up, if there were one
            assert w.metric("omealert_shard_info", shard=f"{k}/3", by=by) == 1
        seen: dict[str, set[str]] = {f"shard{k}": set() for k in range(SHARDS)}
        for path, target in firing(hook):
            seen[path].add(target)
        return seen, watchers
    finally:
        for w in watchers:
            w.kill()
            assert "Traceback" not in w.stderr(), w.stderr()


def test_shards_by_server_cover_every_stream_exactly_once(
    tmp_path: Path, hook: HttpReceiver
) -> None:
    """Each server's streams are alerted by the one shard that owns the server, none twice."""
    with ExitStack() as stack:
        servers = {}
        for i in range(6):
            sim = stack.enter_context(Simulator())
            sim.add_stream("default", "live", "a")
            sim.add_stream("default", "live", "b")
            servers[f"origin-{i}"] = sim
        streams = {f"{name}/default/live/{s}" for name in servers for s in "ab"}
        seen, watchers = run_shards(tmp_path, servers, hook, "server", len(streams))
    counts = Counter(t for _, t in firing(hook))
    assert set(counts) == streams and set(counts.values()) == {1}, counts
    for k in range(SHARDS):
        assert seen[f"shard{k}"] == {t for t in streams if owner(t.split("/")[0], SHARDS) == k}
    assert any("shard 0/3 by server: " in w.stderr() for w in watchers)
    out = io.StringIO()
    assert main(["status", "--state", str(tmp_path / "s1.db")], out=out) == 0
    assert "this watcher is shard 1/3 of its fleet (by server)" in out.getvalue()


def test_shards_by_app_split_one_big_server(tmp_path: Path, hook: HttpReceiver) -> None:
    """One server's apps are split over the shards: every stream alerted exactly once."""
    with Simulator() as sim:
        for i in range(9):
            sim.add_stream("default", f"app{i}", "cam")
        streams = {f"origin/default/app{i}/cam" for i in range(9)}
        seen, _ = run_shards(tmp_path, {"origin": sim}, hook, "app", len(streams))
    counts = Counter(t for _, t in firing(hook))
    assert set(counts) == streams and set(counts.values()) == {1}, counts
    owners = {t: owner("/".join(t.split("/")[1:3]), SHARDS) for t in streams}
    for k in range(SHARDS):
        assert seen[f"shard{k}"] == {t for t, o in owners.items() if o == k}
