"""The one writer of a run: every append goes through it, one transaction at a time.

Workers fetch concurrently but append through `Writer.commit`, which serialises transactions
under one lock, so seq order is the order of commits and the SWEEP lines print in that order.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import IO, TypeVar

from sweepledger.ledger.events import PAIR_PHASES, Event
from sweepledger.ledger.logline import render
from sweepledger.ledger.store import SqliteStore, Transaction
from sweepledger.projections.fold import State
from sweepledger.projections.tables import Projector

T = TypeVar("T")

CRASH_HOOK = "SWEEPLEDGER_CRASH_AFTER_EVENTS"
"""Fault injection for the crash-point tests: the process dies (no cleanup, like SIGKILL) right
after the commit that brings its appended events to this number."""
CRASH_EXIT = 137


def _crash_hook() -> int | None:
    raw = os.environ.get(CRASH_HOOK, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


class Writer:
    """Appends transactions, keeps the projections current and prints each pair event."""

    def __init__(
        self,
        store: SqliteStore,
        projector: Projector,
        *,
        streams: Sequence[IO[str]] = (),
        on_commit: Callable[[Sequence[Event]], None] | None = None,
    ) -> None:
        self.store = store
        self.projector = projector
        self.streams = list(streams)
        self.on_commit = on_commit
        self._lock = threading.Lock()
        self.appended = 0
        self.crash_after = _crash_hook()

    def commit(self, build: Callable[[Transaction], T]) -> tuple[T, list[Event]]:
        """Run `build` inside one transaction and commit it; returns its result and the events."""
        with self._lock:
            with self.store.transaction() as tx:
                result = build(tx)
            events = list(tx.events)
            self._emit(events)
            self.appended += len(events)
            if self.crash_after is not None and self.appended >= self.crash_after:
                os._exit(CRASH_EXIT)
            return result, events

    def read(self, look: Callable[[State], T]) -> T:
        """Look at the projection state without racing an append."""
        with self._lock:
            return look(self.projector.state)

    def _emit(self, events: Sequence[Event]) -> None:
        lines = [render(e) for e in events if e.kind in PAIR_PHASES]
        if lines:
            text = "\n".join(lines) + "\n"
            for stream in self.streams:
                stream.write(text)
                stream.flush()
        if self.on_commit is not None:
            self.on_commit(events)
