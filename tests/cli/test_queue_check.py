"""``scope: queue`` end to end: the example rules against the simulator over real HTTP."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

from omealert.simulator import Simulator

from .test_main import REPO, TOKEN, cli, server, write_config


def example_rules(names: tuple[str, ...]) -> str:
    """The named rules of rules.example.yaml, as they are written there."""
    text = (REPO / "rules.example.yaml").read_text()
    blocks = text.split("\n  - name: ")
    picked = [b for b in blocks[1:] if b.split("\n", 1)[0].strip() in names]
    assert len(picked) == len(names)
    return "rules:\n" + "".join(f"  - name: {b.rstrip()}\n" for b in picked)


def test_a_congesting_queue_fires_both_example_rules(tmp_path: Path) -> None:
    """A filter_video that backs up fires queue-congested and transcoder-backlog; check's
    JSON shows the queue's labels, and the idle queues stay quiet."""
    rules = example_rules(("queue-congested", "transcoder-backlog"))
    rules = rules.replace("for: 2s", "for: 0s").replace("for: 10s", "for: 0s")
    with Simulator(access_token=TOKEN, version="0.18.0") as sim:
        sim.add_stream("default", "app", "s1")
        sim.add_stream("default", "app", "s2")
        sim.congest_queue("default", "app", "s1", items_per_s=400)
        time.sleep(0.4)  # the simulator runs on the wall clock: 160 items > 120
        write_config(tmp_path, [server("origin-1", sim.url)], rules=rules)
        run = cli(tmp_path, "check", "-c", "config.yaml", "--window", "300ms", "--format", "json")
        asked = sim.request_count("/v1/stats/current/internals/queues")
    assert run.code == 2, run  # transcoder-backlog is critical
    alerts = sorted(run.doc()["alerts"], key=lambda a: a["rule"])
    assert [a["rule"] for a in alerts] == ["queue-congested", "transcoder-backlog"]
    for alert in alerts:
        labels = alert["labels"]
        assert (labels["stream"], labels["part"], labels["name"]) == ("s1", "trs", "filter_video")
        assert labels["queue_id"].isdigit() and labels["ome_version"] == "0.18.0"
    assert asked >= 2  # once per poll, only because a rule reads queues


def test_a_rule_reading_drop_is_refused_at_load(tmp_path: Path) -> None:
    """drop is always 0 in OME: validate refuses it at its FILE:LINE:COL, saying why."""
    rules = "rules:\n  - name: drops\n    scope: queue\n    when: size > 1 and drop > 0\n"
    write_config(tmp_path, [server("origin-1", "http://127.0.0.1:9")], rules=rules)
    run = cli(tmp_path, "validate", "config.yaml")
    assert run.code != 0
    # line 4 of the rules, after the servers write_config puts first; column of `drop`
    assert re.search(r"config\.yaml:\d+:24: drop cannot be used: drop is always 0 in OME",
                     run.err + run.out), run  # fmt: skip


def test_queue_rules_take_no_match(tmp_path: Path) -> None:
    """A match on a queue rule is refused with how to select queues instead."""
    rules = "rules:\n  - name: q\n    scope: queue\n    match: default/app/s1\n    when: size > 1\n"
    write_config(tmp_path, [server("origin-1", "http://127.0.0.1:9")], rules=rules)
    run = cli(tmp_path, "validate", "config.yaml")
    assert "scope queue takes no match: select queues in the condition" in run.err + run.out


def test_the_example_file_still_validates(tmp_path: Path) -> None:
    """rules.example.yaml with its queue rules validates as shipped."""
    shutil.copy(REPO / "rules.example.yaml", tmp_path / "rules.example.yaml")
    assert cli(tmp_path, "validate", "rules.example.yaml").code == 0
