"""``check`` over real HTTP: a rule on ``version``, and the ``ome_version`` label."""

from __future__ import annotations

from pathlib import Path

from omealert.simulator import Simulator

from .test_main import TOKEN, cli, server, write_config


def test_check_fires_on_an_old_release_and_labels_the_version(tmp_path: Path) -> None:
    """A server rule ``version < "0.20.5"`` fires on a 0.18.0 simulator, labelled ome_version."""
    rules = (
        "rules:\n  - name: old-ome\n    scope: server\n"
        '    when: version < "0.20.5"\n'
        "  - name: any-stream\n    when: totalBytesIn >= 0\n"
    )
    with Simulator(access_token=TOKEN, version="0.18.0") as sim:
        sim.add_stream("default", "app", "s1")
        write_config(tmp_path, [server("origin-1", sim.url)], rules=rules)
        run = cli(tmp_path, "check", "-c", "config.yaml", "--format", "json")
        asked = sim.request_count("/v1/version")
    assert run.code in (1, 2), run
    alerts = {a["rule"]: a for a in run.doc()["alerts"]}
    assert alerts["old-ome"]["value"] == "0.18.0"
    assert alerts["old-ome"]["labels"]["ome_version"] == "0.18.0"
    assert alerts["any-stream"]["labels"]["ome_version"] == "0.18.0"
    assert asked == 1
