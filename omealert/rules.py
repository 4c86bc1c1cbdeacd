"""Runtime form of a loaded config: defaults applied, durations in seconds, conditions compiled.

``config/model.py`` (pydantic models) and ``config/load.py`` (loading, FILE:LINE:COL errors) own
the YAML contract and build these; the engine, notifier and runner only ever see these
plain objects.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING
from urllib.parse import quote

from .matchers import Matcher as Matcher
from .matchers import compile_label_regex as compile_label_regex
from .matchers import matches_all as matches_all
from .model import Scope, Severity, Target

if TYPE_CHECKING:
    from .lang.condition import Condition


class OnMissing(enum.StrEnum):
    """What a rule's instance does when its target vanishes from OME's listing."""

    RESOLVE = "resolve"
    KEEP = "keep"
    FIRE = "fire"


class MessageFormat(enum.StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    HTML = "html"


@dataclass(frozen=True, slots=True)
class TargetPattern:
    """One ``match`` glob split per level: ``default/*/cam?`` → ``("default", "*", "cam?")``."""

    segments: tuple[str, ...]

    def matches(self, names: tuple[str, ...]) -> bool:
        """True if ``names`` (possibly a prefix: the vhost of a stream rule) can match."""
        return all(fnmatchcase(n, g) for n, g in zip(names, self.segments, strict=False))

    @property
    def is_literal(self) -> bool:
        return not any(ch in seg for seg in self.segments for ch in "*?[")


@dataclass(frozen=True, slots=True)
class ThumbnailSpec:
    """A server's thumbnails (``ome/thumbnails.py``): where OME serves them, how often each
    stream's is fetched, how many fetches at once, and which streams (``app/stream`` or
    ``vhost/app/stream`` globs; none: every stream a picture rule reads)."""

    url: str  # the publisher port's base URL, no trailing slash
    every_s: float = 10.0
    max_in_flight: int = 4
    patterns: tuple[TargetPattern, ...] = ()
    extension: str = "jpg"

    def selects(self, names: tuple[str, ...]) -> bool:
        return not self.patterns or any(p.matches(names[-len(p.segments) :]) for p in self.patterns)


@dataclass(frozen=True, slots=True)
class FlapSpec:
    """Flap detection of a rule (``engine/flapping.py``): shares are fractions (0.3 = 30%)."""

    window: int = 20
    high: float = 0.30
    low: float = 0.25


@dataclass(frozen=True, slots=True)
class Rule:
    """One alerting rule, ready to evaluate."""

    name: str
    scope: Scope
    patterns: tuple[TargetPattern, ...]  # empty tuple: every target of the scope
    when: Condition
    when_text: str
    resolve_when: Condition | None
    for_s: float
    keep_firing_for_s: float
    repeat_interval_s: float
    send_resolved: bool
    severity: Severity
    labels: dict[str, str]
    summary: str  # Jinja source; "" means the default summary
    description: str
    channels: tuple[str, ...]
    on_missing: OnMissing = OnMissing.RESOLVE
    group_by: tuple[str, ...] = ()
    group_wait_s: float = 0.0
    servers: tuple[str, ...] = ()  # empty: every server
    #: names of ``time_intervals``: none sent inside these / only inside one of these
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    #: where its notices go: ``channels`` (apprise), ``alertmanager``, or both
    deliver: tuple[str, ...] = ("channels",)
    #: None: flap detection off for this rule
    flapping: FlapSpec | None = FlapSpec()
    #: its firing alerts hold the same target's alerts on dependent servers
    #: (``engine/dependencies.py``); None: when it is ``absent`` or reads ``lastRecvTime``
    dependency_cause: bool | None = None

    @property
    def is_absent(self) -> bool:
        return self.when.is_absent

    def applies_to_server(self, server: str) -> bool:
        return not self.servers or server in self.servers

    def selects(self, target: Target) -> bool:
        """Whether this rule evaluates ``target`` (right scope, server and match glob)."""
        if target.scope is not self.scope or not self.applies_to_server(target.server):
            return False
        if not self.patterns:
            return True
        names = target.names
        return any(p.matches(names) for p in self.patterns)

    def identity(self) -> tuple[str, str, str, Scope]:
        """What must stay equal across a reload for state to carry over."""
        resolve = self.resolve_when.text if self.resolve_when is not None else ""
        return (self.name, self.when.text, resolve, self.scope)


@dataclass(frozen=True, slots=True)
class ServerSpec:
    name: str
    url: str  # base URL, no trailing slash
    access_token: str | None = field(default=None, repr=False)
    api_version: str = "v1"
    timeout_s: float = 5.0
    max_in_flight: int = 16
    verify_tls: bool = True
    ca_file: str | None = None
    #: a whole poll of this server is abandoned after this long (never below timeout_s)
    poll_timeout_s: float = 60.0
    #: "builtin" (omewire), or "httpx": the escape hatch if the built-in client ever
    #: misreads a server or a proxy in front of it
    http_client: str = "builtin"
    #: the Alert ``<SecretKey>`` this server's event POSTs are signed with (None: not heard)
    ome_events_key: str | None = field(default=None, repr=False)
    #: servers this one depends on (an edge on its origin): their outages hold its alerts
    depends_on: tuple[str, ...] = ()
    #: ``origin`` or ``edge`` of an OVT relay (None: neither); an edge's origin server's name
    role: str | None = None
    origin: str | None = None
    #: where and how often to fetch thumbnails for ``picture.*`` (None: not configured)
    thumbnails: ThumbnailSpec | None = None


#: How a channel's native Slack service stands in its list of services (``ChannelSpec.urls``).
SLACK_API_SCHEME = "slack-api://"

#: Where Slack's Web API answers; a config may point elsewhere (a proxy, a test stand-in).
SLACK_API_URL = "https://slack.com/api/"


@dataclass(frozen=True, slots=True)
class SlackApiSpec:
    """A channel's native Slack service: a bot token and the Slack channel it posts to."""

    token: str = field(repr=False)
    channel: str
    api_url: str = SLACK_API_URL

    @property
    def service_url(self) -> str:
        """Its entry among the channel's URLs: the Slack channel and API, not the token, so a
        rotated token keeps the queue and the threads of the same service."""
        return (
            f"{SLACK_API_SCHEME}{quote(self.channel, safe='')}?api={quote(self.api_url, safe='')}"
        )


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """A named list of apprise URLs (secrets expanded, never printed) and its message overrides.

    A ``slack_api`` service, when configured, is the last entry of ``urls`` (its
    ``service_url``), so the outbox queues and retries it like any other service.
    """

    name: str
    urls: tuple[str, ...] = field(repr=False)
    title: str | None = None  # Jinja source overriding the default title
    body: str | None = None
    format: MessageFormat = MessageFormat.MARKDOWN
    send_resolved: bool | None = None  # None: the rule decides
    notify_acks: bool | None = None  # None: the config's ``notify_acks``
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    slack_api: SlackApiSpec | None = None

    def slack_at(self, index: int) -> SlackApiSpec | None:
        """The native Slack service when URL ``index`` is it, else None (an apprise URL)."""
        spec = self.slack_api
        if (
            spec is not None
            and 0 <= index < len(self.urls)
            and self.urls[index] == spec.service_url
        ):
            return spec
        return None

    def describe_url(self, index: int) -> str:
        """``name[index] (scheme)``: enough to tell services apart, nothing secret.

        Many apprise schemes put a token where a host would be (``pagerduty://KEY@APIKEY``,
        ``ntfy://topic``), so not even the host part is shown.
        """
        return f"{self.name}[{index}] ({safe_url(self.urls[index])})"


def scheme_and_host(url: str) -> str:
    """``scheme://host``; only for plugins known to use that part as a host name."""
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://(?:[^@/?#]*@)?([^/?#:]*)", url)
    if not m:
        return "<url>"
    scheme, host = m.groups()
    return f"{scheme}://{host}" if host else f"{scheme}://"


def safe_url(url: str) -> str:
    """Only the scheme of an apprise URL (``slack://``); paths, hosts and queries can be secrets."""
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", url)
    return f"{m.group(1).lower()}://" if m else "<url>"


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """Extra routing: alerts matching all matchers (and the severity) also go to ``channels``."""

    matchers: tuple[Matcher, ...]
    channels: tuple[str, ...]
    severity: Severity | None = None
    #: ``("alertmanager",)``: matching alerts are also posted to the Alertmanagers
    deliver: tuple[str, ...] = ()
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        if self.severity is not None and labels.get("severity") != self.severity.value:
            return False
        return matches_all(self.matchers, labels)


@dataclass(frozen=True, slots=True)
class InhibitSpec:
    """While a source alert fires, target alerts with equal ``equal`` labels stay quiet."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ApiDownSpec:
    """The built-in ``ome-api-down`` alert, one instance per server."""

    enabled: bool = True
    for_s: float = 0.0
    severity: Severity = Severity.CRITICAL
    channels: tuple[str, ...] = ()
    #: the value is the failure; a resolved alert says the API answers again
    summary: str = (
        "OME API on {{ labels.server }} "
        "{% if status == 'resolved' %}answers again (it was down: {{ value }})"
        "{% else %}is not answering ({{ value }}){% endif %}"
    )
    repeat_interval_s: float = 3600.0
    send_resolved: bool = True
    flapping: FlapSpec | None = FlapSpec()


API_DOWN_RULE = "ome-api-down"


@dataclass(frozen=True, slots=True)
class PageSpec:
    """What ``watch --listen`` and the health states read (``config/extras.py`` builds it)."""

    #: no input bytes for longer than this: the stream is ``stalled``
    stale_after_s: float = 10.0
    #: basic auth (user, password) for the page, its API and /metrics; None: none asked
    listen_auth: tuple[str, str] | None = field(default=None, repr=False)
    #: channels told when a stream ends, and how long it must have been live for that
    report_channels: tuple[str, ...] = ()
    report_min_duration_s: float = 300.0


@dataclass(frozen=True, slots=True)
class AlertmanagerSpec:
    """One Alertmanager that every firing and resolved alert is posted to (``alertmanagers:``)."""

    url: str  # base URL with the api_prefix, no trailing slash
    timeout_s: float = 10.0
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    verify_tls: bool = True
    ca_file: str | None = None

    @property
    def name(self) -> str:
        """``scheme://host:port``: how logs and metrics name it (no path, no credentials)."""
        return scheme_and_host_port(self.url)


def scheme_and_host_port(url: str) -> str:
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://(?:[^@/?#]*@)?([^/?#]*)", url)
    return f"{m.group(1).lower()}://{m.group(2)}" if m else "<url>"


@dataclass(frozen=True, slots=True)
class ShardSpec:
    """This watcher's part of the fleet: shard ``index`` of ``count``, split by server or app."""

    index: int = 0
    count: int = 1
    by: str = "server"  # or "app"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, name: str) -> bool:
        """Whether ``name`` (a server, or ``vhost/app`` by app) is this shard's."""
        return shard_owner(name, self.count) == self.index

    def alerts_api_down(self, server: str) -> bool:
        """Whether this shard raises ``ome-api-down`` for ``server``: the server's owner
        (by app every shard polls every server, and one of them must speak for it)."""
        return self.count <= 1 or self.by != "app" or self.owns(server)


def shard_owner(name: str, count: int) -> int:
    """Rendezvous hashing: the shard (0 to count-1) with the highest score for ``name``."""
    if count <= 1:
        return 0

    def score(shard: int) -> int:
        digest = hashlib.blake2b(f"{shard}\x00{name}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    return max(range(count), key=score)


@dataclass(frozen=True, slots=True)
class HeartbeatSpec:
    """The dead man's switch: an always-firing watchdog alert, and/or a URL pinged per tick."""

    watchdog: bool = False
    url: str | None = field(default=None, repr=False)
    method: str = "GET"
    timeout_s: float = 5.0


@dataclass(frozen=True, slots=True)
class Settings:
    """A whole loaded config."""

    path: str
    servers: tuple[ServerSpec, ...]
    interval_s: float
    rules: tuple[Rule, ...]
    channels: dict[str, ChannelSpec]
    routes: tuple[RouteSpec, ...] = ()
    inhibit: tuple[InhibitSpec, ...] = ()
    api_down: ApiDownSpec = ApiDownSpec()
    default_channels: tuple[str, ...] = ()
    #: a pending `for` timer survives a restart only if the watcher was down less than this
    outage_tolerance_s: float = 3600.0
    #: deliveries older than this are given up (logged and recorded as dropped)
    delivery_max_age_s: float = 86400.0
    #: transitions, the notification log and ended silences older than this are pruned
    state_retention_s: float = 30 * 86400.0
    #: named ``time_intervals``: each says whether it is active at a unix time
    time_intervals: Mapping[str, Callable[[float], bool]] = field(default_factory=dict)
    #: tell the channels that heard a firing when someone acknowledges it
    notify_acks: bool = True
    page: PageSpec = PageSpec()
    #: where notices go by default (a rule's ``deliver`` overrides it)
    default_deliver: tuple[str, ...] = ("channels",)
    alertmanagers: tuple[AlertmanagerSpec, ...] = ()
    #: a firing alert is posted again this often, so an Alertmanager keeps it alive
    resend_delay_s: float = 60.0
    #: which watcher sent an alert: an annotation, never a label (replicas must agree)
    replica: str = ""
    shard: ShardSpec = ShardSpec()
    heartbeat: HeartbeatSpec = HeartbeatSpec()
    #: held alerts of a dependent server are sent on their own only if they still fire
    #: this long after the parent recovered
    dependency_grace_s: float = 120.0
