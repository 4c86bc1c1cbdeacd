"""``check --state`` (cron style) and ``ack`` on the same state file: the verdict shows who
acknowledged what, and ``status`` shows it too."""

from __future__ import annotations

import json
from pathlib import Path

from omealert.simulator import Simulator
from tests.cli import test_main
from tests.cli.test_main import cli, server, state_check, streams, write_config

sim = test_main.sim  # the fixture, under the name the tests ask for


def test_check_json_and_status_show_the_ack(tmp_path: Path, sim: Simulator) -> None:
    """After ``ack``, ``check --format json`` gives the alert's ack (by, comment, id) and
    the text verdict and ``status`` name who acknowledged it; other alerts have none."""
    streams(sim, quiet=3, huge=2000)
    write_config(tmp_path, [server("origin-1", sim.url)])
    first = state_check(tmp_path)
    assert first.code == 2, first
    added = cli(
        tmp_path, "ack", "-m", "stream=huge", "--rule", "viewers-crit", "--by", "carol",
        "--comment", "scaling out", "--expire", "2h", "--state", "state.db",
    )  # fmt: skip
    assert added.code == 0, added
    ack_id = added.lines[-1]

    doc = state_check(tmp_path, "--format", "json").doc()
    acks = {a["rule"]: a["ack"] for a in doc["alerts"]}
    assert acks["viewers-warn"] is None
    crit = acks["viewers-crit"]
    assert (crit["id"], crit["by"], crit["comment"]) == (ack_id, "carol", "scaling out")
    assert crit["expires_at"] - crit["at"] == 7200
    text = state_check(tmp_path)
    assert any(
        line.startswith("CRITICAL firing viewers-crit") and "(acknowledged by carol)" in line
        for line in text.lines
    ), text

    status = cli(tmp_path, "status", "--state", "state.db")
    row = next(line for line in status.lines if "viewers-crit" in line)
    assert row.endswith("carol: scaling out"), status
    rows = json.loads(cli(tmp_path, "status", "--state", "state.db", "--format", "json").out)
    assert {r["rule"]: (r["ack"] or {}).get("by") for r in rows} == {
        "viewers-crit": "carol",
        "viewers-warn": None,
    }
    assert cli(tmp_path, "ack", "remove", ack_id[:4], "--state", "state.db").code == 0
    assert state_check(tmp_path, "--format", "json").doc()["alerts"][0]["ack"] is None
