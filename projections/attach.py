"""Opening a ledger with its projections: for writers (write-through) and for readers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from sweepledger.ledger.store import SqliteStore

from .bulk import fold_ledger
from .fold import State
from .tables import Projector, ensure_tables, write_dirty, write_past_sweeps


def mark_all_dirty(state: State) -> None:
    """Make the next `write_dirty` write every row (a rebuild)."""
    state.pairs_reset = True
    state.dirty_pairs = set(state.pairs)
    state.dirty_runs = set(state.runs)
    state.dirty_cursors = set(state.cursors)
    state.dirty_sweep = state.sweep is not None
    state.dirty_counters = set(state.counters)
    state.dirty_heartbeat = True
    state.dirty_flags = True


def open_for_writing(path: str | Path, *, create: bool = False) -> tuple[SqliteStore, Projector]:
    """A store whose every append keeps the projection tables current.

    Tables of another projection version are rebuilt from the events here, once.
    """
    store = SqliteStore.open(path, create=create)
    with store.transaction() as tx:
        if ensure_tables(tx.conn):
            for table in ("sync_cursor", "runs", "operator_flags", "sweeps", "sweep_counters"):
                tx.conn.execute(f"DELETE FROM {table}")
            state = fold_ledger(tx.conn)
            mark_all_dirty(state)
            write_past_sweeps(tx.conn, state)
            write_dirty(tx.conn, state)
    projector = Projector(store.conn)
    store.hooks.append(projector.on_append)
    return store, projector


def open_for_reading(path: str | Path) -> SqliteStore:
    """A read-only store; never creates or changes anything."""
    return SqliteStore.open(path, readonly=True)


@contextlib.contextmanager
def read_snapshot(store: SqliteStore) -> Iterator[None]:
    """Every read inside sees one state of the ledger (one WAL snapshot), so the head, the
    projection tables and the events read one after another agree even while a run appends.

    Without it each statement sees its own snapshot: a commit landing between two reads makes
    the tables look behind the head and sends a reader into a full fold."""
    if store.conn.in_transaction:
        yield
        return
    store.conn.execute("BEGIN")
    try:
        yield
    finally:
        store.conn.execute("COMMIT")


def projections_current(store: SqliteStore) -> bool:
    """Whether the tables reflect every event (else readers fold the events themselves)."""
    from .tables import PROJECTION_VERSION

    if store.get_meta("projection_version") != PROJECTION_VERSION:
        return False
    row = store.conn.execute("SELECT value FROM projection_state WHERE key = 'head'").fetchone()
    return row is not None and int(row[0]) == store.head()
