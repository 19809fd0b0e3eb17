"""The one writer of a run: every append goes through it, one transaction at a time.

Workers fetch concurrently but append through `Writer.commit`, which serialises transactions
under one lock, so seq order is the order of commits and the SWEEP lines print in that order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import IO, TypeVar

from sweepledger.ledger.events import PAIR_PHASES, Event
from sweepledger.ledger.logline import render
from sweepledger.ledger.store import SqliteStore, Transaction
from sweepledger.projections.fold import State
from sweepledger.projections.tables import Projector

T = TypeVar("T")


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

    def commit(self, build: Callable[[Transaction], T]) -> tuple[T, list[Event]]:
        """Run `build` inside one transaction and commit it; returns its result and the events."""
        with self._lock:
            with self.store.transaction() as tx:
                result = build(tx)
            events = list(tx.events)
            self._emit(events)
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
