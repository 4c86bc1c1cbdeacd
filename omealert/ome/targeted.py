"""A targeted poll: the streams an OME event named, and their apps' listings, read at once.

OME's Alert module names the stream an event is about (``sourceUri``, or
``parentSourceUri`` for a transcoder's). Rather than poll the whole server for it, the
runner asks for just that: the stream listing of its app (so a stream created or deleted
is seen as the tick would see it), the app's stats where a rule reads them, and the
stream's own stats and info as the plan says. Nothing else is requested.

The result is a ``PollResult`` whose ``covers`` names the apps listed: the engine judges
only those apps and the streams directly in them on it (``PollResult.judges``), so every
other target keeps its state, and ``absent`` rules and ``on_missing`` see the fresh
listing of exactly those apps. An app whose listing answers 404 is ``unconfirmed`` (OME's
shutdown window looks the same), left to the next tick. A poll that fails as a whole
judges nothing, not even ``ome-api-down``: the ticks keep that verdict.

The client's memory of the whole server (the vhosts and apps it saw, the pushes, the
queues) is neither read nor changed here; what OME has not measured is left out as in a
full poll (``Unmeasured.drop(partial=True)``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping

from ..errors import SourceError, SourceErrorKind
from ..model import PollResult, Sample, Target, stream_counts, under
from .api import Failed, PollRun
from .client import OmeClient
from .plan import PollPlan, Route
from .tasks import map_bounded, run_all

__all__ = ["poll_streams", "poll_targeted"]


def apps_of(client: OmeClient, plan: PollPlan, streams: Collection[Target]) -> list[Target]:
    """The apps of ``streams`` that a rule looks into or at; the others cost no request."""
    apps = sorted({Target(t.server, t.vhost, t.app) for t in streams if t.app is not None})
    return [a for a in apps if plan.explores(a) or client.routes.route(plan, a) is not None]


async def poll_streams(
    client: OmeClient, plan: PollPlan, streams: Collection[Target], at: float
) -> PollResult | None:
    """Poll ``streams`` of ``client``'s server and list their apps; None: no rule reads them.

    Never raises for anything the server does; bounded by the server's ``poll_timeout``
    and ``max_in_flight`` like a full poll.
    """
    apps = apps_of(client, plan, streams)
    if not apps:
        return None
    run = PollRun(at=at, started=time.perf_counter())
    wanted = [t for t in streams if Target(t.server, t.vhost, t.app) in apps]
    try:
        async with asyncio.timeout(client.poll_timeout):
            result = await _poll(client, plan, run, apps, wanted)
    except Failed as failed:
        result = _failed(client, run, failed.error)
    except TimeoutError:
        reason = f"the targeted poll took longer than poll_timeout ({client.poll_timeout:g}s)"
        error = SourceError(client.name, SourceErrorKind.TIMEOUT, run.last_path, reason)
        result = _failed(client, run, error)
    result.covers = frozenset(apps)
    result.ome_version = client.version.version
    if result.ome_version is not None and plan.reads_version:
        for sample in result.samples.values():
            sample.fields["version"] = result.ome_version
    result.requests = run.requests
    result.duration = time.perf_counter() - run.started
    return result


async def poll_targeted(
    clients: Mapping[str, OmeClient],
    plans: Mapping[str, PollPlan],
    streams: Mapping[str, Collection[Target]],
    at: float,
) -> list[PollResult]:
    """``poll_streams`` for each server at once; servers no longer configured are skipped."""
    jobs = [
        poll_streams(clients[name], plans.get(name) or PollPlan(name), targets, at)
        for name, targets in streams.items()
        if name in clients and targets
    ]
    return [r for r in await run_all(jobs) if r is not None]


def _failed(client: OmeClient, run: PollRun, error: SourceError) -> PollResult:
    return PollResult(
        server=client.name, at=run.at, server_now=client.server_clock.now(run.at), error=error
    )


async def _poll(
    client: OmeClient, plan: PollPlan, run: PollRun, apps: list[Target], streams: list[Target]
) -> PollResult:
    listed: set[Target] = {Target(client.name)}
    unconfirmed: set[Target] = set()
    names = await map_bounded(lambda app: client.list_names(run, app), apps, client.workers)
    for app, found in zip(apps, names, strict=True):
        if found is None:  # its vhost or itself answered 404: the next tick confirms it
            unconfirmed.add(app)
            continue
        listed.update((Target(app.server, app.vhost), app))
        listed.update(app.child(n) for n in found)
    wanted: dict[Target, Route] = {}
    for target in (*apps, *streams):
        route = client.routes.route(plan, target) if target in listed else None
        if route is not None:
            wanted[target] = route
    results = await map_bounded(
        lambda t: client.fetch_target(run, t, wanted[t]), list(wanted), client.workers
    )
    fetched = dict(zip(wanted, results, strict=True))
    gone = {got.gone_root or t for t, got in fetched.items() if got.gone}
    if gone:
        listed = {t for t in listed if not under(t, gone)}
    server_now = client.server_clock.now(run.at)
    result = PollResult(server=client.name, at=run.at, server_now=server_now, listed=listed)
    result.gone, result.unconfirmed = gone, unconfirmed
    fields_of = {}
    for target, got in fetched.items():
        if got.gone:
            continue
        if got.error is not None:
            result.target_errors[target] = got.error
            continue
        if wanted[target].counts_streams:
            got.fields["streams"] = stream_counts(listed).get(target, 0)  # only apps count here
        fields_of[target] = got.fields
    result.dropped = client.unmeasured.drop(
        fields_of,
        lambda t: (wanted[t].stats is not None, wanted[t].info is not None),
        server_now,
        partial=True,
    )
    result.samples = {t: Sample(t, f, run.at, server_now) for t, f in fields_of.items()}
    return result
