"""A scripted raw TCP server on 127.0.0.1 for HTTP client tests: byte-exact replies.

The simulator only ever answers well; the framing edge cases a client must survive (a body
in many segments, a close mid-answer, a reset, garbage, bytes nobody asked for) need a
server that says exactly the bytes a test scripts, when the test says so. Each accepted
connection runs the next script of the list (a connection beyond the list is closed at
once), and the server keeps a log per connection: the requests it read and whether the
client closed it. It runs in the test's own event loop, so no thread is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType


class Act(enum.Enum):
    #: read one request head (through the blank line); the script stops if the client closes
    READ = "read"
    #: close the connection in order (FIN); later steps are skipped
    CLOSE = "close"
    #: close the sending side only (FIN) and keep reading what the client sends
    HALF_CLOSE = "half_close"
    #: drop the connection with a TCP reset (RST); later steps are skipped
    RESET = "reset"


READ, CLOSE, HALF_CLOSE, RESET = Act.READ, Act.CLOSE, Act.HALF_CLOSE, Act.RESET


@dataclass(frozen=True)
class Trickle:
    """Send ``data`` ``size`` bytes at a time, letting the loop run between pieces so each
    piece reaches the client on its own."""

    data: bytes
    size: int = 7


@dataclass(frozen=True)
class Wait:
    """Hold the script until the test sets ``event``."""

    event: asyncio.Event


@dataclass(frozen=True)
class Mark:
    """Tell the test the script got this far."""

    event: asyncio.Event


Step = bytes | Act | Trickle | Wait | Mark


@dataclass
class ConnLog:
    """What one accepted connection saw."""

    requests: list[bytes] = field(default_factory=list)
    #: bytes the client sent after the script ended (or a request it broke off)
    extra: bytearray = field(default_factory=bytearray)
    #: set when the client closed (or reset) the connection
    closed_by_client: asyncio.Event = field(default_factory=asyncio.Event)
    #: set when the script closed or reset it
    closed_by_server: asyncio.Event = field(default_factory=asyncio.Event)


class WireServer:
    """``async with WireServer(script, ...) as server``: listening on ``server.url``."""

    def __init__(self, *scripts: Sequence[Step]) -> None:
        self._scripts = scripts
        self.connections: list[ConnLog] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def accepted(self) -> int:
        return len(self.connections)

    async def __aenter__(self) -> WireServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        log = ConnLog()
        index = len(self.connections)
        self.connections.append(log)
        script: Sequence[Step] = self._scripts[index] if index < len(self._scripts) else [CLOSE]
        try:
            for step in script:
                if not await self._step(step, reader, writer, log):
                    return
            await _read_until_closed(reader, log)
        except ConnectionError:
            log.closed_by_client.set()
        except asyncio.CancelledError:
            pass  # only the server's own exit cancels; ending quietly keeps 3.11's streams calm
        finally:
            if not writer.is_closing():
                writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _step(
        self,
        step: Step,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        log: ConnLog,
    ) -> bool:
        """Do one step; False when the connection is over."""
        if isinstance(step, bytes):
            writer.write(step)
            await writer.drain()
        elif isinstance(step, Trickle):
            for start in range(0, len(step.data), step.size):
                writer.write(step.data[start : start + step.size])
                await writer.drain()
                for _ in range(3):
                    await asyncio.sleep(0)
        elif isinstance(step, Wait):
            await step.event.wait()
        elif isinstance(step, Mark):
            step.event.set()
        elif step is READ:
            try:
                log.requests.append(await reader.readuntil(b"\r\n\r\n"))
            except asyncio.IncompleteReadError as exc:
                log.extra += exc.partial
                log.closed_by_client.set()
                return False
        elif step is HALF_CLOSE:
            writer.write_eof()
        elif step is CLOSE:
            writer.close()
            await writer.wait_closed()
            log.closed_by_server.set()
            return False
        else:
            assert step is RESET
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            log.closed_by_server.set()
            return False
        return True


async def _read_until_closed(reader: asyncio.StreamReader, log: ConnLog) -> None:
    while data := await reader.read(65536):
        log.extra += data
    log.closed_by_client.set()
