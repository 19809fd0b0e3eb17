"""The ledger's own tables, its schema version and the migrations between versions.

Projection and item tables are not part of this schema: they are derived data, created by their
owners and rebuilt from the events whenever their own version changes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

APP_NAME = "sweepledger"
SCHEMA_VERSION = 1

_V1 = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY,
    ts       TEXT NOT NULL,
    sweep_id TEXT,
    run_id   TEXT,
    kind     TEXT NOT NULL,
    service  TEXT,
    subject  TEXT,
    data     TEXT NOT NULL,
    hash     TEXT NOT NULL
);
CREATE INDEX events_by_run ON events (run_id, seq);
CREATE INDEX events_by_pair ON events (service, subject, seq) WHERE service IS NOT NULL;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_overwrite BEFORE INSERT ON events
WHEN NEW.seq <= (SELECT coalesce(max(seq), 0) FROM events)
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
"""

GUARD_TRIGGERS = ("events_no_update", "events_no_delete", "events_no_overwrite")
"""UPDATE and DELETE are refused; so is an INSERT at an existing seq, because INSERT OR REPLACE
removes the old row without firing DELETE triggers."""

MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}
"""`MIGRATIONS[v]` upgrades a ledger from version v to v + 1 inside the caller's transaction."""


def create(conn: sqlite3.Connection) -> None:
    """Lay out a new ledger in an empty database (inside the caller's transaction)."""
    for statement in _V1.split(";\n"):
        if statement.strip():
            conn.execute(statement)
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [("app", APP_NAME), ("schema_version", str(SCHEMA_VERSION))],
    )


def migrate(conn: sqlite3.Connection, found: int) -> None:
    """Bring a ledger of an older version up to `SCHEMA_VERSION`, one step at a time."""
    for version in range(found, SCHEMA_VERSION):
        MIGRATIONS[version](conn)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
