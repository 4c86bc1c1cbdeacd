"""omealert: alerting rules for OvenMediaEngine's REST stats API.

The names below are the library API, what a Python user imports::

    from omealert import Engine, OmeClient, load_config

They are loaded on first use (PEP 562), so ``import omealert`` stays cheap: the console
script imports this package before every command, and ``omealert --version`` must not pay
for pydantic, httpx or Jinja.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .config.load import load_config, load_config_text
    from .engine.engine import Engine
    from .errors import (
        ConfigError,
        ConfigIssue,
        DeliveryError,
        ExprError,
        OmealertError,
        SourceError,
        SourceErrorKind,
        StateError,
    )
    from .model import AlertState, PollResult, Sample, Scope, Severity, Target
    from .ome.client import OmeClient, poll_all
    from .rules import Rule, Settings
    from .state.store import StateStore

#: Each exported name and the module that defines it.
_HOMES: dict[str, str] = {
    "AlertState": "model",
    "ConfigError": "errors",
    "ConfigIssue": "errors",
    "DeliveryError": "errors",
    "Engine": "engine.engine",
    "ExprError": "errors",
    "OmeClient": "ome.client",
    "OmealertError": "errors",
    "PollResult": "model",
    "Rule": "rules",
    "Sample": "model",
    "Scope": "model",
    "Settings": "rules",
    "Severity": "model",
    "SourceError": "errors",
    "SourceErrorKind": "errors",
    "StateError": "errors",
    "StateStore": "state.store",
    "Target": "model",
    "load_config": "config.load",
    "load_config_text": "config.load",
    "poll_all": "ome.client",
}

#: A literal on purpose: ruff and mypy read re-exports only from a written-out list;
#: tests/test_layout.py checks that it names exactly the keys of ``_HOMES``.
__all__ = [
    "AlertState",
    "ConfigError",
    "ConfigIssue",
    "DeliveryError",
    "Engine",
    "ExprError",
    "OmeClient",
    "OmealertError",
    "PollResult",
    "Rule",
    "Sample",
    "Scope",
    "Settings",
    "Severity",
    "SourceError",
    "SourceErrorKind",
    "StateError",
    "StateStore",
    "Target",
    "__version__",
    "load_config",
    "load_config_text",
    "poll_all",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'omealert' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
