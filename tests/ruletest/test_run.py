"""``omealert test``: the example rule tests, diffs, JUnit, --run and exit codes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from omealert.cli.main import main
from omealert.config.load import load_config
from omealert.ruletest.load import load_test_file

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "tests" / "rules"

CONFIG = """\
servers:
  - name: o1
    url: http://127.0.0.1:9
interval: 10s
defaults:
  channels: [ops]
channels:
  ops:
    urls: ["json://127.0.0.1:9/ops"]
    title: "[{{ status | upper }}] {{ rule }} on {{ target }}"
rules:
  - name: stalled
    when: lastRecvTime stale > 30s
    summary: "{{ target }} silent for {{ value | duration }}"
  - name: crowded
    when: webrtc publishers > 500
    for: 30s
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["test", *argv], out=out)
    return code, out.getvalue()


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return write(tmp_path, "cfg.yaml", CONFIG)


class TestExamples:
    def test_example_rule_tests_pass(self) -> None:
        """`omealert test tests/rules/` passes as a command, as `make test` runs it."""
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        done = subprocess.run(
            [sys.executable, "-m", "omealert", "test", "tests/rules/"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.rstrip().endswith(" passed, 0 failed")
        assert "FAIL" not in done.stdout

    def test_every_example_rule_has_a_test(self) -> None:
        """Each rule of rules.example.yaml (and ome-api-down) is named by some check."""
        settings = load_config(REPO / "rules.example.yaml", env={})
        covered: set[str] = set()
        for path in sorted(RULES.glob("*.test.yaml")):
            tf = load_test_file(path)
            assert tf.config_path.resolve() == (REPO / "rules.example.yaml").resolve()
            for test in tf.tests:
                covered |= {c.rule for c in test.alerts if c.rule}
                covered |= {c.rule for c in test.notifications if c.rule}
        wanted = {r.name for r in settings.rules} | {"ome-api-down"}
        assert wanted - covered == set()


class TestDiffs:
    def test_wrong_value_shows_a_minimal_diff(self, cfg: Path, tmp_path: Path) -> None:
        """A failing expectation prints where it is and -/+ lines that differ only where wrong."""
        path = write(
            tmp_path,
            "t.test.yaml",
            """\
            config: cfg.yaml
            tests:
              - name: wrong value
                input:
                  default/app/s1:
                    lastRecvTime: advancing x3 stalled x6
                alerts:
                  - eval_time: 60s
                    rule: stalled
                    exp_alerts:
                      - labels: {stream: s1}
                        value: 30
            """,
        )
        code, out = run(str(path))
        assert code == 1
        assert out == textwrap.dedent(
            f"""\
            {path}
              FAIL  wrong value
                    {path}:8:9: alerts at 1m, rule stalled
                      --- expected
                      +++ actual
                      - {{state: firing, labels: {{stream: s1}}, value: 30}}
                      + {{state: firing, labels: {{stream: s1}}, value: 40}}
            0 passed, 1 failed
            """
        )

    def test_nothing_expected_but_something_fires(self, cfg: Path, tmp_path: Path) -> None:
        """`exp_alerts: []` fails on a firing alert and shows it with all its labels."""
        path = write(
            tmp_path,
            "t.test.yaml",
            """\
            config: cfg.yaml
            tests:
              - name: quiet
                input:
                  default/app/s1: {lastRecvTime: "@-1m stalled"}
                alerts:
                  - {eval_time: 0s, rule: stalled, exp_alerts: []}
            """,
        )
        code, out = run(str(path))
        assert code == 1
        assert (
            "+ {state: firing, labels: {server: o1, vhost: default, app: app, stream: s1, "
            "rule: stalled, severity: warning}, value: 60}"
        ) in out

    def test_pending_is_compared_only_when_asked_for(self, cfg: Path, tmp_path: Path) -> None:
        """Pending alerts are ignored by `[]` but compared once a pending one is expected."""
        path = write(
            tmp_path,
            "t.test.yaml",
            """\
            config: cfg.yaml
            tests:
              - name: pending ignored
                input: {default/app/s1: {publishers.connections.webrtc: 600x5}}
                alerts:
                  - {eval_time: 10s, rule: crowded, exp_alerts: []}
              - name: pending compared
                input: {default/app/s1: {publishers.connections.webrtc: 600x5}}
                alerts:
                  - eval_time: 10s
                    rule: crowded
                    exp_alerts: [{state: pending, labels: {stream: s2}}]
            """,
        )
        code, out = run(str(path))
        assert code == 1
        assert "PASS  pending ignored" in out
        assert "- {state: pending, labels: {stream: s2}}\n" in out
        assert "+ {state: pending, labels: {stream: s1}}\n" in out

    def test_notification_diff_keeps_time_order(self, cfg: Path, tmp_path: Path) -> None:
        """Messages are aligned in order: a missing one and an extra one show where they fall."""
        path = write(
            tmp_path,
            "t.test.yaml",
            """\
            config: cfg.yaml
            tests:
              - name: messages
                input:
                  default/app/s1:
                    lastRecvTime: advancing x3 stalled x6 advancing x3
                notifications:
                  - between: [0s, 2m]
                    channel: ops
                    exp:
                      - {at: 1m, reason: first}
                      - {at: 1m20s, reason: repeat}
            """,
        )
        code, out = run(str(path))
        assert code == 1
        assert (
            "          --- expected\n"
            "          +++ actual\n"
            "            {at: 1m, reason: first}\n"
            "          - {at: 1m20s, reason: repeat}\n"
            "          + {at: 1m30s, reason: resolved}\n"
        ) in out

    def test_rendered_summary_and_title(self, cfg: Path, tmp_path: Path) -> None:
        """Summaries and titles are compared after templating, as they would be sent."""
        path = write(
            tmp_path,
            "t.test.yaml",
            """\
            config: cfg.yaml
            tests:
              - name: rendered
                input:
                  default/app/s1: {lastRecvTime: "@-45s stalled"}
                alerts:
                  - eval_time: 0s
                    rule: stalled
                    exp_alerts:
                      - summary: "o1/default/app/s1 silent for 45s"
                notifications:
                  - between: [0s, 0s]
                    exp:
                      - {channel: ops, title: "[FIRING] stalled on o1/default/app/s1",
                         targets: [o1/default/app/s1]}
            """,
        )
        assert run(str(path)) == (0, f"{path}\n  PASS  rendered\n1 passed, 0 failed\n")


class TestInvalidFiles:
    def test_problems_are_reported_at_file_line_col(
        self, cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Every problem of a file is listed with its position, and the exit code is 3."""
        path = write(
            tmp_path,
            "bad.test.yaml",
            """\
            config: cfg.yaml
            tests:
              - name: broken
                intervall: 10s
                input:
                  default/app/s1:
                    lastRecvTime: advancing x3 stalledx2
                    webrtc: 5
                alerts:
                  - eval_time: 1m
                    rule: stalld
                    exp_alerts: []
            """,
        )
        code, out = run(str(path))
        err = capsys.readouterr().err
        assert code == 3
        assert f"{path}: not run" in out
        assert f"{path}:4:5: unknown key 'intervall' — did you mean 'interval'?" in err

    def test_semantic_problems_are_all_reported(
        self, cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Series, field, rule and channel mistakes are reported together, each in place."""
        path = write(
            tmp_path,
            "bad.test.yaml",
            """\
            config: cfg.yaml
            tests:
              - name: broken
                input:
                  default/app/s1:
                    lastRecvTime: advancing x3 stalledx2
                    webrtc: 5
                    video.codek: H264
                alerts:
                  - eval_time: 1m
                    rule: stalld
                    exp_alerts: []
                notifications:
                  - {between: [2m, 1m], channel: pager, exp: []}
            """,
        )
        code, _ = run(str(path))
        err = capsys.readouterr().err.splitlines()
        assert code == 3
        assert err == [
            f"{path}:6:36: providers.lastRecvTime is a timestamp: expected advancing, stalled, "
            "@OFFSET or _, got 'stalledx2' (write 'stalled x2', with a space, to repeat)",
            f"{path}:7:9: field 'webrtc' is ambiguous; write one of: "
            "providers.connections.webrtc, publishers.connections.webrtc",
            f"{path}:8:9: unknown field 'video.codek'; did you mean 'video.codec'?",
            f"{path}:11:15: unknown rule 'stalld' — did you mean 'stalled'?",
            f"{path}:14:19: between: the first time must not be after the second",
            f"{path}:14:38: unknown channel 'pager' (the config has: ops)",
        ]

    def test_yaml_syntax_error(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A file that is not YAML at all is invalid (3), with the parser's position."""
        path = write(tmp_path, "bad.test.yaml", "config: [unclosed\n")
        assert run(str(path))[0] == 3
        assert capsys.readouterr().err.startswith(f"{path}:2:1: ")

    def test_config_under_test_is_invalid(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A broken config makes its tests unrunnable: its own FILE:LINE:COL errors are shown."""
        write(tmp_path, "cfg.yaml", CONFIG.replace("for: 30s", "for: 30"))
        path = write(
            tmp_path,
            "t.test.yaml",
            "config: cfg.yaml\ntests:\n  - name: x\n    api: up\n"
            "    alerts: [{eval_time: 0s, exp_alerts: []}]\n",
        )
        assert run(str(path))[0] == 3
        err = capsys.readouterr().err.splitlines()
        assert (
            err[0]
            == f"{tmp_path / 'cfg.yaml'}:17:10: duration 30 has no unit: write 30s, 30m or 30h"
        )
        assert (
            err[1]
            == f"{path}:1:9: the config under test does not load: 1 problem(s), each at its line"
        )

    def test_missing_paths_and_empty_folders(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A path that does not exist, or a folder without test files, cannot be run."""
        (tmp_path / "empty").mkdir()
        code, _ = run(str(tmp_path / "nope.yaml"), str(tmp_path / "empty"))
        err = capsys.readouterr().err
        assert code == 3
        assert f"{tmp_path / 'nope.yaml'}:1:1: no such file or folder" in err
        assert "no *.test.yaml or *.test.yml files in this folder" in err


class TestSelectionAndReports:
    FILE = """\
        config: cfg.yaml
        tests:
          - name: stall fires
            input: {default/app/s1: {lastRecvTime: advancing x3 stalled x6}}
            alerts: [{eval_time: 1m, rule: stalled, exp_alerts: [{labels: {stream: s1}}]}]
          - name: stall is quiet (wrong on purpose)
            input: {default/app/s1: {lastRecvTime: advancing x3 stalled x6}}
            alerts: [{eval_time: 1m, rule: stalled, exp_alerts: []}]
        """

    def test_run_selects_tests_by_regex(self, cfg: Path, tmp_path: Path) -> None:
        """--run keeps only matching test names; the failing one is not run."""
        path = write(tmp_path, "t.test.yaml", self.FILE)
        assert run(str(path), "--run", "fires$") == (
            0,
            f"{path}\n  PASS  stall fires\n1 passed, 0 failed\n",
        )

    def test_run_matching_nothing_fails(self, cfg: Path, tmp_path: Path) -> None:
        """A --run pattern that selects no test is a failure, not a silent pass."""
        path = write(tmp_path, "t.test.yaml", self.FILE)
        code, out = run(str(path), "--run", "nothing-like-this")
        assert code == 1
        assert "no test name matches --run nothing-like-this" in out

    def test_folders_are_searched_for_test_files(self, cfg: Path, tmp_path: Path) -> None:
        """A folder runs its *.test.yaml files and leaves other YAML (configs) alone."""
        write(tmp_path, "sub/a.test.yaml", self.FILE.replace("cfg.yaml", "../cfg.yaml"))
        code, out = run(str(tmp_path), "--run", "fires")
        assert code == 0
        assert out.startswith(f"{tmp_path / 'sub' / 'a.test.yaml'}\n")

    def test_junit_report(self, cfg: Path, tmp_path: Path) -> None:
        """JUnit XML has a suite per file, a case per test and the diff in <failure>."""
        good = write(tmp_path, "t.test.yaml", self.FILE)
        bad = write(tmp_path, "bad.test.yaml", "config: cfg.yaml\ntests: []\n")
        report = tmp_path / "out" / "report.xml"
        report.parent.mkdir()
        code, _ = run(str(good), str(bad), "--junit", str(report))
        assert code == 3  # an invalid file outranks a failing test
        root = ET.parse(report).getroot()
        assert root.tag == "testsuites"
        assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
        suites = {s.get("name"): s for s in root.findall("testsuite")}
        assert set(suites) == {str(good), str(bad)}
        cases = suites[str(good)].findall("testcase")
        assert [c.get("name") for c in cases] == [
            "stall fires",
            "stall is quiet (wrong on purpose)",
        ]
        assert cases[0].find("failure") is None
        failure = cases[1].find("failure")
        assert failure is not None and failure.get("message") == "1 of 1 check(s) failed"
        assert failure.text is not None
        assert failure.text.splitlines() == [
            f"{good}:8:14: alerts at 1m, rule stalled",
            "  --- expected",
            "  +++ actual",
            "  + {state: firing, labels: {server: o1, vhost: default, app: app, stream: s1, "
            "rule: stalled, severity: warning}, value: 40}",
        ]
        assert cases[1].get("line") == "6"
        error = suites[str(bad)].find("testcase/error")
        assert error is not None and error.text == f"{bad}:2:8: tests must not be empty"
