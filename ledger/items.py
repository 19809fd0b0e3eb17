"""The item tables as the ledger knows them: their names, and how many rows each subject has.

The item sink (`collectors.sink`) owns their columns and writes them; each PAGE event records how
many rows its page added (`created`). `sweep check` compares the two, so an auditor learns from
the ledger alone whether the stored items are the ones its pages say were stored.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

ITEM_TABLES: Mapping[str, str] = {
    "gmail": "gmail_messages",
    "calendar": "calendar_events",
    "chat": "chat_messages",
    "drive": "drive_files",
}
"""The item table of each service (DESIGN 9)."""


def rows_per_pair(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
    """(service, subject) -> rows of its item table, for the tables the file has."""
    present = {
        name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    counts: dict[tuple[str, str], int] = {}
    for service, table in ITEM_TABLES.items():
        if table in present:
            for subject, rows in conn.execute(
                f'SELECT subject_email, COUNT(*) FROM "{table}" GROUP BY subject_email'
            ):
                counts[(service, str(subject))] = int(rows)
    return counts
