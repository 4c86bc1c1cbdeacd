"""One evaluating process per state file.

Two watchers, or a watcher and a ``check --state --notify`` from cron, sharing a state file
would each decide to send the same notice. An advisory lock on ``<state>.lock`` makes the
second one stop with a clear message instead. ``status``, ``history`` and ``silence`` only
read or add rows and take no lock, so they work while a watcher runs; the one time they
try it is before moving an unreadable file aside, which they never do to a file that the
holder of the lock has open.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from ..errors import StateError


class RunLock:
    """Exclusive, non-blocking; released when closed or when the process dies."""

    def __init__(self, state_path: str | os.PathLike[str]) -> None:
        self.path = Path(f"{os.fspath(state_path)}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        if not self.try_acquire():
            raise StateError(
                f"another omealert process is evaluating with this state file ({self.path} "
                "is locked); give each watcher or `check --state` its own file"
            )

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False if another process (or handle) holds it."""
        if self._fd is not None:
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateError(f"cannot create lock file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    @property
    def held(self) -> bool:
        """Whether this handle holds the lock."""
        return self._fd is not None

    def holder(self) -> str:
        """``pid N`` of the process that wrote the lock file last, for messages; may be stale."""
        try:
            pid = self.path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            return "pid unknown"
        return f"pid {pid}" if pid.isdigit() else "pid unknown"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
