"""The keys that make one watcher part of a fleet: Alertmanagers, shard, heartbeat.

Checked after the rest of the file (``load``), on the parts that validated: every
Alertmanager URL and CA file, the heartbeat's URL, and that a config which delivers to
Alertmanager (a rule's ``deliver``, or the watchdog) names at least one. What is wrong is
said without echoing a URL: one can hold credentials, a ping URL is a secret itself.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..rules import AlertmanagerSpec, HeartbeatSpec, ShardSpec
from .shard import parse_shard
from .urls import ca_file_path

if TYPE_CHECKING:
    from ..errors import ConfigIssue
    from .model import AlertmanagerModel
    from .parts import Parts
    from .yamlsource import KeyPath, YamlSource

__all__ = ["fleet_fields", "url_problem"]


def url_problem(url: str, what: str) -> str | None:
    """What keeps ``url`` from being an http(s) endpoint to post to, or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return f"{what} is not a valid URL"
    if any(ch.isspace() for ch in url):
        return f"{what} must not contain spaces"
    if parts.scheme not in ("http", "https"):
        return f"{what} must start with http:// or https://"
    if not parts.hostname:
        return f"{what} has no host"
    return None


def fleet_fields(
    src: YamlSource, parts: Parts, issues: list[ConfigIssue], base_dir: Path
) -> dict[str, Any]:
    """The ``Settings`` fields of the fleet keys; problems are appended to ``issues``."""

    def add(path: KeyPath, message: str) -> None:
        issues.append(src.issue(path, message))

    managers = tuple(_alertmanager(i, am, add, base_dir) for i, am in parts.alertmanagers)
    heartbeat = HeartbeatSpec()
    if parts.heartbeat is not None:
        hb = parts.heartbeat
        url = hb.url.get_secret_value() if hb.url is not None else None
        if url is not None:
            problem = url_problem(url, "heartbeat url")
            if problem:
                add(("heartbeat", "url"), problem)
        if hb.watchdog and not parts.alertmanagers:
            add(("heartbeat", "watchdog"), "the watchdog alert needs alertmanagers: to go to")
        heartbeat = HeartbeatSpec(
            watchdog=hb.watchdog, url=url or None, method=hb.method, timeout_s=hb.timeout
        )
    model = parts.fleet
    default_deliver = tuple(parts.defaults.deliver)
    wanting: list[KeyPath] = [("defaults", "deliver")] if "alertmanager" in default_deliver else []
    for section, items in (("rules", parts.rules), ("routes", parts.routes)):
        wanting += [
            (section, i, "deliver")
            for i, r in items
            if r.deliver is not None and "alertmanager" in r.deliver
        ]
    if wanting and not parts.alertmanagers and model is not None:
        add(wanting[0], "this delivers to alertmanager, but alertmanagers: lists none")
    shard = ShardSpec()
    if model is not None and model.shard is not None:
        index, count = parse_shard(model.shard)
        shard = ShardSpec(index, count, model.shard_by)
    elif model is not None:
        shard = ShardSpec(by=model.shard_by)
    return {
        "alertmanagers": managers,
        "resend_delay_s": model.resend_delay if model is not None else 60.0,
        "replica": (model.replica if model is not None else None) or socket.gethostname(),
        "shard": shard,
        "heartbeat": heartbeat,
        "default_deliver": default_deliver,
    }


def _alertmanager(i: int, am: AlertmanagerModel, add: Any, base_dir: Path) -> AlertmanagerSpec:
    problem = url_problem(am.url, "alertmanager url")
    parts = urlsplit(am.url) if problem is None else None
    if parts is not None and (parts.username is not None or parts.password is not None):
        problem = "alertmanager url must not contain a user or password; use basic_auth"
    if parts is not None and (parts.query or parts.fragment):
        problem = "alertmanager url must not have a query (?...) or fragment (#...)"
    if problem:
        add(("alertmanagers", i, "url"), problem)
    prefix = am.api_prefix.strip("/")
    if any(ch.isspace() or ch in "?#" for ch in prefix):
        add(("alertmanagers", i, "api_prefix"), "api_prefix must be a plain path, e.g. /am")
    base = am.url.rstrip("/") + (f"/{prefix}" if prefix else "")
    ca_file = None
    if am.ca_file is not None:
        ca_file, why = ca_file_path(base_dir, am.ca_file)
        if why:
            add(("alertmanagers", i, "ca_file"), why)
    auth = None
    if am.basic_auth is not None:
        auth = (am.basic_auth.username, am.basic_auth.password.get_secret_value())
    token = am.bearer_token.get_secret_value() if am.bearer_token is not None else None
    return AlertmanagerSpec(
        url=base,
        timeout_s=am.timeout,
        basic_auth=auth,
        bearer_token=token or None,
        verify_tls=am.verify_tls,
        ca_file=ca_file,
    )
