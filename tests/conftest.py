"""Suite-wide hooks: name every real part that was missing, at the end of the run."""

from __future__ import annotations

from _pytest.terminal import TerminalReporter

from tests import realparts


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    """List the missing Debian binaries so a skipped real-part test is never silent."""
    if not realparts.MISSING:
        return
    terminalreporter.section("real parts missing")
    for binary, package in sorted(realparts.MISSING.items()):
        terminalreporter.write_line(f"{binary}: sudo apt-get install {package}")
    packages = " ".join(sorted(set(realparts.MISSING.values())))
    terminalreporter.write_line(f"or all at once: sudo apt-get install {packages}")
