"""SIGINT and SIGTERM for the long-running commands (`sweep run`, `sweep daemon`).

The first signal asks for a clean stop: the run ends at its next page boundary and records why,
so the same command continues later. A second signal means the operator will not wait: the
process exits at once with the shell's code for that signal (the ledger stays consistent, as
after a kill: nothing uncommitted was ever visible).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Protocol

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
"""128 + the signal's number, as a shell reports a command the signal ended."""


class Stoppable(Protocol):
    """A runner or a daemon: a stop flag, and a way to ask for a stop with a reason."""

    stop: threading.Event

    def request_stop(self, reason: str) -> None: ...


@contextmanager
def stop_on_signals(target: Stoppable) -> Iterator[None]:
    """Within the block, the first SIGINT/SIGTERM asks `target` to stop and a second exits now;
    the previous handlers come back after it."""

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum)
        if target.stop.is_set():
            os._exit(EXIT_CODES.get(name, 1))
        target.request_stop(name.name)

    previous = {s: signal.signal(s, handle) for s in EXIT_CODES}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
