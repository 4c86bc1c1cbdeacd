"""The YAML config contract: pydantic models that mirror the file, key by key.

The models are the documentation of the format: each field's default is the documented
default, and ``extra="forbid"`` turns a typo into an error with a suggestion. Loading a
file with them, and reporting all its problems at once, is ``config/load.py``'s job.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..durations import format_duration
from ..model import Scope, Severity
from ..rules import SLACK_API_URL, MessageFormat, OnMissing, SlackApiSpec
from .time_intervals import NamedTimeIntervalModel
from .values import (
    ChannelName,
    Deliver,
    Duration,
    LabelName,
    LabelValue,
    Percent,
    PositiveDuration,
    Retention,
    RuleName,
    ServerName,
    _channels_only,
    _none_as_empty_dict,
    _none_as_empty_list,
    _one_or_many,
    _shard,
)

__all__ = [
    "AlertmanagerModel",
    "ApiDownModel",
    "ChannelModel",
    "ConfigModel",
    "DefaultsModel",
    "FlapModel",
    "HeartbeatModel",
    "InhibitModel",
    "OmeEventsModel",
    "RouteModel",
    "RuleModel",
    "ServerModel",
    "SlackApiModel",
    "ThumbnailsModel",
]


# -- field types ---------------------------------------------------------------------------


#: How long one poll of a server may take when the config does not say.
DEFAULT_POLL_TIMEOUT_S = 60.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


# -- the file ------------------------------------------------------------------------------


class ThumbnailsModel(_Model):
    """A server's thumbnails, for ``picture.*`` fields (``ome/thumbnails.py``)."""

    #: the publisher HTTP port serving ``/{app}/{stream}/thumb.jpg``
    url: str
    every: PositiveDuration = 10.0
    max_in_flight: int = Field(4, ge=1, le=64)
    #: ``app/stream`` or ``vhost/app/stream`` globs; leave out for every stream
    match: Annotated[list[str], BeforeValidator(_one_or_many)] | None = None
    format: Literal["jpg", "png"] = "jpg"


class ServerModel(_Model):
    """One OME server to poll."""

    name: ServerName
    url: str
    access_token: SecretStr | None = None
    api_version: Literal["v1", "v2"] = "v1"
    timeout: PositiveDuration = 5.0
    #: the whole poll of this server; None: 60s, or ``timeout`` if that is longer
    poll_timeout: PositiveDuration | None = None
    #: connections to one OME; capped so a typo cannot open a million sockets and tasks
    max_in_flight: int = Field(16, ge=1, le=1024)
    verify_tls: bool = True
    ca_file: str | None = None
    http_client: Literal["builtin", "httpx"] = "builtin"
    #: this server's Alert ``<SecretKey>``, when it is not ``ome_events.secret_key``
    ome_events_secret_key: SecretStr | None = None
    #: servers this one depends on (``config/dependencies.py`` checks the names and cycles)
    depends_on: list[ServerName] = Field(default_factory=list)
    #: an OVT origin or edge (``config/roles.py``); an edge names its origin server
    role: Literal["origin", "edge"] | None = None
    origin: ServerName | None = None
    thumbnails: ThumbnailsModel | None = None

    @field_validator("poll_timeout")
    @classmethod
    def _poll_outlasts_a_request(cls, value: float | None, info: ValidationInfo) -> float | None:
        timeout = info.data.get("timeout")  # absent when it is invalid itself
        if value is not None and timeout is not None and value < timeout:
            raise ValueError(
                f"must not be shorter than timeout ({format_duration(timeout)}), "
                "the time one request of the poll may take"
            )
        return value

    @property
    def poll_timeout_s(self) -> float:
        if self.poll_timeout is not None:
            return self.poll_timeout
        return max(DEFAULT_POLL_TIMEOUT_S, self.timeout)


class SlackApiModel(_Model):
    """A channel's native Slack service: posts, threads and edits through Slack's Web API."""

    token: SecretStr
    channel: str = Field(min_length=1)
    #: Slack's Web API; another base URL for a proxy in front of it (or a test stand-in)
    api_url: str = SLACK_API_URL

    @field_validator("token")
    @classmethod
    def _token_set(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("the Slack bot token is empty (is its environment variable set?)")
        return value

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/?#\s]+", value):
            raise ValueError("api_url must start with http:// or https:// and name a host")
        return value if value.endswith("/") else value + "/"

    def spec(self) -> SlackApiSpec:
        return SlackApiSpec(self.token.get_secret_value(), self.channel, self.api_url)


class ChannelModel(_Model):
    """A named set of apprise URLs and/or a native Slack service, and how messages look."""

    urls: list[SecretStr] = Field(default_factory=list)
    slack_api: SlackApiModel | None = None
    title: str | None = None
    body: str | None = None
    format: MessageFormat = MessageFormat.MARKDOWN
    send_resolved: bool | None = None
    notify_acks: bool | None = None
    mute_time_intervals: list[str] | None = None
    active_time_intervals: list[str] | None = None

    @model_validator(mode="after")
    def _somewhere_to_send(self) -> ChannelModel:
        if not self.urls and self.slack_api is None:
            raise ValueError("a channel needs urls (apprise URLs), slack_api, or both")
        return self


def _flap_switch(value: object) -> object:
    """``flapping: false`` is ``{enabled: false}``; ``true`` the defaults."""
    if isinstance(value, bool):
        return {"enabled": value}
    return value


class FlapModel(_Model):
    """Flap detection (``engine/flapping.py``): above ``high`` flapping, under ``low`` not."""

    enabled: bool = True
    window: int = Field(20, ge=2, le=100)
    high: Percent = 0.30
    low: Percent = 0.25

    @model_validator(mode="after")
    def _low_not_above_high(self) -> FlapModel:
        if self.low > self.high:
            raise ValueError(f"low ({self.low:.0%}) must not be above high ({self.high:.0%})")
        return self


#: ``flapping: false`` turns detection off, ``true`` (or leaving it out) uses the defaults.
Flapping = Annotated[FlapModel, BeforeValidator(_flap_switch)]


class DefaultsModel(_Model):
    """What every rule inherits unless it sets the key itself."""

    for_: Duration = Field(0.0, alias="for")
    keep_firing_for: Duration = 0.0
    repeat_interval: PositiveDuration = 3600.0
    send_resolved: bool = True
    severity: Severity = Severity.WARNING
    channels: list[ChannelName] = Field(default_factory=list)
    on_missing: OnMissing = OnMissing.RESOLVE
    group_by: list[LabelName] = Field(default_factory=list)
    group_wait: Duration = 0.0
    deliver: Deliver = Field(default_factory=_channels_only)
    flapping: Flapping = FlapModel()


class RuleModel(_Model):
    """One alerting rule. ``None`` means "inherit from defaults"."""

    name: RuleName
    scope: Scope = Scope.STREAM
    match: Annotated[list[str], BeforeValidator(_one_or_many)] | None = None
    when: str
    resolve_when: str | None = None
    for_: Duration | None = Field(None, alias="for")
    keep_firing_for: Duration | None = None
    repeat_interval: PositiveDuration | None = None
    send_resolved: bool | None = None
    severity: Severity | None = None
    labels: dict[LabelName, LabelValue] = Field(default_factory=dict)
    summary: str = ""
    description: str = ""
    channels: list[ChannelName] | None = None
    on_missing: OnMissing | None = None
    group_by: list[LabelName] | None = None
    group_wait: Duration | None = None
    servers: list[ServerName] | None = None
    mute_time_intervals: list[str] | None = None
    active_time_intervals: list[str] | None = None
    deliver: Deliver | None = None
    flapping: Flapping | None = None
    #: hold dependents' alerts while this fires; None: when ``absent`` or reading lastRecvTime
    dependency_cause: bool | None = None


class RouteModel(_Model):
    """Alerts matching every matcher (and the severity, if given) also go to ``channels``."""

    matchers: list[str] = Field(default_factory=list)
    severity: Severity | None = None
    channels: list[ChannelName] | None = Field(None, min_length=1)
    mute_time_intervals: list[str] | None = None
    active_time_intervals: list[str] | None = None
    #: ``[alertmanager]``: matching alerts are also posted to the Alertmanagers
    deliver: Deliver | None = None

    @model_validator(mode="after")
    def _selects_something(self) -> RouteModel:
        if not self.matchers and self.severity is None:
            raise ValueError("a route needs matchers:, severity: or both")
        if self.channels is None and "alertmanager" not in (self.deliver or ()):
            raise ValueError("a route needs channels: (or deliver: [alertmanager])")
        return self


class InhibitModel(_Model):
    """While an alert matching ``source`` fires, alerts matching ``target`` stay quiet."""

    source: list[str] = Field(min_length=1)
    target: list[str] = Field(min_length=1)
    equal: list[LabelName] = Field(default_factory=list)


class ApiDownModel(_Model):
    """The built-in alert raised when a server's API does not answer."""

    enabled: bool = True
    for_: Duration = Field(0.0, alias="for")
    severity: Severity = Severity.CRITICAL
    channels: list[ChannelName] | None = None
    summary: str | None = None
    repeat_interval: PositiveDuration = 3600.0
    send_resolved: bool = True
    flapping: Flapping | None = None  # None: defaults.flapping


class OmeEventsModel(_Model):
    """Hearing OME's Alert module: the ``<SecretKey>`` its POSTs are signed with."""

    secret_key: SecretStr


class HealthModel(_Model):
    """Per-stream health (``engine/health.py``): when a quiet ingest counts as stalled."""

    stale_after: PositiveDuration = 10.0


class ListenAuthModel(_Model):
    """Basic auth for the page, its API and ``/metrics`` (keep both in ``${VAR}``)."""

    username: str = Field(min_length=1)
    password: SecretStr


class StreamReportModel(_Model):
    """One message when a stream that was live at least ``min_duration`` ends."""

    channels: list[ChannelName] = Field(min_length=1)
    min_duration: Duration = 300.0


class BasicAuthModel(_Model):
    username: str
    password: SecretStr


class AlertmanagerModel(_Model):
    """One Alertmanager that alerts are posted to (all of them, as Prometheus does)."""

    url: str
    timeout: PositiveDuration = 10.0
    basic_auth: BasicAuthModel | None = None
    bearer_token: SecretStr | None = None
    ca_file: str | None = None
    verify_tls: bool = True
    api_prefix: str = ""

    @model_validator(mode="after")
    def _one_kind_of_auth(self) -> AlertmanagerModel:
        if self.basic_auth is not None and self.bearer_token is not None:
            raise ValueError("give basic_auth or bearer_token, not both")
        return self


class HeartbeatModel(_Model):
    """The dead man's switch: a watchdog alert to the Alertmanagers and/or a ping URL."""

    watchdog: bool = False
    #: a healthchecks-style ping URL; its path is the check's secret
    url: SecretStr | None = None
    method: Literal["GET", "POST"] = "GET"
    timeout: PositiveDuration = 5.0

    @model_validator(mode="after")
    def _does_something(self) -> HeartbeatModel:
        if not self.watchdog and self.url is None:
            raise ValueError("a heartbeat needs watchdog: true, a url, or both")
        return self


class ConfigModel(_Model):
    """The whole file."""

    servers: Annotated[list[ServerModel], BeforeValidator(_none_as_empty_list)] = Field(
        min_length=1
    )
    interval: PositiveDuration = 10.0
    defaults: DefaultsModel = DefaultsModel()
    channels: Annotated[dict[ChannelName, ChannelModel], BeforeValidator(_none_as_empty_dict)] = (
        Field(default_factory=dict)
    )
    rules: Annotated[list[RuleModel], BeforeValidator(_none_as_empty_list)] = Field(
        default_factory=list
    )
    routes: Annotated[list[RouteModel], BeforeValidator(_none_as_empty_list)] = Field(
        default_factory=list
    )
    inhibit: Annotated[list[InhibitModel], BeforeValidator(_none_as_empty_list)] = Field(
        default_factory=list
    )
    ome_api_down: ApiDownModel = ApiDownModel()
    ome_events: OmeEventsModel | None = None
    outage_tolerance: Duration = 3600.0
    delivery_max_age: PositiveDuration = 86400.0
    state_retention: Retention = 30 * 86400.0
    time_intervals: Annotated[
        list[NamedTimeIntervalModel], BeforeValidator(_none_as_empty_list)
    ] = Field(default_factory=list)
    notify_acks: bool = True
    health: HealthModel = HealthModel()
    listen_auth: ListenAuthModel | None = None
    stream_report: StreamReportModel | None = None
    alertmanagers: Annotated[list[AlertmanagerModel], BeforeValidator(_none_as_empty_list)] = Field(
        default_factory=list
    )
    resend_delay: PositiveDuration = 60.0
    replica: str | None = None
    shard: Annotated[str | None, BeforeValidator(_shard)] = None
    shard_by: Literal["server", "app"] = "server"
    heartbeat: HeartbeatModel | None = None
    dependency_grace: Duration = 120.0
