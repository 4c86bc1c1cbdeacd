"""What the config models cannot check one field at a time, and the runtime objects.

The models (``config/model.py``) check shapes and types. This module compiles every condition
and template, asks apprise about every URL, checks names across sections (channels,
servers, duplicates, reserved words) and finally assembles ``rules.Settings``.

It runs even when the shape check failed, on the parts that did validate (``salvage``),
so one bad rule does not hide the condition errors of the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ..errors import ConfigIssue, ExprError
from ..lang.condition import compile_condition
from ..lang.fields import FIELDS
from ..model import Scope
from ..notify.sandbox import TemplateProblem, check_template
from ..rules import (
    API_DOWN_RULE,
    ApiDownSpec,
    ChannelSpec,
    InhibitSpec,
    Matcher,
    RouteSpec,
    Rule,
    ServerSpec,
    Settings,
    TargetPattern,
)
from .extras import page_spec
from .interval_refs import check_time_intervals
from .messages import suggest
from .roles import with_roles
from .thumbnails import thumbnail_spec
from .urls import ca_file_path, server_url

if TYPE_CHECKING:
    from pydantic import SecretStr

    from ..lang.condition import Condition
    from .model import RuleModel
    from .parts import Parts
    from .yamlsource import KeyPath, YamlSource

_TEMPLATE_LINE = re.compile(r"line (\d+): (.*)", re.DOTALL)
_SHAPES = {1: "vhost", 2: "vhost/app", 3: "vhost/app/stream"}


def build_settings(
    src: YamlSource,
    parts: Parts,
    issues: list[ConfigIssue],
    *,
    base_dir: Path,
    check_urls: bool = True,
) -> Settings | None:
    """Check ``parts`` across sections, appending to ``issues``; the Settings if none."""
    check = _Checker(src, parts, issues, base_dir)
    check.check_urls = check_urls
    servers = with_roles(parts.servers, check.servers(), check.add)
    channels = check.channels()
    check.channel_refs(("defaults", "channels"), parts.defaults.channels)
    rules = check.rules()
    routes = check.routes()
    inhibit = check.inhibit()
    api_down = check.api_down()
    timed = check_time_intervals(src, parts, issues, rules, routes, channels)
    rules, routes, channels, intervals = timed
    page = page_spec(parts, check.channel_refs)
    if issues:
        return None
    return Settings(
        path=src.filename,
        servers=servers,
        interval_s=parts.interval,
        rules=rules,
        channels=channels,
        routes=routes,
        inhibit=inhibit,
        api_down=api_down,
        default_channels=tuple(parts.defaults.channels),
        outage_tolerance_s=parts.outage_tolerance,
        delivery_max_age_s=parts.delivery_max_age,
        state_retention_s=parts.state_retention,
        time_intervals=intervals,
        notify_acks=parts.notify_acks,
        page=page,
    )


class _Checker:
    """One pass over the parts; each method checks a section and builds its runtime form."""

    def __init__(
        self, src: YamlSource, parts: Parts, issues: list[ConfigIssue], base_dir: Path
    ) -> None:
        self.src = src
        self.parts = parts
        self.issues = issues
        self.base_dir = base_dir
        self.check_urls = True
        self.reported: set[KeyPath] = set()

    def add(self, path: KeyPath, message: str) -> None:
        self.issues.append(self.src.issue(path, message))

    # -- servers and channels ------------------------------------------------------------

    def servers(self) -> tuple[ServerSpec, ...]:
        out: list[ServerSpec] = []
        self.unique(
            "server name", [(("servers", i, "name"), s.name) for i, s in self.parts.servers]
        )
        for i, s in self.parts.servers:
            url, problem = server_url(s.url)
            if problem:
                self.add(("servers", i, "url"), problem)
            ca_file = None
            if s.ca_file is not None:
                ca_file, problem = ca_file_path(self.base_dir, s.ca_file)
                if problem:
                    self.add(("servers", i, "ca_file"), problem)
            token = s.access_token.get_secret_value() if s.access_token is not None else ""
            events_key = self.events_key(i, s.ome_events_secret_key)
            out.append(
                ServerSpec(
                    name=s.name,
                    url=url,
                    access_token=token or None,
                    api_version=s.api_version,
                    timeout_s=s.timeout,
                    poll_timeout_s=s.poll_timeout_s,
                    max_in_flight=s.max_in_flight,
                    verify_tls=s.verify_tls,
                    ca_file=ca_file,
                    http_client=s.http_client,
                    ome_events_key=events_key,
                    thumbnails=thumbnail_spec(("servers", i, "thumbnails"), s.thumbnails, self.add),
                )
            )
        return tuple(out)

    def events_key(self, i: int, own: SecretStr | None) -> str | None:
        """Server ``i``'s Alert key: its own, else the shared one; an empty one is an error
        (an unset variable, most likely), reported once where it is written."""
        shared = self.parts.ome_events
        path: KeyPath
        if own is not None:
            key, path = own.get_secret_value(), ("servers", i, "ome_events_secret_key")
        elif shared is not None:
            key, path = shared.secret_key.get_secret_value(), ("ome_events", "secret_key")
        else:
            return None
        if key:
            return key
        if path not in self.reported:
            self.reported.add(path)
            self.add(
                path,
                "the OME Alert secret key is empty: set it to the <SecretKey> of OME's <Alert>",
            )
        return None

    def channels(self) -> dict[str, ChannelSpec]:
        out: dict[str, ChannelSpec] = {}
        for name, ch in self.parts.channels.items():
            urls = tuple(u.get_secret_value() for u in ch.urls)
            for j, url in enumerate(urls):
                reason = _check_url(url) if self.check_urls else None
                if reason is not None:
                    self.add(
                        ("channels", name, "urls", j),
                        f"channel '{name}' urls[{j}]: apprise cannot use this URL: {reason}",
                    )
            for key in ("title", "body"):
                source = getattr(ch, key)
                if source is not None:
                    self.template(("channels", name, key), source, key)
            slack = ch.slack_api.spec() if ch.slack_api is not None else None
            urls = urls if slack is None else (*urls, slack.service_url)  # last: URLs keep index
            out[name] = ChannelSpec(
                name=name,
                urls=urls,
                title=ch.title,
                body=ch.body,
                format=ch.format,
                send_resolved=ch.send_resolved,
                slack_api=slack,
            )
        return out

    def channel_refs(self, path: KeyPath, names: Iterable[str]) -> None:
        known = self.parts.channel_names
        for j, name in enumerate(names):
            if name not in known:
                hint = suggest(name, known, "defined channels") or " (no channels are defined)"
                self.add((*path, j), f"unknown channel '{name}'{hint}")

    # -- rules ---------------------------------------------------------------------------

    def rules(self) -> tuple[Rule, ...]:
        self.unique("rule name", [(("rules", i, "name"), r.name) for i, r in self.parts.rules])
        out = []
        for i, r in self.parts.rules:
            rule = self.rule(i, r)
            if rule is not None:
                out.append(rule)
        return tuple(out)

    def rule(self, i: int, r: RuleModel) -> Rule | None:
        d = self.parts.defaults
        path: KeyPath = ("rules", i)
        if r.name == API_DOWN_RULE:
            self.add(
                (*path, "name"),
                f"rule name '{API_DOWN_RULE}' is reserved for the built-in alert; "
                "configure it under ome_api_down:",
            )
        if r.servers is not None:
            for j, name in enumerate(r.servers):
                if name not in self.parts.server_names:
                    hint = suggest(name, self.parts.server_names, "servers")
                    self.add((*path, "servers", j), f"unknown server '{name}'{hint}")
        if r.channels is not None:
            self.channel_refs((*path, "channels"), r.channels)
        patterns = self.patterns(path, r)
        when = self.condition((*path, "when"), r.when, r)
        resolve = None
        if r.resolve_when is not None:
            resolve = self.condition((*path, "resolve_when"), r.resolve_when, r)
        if when is not None and when.is_absent:
            self.absent(path, r, patterns)
        self.template((*path, "summary"), r.summary, "summary")
        self.template((*path, "description"), r.description, "description")
        if when is None or (r.resolve_when is not None and resolve is None):
            return None
        return Rule(
            name=r.name,
            scope=r.scope,
            patterns=patterns,
            when=when,
            when_text=r.when,
            resolve_when=resolve,
            for_s=_pick(r.for_, d.for_),
            keep_firing_for_s=_pick(r.keep_firing_for, d.keep_firing_for),
            repeat_interval_s=_pick(r.repeat_interval, d.repeat_interval),
            send_resolved=_pick(r.send_resolved, d.send_resolved),
            severity=_pick(r.severity, d.severity),
            labels=dict(r.labels),
            summary=r.summary,
            description=r.description,
            channels=tuple(_pick(r.channels, d.channels)),
            on_missing=_pick(r.on_missing, d.on_missing),
            group_by=tuple(_pick(r.group_by, d.group_by)),
            group_wait_s=_pick(r.group_wait, d.group_wait),
            servers=tuple(r.servers or ()),
            deliver=tuple(_pick(r.deliver, d.deliver)),
        )

    def patterns(self, path: KeyPath, r: RuleModel) -> tuple[TargetPattern, ...]:
        if r.match is None:
            return ()
        where: KeyPath = (*path, "match")
        depth = r.scope.depth
        if depth == 0:
            why = "each server is one target"
            if r.scope is Scope.QUEUE:
                why = 'select queues in the condition instead (part == "trs", stream == "s1")'
            self.add(where, f"scope {r.scope} takes no match: {why}")
            return ()
        if not r.match:
            self.add(where, f"match lists no patterns; leave it out to select every {r.scope}")
        out = []
        for j, glob in enumerate(r.match):
            segments = tuple(glob.split("/"))
            at: KeyPath = (*where, j)
            if len(segments) != depth:
                self.add(
                    at,
                    f"match '{glob}' has {_count(len(segments), 'segment')}; scope {r.scope} "
                    f"wants {depth} ({_SHAPES[depth]})",
                )
            elif not all(segments):
                self.add(at, f"match '{glob}' has an empty segment")
            else:
                out.append(TargetPattern(segments))
        return tuple(out)

    def absent(self, path: KeyPath, r: RuleModel, patterns: tuple[TargetPattern, ...]) -> None:
        if r.scope.is_output:
            self.add(
                (*path, "when"),
                f"absent is for streams, apps and vhosts; a {r.scope} is named by its "
                "destination, not by match: write a stream rule with absent instead",
            )
            return
        if not r.match:
            self.add(
                (*path, "when"),
                f"absent needs match: with literal names (it fires for each named "
                f"{r.scope} that the server does not list)",
            )
            return
        for j, glob in enumerate(r.match):
            if any(ch in glob for ch in "*?["):
                self.add(
                    (*path, "match", j),
                    f"match '{glob}' has wildcards, but absent needs literal names "
                    "(it fires for each name the server does not list)",
                )

    def condition(self, path: KeyPath, text: str, r: RuleModel) -> Condition | None:
        try:
            cond = compile_condition(text, r.scope, self.parts.interval)
        except ExprError as exc:
            self.issues.append(self.src.issue_at(path, exc.offset, exc.message))
            return None
        applies = [s for _, s in self.parts.servers if r.servers is None or s.name in r.servers]
        v1 = [s.name for s in applies if s.api_version == "v1"]
        for name in sorted(cond.fields):
            spec = FIELDS.get(name)
            if spec is None or not spec.v2_only or not v1:
                continue
            who = (
                f"server '{v1[0]}' uses"
                if len(v1) == 1
                else f"servers {', '.join(repr(n) for n in v1)} use"
            )
            self.issues.append(
                self.src.issue_at(
                    path,
                    cond.field_offsets.get(name, 0),
                    f"{name} exists only on OME Enterprise /v2 stats; {who} api_version v1",
                )
            )
        return cond

    def template(self, path: KeyPath, source: str, what: str) -> None:
        try:
            check_template(source)
        except TemplateProblem as exc:
            message, offset = str(exc), 0
            m = _TEMPLATE_LINE.fullmatch(message)
            if m:
                message = m.group(2)
                offset = sum(len(line) + 1 for line in source.split("\n")[: int(m.group(1)) - 1])
            self.issues.append(
                self.src.issue_at(path, offset, f"invalid {what} template: {message}")
            )

    # -- routing -------------------------------------------------------------------------

    def routes(self) -> tuple[RouteSpec, ...]:
        out = []
        for i, route in self.parts.routes:
            matchers = self.matchers(("routes", i, "matchers"), route.matchers)
            channels = tuple(route.channels or ())
            self.channel_refs(("routes", i, "channels"), list(channels))
            out.append(RouteSpec(matchers, channels, route.severity, tuple(route.deliver or ())))
        return tuple(out)

    def inhibit(self) -> tuple[InhibitSpec, ...]:
        out = []
        for i, rule in self.parts.inhibit:
            source = self.matchers(("inhibit", i, "source"), rule.source)
            target = self.matchers(("inhibit", i, "target"), rule.target)
            out.append(InhibitSpec(source, target, tuple(rule.equal)))
        return tuple(out)

    def matchers(self, path: KeyPath, texts: list[str]) -> tuple[Matcher, ...]:
        out = []
        for j, text in enumerate(texts):
            try:
                out.append(Matcher.parse(text))
            except ValueError as exc:
                self.add((*path, j), str(exc))
        return tuple(out)

    def api_down(self) -> ApiDownSpec:
        a = self.parts.api_down
        if a.channels is not None:
            self.channel_refs(("ome_api_down", "channels"), a.channels)
        if a.summary is not None:
            self.template(("ome_api_down", "summary"), a.summary, "summary")
        return ApiDownSpec(
            enabled=a.enabled,
            for_s=a.for_,
            severity=a.severity,
            channels=tuple(_pick(a.channels, self.parts.defaults.channels)),
            summary=a.summary if a.summary is not None else ApiDownSpec().summary,
            repeat_interval_s=a.repeat_interval,
            send_resolved=a.send_resolved,
        )

    # -- helpers -------------------------------------------------------------------------

    def unique(self, what: str, named: list[tuple[KeyPath, str]]) -> None:
        first: dict[str, KeyPath] = {}
        for path, name in named:
            if name in first:
                line = self.src.position(first[name])[0]
                self.add(path, f"duplicate {what} '{name}' (first used at line {line})")
            else:
                first[name] = path


_T = TypeVar("_T")


def _pick(value: _T | None, default: _T) -> _T:
    return default if value is None else value


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _check_url(url: str) -> str | None:
    """Import delivery (and with it apprise) only when a URL really has to be checked."""
    from ..notify.delivery import check_url

    return check_url(url)
