"""Running a poll's requests concurrently: bounded fan-out, and one failure that wins.

Kept apart from ``client`` so the client reads as what it asks OME, not how it waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar, cast

from .api import Failed, Missing

__all__ = ["map_bounded", "run_all"]

T = TypeVar("T")
X = TypeVar("X")


async def map_bounded(
    job: Callable[[X], Coroutine[Any, Any, T]], items: Sequence[X], limit: int
) -> list[T]:
    """``job(item)`` for every item, at most ``limit`` at a time, results in order; failures
    as ``run_all``.

    ``limit`` workers take the items in turn: one task per item, all but ``limit`` of them
    waiting on a semaphore, costs a 10,000-stream poll far more CPU.
    """
    results: list[Any] = [None] * len(items)
    queue = iter(range(len(items)))

    async def worker() -> None:
        for index in queue:
            results[index] = await job(items[index])

    await run_all(worker() for _ in range(min(limit, len(items))))
    return cast(list[T], results)


async def run_all(jobs: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run ``jobs`` concurrently; the first ``Failed``/``Missing`` cancels the rest."""
    tasks: list[asyncio.Task[T]] = []
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(j) for j in jobs]
    except BaseExceptionGroup as eg:
        for exc in _leaves(eg):
            if isinstance(exc, Failed) and exc.server_wide:
                raise exc from None
        for kind in (Missing, Failed):  # a target that is gone is not also broken
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
