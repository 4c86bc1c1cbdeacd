"""The exit codes every command returns, named once for all of them.

Its own module, below ``main`` and the commands, so that a command can name its code
without importing the front door that imports it.
"""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    """What the process tells its caller; ``check`` follows Nagios (0 OK … 3 UNKNOWN)."""

    OK = 0
    FAILURE = 1  # validate: invalid file; test: a failing case
    USAGE = 2  # argparse's convention, except for `check`, where 2 means CRITICAL
    UNKNOWN = 3  # check: UNKNOWN; also any usage error on check
    INTERNAL = 70
