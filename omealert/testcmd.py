"""Parsers for ``omealert test``, ``record`` and ``replay`` (rule tests and backtests).

Only argparse is imported here so ``omealert --version`` stays fast; each handler imports
what it needs when it runs.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register the subcommands; each sets ``handler`` to a function ``(args, out) -> int``."""
    return None
