"""Loading the YAML config: a file in, ``Settings`` out, or every problem in it at once.

``load_config`` reads a file, substitutes ``${VAR}`` from the environment, validates the
shape with the models of ``config/model.py``, then compiles every condition, template and
apprise URL and cross-checks names (``config/check.py``). Every problem found on the way is
collected and raised as one ``ConfigError`` whose issues point at a FILE:LINE:COL, so an
operator fixes a broken file in one pass instead of one error per run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import ConfigError, ConfigIssue
from ..rules import Settings
from .check import build_settings
from .fleet import fleet_fields
from .lifecycle import apply_lifecycle
from .messages import translate
from .model import (
    ConfigModel,
)
from .parts import salvage
from .yamlsource import parse_yaml

__all__ = ["load_config", "load_config_text"]


# -- loading -------------------------------------------------------------------------------


def load_config(
    path: str | Path, env: Mapping[str, str] | None = None, *, check_urls: bool = True
) -> Settings:
    """Read and validate the config at ``path``; ``env`` defaults to ``os.environ``.

    Relative paths inside the file (``ca_file``) are taken from the file's directory.
    ``check_urls=False`` skips the apprise URL checks, for a run that sends nothing:
    loading apprise's ~100 plugins is most of a one-shot check's start-up time.
    """
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError([ConfigIssue(name, 1, 1, f"cannot read config file: {reason}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start].decode("utf-8", "replace")
        line = before.count("\n") + 1
        col = len(before) - (before.rfind("\n") + 1) + 1
        raise ConfigError([ConfigIssue(name, line, col, "the file is not valid UTF-8")]) from None
    return load_config_text(text, name, env, base_dir=Path(path).parent, check_urls=check_urls)


def load_config_text(
    text: str,
    filename: str,
    env: Mapping[str, str] | None = None,
    *,
    base_dir: Path | None = None,
    check_urls: bool = True,
) -> Settings:
    """Validate config ``text`` as if read from ``filename``; raises one ``ConfigError``
    listing every problem. ``base_dir`` resolves relative paths (default: the file's dir)."""
    src = parse_yaml(text, filename, os.environ if env is None else env)
    if src.fatal:
        raise ConfigError(src.issues)
    data = src.data
    if isinstance(data, dict):  # x-* keys hold YAML anchors to reuse, as in compose files
        data = {k: v for k, v in data.items() if not k.startswith("x-")}
    issues: list[ConfigIssue] = []
    try:
        model: ConfigModel | None = ConfigModel.model_validate(data)
    except ValidationError as exc:
        model = None
        issues += [translate(src, err, ConfigModel) for err in exc.errors()]
    parts = salvage(data, model)
    settings = build_settings(
        src,
        parts,
        issues,
        base_dir=Path(filename).parent if base_dir is None else base_dir,
        check_urls=check_urls,
    )
    here = Path(filename).parent if base_dir is None else base_dir
    fleet = fleet_fields(src, parts, issues, here)
    if settings is not None:
        settings = replace(settings, **fleet)
    settings = apply_lifecycle(src, parts, issues, settings)  # flapping, depends_on
    issues = src.issues + [i for i in issues if not src.is_tainted(i)]
    if issues or settings is None:
        raise ConfigError(_redact(_unique(issues), _secrets_in(data)))
    return settings


#: Shorter fragments of a URL are words (``hooks``, ``services``), not secrets worth masking.
_MIN_SECRET = 8


def _secrets_in(data: Any) -> list[str]:
    """Every access token and secret-looking part of a channel URL in the file, longest first.

    Keys are matched loosely (``acess_token`` is still a token) and values of any shape are
    searched, because a file with errors is exactly the one whose values sit in odd places.
    """
    found: set[str] = set()

    def strings(value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, list):
            return [v for v in value if isinstance(v, str)]
        return []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                name = str(key).lower()
                if "token" in name or "password" in name or "secret" in name:
                    found.update(strings(value))
                elif name in ("url", "urls"):
                    for url in strings(value):
                        found.update(_url_secrets(url))
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    return sorted((s for s in found if len(s) >= _MIN_SECRET), key=len, reverse=True)


def _url_secrets(url: str) -> list[str]:
    from ..notify.scrub import url_secrets as parts  # no apprise import: the parsing is ours

    return parts(url)


def _redact(issues: list[ConfigIssue], secrets: list[str]) -> list[ConfigIssue]:
    """Mask the secrets in messages that quote a value: a token pasted under ``timeout`` or
    into a condition is still a token, and an error message is printed and logged."""
    if not secrets:
        return issues
    out = []
    for issue in issues:
        message = issue.message
        for secret in secrets:
            message = message.replace(secret, "***")
        out.append(issue if message == issue.message else replace(issue, message=message))
    return out


def _unique(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    """Each thing said once (an aliased node is checked once per use), and on one line:
    a quoted key or name can hold any character, and an issue must stay one line."""
    out = []
    for issue in dict.fromkeys(issues):
        if not issue.message.isprintable():
            message = "".join(
                ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                for ch in issue.message
            )
            issue = replace(issue, message=message)
        out.append(issue)
    return out
