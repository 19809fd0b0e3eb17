"""The append-only guard: triggers refuse to change or remove a stored event."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sweepledger.ledger.events import EventKind, NewEvent
from sweepledger.ledger.schema import GUARD_TRIGGERS
from sweepledger.ledger.store import SqliteStore


@pytest.fixture
def ledger(fresh_db: SqliteStore) -> Path:
    """A ledger of three events, closed so that a foreign connection can try to change it."""
    fresh_db.append([NewEvent(EventKind.HEARTBEAT, data={"n": n}) for n in range(3)])
    fresh_db.close()
    return fresh_db.path


def rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM events ORDER BY seq").fetchall()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE events SET data = '{\"n\":9}' WHERE seq = 2",
        "UPDATE events SET seq = 7 WHERE seq = 3",
        "UPDATE events SET hash = hash",
        "DELETE FROM events WHERE seq = 2",
        "DELETE FROM events",
        "INSERT INTO events (seq, ts, kind, data, hash) VALUES (2, 't', 'HEARTBEAT', '{}', 'h') "
        "ON CONFLICT (seq) DO UPDATE SET data = '{}'",
    ],
)
def test_update_and_delete_are_refused(ledger: Path, sql: str) -> None:
    """UPDATE and DELETE on events, from any connection, abort with 'append-only'."""
    before = rows(ledger)
    conn = sqlite3.connect(ledger)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql)
        conn.commit()
    finally:
        conn.close()
    assert rows(ledger) == before


def test_refusal_is_an_integrity_error(ledger: Path) -> None:
    """The refusal is an IntegrityError (a constraint), so callers can tell it from I/O errors."""
    with sqlite3.connect(ledger) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("DELETE FROM events WHERE seq = 1")


def test_a_new_ledger_has_every_guard_trigger(fresh_db: SqliteStore) -> None:
    """Every trigger `check` looks for is created with the ledger."""
    assert set(GUARD_TRIGGERS) <= fresh_db.triggers()


@pytest.mark.parametrize("verb", ["INSERT OR REPLACE", "REPLACE"])
def test_replace_is_refused(ledger: Path, verb: str) -> None:
    """Overwriting an event with INSERT OR REPLACE is refused like an UPDATE."""
    before = rows(ledger)
    with sqlite3.connect(ledger) as conn, pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute(
            f"{verb} INTO events (seq, ts, kind, data, hash) "
            "VALUES (2, 't', 'HEARTBEAT', '{}', 'h')"
        )
    assert rows(ledger) == before
