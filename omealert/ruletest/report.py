"""Run rule test files and report: a readable text summary and JUnit XML for CI.

Exit status, decided by ``Summary.exit_code``: 0 when every selected test passed, 1 when
any failed (or ``--run`` selected nothing), 3 when a file could not be used at all (a test
file or its config is invalid, a recording cannot be read). 3 wins over 1, because a CI
run that could not check everything must not look like an ordinary failure.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ..errors import ConfigError, ConfigIssue
from .load import ConfigCache, load_test_file
from .run import RuleTestOutcome, run_test, select

__all__ = ["FileOutcome", "Summary", "discover", "junit_xml", "run_paths"]

#: File names a folder given on the command line is searched for (recursively).
TEST_GLOBS = ("*.test.yaml", "*.test.yml")


@dataclass(slots=True)
class FileOutcome:
    path: str
    issues: list[ConfigIssue] = field(default_factory=list)  # invalid: nothing ran
    tests: list[RuleTestOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def invalid(self) -> bool:
        return bool(self.issues)


@dataclass(slots=True)
class Summary:
    files: list[FileOutcome]
    selected: bool = True  # False when --run matched no test at all

    @property
    def passed(self) -> int:
        return sum(1 for f in self.files for t in f.tests if t.passed)

    @property
    def failed(self) -> int:
        return sum(1 for f in self.files for t in f.tests if t.failures and t.error is None)

    @property
    def errors(self) -> int:
        return sum(1 for f in self.files for t in f.tests if t.error is not None) + sum(
            1 for f in self.files if f.invalid
        )

    @property
    def exit_code(self) -> int:
        if self.errors:
            return 3
        if self.failed or not self.selected:
            return 1
        return 0


def discover(paths: Sequence[str]) -> tuple[list[str], list[FileOutcome]]:
    """Files to run: each file as given, each folder's ``*.test.yaml`` files, sorted.

    A path that does not exist, or a folder without test files, is an invalid input.
    """
    files: list[str] = []
    bad: list[FileOutcome] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found = sorted({str(p) for g in TEST_GLOBS for p in path.rglob(g) if p.is_file()})
            if not found:
                message = f"no {' or '.join(TEST_GLOBS)} files in this folder"
                bad.append(FileOutcome(text, [ConfigIssue(text, 1, 1, message)]))
            files.extend(found)
        elif path.is_file():
            files.append(text)
        else:
            bad.append(FileOutcome(text, [ConfigIssue(text, 1, 1, "no such file or folder")]))
    return list(dict.fromkeys(files)), bad


def run_paths(
    paths: Sequence[str], patterns: Sequence[re.Pattern[str]], out: TextIO, err: TextIO
) -> Summary:
    """Load every file, run the selected tests, print the report; problems go to ``err``."""
    files, bad = discover(paths)
    outcomes: list[FileOutcome] = list(bad)
    for outcome in bad:
        _print_invalid(outcome, out, err)
    ran = 0
    cache: ConfigCache = {}
    for path in files:
        started = time.perf_counter()
        outcome = FileOutcome(path)
        outcomes.append(outcome)
        try:
            tf = load_test_file(path, cache=cache)
        except ConfigError as exc:
            outcome.issues = exc.issues
            outcome.seconds = time.perf_counter() - started
            _print_invalid(outcome, out, err)
            continue
        tests = select(tf.tests, patterns)
        if not tests:
            continue
        print(path, file=out)
        for test in tests:
            result = run_test(tf, test)
            outcome.tests.append(result)
            _print_test(result, out)
            ran += 1
        outcome.seconds = time.perf_counter() - started
    summary = Summary(outcomes, selected=ran > 0 or not patterns)
    _print_summary(summary, patterns, out)
    return summary


def _print_invalid(outcome: FileOutcome, out: TextIO, err: TextIO) -> None:
    for issue in outcome.issues:
        print(str(issue), file=err)
    count = len(outcome.issues)
    print(f"{outcome.path}: not run, {count} problem(s) in the file or its config", file=out)


def _print_test(result: RuleTestOutcome, out: TextIO) -> None:
    if result.error is not None:
        print(f"  ERROR {result.name}", file=out)
        print(f"        {result.error}", file=out)
        return
    if result.passed:
        print(f"  PASS  {result.name}", file=out)
        return
    print(f"  FAIL  {result.name}", file=out)
    for failure in result.failures:
        print(f"        {failure.where}: {failure.title}", file=out)
        for line in failure.lines:
            print(f"          {line}", file=out)


def _print_summary(summary: Summary, patterns: Sequence[re.Pattern[str]], out: TextIO) -> None:
    if not summary.selected:
        shown = ", ".join(p.pattern for p in patterns)
        print(f"no test name matches --run {shown}", file=out)
    parts = [f"{summary.passed} passed", f"{summary.failed} failed"]
    if summary.errors:
        parts.append(f"{summary.errors} could not run")
    print(", ".join(parts), file=out)


def _failure_text(result: RuleTestOutcome) -> str:
    lines: list[str] = []
    for failure in result.failures:
        lines.append(f"{failure.where}: {failure.title}")
        lines.extend(f"  {line}" for line in failure.lines)
    return "\n".join(lines)


def junit_xml(summary: Summary) -> str:
    """JUnit XML: one ``testsuite`` per file, one ``testcase`` per test run.

    A failing test carries a ``failure`` element whose text is the diff; a file that could
    not be used is a suite with one ``error`` test case listing its problems.
    """
    root = ET.Element("testsuites", name="omealert test")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    total_time = 0.0
    for f in summary.files:
        classname = str(Path(f.path).with_suffix("")).replace("\\", "/").replace("/", ".")
        suite = ET.SubElement(root, "testsuite", name=f.path)
        counts = {"tests": 0, "failures": 0, "errors": 0}
        if f.invalid:
            case = ET.SubElement(suite, "testcase", name="load", classname=classname)
            case.set("time", "0.000")
            error = ET.SubElement(case, "error", type="InvalidTestFile")
            error.set("message", f"{len(f.issues)} problem(s) in the file or its config")
            error.text = "\n".join(str(i) for i in f.issues)
            counts["tests"] += 1
            counts["errors"] += 1
        for t in f.tests:
            case = ET.SubElement(suite, "testcase", name=t.name, classname=classname)
            case.set("file", f.path)
            case.set("line", t.where.rsplit(":", 2)[-2] if t.where.count(":") >= 2 else "1")
            case.set("time", f"{t.seconds:.3f}")
            counts["tests"] += 1
            if t.error is not None:
                error = ET.SubElement(case, "error", type="RecordingError", message=t.error)
                error.text = t.error
                counts["errors"] += 1
            elif t.failures:
                failure = ET.SubElement(case, "failure", type="ExpectationFailed")
                failure.set("message", f"{len(t.failures)} of {t.checks} check(s) failed")
                failure.text = _failure_text(t)
                counts["failures"] += 1
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", f"{f.seconds:.3f}")
        total_time += f.seconds
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
