"""The one writer of a run: every append goes through it.

Workers fetch concurrently and hand their appends to `Writer.submit`, which returns a `Pending`
at once, or to `Writer.commit`, which blocks until the append is durable. A writer thread takes
whatever appends are waiting and commits them in one transaction (group commit), so sixteen
workers do not queue behind sixteen fsyncs, and a worker can fetch its next page while its last
one commits. Appends commit in the order they were submitted. With one worker there is no writer
thread: each append commits inline, in the worker's order, so the ledger is deterministic. The
SWEEP lines print after each commit, in seq order.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Generic, TypeVar

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
MAX_GROUP = 64
"""Appends committed together at most: bounds the transaction and the latency of the first."""


def _crash_hook() -> int | None:
    raw = os.environ.get(CRASH_HOOK, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


@dataclass(slots=True)
class Pending(Generic[T]):
    """One submitted append; `wait` returns once it is durable (or raises why it is not)."""

    build: Callable[[Transaction], T]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    events: list[Event] = field(default_factory=list)
    error: BaseException | None = None

    def wait(self) -> tuple[T, list[Event]]:
        """Its result and the events it appended, once committed."""
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.result, self.events


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
        self._transaction_lock = threading.Lock()
        self._queue: queue.SimpleQueue[Pending[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.appended = 0
        self.crash_after = _crash_hook()

    def start(self) -> None:
        """Start group commit (for concurrent workers); without it, commits run inline."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="ledger-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def submit(self, build: Callable[[Transaction], T]) -> Pending[T]:
        """Queue `build` to run inside a transaction after everything submitted before it.

        Without the writer thread it commits before returning; either way `wait()` on the result
        says when it is durable.
        """
        request: Pending[T] = Pending(build)
        if self._thread is None:
            self._commit_group([request])
        else:
            self._queue.put(request)
        return request

    def commit(self, build: Callable[[Transaction], T]) -> tuple[T, list[Event]]:
        """Run `build` inside a transaction and return once it is durable: its result and the
        events it appended."""
        return self.submit(build).wait()

    def read(self, look: Callable[[State], T]) -> T:
        """Look at the projection state without racing an append's fold (but without waiting
        for a commit's fsync either: an attempt that starts reads its pair, which no commit in
        flight touches)."""
        with self.projector.lock:
            return look(self.projector.state)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                group.append(more)
            self._commit_group(group)

    def _commit_group(self, group: list[Pending[Any]]) -> None:
        try:
            self._transact(group)
        except Exception:
            if len(group) == 1:
                group[0].error = _current_error()
            else:
                # one bad append must not sink the others: commit each on its own
                for request in group:
                    request.events = []
                    try:
                        self._transact([request])
                    except Exception:
                        request.error = _current_error()
        for request in group:
            request.done.set()

    def _transact(self, group: list[Pending[Any]]) -> None:
        with self._transaction_lock:
            with self.store.transaction() as tx:
                for request in group:
                    start = len(tx.events)
                    request.result = request.build(tx)
                    request.events = tx.events[start:]
            events = list(tx.events)
            self._emit(events)
            self.appended += len(events)
            if self.crash_after is not None and self.appended >= self.crash_after:
                os._exit(CRASH_EXIT)

    def _emit(self, events: Sequence[Event]) -> None:
        lines = [render(e) for e in events if e.kind in PAIR_PHASES] if self.streams else []
        if lines:
            text = "\n".join(lines) + "\n"
            for stream in self.streams:
                stream.write(text)
                stream.flush()
        if self.on_commit is not None:
            self.on_commit(events)


def _current_error() -> BaseException:
    import sys

    error = sys.exc_info()[1]
    assert error is not None
    return error
