"""Fetch the thumbnails of streams a ``picture.*`` rule reads, on their own schedule.

A poll never waits for a thumbnail: ``Thumbnails.apply`` starts the fetches that are due
(each stream's at most once per ``every``, at most ``max_in_flight`` at once, as tasks of
their own over a connection pool of their own) and puts what the latest finished fetches
saw into the poll's samples. A slow or hanging thumbnail server delays only its own
fields. Bodies are capped at ``MAX_PICTURE_BYTES`` and decoded in a thread.

What OME answers (``../shared/ome-beyond-stats.md`` §6.1): a live stream's thumbnail
changes about once a second; a stalled input keeps answering 200 with the last image and no
caching header, so a still picture counts as frozen only while ``providers.totalBytesIn``
grows; a gone stream answers 404, which for a listed stream is ``picture.missing``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from dataclasses import dataclass, field

from ..errors import SourceError, SourceErrorKind
from ..model import PollResult, Scope, Target, Value
from ..rules import ServerSpec, ThumbnailSpec
from .http import Answer, Broken, Garbled, NoConnection, TooLarge, tls_context
from .picture import FROZEN_DISTANCE, MAX_PICTURE_BYTES, BadPicture, Picture, distance, inspect
from .plan import PollPlan, _quote
from .wire import WireGetter

__all__ = ["Thumbnails"]

log = logging.getLogger("omealert.ome")


@dataclass(slots=True)
class _Seen:
    """What the fetches of one stream's thumbnail have shown so far."""

    fetched_at: float | None = None  # when the latest fetch started
    checked_at: float = 0.0  # when the latest fetch that got an image started
    digest: bytes = b""
    changed_at: float = 0.0  # when the bytes last differed
    reference: int | None = None  # the hash the picture is compared with
    still_since: float = 0.0  # when the picture last moved beyond FROZEN_DISTANCE
    bytes_in: float | None = None  # providers.totalBytesIn at the latest poll
    moving_input_since: float | None = None  # input bytes grew at every poll since
    picture: Picture | None = None
    missing: bool = False
    error: SourceError | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Thumbnails:
    """One server's thumbnail fetches and what they showed, per stream."""

    def __init__(self, server: ServerSpec, spec: ThumbnailSpec) -> None:
        self.server = server.name
        self.spec = spec
        self._get = WireGetter(
            spec.url,
            {"Accept": "image/*", "User-Agent": "omealert"},
            spec.max_in_flight,
            tls_context(server),  # OME's publisher port: the same host, trusted the same way
            server.timeout_s,
            max_body=MAX_PICTURE_BYTES,
        )
        self._seen: dict[Target, _Seen] = {}
        self._in_flight = 0
        self.fetches = 0  # requests sent, for tests

    def apply(self, plan: PollPlan, result: PollResult, now: float) -> None:
        """Start the fetches due for the listed streams and add ``picture.*`` to samples."""
        wanted = [
            t
            for t in result.listed
            if t.scope is Scope.STREAM and self.spec.selects(t.names) and plan.reads_picture(t)
        ]
        for target in set(self._seen) - set(wanted):
            self._forget(target)
        due: list[tuple[float, Target, _Seen]] = []
        for target in wanted:
            seen = self._seen.setdefault(target, _Seen())
            sample = result.samples.get(target)
            if sample is not None:
                self._track_input(seen, sample.fields.get("providers.totalBytesIn"), now)
                sample.fields.update(self._fields(seen))
            last = seen.fetched_at
            if seen.task is None and (last is None or now - last >= self.spec.every_s):
                due.append((-math.inf if last is None else last, target, seen))
        # the longest-waiting first: with more streams due than slots, none is starved
        due.sort(key=lambda d: d[0])
        for _, target, seen in due[: max(0, self.spec.max_in_flight - self._in_flight)]:
            self._start(target, seen, now)

    @property
    def in_flight(self) -> int:
        """Fetches started and not yet answered."""
        return self._in_flight

    def error_of(self, target: Target) -> SourceError | None:
        """Why the latest fetch of ``target``'s thumbnail gave no picture, if it did not."""
        seen = self._seen.get(target)
        return None if seen is None else seen.error

    async def settled(self) -> None:
        """Wait for the fetches under way (tests, ``demo``); a poll never calls it."""
        tasks = [s.task for s in self._seen.values() if s.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        tasks = [s.task for s in self._seen.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._get.aclose()

    # -- per stream ---------------------------------------------------------------------

    def _forget(self, target: Target) -> None:
        seen = self._seen.pop(target)
        if seen.task is not None:
            seen.task.cancel()

    @staticmethod
    def _track_input(seen: _Seen, bytes_in: Value | None, now: float) -> None:
        grew = isinstance(bytes_in, int | float) and (
            seen.bytes_in is not None and bytes_in > seen.bytes_in
        )
        if not grew:
            seen.moving_input_since = None
        elif seen.moving_input_since is None:
            seen.moving_input_since = now
        seen.bytes_in = float(bytes_in) if isinstance(bytes_in, int | float) else None

    @staticmethod
    def _fields(seen: _Seen) -> dict[str, Value]:
        out: dict[str, Value] = {}
        if seen.fetched_at is None:
            return out
        out["picture.missing"] = seen.missing
        picture = seen.picture
        if picture is None or seen.missing:
            return out
        out["picture.luma"] = round(picture.luma, 2)
        out["picture.black"] = picture.black
        # durations run to the latest fetch that saw the picture: what is known, not guessed
        checked = seen.checked_at
        out["picture.age"] = max(0.0, checked - seen.changed_at)
        moving = seen.moving_input_since
        still = max(seen.still_since, moving) if moving is not None else checked
        out["picture.frozen_for"] = max(0.0, checked - still)
        return out

    def _start(self, target: Target, seen: _Seen, now: float) -> None:
        seen.fetched_at = now
        self._in_flight += 1
        seen.task = asyncio.create_task(self._fetch(target, seen, now))

    async def _fetch(self, target: Target, seen: _Seen, started: float) -> None:
        path = thumbnail_path(target, self.spec.extension)
        try:
            self.fetches += 1
            answer = await self._get.get(path)
            await self._take(seen, answer, path, started)
        except (TimeoutError, TooLarge, NoConnection, Broken, Garbled) as exc:
            seen.error = self._error(seen, _kind_of(exc), path, _reason(exc))
        finally:
            self._in_flight -= 1
            seen.task = None

    async def _take(self, seen: _Seen, answer: Answer, path: str, at: float) -> None:
        if answer.status == 404:
            seen.missing, seen.error = True, None
            return
        if answer.status != 200:
            kind = SourceErrorKind.SERVER_ERROR
            seen.error = self._error(seen, kind, path, f"HTTP {answer.status}")
            return
        seen.missing, seen.checked_at = False, at
        digest = hashlib.blake2b(answer.body, digest_size=16).digest()
        if digest == seen.digest and seen.picture is not None:
            seen.error = None
            return  # the same bytes: neither age nor the picture changed
        try:
            picture = await asyncio.to_thread(inspect, answer.body)
        except Exception as exc:  # a decoder's own failure too is the answer's fault, no crash
            reason = str(exc) if isinstance(exc, BadPicture) else type(exc).__name__
            seen.error = self._error(seen, SourceErrorKind.BAD_RESPONSE, path, reason)
            seen.picture, seen.digest = None, b""  # what it showed before is no value now
            return
        seen.digest, seen.changed_at, seen.picture, seen.error = digest, at, picture, None
        if seen.reference is None or distance(seen.reference, picture.dhash) > FROZEN_DISTANCE:
            seen.reference, seen.still_since = picture.dhash, at

    def _error(self, seen: _Seen, kind: SourceErrorKind, path: str, reason: str) -> SourceError:
        """The fetch's failure; logged when it starts or changes, not on every fetch."""
        error = SourceError(self.server, kind, f"{self.spec.url}{path}", reason)
        if seen.error is None or str(seen.error) != str(error):
            log.info("%s", error)
        return error


def thumbnail_path(target: Target, extension: str) -> str:
    """``/{app}/{stream}/thumb.jpg``: OME serves thumbnails below the app, not the vhost."""
    return f"/{_quote(target.names[1])}/{_quote(target.names[2])}/thumb.{extension}"


def _kind_of(exc: BaseException) -> SourceErrorKind:
    if isinstance(exc, TimeoutError):
        return SourceErrorKind.TIMEOUT
    if isinstance(exc, NoConnection):
        return SourceErrorKind.UNREACHABLE
    return SourceErrorKind.BAD_RESPONSE


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TooLarge):
        return f"more than {MAX_PICTURE_BYTES:,} bytes"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__
