"""Config files as a careless or hostile operator writes them, fuzzed with hypothesis.

``test_config.py`` already feeds the loader random text (mostly YAML syntax errors) and
line-level mutations of the example file. These tests build *valid YAML* in the config's
own shape — every known key, at every level, holding values of every type, plus plausible
and broken durations, URLs, conditions, templates and globs — so the checks behind the
YAML parser are the ones exercised. The promise is the issue's: every input gives a valid
config or ``FILE:LINE:COL: message`` errors that point inside the file, one line each,
never a traceback; and a token written anywhere in the file is never echoed back.
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omealert.cli.main import main
from omealert.config.load import load_config_text
from omealert.errors import ConfigError
from omealert.rules import Settings

TOKEN = "ome-TOKEN-f5d3-fuzz-s3cr3t"

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "0", "30s", "-5s", "1h30m", "5", "500ms", "1.5m", "10 s", "99999999999d",
            "http://127.0.0.1:1", "https://127.0.0.1:1", "ftp://x", "http://u:p@127.0.0.1:1",
            "json://127.0.0.1/x", "mailto://127.0.0.1?to=a@example.com", "nope://x", "",
            "webrtc publishers > 500", "lastRecvTime stale > 30s", "rate(totalBytesIn, 1m) < 1",
            "absent", "streams < 1", "a >", "(((", "viewers > 1MB", "__import__('os')",
            "{{ value }}", "{{ nope }}", "{% for %}", "{{ ''.__class__ }}",
            "{{ value | duration }}",
            "*", "default/*", "a/b/c/d", "[", "stream=~x.*", "rule=", "critical", "warning",
            "info", "v1", "v2", "resolve", "keep", "fire", "stream", "app", "vhost", "server",
            "markdown", "html", "text", TOKEN, "${UNSET}", "${X:-30s}",
        ]
    ),
)  # fmt: skip
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)

SERVER_KEYS = ["name", "url", "access_token", "api_version", "timeout", "max_in_flight",
               "verify_tls", "ca_file", "acess_token"]  # fmt: skip
DEFAULT_KEYS = ["for", "keep_firing_for", "repeat_interval", "send_resolved", "severity",
                "channels", "on_missing", "group_by", "group_wait"]  # fmt: skip
CHANNEL_KEYS = ["urls", "title", "body", "format", "send_resolved"]
ROUTE_KEYS = ["matchers", "severity", "channels"]
INHIBIT_KEYS = ["source", "target", "equal"]
API_KEYS = ["enabled", "for", "severity", "channels", "summary", "repeat_interval",
            "send_resolved"]  # fmt: skip
RULE_KEYS = ["name", "scope", "match", "when", "resolve_when", "for", "keep_firing_for",
             "severity", "labels", "summary", "description", "channels", "repeat_interval",
             "send_resolved", "on_missing", "group_by", "group_wait", "servers",
             "sevrity"]  # fmt: skip


def _section(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys), _VALUES, max_size=len(keys))


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    """A config-shaped mapping: real sections and keys, values of any type and sense."""
    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        doc["servers"] = draw(st.lists(_section(SERVER_KEYS), max_size=2))
    for key in ("interval", "outage_tolerance", "delivery_max_age", "state_retention"):
        if draw(st.booleans()):
            doc[key] = draw(_VALUES)
    if draw(st.booleans()):
        doc["defaults"] = draw(_section(DEFAULT_KEYS))
    if draw(st.booleans()):
        doc["channels"] = draw(
            st.dictionaries(st.sampled_from(["ops", "mail", TOKEN]), _section(CHANNEL_KEYS))
        )
    if draw(st.booleans()):
        doc["routes"] = draw(st.lists(_section(ROUTE_KEYS), max_size=2))
    if draw(st.booleans()):
        doc["inhibit"] = draw(st.lists(_section(INHIBIT_KEYS), max_size=2))
    if draw(st.booleans()):
        doc["ome_api_down"] = draw(_section(API_KEYS))
    if draw(st.booleans()):
        doc["rules"] = draw(st.lists(_section(RULE_KEYS), max_size=3))
    if draw(st.booleans()):
        doc[draw(st.sampled_from(["x-anchor", "sevrity", "rule"]))] = draw(_VALUES)
    # The token is always configured as one, and may also sit anywhere else.
    servers = doc.get("servers")
    if isinstance(servers, list) and servers:
        servers[0]["access_token"] = TOKEN
    else:
        doc["servers"] = [{"name": "o", "url": "http://127.0.0.1:1", "access_token": TOKEN}]
    return doc


def _dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1_000_000)


def check_outcome(text: str, name: str, issues_or_settings: Settings | ConfigError) -> None:
    """Settings, or issues that each point at a real place in ``text`` on one clean line."""
    if isinstance(issues_or_settings, Settings):
        return
    lines = text.split("\n")
    assert issues_or_settings.issues
    for issue in issues_or_settings.issues:
        assert issue.file == name
        assert 1 <= issue.line <= len(lines) + 1, (issue, len(lines))
        if issue.line <= len(lines):
            assert 1 <= issue.col <= len(lines[issue.line - 1]) + 1, issue
        assert issue.message and issue.message.isprintable(), issue
        assert TOKEN not in str(issue), issue


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_config_shaped_yaml_gives_settings_or_located_errors(doc: dict[str, Any]) -> None:
    """Any config-shaped YAML loads, or fails with FILE:LINE:COL issues inside the file that
    never quote the access token, wherever else it was pasted."""
    text = _dump(doc)
    try:
        outcome: Settings | ConfigError = load_config_text(text, "fuzz.yaml", env={"X": "1m"})
    except ConfigError as exc:
        outcome = exc
    check_outcome(text, "fuzz.yaml", outcome)


_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): \S.*$")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(configs().map(_dump), st.text(max_size=200)))
def test_validate_prints_only_located_errors(text: str) -> None:
    """``omealert validate`` on any file exits 0 with its summary or 1 with nothing but
    ``FILE:LINE:COL: message`` lines; a traceback never escapes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cfg.yaml"
        path.write_text(text, encoding="utf-8")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["validate", str(path)], out=out)
    assert code in (0, 1)
    if code == 0:
        assert re.fullmatch(r"1 file\(s\) valid, \d+ rule\(s\)\n", out.getvalue())
        assert err.getvalue() == ""
        return
    assert out.getvalue() == ""
    lines = err.getvalue().splitlines()
    assert lines
    for line in lines:
        m = _LINE.match(line)
        assert m is not None and m["file"] == str(path), line
        assert TOKEN not in line
