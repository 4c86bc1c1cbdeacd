"""Config loading: every mistake in a file is reported at once, at its FILE:LINE:COL."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omealert.config.load import load_config, load_config_text
from omealert.config.yamlsource import parse_yaml
from omealert.errors import ConfigError
from omealert.model import Scope, Severity
from omealert.rules import Matcher, MessageFormat, OnMissing, Settings, TargetPattern

DATA = Path(__file__).parents[1] / "data" / "config"
EXAMPLE = Path(__file__).parents[2] / "rules.example.yaml"

SERVER = "servers:\n  - name: origin-1\n    url: http://127.0.0.1:8081\n"


def errors_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    """The issue lines ``load_config_text`` raises for ``text`` (fails if it loads)."""
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "t.yaml", {} if env is None else env)
    return [str(i) for i in info.value.issues]


def load(text: str, env: dict[str, str] | None = None) -> Settings:
    return load_config_text(text, "t.yaml", {} if env is None else env)


# -- fixture files ---------------------------------------------------------------------------

BAD_FILES: dict[str, list[str]] = {
    "syntax.bad.yaml": [
        "syntax.bad.yaml:7:1: invalid YAML: while scanning a quoted scalar at 6:11, "
        "found unexpected end of stream",
    ],
    "unknown-keys.bad.yaml": [
        "unknown-keys.bad.yaml:4:5: unknown key 'timout' — did you mean 'timeout'?",
        "unknown-keys.bad.yaml:5:1: unknown key 'rule' — did you mean 'rules'?",
        "unknown-keys.bad.yaml:8:3: unknown key 'repeat' (expected one of: for, "
        "keep_firing_for, repeat_interval, send_resolved, severity, channels, on_missing, "
        "group_by, group_wait, deliver, flapping)",
        "unknown-keys.bad.yaml:12:5: unknown key 'sevrity' — did you mean 'severity'?",
        "unknown-keys.bad.yaml:13:5: unknown key 'for_' — did you mean 'for'?",
        "unknown-keys.bad.yaml:14:5: unknown key 'frobnicate' (expected one of: name, scope, "
        "match, when, resolve_when, for, keep_firing_for, repeat_interval, send_resolved, "
        "severity, labels, summary, description, channels, on_missing, group_by, group_wait, "
        "servers, mute_time_intervals, active_time_intervals, deliver, flapping, "
        "dependency_cause)",
    ],
    "duplicates.bad.yaml": [
        "duplicates.bad.yaml:4:11: duplicate server name 'origin-1' (first used at line 2)",
        "duplicates.bad.yaml:9:11: duplicate rule name 'viewers' (first used at line 7)",
        "duplicates.bad.yaml:12:5: duplicate key 'severity' (first set at line 11)",
    ],
    "channels.bad.yaml": [
        "channels.bad.yaml:5:19: unknown channel 'pagr' — did you mean 'pager'?",
        "channels.bad.yaml:10:9: channel 'ops' urls[1]: apprise cannot use this URL: "
        "unknown service scheme 'bogus'",
        "channels.bad.yaml:11:13: invalid title template: unexpected '}'",
        "channels.bad.yaml:16:7: invalid body template: No filter named 'nosuchfilter'.",
        "channels.bad.yaml:20:23: unknown channel 'sms' (defined channels: ops, pager)",
        "channels.bad.yaml:22:14: unknown channel 'opz' — did you mean 'ops'?",
        "channels.bad.yaml:23:13: invalid summary template: unexpected end of template, "
        "expected 'end of print statement'.",
        "channels.bad.yaml:27:21: unknown channel 'slack' (defined channels: ops, pager)",
        "channels.bad.yaml:28:15: invalid summary template: unknown variable(s) viewers; "
        "available: alerts, also_affects, count, description, duration, fired_at, firing_count, "
        "labels, "
        "now, reason, resolved_at, resolved_count, rule, sample, severity, silenced, since, "
        "status, summary, target, value",
        "channels.bad.yaml:29:19: invalid description template: Unexpected end of template. "
        "Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. "
        "The innermost block that needs to be closed is 'if'.",
    ],
    "servers.bad.yaml": [
        "servers.bad.yaml:3:10: server url must start with http:// or https://",
        "servers.bad.yaml:5:10: server url has no host",
        "servers.bad.yaml:7:10: server url must not contain a user or password; use access_token",
        "servers.bad.yaml:9:10: server url is not a valid URL",
        "servers.bad.yaml:12:20: max_in_flight must be at least 1",
        "servers.bad.yaml:13:14: timeout must be longer than 0s",
        "servers.bad.yaml:14:14: ca_file 'certs/missing.pem' does not exist",
        "servers.bad.yaml:17:18: invalid api_version 'v3' (expected one of: v1, v2)",
        "servers.bad.yaml:18:11: invalid server name 'has spaces': use only letters, digits, '_.-'",
        "servers.bad.yaml:23:23: unknown server 'nosuch' (servers: ftp-server, no-host, "
        "with-user, bad-port, limits, future, has spaces)",
    ],
    "conditions.bad.yaml": [
        "conditions.bad.yaml:6:30: expected a value after '>', not '>'",
        "conditions.bad.yaml:8:40: unknown field 'nosuchfield'",
        "conditions.bad.yaml:10:25: use 'and' instead of '&'",
        "conditions.bad.yaml:14:11: unknown field 'bitrat'; did you mean 'bitrate'?",
        "conditions.bad.yaml:18:24: expected a value after '('",
        "conditions.bad.yaml:21:28: expected a value after '<'",
        "conditions.bad.yaml:24:11: providers.connections.rtmp exists only on OME Enterprise "
        "/v2 stats; server 'origin-1' uses api_version v1",
    ],
    "match.bad.yaml": [
        "match.bad.yaml:6:12: match 'default/*' has 2 segments; scope stream wants 3 "
        "(vhost/app/stream)",
        "match.bad.yaml:10:24: match 'default/live' has 2 segments; scope vhost wants 1 (vhost)",
        "match.bad.yaml:14:12: scope server takes no match: each server is one target",
        "match.bad.yaml:18:12: match 'default/' has an empty segment",
        "match.bad.yaml:21:32: match 'default/live/cam-*' has wildcards, but absent needs "
        "literal names (it fires for each name the server does not list)",
        "match.bad.yaml:24:11: absent needs match: with literal names (it fires for each "
        "named stream that the server does not list)",
    ],
    "durations.bad.yaml": [
        "durations.bad.yaml:4:14: duration 5 has no unit: write 5s, 5m or 5h",
        "durations.bad.yaml:5:11: duration 10 has no unit: write 10s, 10m or 10h",
        "durations.bad.yaml:8:20: invalid duration '1 hour': use a number with a unit, "
        "e.g. 500ms, 30s, 5m, 1h, 1h30m",
        "durations.bad.yaml:12:10: duration 1.5 has no unit: write 1.5s, 1.5m or 1.5h",
        "durations.bad.yaml:13:22: expected a duration such as 30s or 5m, got true/false",
        "durations.bad.yaml:14:17: expected a duration such as 30s or 5m, got a list",
    ],
    "routing.bad.yaml": [
        "routing.bad.yaml:8:5: a route needs matchers:, severity: or both",
        "routing.bad.yaml:9:37: invalid regex in matcher 'app=~live(': missing ): live(",
        "routing.bad.yaml:9:51: invalid matcher 'just-text': expected label=value, "
        "label!=value, label=~regex or label!~regex",
        "routing.bad.yaml:11:15: invalid severity 'fatal' (expected one of: info, warning, "
        "critical)",
        "routing.bad.yaml:12:15: a route needs at least one channel",
        "routing.bad.yaml:14:13: an inhibit rule needs at least one source matcher",
        "routing.bad.yaml:16:21: invalid label name 'not a label': "
        "use only letters, digits and '_'",
        "routing.bad.yaml:17:14: invalid regex in matcher 'rule=~*': "
        "no argument for repetition operator: *",
        "routing.bad.yaml:18:14: invalid matcher 'x': expected label=value, label!=value, "
        "label=~regex or label!~regex",
        # RE2 syntax, as Alertmanager's: what needs backtracking is refused where it stands.
        "routing.bad.yaml:19:14: invalid regex in matcher 'stream=~(cam)\\\\1': "
        "invalid escape sequence: \\1 (RE2 syntax: no backreferences, lookahead or lookbehind)",
        "routing.bad.yaml:21:9: invalid regex in matcher 'app=~(?!test).*': "
        "invalid perl operator: (?! (RE2 syntax: no backreferences, lookahead or lookbehind)",
    ],
    "types.bad.yaml": [
        "types.bad.yaml:2:3: expected a list of servers, got a mapping",
        "types.bad.yaml:4:11: expected a duration such as 30s or 5m, got a list",
        "types.bad.yaml:5:11: expected a mapping of rule defaults, got a list",
        "types.bad.yaml:7:3: expected a mapping of channel names to channels, got a list",
        "types.bad.yaml:9:3: expected a list of rules, got a mapping",
        "types.bad.yaml:10:15: expected a mapping of settings for the ome-api-down alert, "
        "got true/false",
    ],
    "items.bad.yaml": [
        "items.bad.yaml:3:10: expected text, got a number (put it in quotes)",
        "items.bad.yaml:4:19: expected text, got a number (put it in quotes)",
        "items.bad.yaml:5:17: expected true or false, got text",
        "items.bad.yaml:7:5: expected a rule: a mapping with name: and when:, got text",
        "items.bad.yaml:10:13: expected a mapping of label names to values, got a list",
        "items.bad.yaml:11:15: expected a list of channel names, got text",
        "items.bad.yaml:12:11: invalid rule name 'Upper_Case': use only a-z, 0-9, '_' and '-'",
        "items.bad.yaml:13:11: expected a condition such as 'webrtc publishers > 500', "
        "got a number (put it in quotes)",
        "items.bad.yaml:14:15: invalid severity 'critcal' — did you mean 'critical'?",
        "items.bad.yaml:15:12: invalid scope 'street' — did you mean 'stream'?",
        "items.bad.yaml:16:12: expected a glob or a list of globs, got a mapping",
        "items.bad.yaml:19:14: invalid label name 'bad-label': use only letters, digits and '_'",
    ],
    "env.bad.yaml": [
        "env.bad.yaml:4:10: environment variable 'OME_URL' is not set "
        "(write ${OME_URL:-default} to give a default)",
        "env.bad.yaml:5:26: environment variable 'OME_TOKEN' is not set "
        "(write ${OME_TOKEN:-default} to give a default)",
        "env.bad.yaml:9:13: environment variable 'SLACK_URL' is not set "
        "(write ${SLACK_URL:-default} to give a default)",
        "env.bad.yaml:13:34: malformed ${...}: write ${NAME} or ${NAME:-default}",
    ],
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_reports_every_issue(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each bad fixture raises one ConfigError listing exactly its issues, in file order."""
    monkeypatch.chdir(DATA)
    with pytest.raises(ConfigError) as info:
        load_config(name, env={})
    assert [str(i) for i in info.value.issues] == BAD_FILES[name]
    assert str(info.value) == "\n".join(BAD_FILES[name])


def test_every_bad_fixture_has_expectations() -> None:
    """A new *.bad.yaml file cannot be added without its expected issues."""
    assert sorted(p.name for p in DATA.glob("*.bad.yaml")) == sorted(BAD_FILES)


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.good.yaml")))
def test_good_files_load(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every good fixture loads with an empty environment."""
    monkeypatch.chdir(DATA)
    assert load_config(name, env={}).path == name


def test_minimal_file_gets_documented_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file with only a server gets every documented default."""
    monkeypatch.chdir(DATA)
    s = load_config("minimal.good.yaml", env={})
    (server,) = s.servers
    assert server.url == "http://127.0.0.1:8081"  # one trailing slash stripped
    assert (server.api_version, server.timeout_s, server.max_in_flight) == ("v1", 5.0, 16)
    assert (server.verify_tls, server.ca_file, server.access_token) == (True, None, None)
    assert (s.interval_s, s.outage_tolerance_s, s.delivery_max_age_s) == (10.0, 3600.0, 86400.0)
    assert (s.rules, s.channels, s.routes, s.inhibit, s.default_channels) == ((), {}, (), (), ())
    assert s.api_down.enabled and s.api_down.severity is Severity.CRITICAL
    assert s.api_down.repeat_interval_s == 3600.0


def test_rules_inherit_defaults_unless_they_set_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset rule keys come from defaults:, set ones (even to empty) win."""
    monkeypatch.chdir(DATA)
    s = load_config("inherit.good.yaml", env={})
    inherited, overridden, enterprise = s.rules
    assert inherited.scope is Scope.STREAM and inherited.patterns == ()
    assert (inherited.for_s, inherited.keep_firing_for_s, inherited.repeat_interval_s) == (
        30.0,
        10.0,
        4 * 3600.0,
    )
    assert (inherited.send_resolved, inherited.severity) == (False, Severity.INFO)
    assert (inherited.channels, inherited.group_by, inherited.group_wait_s) == (
        ("ops",),
        ("app",),
        5.0,
    )
    assert inherited.on_missing is OnMissing.KEEP and inherited.servers == ()
    assert (overridden.for_s, overridden.keep_firing_for_s, overridden.repeat_interval_s) == (
        0.0,
        60.0,
        900.0,
    )
    assert (overridden.send_resolved, overridden.severity) == (True, Severity.CRITICAL)
    assert (overridden.channels, overridden.group_by, overridden.group_wait_s) == ((), (), 0.0)
    assert overridden.on_missing is OnMissing.FIRE and overridden.servers == ("origin-1",)
    assert overridden.patterns == (TargetPattern(("default",)), TargetPattern(("staging-*",)))
    assert overridden.labels == {"team": "video", "priority": "1", "paging": "true"}
    assert overridden.resolve_when is not None
    assert overridden.resolve_when.text == "totalConnections < 80"
    assert enterprise.when.fields == frozenset({"providers.connections.rtmp"})
    assert s.api_down.channels == ("ops",) and not s.api_down.enabled
    assert (s.interval_s, s.outage_tolerance_s, s.delivery_max_age_s) == (90.0, 0.0, 7200.0)
    assert s.channels["pager"].format is MessageFormat.HTML
    assert s.channels["pager"].send_resolved is False
    origin = s.servers[0]
    assert (origin.timeout_s, origin.max_in_flight, origin.verify_tls) == (2.5, 4, False)
    assert origin.access_token == "s3cret-token"
    assert origin.ca_file == str(DATA / "certs" / "ca.pem")


def test_anchors_and_merge_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Merge keys fill in what an item does not set itself; x-* top-level keys are ignored."""
    monkeypatch.chdir(DATA)
    s = load_config("anchors.good.yaml", env={})
    assert [(v.name, v.timeout_s) for v in s.servers] == [("origin-1", 3.0), ("origin-2", 1.0)]
    assert (s.rules[0].for_s, s.rules[0].severity) == (60.0, Severity.CRITICAL)


# -- the example file ------------------------------------------------------------------------


def test_example_file_loads_with_empty_environment() -> None:
    """rules.example.yaml is valid as shipped, with every variable at its default."""
    s = load_config(EXAMPLE, env={})
    rules = {r.name: r for r in s.rules}
    assert (
        len(rules) == len(s.rules) == 22
    )  # 10, 4 push/record, 2 queue, relay-broken, 4 baseline, picture
    push = rules["push-not-pushing"]
    assert (push.scope, push.when.fields) == (Scope.PUSH, frozenset({"state", "stream_live"}))
    assert rules["record-not-growing"].scope is Scope.RECORD
    (server,) = s.servers
    assert (server.name, server.url, server.access_token) == (
        "origin-1",
        "http://127.0.0.1:8081",
        "ome-access-token",
    )
    assert s.channels["ops"].urls == ("json://127.0.0.1:9099/omealert",)
    assert s.channels["oncall"].urls[0].startswith("mailto://127.0.0.1:2525?")
    viewers = rules["webrtc-viewers-high"]
    assert viewers.when_text == "webrtc publishers > 500"
    assert viewers.resolve_when is not None
    assert viewers.resolve_when.text == "webrtc publishers < 450"
    assert (viewers.for_s, viewers.severity, viewers.channels) == (
        60.0,
        Severity.CRITICAL,
        ("ops",),
    )
    assert viewers.patterns == (TargetPattern(("default", "*", "*")),)
    assert rules["ingest-stalled"].when.fields == frozenset({"providers.lastRecvTime"})
    gone = rules["main-stream-gone"]
    assert gone.is_absent and gone.patterns == (TargetPattern(("default", "live", "main")),)
    assert rules["app-empty"].scope is Scope.APP
    assert rules["server-viewers-high"].servers == ("origin-1",)
    assert rules["input-throughput-low"].channels == ()
    assert rules["throughput-collapse"].group_by == ("app",)
    assert s.routes[0].severity is Severity.CRITICAL and s.routes[0].channels == ("oncall",)
    assert s.inhibit[0].source == (Matcher("rule", "=", "ome-api-down"),)
    assert s.inhibit[0].equal == ("server",)
    assert (s.api_down.for_s, s.api_down.channels) == (30.0, ("ops",))


def test_example_file_takes_urls_and_token_from_environment() -> None:
    """Set variables replace the example's defaults."""
    env = {
        "OME_API_URL": "https://ome.example.internal:8443/",
        "OME_ACCESS_TOKEN": "from-env",
        "OMEALERT_SLACK_URL": "json://127.0.0.1:1234/slack",
    }
    s = load_config(EXAMPLE, env=env)
    assert s.servers[0].url == "https://ome.example.internal:8443"
    assert s.servers[0].access_token == "from-env"
    assert s.channels["ops"].urls == ("json://127.0.0.1:1234/slack",)


# -- environment -----------------------------------------------------------------------------


def test_env_defaults_values_and_empty_variables() -> None:
    """${VAR} takes the environment; ${VAR:-d} takes d when VAR is unset or empty."""
    text = (
        "servers:\n  - name: ${NAME:-origin-1}\n    url: ${URL}\n"
        "    access_token: ${TOKEN:-fallback}\n"
    )
    s = load(text, {"URL": "http://127.0.0.1:9", "TOKEN": ""})
    assert (s.servers[0].name, s.servers[0].url) == ("origin-1", "http://127.0.0.1:9")
    assert s.servers[0].access_token == "fallback"


def test_state_retention_defaults_to_30d_and_refuses_less_than_an_hour() -> None:
    """``state_retention`` is 30 days unless set; under an hour is a located error, not a wipe."""
    assert load(SERVER).state_retention_s == 30 * 86400.0
    assert load(SERVER + "state_retention: 90d\n").state_retention_s == 90 * 86400.0
    assert errors_of(SERVER + "state_retention: 10m\n") == [
        "t.yaml:4:18: state_retention must be at least 1h (got 10m 0s)"
    ]
    assert errors_of(SERVER + "state_retention: forever\n") == [
        "t.yaml:4:18: invalid duration 'forever': use a number with a unit, e.g. 500ms, 30s, "
        "5m, 1h, 1h30m"
    ]


def test_env_value_in_plain_scalar_is_typed_like_written_text() -> None:
    """``max_in_flight: ${N:-16}`` is the number 16 and ``${V:-false}`` the boolean."""
    text = SERVER + "    max_in_flight: ${N:-16}\n    verify_tls: ${V:-false}\n"
    s = load(text)
    assert (s.servers[0].max_in_flight, s.servers[0].verify_tls) == (16, False)
    assert load(text, {"N": "3", "V": "true"}).servers[0].max_in_flight == 3


def test_env_is_not_read_in_comments_or_keys_and_can_be_escaped() -> None:
    """Comments and keys are left alone; $${ writes a literal ${."""
    text = SERVER + "# ${IN_COMMENT}\nrules:\n  - name: r\n    when: viewers > 1\n"
    text += "    summary: 'costs $${HOME}'\n"
    s = load(text)
    assert s.rules[0].summary == "costs ${HOME}"
    assert errors_of(SERVER + "${KEY}: 1\n") == ["t.yaml:4:1: unknown key '${KEY}' (expected "
        "one of: servers, interval, defaults, channels, rules, routes, inhibit, ome_api_down, "
        "ome_events, outage_tolerance, delivery_max_age, state_retention, time_intervals, "
        "notify_acks, health, listen_auth, stream_report, alertmanagers, resend_delay, "
        "replica, shard, shard_by, heartbeat, dependency_grace)"]  # fmt: skip


def test_env_none_reads_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an env argument the process environment is used."""
    monkeypatch.setenv("OMEALERT_TEST_URL", "http://127.0.0.1:7")
    text = "servers:\n  - name: a\n    url: ${OMEALERT_TEST_URL}\n"
    assert load_config_text(text, "t.yaml").servers[0].url == "http://127.0.0.1:7"


def test_missing_variable_hides_the_errors_it_causes() -> None:
    """An unset variable is one error, not also "empty URL" and "not an apprise URL"."""
    text = SERVER + 'channels:\n  ops:\n    urls: ["${HOOK}"]\n'
    assert errors_of(text) == [
        "t.yaml:6:13: environment variable 'HOOK' is not set "
        "(write ${HOOK:-default} to give a default)"
    ]


# -- secrets ---------------------------------------------------------------------------------


def test_secrets_never_appear_in_errors_or_reprs() -> None:
    """Tokens and channel URLs stay out of every message and of the loaded objects' repr."""
    text = (
        "servers:\n  - name: a\n    url: http://127.0.0.1:1\n    access_token: TOKEN-111\n"
        "  - name: b\n    url: http://user:PASS-222@127.0.0.1:1\n"
        "    access_token: [TOKEN-333]\n"
        "channels:\n  ops:\n    urls: ['bogus://u:PASS-444@h/PATH-555', 'json://PASS-666']\n"
        "  two:\n    urls: [12345678]\n"
    )
    message = "\n".join(errors_of(text))
    assert "urls[0]" in message and "access_token" not in message.split(": ", 1)[0]
    for secret in ("TOKEN-111", "PASS-222", "TOKEN-333", "PASS-444", "PATH-555", "PASS-666"):
        assert secret not in message
    assert "12345678" not in message
    ok = load("servers:\n  - {name: a, url: 'http://127.0.0.1:1', access_token: TOKEN-777}\n"
              "channels:\n  c:\n    urls: ['json://127.0.0.1:1/HOOK-888']\n")  # fmt: skip
    assert "TOKEN-777" not in repr(ok) and "HOOK-888" not in repr(ok)


# -- structure and YAML edge cases -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "t.yaml:1:1: the file is empty: a config needs at least a servers: list"),
        ("# only a comment\n", "t.yaml:1:1: the file is empty: a config needs at least a "
         "servers: list"),
        ("- a\n", "t.yaml:1:1: expected a mapping of settings (servers:, rules:, channels:, "
         "...), got a list"),
        ("just text", "t.yaml:1:1: expected a mapping of settings (servers:, rules:, "
         "channels:, ...), got text"),
        ("rules: []\n", "t.yaml:1:1: missing required key 'servers'"),
        ("servers: []\n", "t.yaml:1:10: list at least one server to poll"),
        ("servers:\n", "t.yaml:1:9: list at least one server to poll"),
        ("servers: x\n", "t.yaml:1:10: expected a list of servers, got text"),
        ("servers:\n  - name: a\n", "t.yaml:2:5: missing required key 'url'"),
        ("a: 1\n---\nb: 2\n", "t.yaml:2:1: invalid YAML: expected a single document in the "
         "stream at 1:1, but found another document"),
        ("a: b: c\n", "t.yaml:1:5: invalid YAML: mapping values are not allowed here"),
        ("a:\tb\x07\n", "t.yaml:1:5: invalid YAML: character U+0007 is not allowed in YAML"),
        (SERVER + "x: !!python/object:os.system 1\n",
         "t.yaml:4:4: unsupported YAML tag 'tag:yaml.org,2002:python/object:os.system'"),
        (SERVER + "interval: !!int ten\n", "t.yaml:4:11: this value is not a valid !!int"),
        (SERVER + "? [a, b]\n: c\n", "t.yaml:4:3: a key must be plain text, not a list or "
         "mapping"),
        (SERVER + "rules: &r [*r]\n", "t.yaml:4:8: an alias refers to the node that contains it"),
        ("[" * 1000, "t.yaml:1:1: invalid YAML: nesting is too deep"),
    ],
)  # fmt: skip
def test_structural_errors(text: str, expected: str) -> None:
    """Malformed files give one kind, specific message and never a traceback."""
    assert expected in errors_of(text)


def test_alias_bomb_is_refused_quickly() -> None:
    """A billion-laughs document is cut off instead of expanding forever."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    errors = errors_of("\n".join(lines) + "\n")
    assert errors[0].endswith("document expands to more than 100000 nodes")


def test_unreadable_files(tmp_path: Path) -> None:
    """A missing file or one that is not UTF-8 is a ConfigError with a position."""
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml", env={})
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}:1:1: cannot read config file: " + (
        "No such file or directory"
    )
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"servers:\n  - name: caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad, env={})
    assert str(info.value) == f"{bad}:2:14: the file is not valid UTF-8"


def test_null_sections_are_empty() -> None:
    """``rules:`` with every rule commented out is an empty rule list, not an error."""
    s = load(SERVER + "rules:\n#  - name: off\nroutes:\ninhibit:\nchannels:\n")
    assert (s.rules, s.routes, s.inhibit, s.channels) == ((), (), (), {})


def test_rule_without_any_channel_is_fine() -> None:
    """A rule with no channel and no route loads silently (check just prints it)."""
    s = load(SERVER + "rules:\n  - name: quiet\n    when: viewers > 1\n")
    assert s.rules[0].channels == () and s.default_channels == ()


def test_builtin_rule_name_is_reserved() -> None:
    """``ome-api-down`` is the built-in alert and cannot be a rule's name."""
    assert errors_of(SERVER + "rules:\n  - name: ome-api-down\n    when: viewers > 1\n") == [
        "t.yaml:5:11: rule name 'ome-api-down' is reserved for the built-in alert; "
        "configure it under ome_api_down:"
    ]


def test_v2_field_error_names_every_v1_server_and_respects_servers_key() -> None:
    """v2-only fields fail for v1 servers the rule applies to, at the field inside `when`."""
    servers = (
        "servers:\n  - {name: a, url: 'http://127.0.0.1:1'}\n"
        "  - {name: b, url: 'http://127.0.0.1:2'}\n"
        "  - {name: c, url: 'http://127.0.0.1:3', api_version: v2}\n"
    )
    rule = "rules:\n  - name: r\n    scope: server\n    when: viewers > 1 or rtmp > 1\n"
    assert errors_of(servers + rule) == [
        "t.yaml:8:26: providers.connections.rtmp exists only on OME Enterprise /v2 stats; "
        "servers 'a', 'b' use api_version v1"
    ]
    assert load(servers + rule + "    servers: [c]\n").rules[0].servers == ("c",)


def test_condition_errors_in_quoted_scalars_with_escapes() -> None:
    """Escapes shift the value against the source; the column still lands on the field."""
    text = SERVER + 'rules:\n  - name: r\n    when: "sourceType == \\"Rtmp\\" and nope > 1"\n'
    assert errors_of(text) == ["t.yaml:6:39: unknown field 'nope'"]


def test_many_kinds_of_errors_are_reported_together() -> None:
    """YAML, environment, shape and cross-check problems all come out of one load."""
    text = (
        "servers:\n  - name: a\n    url: ${URL}\n    name: b\n"
        "rules:\n  - name: r\n    when: viewers >\n    sevrity: info\n"
        "    channels: [nope]\n"
    )
    assert errors_of(text) == [
        "t.yaml:3:10: environment variable 'URL' is not set (write ${URL:-default} "
        "to give a default)",
        "t.yaml:4:5: duplicate key 'name' (first set at line 2)",
        "t.yaml:7:20: expected a value after '>'",
        "t.yaml:8:5: unknown key 'sevrity' — did you mean 'severity'?",
        "t.yaml:9:16: unknown channel 'nope' (no channels are defined)",
    ]


def test_unknown_keys_are_suggested_in_every_section() -> None:
    """Each section's typo is matched against that section's own keys."""
    text = (
        "servers:\n  - {name: a, url: 'http://h', acess_token: x}\n"
        "channels:\n  ops: {urls: ['json://h'], titel: x}\n"
        "routes:\n  - {matcher: [a=b], channels: [ops]}\n"
        "inhibit:\n  - {source: [a=b], target: [a=c], equals: [x]}\n"
        "ome_api_down: {enable: false}\n"
        "defaults: {channel: [ops]}\n"
        "rules:\n  - {name: r, when: viewers > 1, label: {a: b}}\n"
    )
    assert errors_of(text) == [
        "t.yaml:2:32: unknown key 'acess_token' — did you mean 'access_token'?",
        "t.yaml:4:29: unknown key 'titel' — did you mean 'title'?",
        "t.yaml:6:6: unknown key 'matcher' — did you mean 'matchers'?",
        "t.yaml:8:36: unknown key 'equals' — did you mean 'equal'?",
        "t.yaml:9:16: unknown key 'enable' — did you mean 'enabled'?",
        "t.yaml:10:12: unknown key 'channel' — did you mean 'channels'?",
        "t.yaml:12:34: unknown key 'label' — did you mean 'labels'?",
    ]


@pytest.mark.parametrize(
    ("ca_file", "expected"),
    [
        (r'"\0"', "ca_file '\\x00' does not exist"),
        (r'"~nosuchuser\0/x"', "ca_file '~nosuchuser\\x00/x' cannot be used: embedded null byte"),
        ('"' + "a" * 5000 + '"', "cannot be used: File name too long"),
    ],
)
def test_unusable_ca_file_paths_are_config_errors(ca_file: str, expected: str) -> None:
    """Paths the OS refuses (NUL bytes, overlong names) are reported, not raised."""
    (message,) = errors_of(SERVER + f"    ca_file: {ca_file}\n")
    assert message.startswith("t.yaml:4:14: ca_file ") and message.endswith(expected)


def test_regex_too_large_is_a_config_error() -> None:
    """A regex whose repetitions multiply past RE2's limit is an invalid matcher, not a crash."""
    text = SERVER + "inhibit:\n  - source: ['a=~(x{1000}){1000}']\n    target: [a=b]\n"
    assert errors_of(text) == [
        "t.yaml:5:14: invalid regex in matcher 'a=~(x{1000}){1000}': "
        "invalid repetition size: {1000}"
    ]


def test_messages_stay_on_one_line() -> None:
    """Control characters in a quoted key are escaped so each issue is one line."""
    (message,) = errors_of(SERVER + '"a\\nb\\x01": 1\n')
    assert message.startswith("t.yaml:4:1: unknown key 'a\\nb\\x01' (expected one of:")


def test_parse_yaml_maps_pydantic_locations() -> None:
    """``locate`` finds the deepest known path and whether a mapping key is meant."""
    src = parse_yaml("a:\n  - {b: 1}\n", "f", {})
    assert src.locate(("a", 0, "b")) == (("a", 0, "b"), False)
    assert src.locate(("a", 0, "missing")) == (("a", 0), False)
    assert src.locate(("a", 0, "b", "[key]")) == (("a", 0, "b"), True)
    assert src.position(("a", 0, "b"), key=True) == (2, 6)
    assert src.position(("a", 0, "b")) == (2, 9)


# -- fuzzing ---------------------------------------------------------------------------------

EXAMPLE_TEXT = EXAMPLE.read_text(encoding="utf-8")


def outcome(text: str) -> None:
    """Loading either succeeds or raises ConfigError whose issues are well formed."""
    try:
        result = load_config_text(text, "fuzz.yaml", env={})
    except ConfigError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.file == "fuzz.yaml" and issue.line >= 1 and issue.col >= 1
            assert issue.message
    else:
        assert isinstance(result, Settings)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises_anything_else(text: str) -> None:
    """Any text at all yields Settings or ConfigError."""
    outcome(text)


_LINE_PIECES = st.sampled_from(
    [": ", "- ", "[", "]", "{", "}", "'", '"', "|", ">", "&a ", "*a", "<<: ", "${X}", "#",
     "\t", "\n", "  ", "0", "1m", "-1", "null", "~", "true", "{{", "}}", "{%", "*", "/",
     "absent", "stale", "rate(", ")", "v2", "x-", "\\", "%"]
)  # fmt: skip


@st.composite
def mutated_example(draw: st.DrawFn) -> str:
    lines = EXAMPLE_TEXT.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "char", "insert", "cut"]))
        i = draw(st.integers(0, len(lines) - 1))
        j = draw(st.integers(0, len(lines) - 1))
        if op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "duplicate":
            lines.insert(j, lines[i])
        elif op == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif op in ("char", "insert"):
            line = lines[i]
            k = draw(st.integers(0, len(line)))
            piece = draw(st.one_of(_LINE_PIECES, st.text(max_size=3)))
            end = k + 1 if op == "char" else k
            lines[i] = line[:k] + piece + line[end:]
        elif op == "cut":
            lines = lines[:i]
        if not lines:
            break
    return "".join(lines)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_example())
def test_mutated_example_never_raises_anything_else(text: str) -> None:
    """Small edits to a realistic file yield Settings or ConfigError, never a traceback."""
    outcome(text)


PUSH_RULES = """\
servers:
  - {name: o, url: "http://127.0.0.1:1"}
rules:
  - name: a
    scope: push
    match: [default/app/*]
    when: state != "pushing" and stream_live and rate(totalsentBytes, 30s) == 0
  - name: b
    scope: record
    when: recordTime > 1m and state == "recording"
"""


def test_push_and_record_rules_load_and_read_only_their_fields() -> None:
    """Push and record rules load with stream-shaped globs; a stats field, a field of the
    other output, absent and a two-segment glob are refused with the reason."""
    s = load(PUSH_RULES)
    assert [r.scope for r in s.rules] == [Scope.PUSH, Scope.RECORD]
    assert s.rules[0].patterns == (TargetPattern(("default", "app", "*")),)
    bad = PUSH_RULES + (
        "  - {name: c, scope: push, when: totalBytesIn > 0}\n"
        "  - {name: d, scope: push, when: recordBytes > 0}\n"
        "  - {name: e, scope: record, match: [default/app/x], when: absent}\n"
        "  - {name: f, scope: push, match: [default/app], when: sequence > 3}\n"
    )
    errors = "\n".join(errors_of(bad))
    assert "totalBytesIn is not reported at push scope" in errors
    assert "recordBytes is not reported at push scope" in errors
    assert "absent is for streams, apps and vhosts" in errors
    assert "match 'default/app' has 2 segments; scope push wants 3" in errors


def test_thumbnails_block_is_validated_at_its_keys() -> None:
    """A server's thumbnails: a bad url and match are reported at their line and column."""
    text = (
        SERVER
        + "    thumbnails: {url: 'ftp://x', every: 10s, max_in_flight: 4, match: [a/b/c/d]}\n"
        + "rules:\n  - name: f\n    when: picture.frozen_for > 30s\n"
        + "  - name: k\n    when: picture.black\n    for: 10s\n"
    )
    found = errors_of(text)
    assert any(e.startswith("t.yaml:4:") and "thumbnails url must start with" in e for e in found)
    assert any("match 'a/b/c/d' must be app/stream" in e for e in found)
    good = load(text.replace("ftp://x", "http://127.0.0.1:3333").replace("a/b/c/d", "app/*"))
    spec = good.servers[0].thumbnails
    assert spec is not None and (spec.url, spec.every_s, spec.max_in_flight) == (
        "http://127.0.0.1:3333",
        10.0,
        4,
    )
    assert {r.name: r.for_s for r in good.rules} == {"f": 0.0, "k": 10.0}
