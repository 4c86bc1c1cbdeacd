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

A vhost or app that vanishes with everything under it is ``unconfirmed`` for one poll: for
30-200 ms after SIGTERM OME answers ``/v1/vhosts`` with ``200 []`` and 404 below it, which
looks like every stream ending, so only the next poll may say they are gone. What OME
printed but has not measured (a new stream's first seconds, garbage, the window after an
input gap) is left out of the samples: ``ome.unmeasured``.

A hanging API is the server's fault, not each stream's, so a poll is bounded twice: when
``max_in_flight`` requests in a row get no answer (timed out, or the connection closed
without one) the poll stops with a server-level error, and the whole poll is abandoned
after the server's ``poll_timeout``. Either way no target of that server changes state.

The server's clock: rules measure the age of OME's timestamps (``stale``, ``age()``), and
the watcher's clock may be off. See ``ServerClock`` for how it is estimated.

This module runs the poll. What it fetches is planned in ``ome.plan``; each request and
what its answer means is ``ome.api``, over the HTTP stacks in ``ome.http``; the server's
clock is ``serverclock``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..clock import Clock
from ..errors import SourceError, SourceErrorKind
from ..lang.fields import Source
from ..model import PollResult, Sample, Scope, Target, Value, stream_counts, under
from ..rules import ServerSpec
from .api import Failed, Missing, OmeApi, PollRun
from .http import Getter
from .normalize import NormalizeError, normalize_info, normalize_stats
from .outputs import Output, normalize_outputs
from .plan import PollPlan, Route, Routes, api_path, output_path
from .queues import QUEUES_PATH, parse_queues, queue_samples
from .serverclock import ServerClock, freshest_live_time
from .tasks import map_bounded, run_all
from .thumbnails import Thumbnails
from .unmeasured import Unmeasured
from .version import BEFORE_VERSION_ENDPOINT, VersionWatch, parse_version

if TYPE_CHECKING:
    import httpx

__all__ = ["OmeClient", "poll_all"]


_LEVEL = {"virtual host": 1, "application": 2}
#: the most vhosts, apps and streams one server's listings may name (omealert is built for
#: 10,000 streams): past it a poll would run for minutes and memory grow with what OME says
MAX_TARGETS = 100_000
#: the longest name read; OME's are short, and one name is carried into every alert, log
#: line and message about its target
MAX_NAME_CHARS = 1024


@dataclass(slots=True)
class _Fetched:
    fields: dict[str, Value] = field(default_factory=dict)
    gone: bool = False
    #: what the 404 said is missing: the target itself, or its vhost or app
    gone_root: Target | None = None
    error: SourceError | None = None


class OmeClient:
    """An async client for one OME server: keep-alive, Basic auth, bounded concurrency.

    Requests go through ``OmeApi``: ``ome.wire`` by default, or the injected ``getter`` (what
    ``record`` and ``replay`` use), or an httpx ``transport`` (tests' mocks); not both.
    """

    def __init__(
        self,
        server: ServerSpec,
        *,
        clock: Clock,
        transport: httpx.AsyncBaseTransport | None = None,
        getter: Getter | None = None,
        ask_version: bool = False,
    ) -> None:
        self.server = server
        #: whether polls ask ``/v1/version`` (once in a while): the watcher and ``check`` do
        self._ask = ask_version
        self.name = server.name
        self.server_clock = ServerClock()
        self._clock = clock
        # a whole poll shorter than one of its requests would make `timeout` meaningless
        self.poll_timeout = max(server.poll_timeout_s, server.timeout_s)
        self.workers = max(1, server.max_in_flight)
        self._api = OmeApi(server, transport, getter=getter)
        self.routes = Routes(server.api_version)
        #: vhosts and apps the last successful poll listed (None before the first, or
        #: after the plan changed): a poll missing one of them awaits confirmation
        self._containers: set[Target] | None = None
        self._containers_plan: PollPlan | None = None
        #: leaves out what OME has not measured; remembers whose input was stale
        self.unmeasured = Unmeasured()
        #: the pushes/records each app's list showed last: kept, not resolved, when the
        #: list cannot be read
        self._outputs_seen: dict[tuple[Target, Scope], set[Target]] = {}
        #: the server's OME release, asked for once in a while
        self.version = VersionWatch(self.name)
        #: the queues the last poll read, kept as they were while ``internals/queues`` fails
        self._queues: set[Target] = set()
        spec = server.thumbnails if getter is None else None  # picture.*: live, not awaited
        self.thumbnails = Thumbnails(server, spec) if spec else None

    async def __aenter__(self) -> OmeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._api.aclose()
        if self.thumbnails:
            await self.thumbnails.aclose()

    # -- one poll ---------------------------------------------------------------------------

    async def poll(self, plan: PollPlan) -> PollResult:
        """Poll the server once; never raises for anything the server does."""
        run = PollRun(at=self._clock.now(), started=time.perf_counter())
        try:
            # Cancelling the poll cancels its requests, which drop their connections.
            async with asyncio.timeout(self.poll_timeout):
                result = await self._poll(plan, run)
                await self._ask_version(plan, run)
                if plan.reads_queues:
                    await self._read_queues(run, result)
        except Failed as failed:
            result = self._failed(run, failed.error)
        except TimeoutError:  # requests' own timeouts are Failed by now: this is the deadline
            result = self._failed(run, self._deadline_error(run))
        if result.error is not None:
            self.version.lost()  # it may come back restarted, on another release
        result.ome_version = self.version.version
        if result.ome_version is not None and plan.reads_version:
            for sample in result.samples.values():
                sample.fields["version"] = result.ome_version
        if self.thumbnails and result.error is None:
            self.thumbnails.apply(plan, result, run.at)
        result.requests = run.requests
        result.duration = time.perf_counter() - run.started
        return result

    async def _read_queues(self, run: PollRun, result: PollResult) -> None:
        """The internal queues into the poll; a failure keeps the last ones as they were."""
        error: SourceError | None = None
        try:
            found = parse_queues(await self._api.get(run, QUEUES_PATH), self.version.version)
        except Missing:
            found = []
        except Failed as failed:
            if failed.error.kind is not SourceErrorKind.NOT_FOUND:  # 404: OME < 0.15.14
                error = failed.error
            found = []
        except NormalizeError as exc:
            error = self._bad_shape(QUEUES_PATH, exc)
            found = []
        if error is not None:
            result.listed |= self._queues
            result.target_errors.update(dict.fromkeys(self._queues, error))
            return
        samples = queue_samples(self.name, found, run.at, result.server_now)
        self._queues = set(samples)
        result.samples.update(samples)
        result.listed |= self._queues

    async def _ask_version(self, plan: PollPlan, run: PollRun) -> None:
        """``GET /v1/version`` when due (``ome.version``); its failure fails nothing else."""
        asked = self._ask or plan.reads_version or plan.reads_queues  # queues: per release
        if not asked or not self.version.due(run.at):
            return
        try:
            found = parse_version(await self._api.get(run, "/v1/version"))
        except Failed as failed:
            missing = failed.error.kind is SourceErrorKind.NOT_FOUND
            found = BEFORE_VERSION_ENDPOINT if missing else None
        except Missing:
            found = BEFORE_VERSION_ENDPOINT
        self.version.learnt(found, run.at)

    def _failed(self, run: PollRun, error: SourceError) -> PollResult:
        self.unmeasured.failed()  # the next answer may straddle a gap in OME itself
        return PollResult(
            server=self.name, at=run.at, server_now=self.server_clock.now(run.at), error=error
        )

    def _deadline_error(self, run: PollRun) -> SourceError:
        reason = (
            f"the poll took longer than poll_timeout ({self.poll_timeout:g}s) and was abandoned"
        )
        if run.targets is None:
            reason += " while still listing vhosts, apps and streams"
        else:
            reason += f" with {run.fetched} of {run.targets} targets fetched"
        return self._api.error(SourceErrorKind.TIMEOUT, run.last_path, reason)

    async def _poll(self, plan: PollPlan, run: PollRun) -> PollResult:
        root = Target(self.name)
        listed, gone = await self._discover(plan, run, root)
        wanted = {t: r for t, r in self.routes.for_listing(plan, listed).items() if r is not None}
        run.targets = len(wanted)
        results = await map_bounded(
            lambda t: self.fetch_target(run, t, wanted[t]), list(wanted), self.workers
        )
        fetched = dict(zip(wanted, results, strict=True))
        gone |= {got.gone_root or t for t, got in fetched.items() if got.gone}
        if gone:
            # whatever ended during the poll is not listed, and neither is anything below it
            listed = {t for t in listed if not under(t, gone)}
        unconfirmed = self._vanished(plan, listed)
        counted = any(r.counts_streams for r in wanted.values())
        counts = stream_counts(listed) if counted else {}

        result = PollResult(server=self.name, at=run.at, server_now=run.at, listed=listed)
        result.gone = gone
        result.unconfirmed = unconfirmed
        freshest: datetime | None = None
        fields_of: dict[Target, dict[str, Value]] = {}
        for target, got in fetched.items():
            if got.gone:
                continue
            if got.error is not None:
                result.target_errors[target] = got.error
                continue
            if wanted[target].counts_streams and not _count_unknown(target, unconfirmed):
                got.fields["streams"] = counts.get(target, 0)
            fields_of[target] = got.fields
            freshest = freshest_live_time(freshest, got.fields)
        server_now = self.server_clock.update(
            run.at, None if freshest is None else freshest.timestamp(), run.date_offset
        )
        result.server_now = server_now
        result.dropped = self.unmeasured.drop(
            fields_of, lambda t: _sources(wanted[t]), server_now, run.at
        )
        result.samples = {t: Sample(t, f, run.at, server_now) for t, f in fields_of.items()}
        await self._read_outputs(plan, run, result)
        return result

    async def _read_outputs(self, plan: PollPlan, run: PollRun, result: PollResult) -> None:
        """Each listed app's ``:pushes``/``:records``, once per poll, where a rule reads them.

        Their targets join ``listed`` and ``samples``; a 404 (no Push or File publisher)
        is an app without any; a list that fails keeps the outputs it showed last."""
        jobs = [
            (app, scope)
            for app in result.listed
            if app.scope is Scope.APP
            for scope in sorted(plan.outputs(app))
        ]
        if not jobs:
            return
        live: dict[Target, set[str]] = {}
        for t in result.listed:
            if t.scope is Scope.STREAM and t.stream is not None:
                live.setdefault(Target(t.server, t.vhost, t.app), set()).add(t.stream)

        async def read(job: tuple[Target, Scope]) -> list[Output] | SourceError:
            app, scope = job
            path = output_path(app, scope)
            try:
                payload = await self._api.get(run, path, absent_ok=True)
                return normalize_outputs(scope, payload, live.get(app, set()))
            except Missing:
                return []
            except NormalizeError as exc:
                return self._bad_shape(path, exc)
            except Failed as failed:
                if failed.server_wide:
                    raise
                return failed.error

        answers = await map_bounded(read, jobs, self.workers)
        seen: dict[tuple[Target, Scope], set[Target]] = {}
        for (app, scope), got in zip(jobs, answers, strict=True):
            if isinstance(got, SourceError):
                for target in self._outputs_seen.get((app, scope), ()):
                    result.listed.add(target)
                    result.target_errors[target] = got
                seen[(app, scope)] = self._outputs_seen.get((app, scope), set())
                continue
            targets = seen[(app, scope)] = set()
            for item in got:
                target = Target(app.server, app.vhost, app.app, item.stream, scope.value, item.leaf)
                targets.add(target)
                result.listed.add(target)
                result.samples[target] = Sample(
                    target, item.fields, run.at, result.server_now, item.labels
                )
        self._outputs_seen = seen

    def _vanished(self, plan: PollPlan, listed: set[Target]) -> set[Target]:
        """The highest vhosts and apps the previous poll listed that this one does not.

        OME's shutdown window (``/v1/vhosts`` answering ``200 []``, 404 below it) and a
        vhost or app really removed look alike for one poll; the next one tells them apart,
        so the engine keeps everything under these as it is until then.
        """
        containers = {t for t in listed if t.stream is None and t.vhost is not None}
        previous = self._containers if plan is self._containers_plan else None
        self._containers, self._containers_plan = containers, plan
        if previous is None:
            # Nothing to compare with (the first poll, a new plan): a server without a
            # single vhost is OME's shutdown window far more often than its config.
            return set() if containers else {Target(self.name)}
        vanished = previous - containers
        return {t for t in vanished if t.parent() not in vanished}

    async def _discover(
        self, plan: PollPlan, run: PollRun, root: Target
    ) -> tuple[set[Target], set[Target]]:
        """Walk the listings level by level, only where the plan leads."""
        listed: set[Target] = {root}
        gone: set[Target] = set()
        level = [root]
        if not plan.explores(root) and Source.STATS not in (plan.sources(root) or ()):
            # Nothing to fetch: list the vhosts anyway, as a check that the API answers.
            listed.update(root.child(n) for n in await self.list_names(run, root) or ())
            return listed, gone
        while level:
            parents = [t for t in level if t.scope is not Scope.STREAM and plan.explores(t)]
            children = await map_bounded(lambda t: self.list_names(run, t), parents, self.workers)
            level = []
            for parent, names in zip(parents, children, strict=True):
                if names is None:  # vanished between its parent's listing and its own
                    listed.discard(parent)
                    gone.add(parent)
                    continue
                kids = [parent.child(n) for n in names]
                listed.update(kids)
                level.extend(kids)
                if len(listed) > MAX_TARGETS:
                    path = api_path("/v1", parent)
                    reason = f"the listings name more than {MAX_TARGETS:,} vhosts, apps and streams"
                    error = self._api.error(SourceErrorKind.BAD_RESPONSE, path, reason)
                    raise Failed(error, server_wide=True)
        return listed, gone

    async def list_names(self, run: PollRun, target: Target) -> list[str] | None:
        path = api_path("/v1", target) + ("/vhosts", "/apps", "/streams")[len(target.names)]
        try:
            payload = await self._api.get(run, path)
        except Missing:
            return None
        except Failed as failed:
            failed.server_wide = True  # a partial listing would make targets look absent
            raise
        if not isinstance(payload, list) or not all(isinstance(n, str) for n in payload):
            raise Failed(
                self._api.error(SourceErrorKind.BAD_RESPONSE, path, "expected a list of names"),
                server_wide=True,
            )
        longest = max(map(len, payload), default=0)
        if longest > MAX_NAME_CHARS:
            reason = f"a name of {longest:,} characters (at most {MAX_NAME_CHARS:,} are read)"
            raise Failed(
                self._api.error(SourceErrorKind.BAD_RESPONSE, path, reason), server_wide=True
            )
        return list(dict.fromkeys(payload))

    async def fetch_target(self, run: PollRun, target: Target, route: Route) -> _Fetched:
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
                for part in await run_all(jobs):
                    got.fields.update(part)
        except Missing as missing:
            if target.scope is Scope.SERVER:
                error = self._api.error(
                    SourceErrorKind.NOT_FOUND, "/v1/stats/current", str(missing)
                )
                raise Failed(error, server_wide=True) from None
            got.gone = True
            level = _LEVEL.get(missing.what, 3)
            if level < len(target.names):  # its vhost or app went away, with all under it
                got.gone_root = Target(target.server, *target.names[:level])
        except Failed as failed:
            if failed.server_wide or target.scope is Scope.SERVER:
                failed.server_wide = True
                raise
            got.error = failed.error
        run.fetched += 1
        return got

    async def _read(
        self, run: PollRun, path: str, normalize: Callable[[object], dict[str, Value]]
    ) -> dict[str, Value]:
        payload = await self._api.get(run, path)
        try:
            fields = normalize(payload)
        except NormalizeError as exc:
            raise Failed(self._bad_shape(path, exc)) from None
        return fields

    def _bad_shape(self, path: str, exc: NormalizeError) -> SourceError:
        """An answer that parsed but holds a field of the wrong type or shape."""
        reason = f"a field of the wrong type or shape: {exc}"
        return self._api.error(SourceErrorKind.BAD_RESPONSE, path, reason)


async def poll_all(clients: Sequence[OmeClient], plans: Mapping[str, PollPlan]) -> list[PollResult]:
    """Poll every server at once; a server without a plan is only checked for an answer."""
    return await run_all(c.poll(plans.get(c.name) or PollPlan(c.name)) for c in clients)


# -- helpers ----------------------------------------------------------------------------------


def _sources(route: Route) -> tuple[bool, bool]:
    return route.stats is not None, route.info is not None


def _count_unknown(target: Target, unconfirmed: set[Target]) -> bool:
    """Whether ``target`` is unconfirmed or above one that is: its stream count may be short."""
    return any(under(r, {target}) for r in unconfirmed)
