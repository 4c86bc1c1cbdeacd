"""Small builders shared by tests: rules and settings without YAML, polls without HTTP, and
one real poll through the client."""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omealert.clock import Clock
from omealert.errors import SourceError, SourceErrorKind
from omealert.lang.condition import compile_condition
from omealert.model import PollResult, Sample, Scope, Severity, Target, Value
from omealert.ome.client import OmeClient
from omealert.ome.plan import plan_polls
from omealert.rules import (
    ApiDownSpec,
    ChannelSpec,
    OnMissing,
    Rule,
    ServerSpec,
    Settings,
    TargetPattern,
)

if TYPE_CHECKING:
    import httpx


def rule(name: str, when: str, **kw: Any) -> Rule:
    scope = Scope(kw.pop("scope", "stream"))
    resolve = kw.pop("resolve_when", None)
    match = kw.pop("match", ())
    if isinstance(match, str):
        match = (match,)
    return Rule(
        name=name,
        scope=scope,
        patterns=tuple(TargetPattern(tuple(m.split("/"))) for m in match),
        when=compile_condition(when, scope),
        when_text=when,
        resolve_when=compile_condition(resolve, scope) if resolve else None,
        for_s=kw.pop("for_s", 0.0),
        keep_firing_for_s=kw.pop("keep_firing_for_s", 0.0),
        repeat_interval_s=kw.pop("repeat_interval_s", 3600.0),
        send_resolved=kw.pop("send_resolved", True),
        severity=Severity(kw.pop("severity", "warning")),
        labels=kw.pop("labels", {}),
        summary=kw.pop("summary", ""),
        description=kw.pop("description", ""),
        channels=tuple(kw.pop("channels", ())),
        on_missing=OnMissing(kw.pop("on_missing", "resolve")),
        group_by=tuple(kw.pop("group_by", ())),
        group_wait_s=kw.pop("group_wait_s", 0.0),
        **kw,
    )


def settings(*rules: Rule, **kw: Any) -> Settings:
    channels = kw.pop("channels", {})
    return Settings(
        path="test.yaml",
        servers=tuple(kw.pop("servers", (ServerSpec("origin", "http://127.0.0.1:1"),))),
        interval_s=kw.pop("interval_s", 10.0),
        rules=tuple(rules),
        channels={
            name: c if isinstance(c, ChannelSpec) else ChannelSpec(name, tuple(c))
            for name, c in channels.items()
        },
        api_down=kw.pop("api_down", ApiDownSpec(channels=tuple(kw.get("default_channels", ())))),
        **kw,
    )


def ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def poll(
    at: float,
    targets: dict[str, dict[str, Value]] | None = None,
    *,
    server: str = "origin",
    error: SourceErrorKind | None = None,
    gone: tuple[str, ...] = (),
    listed_extra: tuple[str, ...] = (),
    target_errors: tuple[str, ...] = (),
) -> PollResult:
    """A poll result as the client would build it; keys are ``vhost/app/stream`` names."""
    if error is not None:
        return PollResult(
            server, at, at, error=SourceError(server, error, "/v1/vhosts", "test outage")
        )
    result = PollResult(server, at, at)
    result.listed.add(Target(server))
    for names, fields in (targets or {}).items():
        target = _target(server, names)
        result.samples[target] = Sample(target, dict(fields), at, at)
        _list(result, target)
    for names in listed_extra:
        _list(result, _target(server, names))
    for names in gone:
        result.gone.add(_target(server, names))
    for names in target_errors:
        target = _target(server, names)
        _list(result, target)
        result.target_errors[target] = SourceError(
            server, SourceErrorKind.SERVER_ERROR, "/x", "500"
        )
    return result


def poll_once(
    server: ServerSpec,
    clock: Clock,
    rules: Sequence[Rule] = (),
    transport: httpx.AsyncBaseTransport | None = None,
) -> PollResult:
    """One poll of ``server`` through the real client, planned from ``rules``."""

    async def go() -> PollResult:
        async with OmeClient(server, clock=clock, transport=transport) as client:
            return await client.poll(plan_polls(rules, server.name))

    return asyncio.run(go())


def _target(server: str, names: str) -> Target:
    parts: list[str | None] = list(names.split("/")) if names else []
    parts += [None] * (3 - len(parts))
    return Target(server, parts[0], parts[1], parts[2])


def _list(result: PollResult, target: Target | None) -> None:
    while target is not None:
        result.listed.add(target)
        target = target.parent()


def run_async(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an ``async def`` test in a fresh event loop (no pytest plugin needed)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


REPO = Path(__file__).resolve().parent.parent


def bare_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Only what Python needs, homes inside ``tmp``, and ``extra``: no secret we did not put there.

    Commands run as subprocesses get this instead of the developer's environment, so a
    test that greps their output for secrets knows every secret they could have seen.
    """
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "USER": "tester",
        "LANG": "C.UTF-8",
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "PYTHONPATH": str(REPO),
        **extra,
    }


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` every 50 ms until it holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def in_child(fn: Callable[[], Any], seconds: float = 30.0, memory_mb: int | None = None) -> Any:
    """``fn()``'s result, computed in a forked child that is killed (by pid) if it hangs.

    A hang guard for work that must be bounded: a test built on it asks for an input where
    an unbounded version would run for minutes or allocate gigabytes, so a regression fails
    the test instead of stalling the suite or the machine. ``memory_mb`` caps what the child
    may allocate on top of what it inherits. Never a speed measurement (bench/ is).
    """
    import multiprocessing
    import resource
    import traceback

    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)

    def child() -> None:
        if memory_mb is not None:
            with open("/proc/self/statm") as statm:
                have = int(statm.read().split()[0]) * resource.getpagesize()
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            resource.setrlimit(resource.RLIMIT_AS, (have + memory_mb * 2**20, hard))
        try:
            send.send(("returned", fn()))
        except BaseException as exc:
            send.send(("raised", "".join(traceback.format_exception(exc))))

    proc = ctx.Process(target=child, daemon=True)
    proc.start()
    try:
        if not receive.poll(seconds):
            raise AssertionError(f"did not finish within {seconds} s")
        how, value = receive.recv()
        proc.join(5)
    finally:
        if proc.is_alive() and proc.pid is not None:
            os.kill(proc.pid, 9)
        proc.join()
    if how == "raised":
        raise AssertionError(f"raised in the child:\n{value}")
    return value


def finishes_within(seconds: float, fn: Callable[[], object]) -> bool:
    """Whether ``fn()`` returns (without raising) within ``seconds``, run by ``in_child``."""
    try:
        in_child(fn, seconds)
    except AssertionError:
        return False
    return True
