"""Reading the ledger for a bulk fold: only the columns a fold needs, in big batches.

`SqliteStore.read` decodes every column of every row into an `Event`; a replay of millions of
events spends most of its time there. A fold needs neither the hash (only the head's, read once)
nor an `Event` record, so this reader hands it plain row tuples, batch by batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from .codec import GENESIS_HASH

FOLD_COLUMNS = "seq, ts, sweep_id, run_id, kind, service, subject, data"
"""What a fold reads of each event (`projections.fold.Row`)."""
BATCH = 8192
"""Rows per `fetchmany`: large enough that the per-call cost vanishes, small in memory."""


def fold_batches(
    conn: sqlite3.Connection, from_seq: int | None = None, to_seq: int | None = None
) -> Iterator[list[Any]]:
    """Batches of `FOLD_COLUMNS` rows in seq order, within the bounds given (inclusive)."""
    sql, args = _bounded(f"SELECT {FOLD_COLUMNS} FROM events", from_seq, to_seq)
    cursor = conn.execute(sql + " ORDER BY seq", args)
    while batch := cursor.fetchmany(BATCH):
        yield batch


def hash_of(conn: sqlite3.Connection, seq: int) -> str:
    """The stored hash of the event at `seq` (the genesis hash before the first event)."""
    row = conn.execute("SELECT hash FROM events WHERE seq = ?", (seq,)).fetchone()
    return GENESIS_HASH if row is None else str(row[0])


def _bounded(sql: str, from_seq: int | None, to_seq: int | None) -> tuple[str, list[object]]:
    conditions: list[str] = []
    args: list[object] = []
    if from_seq is not None:
        conditions.append("seq >= ?")
        args.append(from_seq)
    if to_seq is not None:
        conditions.append("seq <= ?")
        args.append(to_seq)
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    return sql, args
