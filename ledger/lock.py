"""The single-writer lock: an exclusive OS lock on a file next to the database.

The OS releases it when the process dies, however it dies, so a run that holds no lock is not live:
no heartbeat timeout is needed on one machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from pathlib import Path
from typing import Any

import orjson

from .codec import utc_now
from .errors import AlreadyRunning, CannotOpen


def lock_path(db_path: str | Path) -> Path:
    """Where the lock of a ledger lives."""
    return Path(f"{db_path}.lock")


class WriterLock:
    """Held by the one process that appends runs to a ledger."""

    def __init__(self, db_path: str | Path) -> None:
        self.path = lock_path(db_path)
        self._fd: int | None = None

    def acquire(self, run_id: str, *, wait: float = 0.5) -> None:
        """Take the lock or raise `AlreadyRunning` naming the holder.

        Retries for `wait` seconds, because a reader probing liveness holds a shared lock for a
        few microseconds and must not make a run fail.
        """
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise CannotOpen(
                str(self.path)[: -len(".lock")],
                f"its lock file {self.path} cannot be opened for writing ({error.strerror})",
            ) from None
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _describe(read_holder(self.path))
                    os.close(fd)
                    raise AlreadyRunning(str(self.path)[: -len(".lock")], holder) from None
                time.sleep(0.02)
        info = {
            "run_id": run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": utc_now(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, orjson.dumps(info), 0)
        self._fd = fd

    def announce(self, run_id: str) -> None:
        """Name the run now working under a lock held across runs (the daemon keeps one), so
        readers see that run as the live one and a refused second run names it."""
        if self._fd is None:
            raise RuntimeError("announce() needs the lock held")
        info = {
            "run_id": run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": utc_now(),
        }
        text = orjson.dumps(info)
        # Overwrite in place, padded with spaces to at least the old length, never truncating
        # first: a reader probing liveness meanwhile reads the old holder or the new one, never
        # an empty file (which would make a live run look stale).
        size = os.fstat(self._fd).st_size
        os.pwrite(self._fd, text.ljust(max(size, len(text))), 0)

    def release(self) -> None:
        """Let the next run in."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def is_locked(db_path: str | Path) -> bool:
    """Whether some process holds the writer lock now (a live run)."""
    path = lock_path(db_path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def read_holder(path: Path) -> dict[str, Any]:
    """What the holder wrote about itself, or {} if unreadable."""
    try:
        value = orjson.loads(path.read_bytes() or b"{}")
    except (OSError, orjson.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another process (it did not say which)"
    holder_id = str(holder.get("run_id", "?"))
    what = "daemon" if holder_id.startswith("daemon-") else "run"  # a daemon between cycles
    return (
        f"{what} {holder_id} (pid {holder.get('pid', '?')} on "
        f"{holder.get('host', '?')}, started {holder.get('started', '?')})"
    )
