"""Read OME's REST API: discover targets, fetch only what the rules need, classify failures.

One poll of one server runs in two phases:

1. **Discovery** walks the listings ``/v1/vhosts`` → ``…/apps`` → ``…/streams``, descending
   only into targets that a rule's ``match`` glob can still select (or whose streams a rule
   counts). Nothing else is fetched until the listings are in.
2. **Fetch**: stats (``/v1/stats/current/…``, or Enterprise ``/v2`` where configured) for the
   targets a rule reads stats of, and stream info only for streams whose rules read track
   fields. N selected streams cost at most N stats requests (+ N info requests when track
   fields are read) on top of the listings.

Failures are sorted by where they happen. A listing, the server-level stats, a refused
connection, a rejected token or a missing API route mean the server as a whole cannot be
read: ``PollResult.error``. A failure of one target's own request goes to
``target_errors`` and never costs the others their samples. A 404 "Could not find the
stream/application/virtual host" on a target the listing just showed means it ended in
between: ``gone``, not an error. No message ever contains the access token.

A hanging API is the server's fault, not each stream's, so a poll is bounded twice: when
``max_in_flight`` requests in a row get no answer (timed out, or the connection closed
without one) the poll stops with a server-level error, and the whole poll is abandoned
after the server's ``poll_timeout``. Either way no target of that server changes state.

The server's clock: rules measure the age of OME's timestamps (``stale``, ``age()``), and
the watcher's clock may be off. See ``ServerClock`` for how it is estimated.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import re
import ssl
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple, Protocol, TypeVar, cast
from urllib.parse import quote

import aiohttp
import httpx
from yarl import URL

from .clock import Clock
from .errors import SourceError, SourceErrorKind
from .fields import FIELDS, Source
from .model import PollResult, Sample, Scope, Target, Value
from .normalize import NormalizeError, normalize_info, normalize_stats
from .rules import Rule, ServerSpec, TargetPattern

__all__ = [
    "Need",
    "OmeClient",
    "PollPlan",
    "ServerClock",
    "plan_polls",
    "poll_all",
]

T = TypeVar("T")
X = TypeVar("X")

#: Largest answer read before giving up on it; a listing of 100k streams is ~3 MB.
MAX_BODY_BYTES = 16 * 1024 * 1024
#: Timestamp fields that move while OME is live; their maximum tracks the server's clock.
_LIVE_TIMES = ("lastUpdatedTime", "providers.lastRecvTime", "publishers.lastSentTime")
_MISSING = re.compile(r"Could not find the (virtual host|application|stream)")


# -- planning ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Need:
    """What one rule asks of a poll: targets of ``scope`` matching ``patterns`` (none: all),
    and the sources (stats, info, listing) of the fields it reads."""

    scope: Scope
    patterns: tuple[TargetPattern, ...]
    sources: frozenset[Source]
    absent: bool = False

    def selects(self, names: tuple[str, ...]) -> bool:
        if len(names) != self.scope.depth:
            return False
        return not self.patterns or any(p.matches(names) for p in self.patterns)

    def leads_below(self, names: tuple[str, ...]) -> bool:
        """Whether a target with ``names`` has to be listed for this need to reach its scope."""
        if len(names) < self.scope.depth:
            return not self.patterns or any(p.matches(names) for p in self.patterns)
        # counting streams needs every level below a selected target listed
        return (
            Source.LISTING in self.sources
            and len(names) < Scope.STREAM.depth
            and self.selects(names[: self.scope.depth])
        )


@dataclass(frozen=True, slots=True)
class PollPlan:
    """Which listings, stats and stream infos one poll of ``server`` fetches.

    Built once per config load by ``plan_polls``; the client asks it per target.
    """

    server: str
    needs: tuple[Need, ...] = ()

    def explores(self, target: Target) -> bool:
        """Whether the children of ``target`` are listed."""
        names = target.names
        return any(n.leads_below(names) for n in self.needs)

    def sources(self, target: Target) -> frozenset[Source] | None:
        """Sources of the fields rules read of ``target``; ``None`` if no rule samples it."""
        names = target.names
        found: set[Source] | None = None
        for need in self.needs:
            if need.selects(names) and (need.sources or not need.absent):
                found = (found or set()) | need.sources
        return None if found is None else frozenset(found)

    @property
    def stats_scopes(self) -> frozenset[Scope]:
        return frozenset(n.scope for n in self.needs if Source.STATS in n.sources)

    @property
    def reads_info(self) -> bool:
        return any(Source.INFO in n.sources for n in self.needs)


def plan_polls(rules: Sequence[Rule], server: str) -> PollPlan:
    """The plan for ``server``: one ``Need`` per distinct scope, patterns and sources of rules."""
    needs: dict[Need, None] = {}
    for rule in rules:
        if not rule.applies_to_server(server):
            continue
        paths = set(rule.when.fields)
        if rule.resolve_when is not None:
            paths |= rule.resolve_when.fields
        sources = frozenset(FIELDS[p].source for p in paths if p in FIELDS)
        needs[Need(rule.scope, rule.patterns, sources, rule.is_absent)] = None
    return PollPlan(server, tuple(needs))


# -- the server's clock -------------------------------------------------------------------------


class ServerClock:
    """Estimates the OME server's clock as an offset from the watcher's clock.

    When a reply carries a ``Date`` header, the offset is taken from it (whole seconds).
    OME 0.18.0 sends none, so otherwise the offset is learnt from OME's own timestamps:

    * If the freshest live timestamp of a poll (``lastUpdatedTime``, ``lastRecvTime``,
      ``lastSentTime`` of every sample) moved forward since the previous poll by at least
      half the watcher time that passed, something on the server is live and its clock is
      about that timestamp: ``offset = freshest − now``.
    * A timestamp can never be ahead of the server's clock, so one later than the current
      estimate raises the offset to it at once, live or not.
    * Otherwise the offset stays as it was. A poll where everything has stalled teaches
      nothing, so stalls keep showing as growing ages instead of pulling the clock back.

    Limits: until the server has shown live ingest (and sent no ``Date``), the clocks are
    assumed to agree, apart from the lower bound above. Accuracy is that of OME's
    timestamps, about a second, plus the poll's own latency; a stream that truly stalls
    within that window looks fresh by up to that much.
    """

    def __init__(self) -> None:
        self.offset = 0.0
        self._previous: tuple[float, float] | None = None  # (watcher time, freshest)

    def now(self, at: float) -> float:
        return at + self.offset

    def update(self, at: float, freshest: float | None, date_offset: float | None) -> float:
        """Take in one poll (started at ``at``) and return the server's clock at ``at``."""
        if date_offset is not None:
            self.offset = date_offset
        elif freshest is not None:
            previous = self._previous
            elapsed = at - previous[0] if previous is not None else 0.0
            live = previous is not None and elapsed > 0 and freshest - previous[1] >= elapsed / 2
            ahead = freshest - at > self.offset  # no timestamp is later than the server's now
            if live or ahead:
                self.offset = freshest - at
        if freshest is not None:
            self._previous = (at, freshest)
        return at + self.offset


# -- requests ---------------------------------------------------------------------------------


class _Failed(Exception):
    """A request failed; ``server_wide`` when no other request to this server can do better."""

    def __init__(self, error: SourceError, *, server_wide: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.server_wide = server_wide


class _Missing(Exception):
    """OME answered 404 for a named vhost, app or stream: it does not exist (any more)."""


@dataclass(slots=True)
class _Run:
    """Bookkeeping of one poll: request count, the first ``Date`` header seen, and what
    the breaker and the deadline report."""

    at: float
    started: float
    requests: int = 0
    date_offset: float | None = None
    last_path: str = "/v1/vhosts"
    #: requests in a row without an answer, split by how they ended
    timed_out: int = 0
    dropped: int = 0
    #: targets to fetch (None while still listing) and how many of them are done
    targets: int | None = None
    fetched: int = 0


class _Route(NamedTuple):
    """What one poll fetches of one target: its stats and info paths, if any."""

    stats: str | None
    info: str | None
    counts_streams: bool  # a rule reads the target's ``streams`` count


_NO_ROUTE: Any = object()


@dataclass(slots=True)
class _Fetched:
    fields: dict[str, Value] = field(default_factory=dict)
    gone: bool = False
    error: SourceError | None = None


class OmeClient:
    """An async client for one OME server: keep-alive, Basic auth, bounded concurrency.

    By default requests go through aiohttp, which ``bench/bench_poll.py`` measured at
    several times httpx's own async transport for thousands of small keep-alive GETs
    (aiohttp's C response parser and lighter per-request path). An injected httpx
    transport replaces it, so tests and benchmarks can still put ``httpx.MockTransport``
    or a recording transport in between; errors are classified the same way either way.
    """

    def __init__(
        self,
        server: ServerSpec,
        *,
        clock: Clock,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.server = server
        self.name = server.name
        self.server_clock = ServerClock()
        self._clock = clock
        self._base = server.url.rstrip("/")
        self._timeout = server.timeout_s
        # a whole poll shorter than one of its requests would make `timeout` meaningless
        self._poll_timeout = max(server.poll_timeout_s, server.timeout_s)
        # With one request in flight, two in a row: one slow stream stays its own error.
        self._breaker = max(2, server.max_in_flight)
        self._limit = asyncio.Semaphore(max(1, server.max_in_flight))
        self._secrets: tuple[str, ...] = ()
        headers = {"Accept": "application/json", "User-Agent": "omealert"}
        if server.access_token:
            encoded = base64.b64encode(server.access_token.encode()).decode("ascii")
            headers["Authorization"] = f"Basic {encoded}"
            self._secrets = (server.access_token, encoded)
        limit = max(1, server.max_in_flight)
        self._workers = limit
        self._routes: dict[Target, _Route | None] = {}
        self._routes_plan: PollPlan | None = None
        self._http: _Getter
        if transport is None:
            self._http = _AiohttpGetter(headers, limit, _tls(server), server.timeout_s)
        else:
            self._http = _HttpxGetter(headers, limit, transport, server.timeout_s)

    async def __aenter__(self) -> OmeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- one poll ---------------------------------------------------------------------------

    async def poll(self, plan: PollPlan) -> PollResult:
        """Poll the server once; never raises for anything the server does."""
        run = _Run(at=self._clock.now(), started=time.perf_counter())
        try:
            # Cancelling the poll cancels its requests; aiohttp closes their connections.
            async with asyncio.timeout(self._poll_timeout):
                result = await self._poll(plan, run)
        except _Failed as failed:
            result = self._failed(run, failed.error)
        except TimeoutError:  # requests' own timeouts are _Failed by now: this is the deadline
            result = self._failed(run, self._deadline_error(run))
        result.requests = run.requests
        result.duration = time.perf_counter() - run.started
        return result

    def _failed(self, run: _Run, error: SourceError) -> PollResult:
        return PollResult(
            server=self.name, at=run.at, server_now=self.server_clock.now(run.at), error=error
        )

    def _deadline_error(self, run: _Run) -> SourceError:
        reason = (
            f"the poll took longer than poll_timeout ({self._poll_timeout:g}s) and was abandoned"
        )
        if run.targets is None:
            reason += " while still listing vhosts, apps and streams"
        else:
            reason += f" with {run.fetched} of {run.targets} targets fetched"
        return self._error(SourceErrorKind.TIMEOUT, run.last_path, reason)

    async def _poll(self, plan: PollPlan, run: _Run) -> PollResult:
        root = Target(self.name)
        listed, gone = await self._discover(plan, run, root)
        wanted = {t: r for t, r in self._routes_for(plan, listed).items() if r is not None}
        run.targets = len(wanted)
        results = await _map_bounded(
            lambda t: self._fetch(run, t, wanted[t]), list(wanted), self._workers
        )
        fetched = dict(zip(wanted, results, strict=True))
        gone |= {t for t, got in fetched.items() if got.gone}
        if gone:
            # whatever ended during the poll is not listed, and neither is anything below it
            listed = {t for t in listed if not _under(t, gone)}
        counted = any(r.counts_streams for r in wanted.values())
        counts = _stream_counts(listed) if counted else {}

        result = PollResult(server=self.name, at=run.at, server_now=run.at, listed=listed)
        result.gone = gone
        freshest: datetime | None = None
        fields_of: dict[Target, dict[str, Value]] = {}
        for target, got in fetched.items():
            if got.gone:
                continue
            if got.error is not None:
                result.target_errors[target] = got.error
                continue
            if wanted[target].counts_streams:
                got.fields["streams"] = counts.get(target, 0)
            fields_of[target] = got.fields
            freshest = _max_time(freshest, got.fields)
        server_now = self.server_clock.update(
            run.at, None if freshest is None else freshest.timestamp(), run.date_offset
        )
        result.server_now = server_now
        result.samples = {t: Sample(t, f, run.at, server_now) for t, f in fields_of.items()}
        return result

    async def _discover(
        self, plan: PollPlan, run: _Run, root: Target
    ) -> tuple[set[Target], set[Target]]:
        """Walk the listings level by level, only where the plan leads."""
        listed: set[Target] = {root}
        gone: set[Target] = set()
        level = [root]
        if not plan.explores(root) and Source.STATS not in (plan.sources(root) or ()):
            # Nothing to fetch: list the vhosts anyway, as a check that the API answers.
            listed.update(_child(root, n) for n in await self._list(run, root) or ())
            return listed, gone
        while level:
            parents = [t for t in level if t.scope is not Scope.STREAM and plan.explores(t)]
            children = await _map_bounded(lambda t: self._list(run, t), parents, self._workers)
            level = []
            for parent, names in zip(parents, children, strict=True):
                if names is None:  # vanished between its parent's listing and its own
                    listed.discard(parent)
                    gone.add(parent)
                    continue
                kids = [_child(parent, n) for n in names]
                listed.update(kids)
                level.extend(kids)
        return listed, gone

    async def _list(self, run: _Run, target: Target) -> list[str] | None:
        path = _path("/v1", target) + ("/vhosts", "/apps", "/streams")[len(target.names)]
        try:
            payload = await self._get(run, path)
        except _Missing:
            return None
        except _Failed as failed:
            failed.server_wide = True  # a partial listing would make targets look absent
            raise
        if not isinstance(payload, list) or not all(isinstance(n, str) for n in payload):
            raise _Failed(
                self._error(SourceErrorKind.BAD_RESPONSE, path, "expected a list of names"),
                server_wide=True,
            )
        return list(dict.fromkeys(payload))

    def _routes_for(self, plan: PollPlan, listed: Iterable[Target]) -> dict[Target, _Route | None]:
        """What to fetch of each listed target (``None``: nothing), kept from poll to poll.

        The same streams come back every poll, and matching them against every rule's globs
        and quoting their URLs again cost more than a dictionary lookup. The cache holds only
        what the latest listing showed, and starts over when the plan changes.
        """
        if plan is not self._routes_plan:
            self._routes, self._routes_plan = {}, plan
        known = self._routes
        routes: dict[Target, _Route | None] = {}
        for target in listed:
            route = known.get(target, _NO_ROUTE)
            routes[target] = self._route(plan, target) if route is _NO_ROUTE else route
        self._routes = routes
        return routes

    def _route(self, plan: PollPlan, target: Target) -> _Route | None:
        sources = plan.sources(target)
        if sources is None:
            return None
        stream = target.scope is Scope.STREAM
        return _Route(
            stats=self._stats_path(target) if Source.STATS in sources else None,
            info=_path("/v1", target) if Source.INFO in sources and stream else None,
            counts_streams=Source.LISTING in sources and not stream,
        )

    async def _fetch(self, run: _Run, target: Target, route: _Route) -> _Fetched:
        """Stats and/or info of one target; failures of its own requests are kept on it."""
        jobs: list[Coroutine[Any, Any, dict[str, Value]]] = []
        if route.stats is not None:
            jobs.append(self._read(run, route.stats, normalize_stats))
        if route.info is not None:
            jobs.append(self._read(run, route.info, normalize_info))
        got = _Fetched()
        try:
            if len(jobs) == 1:  # the common case needs no task group of its own
                got.fields = await jobs[0]
            else:
                for part in await _all(jobs):
                    got.fields.update(part)
        except _Missing as missing:
            if target.scope is Scope.SERVER:
                error = self._error(SourceErrorKind.NOT_FOUND, "/v1/stats/current", str(missing))
                raise _Failed(error, server_wide=True) from None
            got.gone = True
        except _Failed as failed:
            if failed.server_wide or target.scope is Scope.SERVER:
                failed.server_wide = True
                raise
            got.error = failed.error
        run.fetched += 1
        return got

    def _stats_path(self, target: Target) -> str:
        version = self.server.api_version
        if target.scope is Scope.SERVER:
            version = "v1"  # Enterprise documents no server-wide /v2 stats
        return _path(f"/{version}/stats/current", target)

    async def _read(
        self, run: _Run, path: str, normalize: Callable[[object], dict[str, Value]]
    ) -> dict[str, Value]:
        payload = await self._get(run, path)
        try:
            fields = normalize(payload)
        except NormalizeError as exc:
            reason = f"a field of the wrong type or shape: {exc}"
            raise _Failed(self._error(SourceErrorKind.BAD_RESPONSE, path, reason)) from None
        return fields

    async def _get(self, run: _Run, path: str) -> Any:
        """GET ``path`` and return the ``response`` of OME's envelope, or raise."""
        async with self._limit:
            run.requests += 1
            run.last_path = path
            status, headers, body = await self._send(run, path)
        if run.date_offset is None and "date" in headers:
            self._note_date(run, headers)
        envelope: Any = None
        try:
            envelope = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            envelope = None
        message = ""
        if isinstance(envelope, dict) and isinstance(envelope.get("message"), str):
            message = self._scrub(envelope["message"])[:200]
        if status in (401, 403):
            raise _Failed(self._unauthorized(path, status, message), server_wide=True)
        if status == 404:
            if _MISSING.search(message):
                raise _Missing(message)
            reason = f"HTTP 404 {message or 'without an OME message'}: wrong URL or api_version?"
            raise _Failed(self._error(SourceErrorKind.NOT_FOUND, path, reason), server_wide=True)
        if status >= 500:
            reason = f"HTTP {status}" + (f": {message}" if message else "")
            if envelope is None:  # e.g. a proxy's error page in front of OME
                ctype = headers.get("content-type", "no content type")
                reason += f", a {ctype} body from {headers.get('server', 'an unnamed server')}"
            raise _Failed(self._error(SourceErrorKind.SERVER_ERROR, path, reason))
        if status != 200:
            reason = f"unexpected HTTP {status}" + (f": {message}" if message else "")
            raise _Failed(self._error(SourceErrorKind.BAD_RESPONSE, path, reason))
        if envelope is None:
            ctype = headers.get("content-type", "no content type")
            reason = f"the answer is not JSON ({ctype}, {len(body)} bytes)"
            raise _Failed(self._error(SourceErrorKind.BAD_RESPONSE, path, reason))
        code = envelope.get("statusCode") if isinstance(envelope, dict) else None
        if not isinstance(code, int) or isinstance(code, bool) or "response" not in envelope:
            reason = "the answer is JSON but not OME's {statusCode, message, response} envelope"
            raise _Failed(self._error(SourceErrorKind.BAD_RESPONSE, path, reason))
        if code != 200:
            reason = f"HTTP 200 but the body says statusCode {code}"
            raise _Failed(self._error(SourceErrorKind.BAD_RESPONSE, path, reason))
        return envelope["response"]

    async def _send(self, run: _Run, path: str) -> _Answer:
        """One GET within the timeout; transport failures become ``_Failed``."""
        try:
            answer = await self._http.get(self._base + path)
        except TimeoutError:
            run.timed_out += 1
            reason = f"no complete answer within {self._timeout:g}s"
            raise self._unanswered(run, SourceErrorKind.TIMEOUT, path, reason) from None
        except _TooLarge:
            reason = f"the answer is larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB"
            raise _Failed(self._error(SourceErrorKind.BAD_RESPONSE, path, reason)) from None
        except _NoConnection as exc:
            if exc.certificate is not None:
                detail = self._certificate_problem(exc.certificate)
            else:
                detail = self._scrub(exc.detail) or "refused"
            reason = f"cannot connect to {self._base}: {detail}"
            raise _Failed(
                self._error(SourceErrorKind.UNREACHABLE, path, reason), server_wide=True
            ) from None
        except _Broken as exc:
            detail = self._scrub(exc.detail)
            if exc.answered:
                reason = f"the answer was cut off: {detail}"
                raise _Failed(self._error(SourceErrorKind.BAD_RESPONSE, path, reason)) from None
            run.dropped += 1
            reason = f"the connection closed without an answer: {detail}"
            raise self._unanswered(run, SourceErrorKind.UNREACHABLE, path, reason) from None
        run.timed_out = run.dropped = 0
        return answer

    def _unanswered(self, run: _Run, kind: SourceErrorKind, path: str, reason: str) -> _Failed:
        """A request that got no answer fails itself, until ``max_in_flight`` in a row did:
        then every request slot was taken by one that hung, the API as a whole is not
        answering, and the poll stops. Waiting out ``timeout`` for thousands of streams in
        turn would hold up the poll, and with it every tick, for minutes."""
        unanswered = run.timed_out + run.dropped
        if unanswered < self._breaker:
            return _Failed(self._error(kind, path, reason))
        if not run.dropped:
            reason = f"{unanswered} requests in a row timed out after {self._timeout:g}s"
        elif not run.timed_out:
            reason = f"{unanswered} requests in a row closed without an answer"
        else:
            reason = (
                f"{unanswered} requests in a row got no answer ({run.timed_out} timed out "
                f"after {self._timeout:g}s, {run.dropped} closed without one)"
            )
        if run.timed_out:
            kind, reason = SourceErrorKind.TIMEOUT, reason + "; OME's API is hanging"
        else:
            kind, reason = SourceErrorKind.UNREACHABLE, reason + "; OME's API is not answering"
        return _Failed(self._error(kind, path, reason), server_wide=True)

    def _certificate_problem(self, error: ssl.SSLCertVerificationError) -> str:
        """What failed in the certificate check, and the setting that fixes it."""
        what = error.verify_message or error.reason or str(error)
        if error.verify_code in _NAME_MISMATCH:
            hint = "use the host name the certificate is for in url:, or verify_tls: false"
        elif error.verify_code == _CERT_HAS_EXPIRED:
            hint = "renew OME's certificate, or set verify_tls: false"
        elif self.server.ca_file:
            hint = (
                "ca_file: holds no CA that signed it; set ca_file: to your CA, or verify_tls: false"
            )
        else:
            hint = "set ca_file: to your CA, or verify_tls: false"
        return f"certificate verify failed: {what}; {hint}"

    def _note_date(self, run: _Run, headers: Mapping[str, str]) -> None:
        try:
            date = parsedate_to_datetime(headers["date"]).timestamp()
        except (TypeError, ValueError, IndexError):
            return  # an unreadable Date is no evidence; fall back to the timestamps
        watcher = run.at + (time.perf_counter() - run.started)
        run.date_offset = date - watcher

    def _unauthorized(self, path: str, status: int, message: str) -> SourceError:
        if not self.server.access_token:
            reason = "no access_token is configured for this server, and OME requires one"
        else:
            reason = "the access_token configured for this server is wrong: OME refused it"
        reason += f" (HTTP {status}" + (f": {message})" if message else ")")
        return self._error(SourceErrorKind.UNAUTHORIZED, path, reason)

    def _error(self, kind: SourceErrorKind, path: str, reason: str) -> SourceError:
        return SourceError(self.name, kind, path, self._scrub(reason))

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


async def poll_all(clients: Sequence[OmeClient], plans: Mapping[str, PollPlan]) -> list[PollResult]:
    """Poll every server at once; a server without a plan is only checked for an answer."""
    return await _all(c.poll(plans.get(c.name) or PollPlan(c.name)) for c in clients)


# -- helpers ----------------------------------------------------------------------------------

#: Characters left as they are in a path segment; OME names needing escapes are unreachable.
_SAFE = "!$&'()*+,;=:@-._~"


class _TooLarge(Exception):
    pass


class _NoConnection(Exception):
    """The server could not be reached at all (refused, unresolvable, TLS failed);
    ``certificate`` when its certificate failed verification."""

    def __init__(
        self, detail: str, certificate: ssl.SSLCertVerificationError | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.certificate = certificate


#: OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH
_NAME_MISMATCH = frozenset({62, 64})
#: OpenSSL's X509_V_ERR_CERT_HAS_EXPIRED
_CERT_HAS_EXPIRED = 10


def _certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind ``exc``, if that is what it is."""
    seen: BaseException | None = exc
    for _ in range(8):  # exceptions wrap each other a few levels deep, never in a cycle
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class _Broken(Exception):
    """The exchange broke: before any answer, or (``answered``) partway through the body."""

    def __init__(self, detail: str, *, answered: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.answered = answered


class _Answer(NamedTuple):
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes


class _Getter(Protocol):
    """One HTTP stack under the client: a GET of an absolute URL, and closing.

    ``get`` raises ``TimeoutError`` when the whole exchange, body included, takes longer
    than the server's ``timeout``; the stack enforces it, since a second timer per request
    around it would cost as much again.
    """

    async def get(self, url: str) -> _Answer: ...

    async def aclose(self) -> None: ...


def _tls(server: ServerSpec) -> ssl.SSLContext | bool:
    if server.ca_file:
        return ssl.create_default_context(cafile=server.ca_file)
    return server.verify_tls


class _AiohttpGetter:
    """aiohttp with one keep-alive pool of ``limit`` connections.

    The session is opened on first use because aiohttp binds it to the running event loop,
    and an ``OmeClient`` may be built before the loop that polls with it is running.
    """

    def __init__(
        self, headers: Mapping[str, str], limit: int, tls: ssl.SSLContext | bool, timeout: float
    ) -> None:
        self._headers = dict(headers)
        self._limit = limit
        self._tls = tls
        # total: connecting, sending and reading the whole body. aiohttp rounds deadlines
        # of 5 s and more up to a whole second unless told otherwise.
        self._timeout = aiohttp.ClientTimeout(total=timeout, ceil_threshold=float("inf"))
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._limit, ssl=self._tls)
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            timeout=self._timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self._session

    async def get(self, url: str) -> _Answer:
        session = self._session or self._open()
        try:
            # encoded=True: the path is quoted already; yarl must not quote it again
            async with session.get(URL(url, encoded=True), allow_redirects=False) as response:
                try:
                    body = await _read_aiohttp(response)
                except TimeoutError:
                    raise
                except aiohttp.ClientError as exc:
                    raise _Broken(str(exc) or type(exc).__name__, answered=True) from None
                return _Answer(response.status, response.headers, body)
        except TimeoutError:  # aiohttp's ServerTimeoutError is a ClientError too
            raise TimeoutError from None
        except aiohttp.ClientConnectorError as exc:
            # a failed certificate check is a ClientConnectorCertificateError carrying it
            cause = getattr(exc, "certificate_error", None) or exc
            raise _NoConnection(str(exc), _certificate_error(cause)) from None
        except aiohttp.ClientError as exc:
            raise _Broken(str(exc) or type(exc).__name__, answered=False) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_aiohttp(response: aiohttp.ClientResponse) -> bytes:
    length = response.content_length
    if length is not None:
        if length > MAX_BODY_BYTES:
            raise _TooLarge
        return await response.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class _HttpxGetter:
    """httpx over an injected transport (a mock, a recorder, or httpx's own pool)."""

    def __init__(
        self,
        headers: Mapping[str, str],
        limit: int,
        transport: httpx.AsyncBaseTransport,
        timeout: float,
    ) -> None:
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            headers=dict(headers),
            timeout=None,  # asyncio.timeout in get() covers the whole exchange
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
            transport=transport,
            follow_redirects=False,
        )

    async def get(self, url: str) -> _Answer:
        answered = False
        try:
            async with asyncio.timeout(self._timeout), self._http.stream("GET", url) as response:
                answered = True
                body = await _read_httpx(response)
                return _Answer(response.status_code, response.headers, body)
        except httpx.ConnectError as exc:
            raise _NoConnection(str(exc), _certificate_error(exc)) from None
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.HTTPError as exc:
            raise _Broken(str(exc) or type(exc).__name__, answered=answered) from None

    async def aclose(self) -> None:
        await self._http.aclose()


async def _read_httpx(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def _map_bounded(
    job: Callable[[X], Coroutine[Any, Any, T]], items: Sequence[X], limit: int
) -> list[T]:
    """``job(item)`` for every item, at most ``limit`` at a time, results in order; failures
    as ``_all``.

    ``limit`` workers take the items in turn: one task per item, all but ``limit`` of them
    waiting on a semaphore, costs a 10,000-stream poll far more CPU.
    """
    results: list[Any] = [None] * len(items)
    queue = iter(range(len(items)))

    async def worker() -> None:
        for index in queue:
            results[index] = await job(items[index])

    await _all(worker() for _ in range(min(limit, len(items))))
    return cast(list[T], results)


async def _all(jobs: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run ``jobs`` concurrently; the first ``_Failed``/``_Missing`` cancels the rest."""
    tasks: list[asyncio.Task[T]] = []
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(j) for j in jobs]
    except BaseExceptionGroup as eg:
        for exc in _leaves(eg):
            if isinstance(exc, _Failed) and exc.server_wide:
                raise exc from None
        for kind in (_Missing, _Failed):  # a target that is gone is not also broken
            for exc in _leaves(eg):
                if isinstance(exc, kind):
                    raise exc from None
        raise
    return [t.result() for t in tasks]


def _leaves(eg: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in eg.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


def _child(parent: Target, name: str) -> Target:
    v, a, _ = (*parent.names, None, None, None)[:3]
    if v is None:
        return Target(parent.server, name)
    if a is None:
        return Target(parent.server, v, name)
    return Target(parent.server, v, a, name)


def _path(prefix: str, target: Target) -> str:
    """``prefix/vhosts/{v}/apps/{a}/streams/{s}`` down to the target's level; no trailing slash."""
    segments = zip(("vhosts", "apps", "streams"), target.names, strict=False)
    return prefix + "".join(f"/{kind}/{_quote(name)}" for kind, name in segments)


@functools.lru_cache(maxsize=1 << 16)
def _quote(name: str) -> str:
    """A name as a path segment; cached, since every poll quotes the same names again."""
    return quote(name, safe=_SAFE)


def _under(target: Target, gone: set[Target]) -> bool:
    """Whether ``target`` or one of its ancestors is in ``gone``."""
    node: Target | None = target
    while node is not None:
        if node in gone:
            return True
        node = node.parent()
    return False


def _stream_counts(listed: Iterable[Target]) -> dict[Target, int]:
    counts: dict[Target, int] = {}
    for target in listed:
        if target.scope is Scope.STREAM:
            parent = target.parent()
            while parent is not None:
                counts[parent] = counts.get(parent, 0) + 1
                parent = parent.parent()
    return counts


def _max_time(current: datetime | None, fields: Mapping[str, Value]) -> datetime | None:
    for path in _LIVE_TIMES:
        value = fields.get(path)
        if isinstance(value, datetime) and (current is None or value > current):
            current = value
    return current
