"""The item sink: the four item tables and the idempotent upsert of a page's items into them.

The sink writes inside the caller's transaction and never commits: a page's items and its PAGE event
commit together (DESIGN 3), so "persisted" is exact. Rows are keyed by (subject_email, id).

- A live item makes the row's columns exactly the item's fields (a field the item leaves out becomes
  NULL) and clears `deleted`.
- A tombstone sets `deleted = 1` and keeps every other column (fields it carries are merged in); for
  an id never seen it still records a row, so the deletion is known.
- `last_seq` is the ledger seq of the page that last changed the row; `listed_seq` that of the
  page that last listed it, changed or not (an unchanged row gets only that).
- A full pass that ends lists everything the service still holds: `forget_unlisted` then
  tombstones the live rows the pass did not list (a deletion a changes feed would have reported,
  had its cursor not expired or been reset).

`WriteStats` is computed against the rows as they were, so writing the same page twice reports
everything `unchanged` the second time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from sweepledger.collectors.errors import Internal
from sweepledger.collectors.protocol import Item
from sweepledger.ledger.items import ITEM_TABLES

COLUMNS: Mapping[str, Mapping[str, str]] = {
    "gmail": {
        "thread_id": "TEXT",
        "history_id": "INTEGER",
        "internal_date": "TEXT",
        "subject": "TEXT",
        "sender": "TEXT",
        "recipients": "TEXT",
        "labels": "TEXT",
        "size_estimate": "INTEGER",
        "snippet": "TEXT",
    },
    "calendar": {
        "summary": "TEXT",
        "status": "TEXT",
        "start": "TEXT",
        "end": "TEXT",
        "updated": "TEXT",
        "organizer": "TEXT",
        "attendees": "TEXT",
    },
    "chat": {
        "space": "TEXT",
        "create_time": "TEXT",
        "sender": "TEXT",
        "text": "TEXT",
        "thread": "TEXT",
    },
    "drive": {
        "name": "TEXT",
        "mime_type": "TEXT",
        "modified_time": "TEXT",
        "size": "INTEGER",
        "owners": "TEXT",
        "parents": "TEXT",
        "trashed": "INTEGER",
        "drive_id": "TEXT",
    },
}
"""Each service's columns besides subject_email, id, deleted and last_seq; lists are JSON text."""


_SELECT_CHUNK = 500
"""Ids per SELECT: far below SQLite's variable limit, above any page size a source uses."""


@dataclass(frozen=True, slots=True)
class WriteStats:
    """What one `write_items` call did; `fetched` = inserted + updated + unchanged + deleted.

    `created` counts the rows it added to the table: every inserted item, and each tombstone of
    an id never stored (a row that records the deletion). The PAGE event keeps it, so `sweep
    check` can count a pair's rows against its pages."""

    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    created: int = 0

    def __add__(self, other: WriteStats) -> WriteStats:
        return WriteStats(
            self.fetched + other.fetched,
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            self.deleted + other.deleted,
            self.created + other.created,
        )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def ensure_item_tables(conn: sqlite3.Connection) -> None:
    """Create the four item tables if they do not exist (idempotent; no commit).

    They stay rowid tables: new rows append to the table's last page and only the small key
    index takes random inserts; WITHOUT ROWID (measured in `bench/append.py`) spreads the wide
    rows over more pages per commit.
    """
    for service, table in ITEM_TABLES.items():
        columns = "".join(f",\n  {_quote(name)} {kind}" for name, kind in COLUMNS[service].items())
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {_quote(table)} (\n"
            f"  subject_email TEXT NOT NULL,\n  id TEXT NOT NULL{columns},\n"
            f"  deleted INTEGER NOT NULL DEFAULT 0,\n  last_seq INTEGER,\n  listed_seq INTEGER,\n"
            f"  PRIMARY KEY (subject_email, id)\n)"
        )
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({_quote(table)})")}
        if "listed_seq" not in present:  # tables made before the column: no row listed yet
            conn.execute(f"ALTER TABLE {_quote(table)} ADD COLUMN listed_seq INTEGER")


def write_items(
    conn: sqlite3.Connection,
    service: str,
    subject: str,
    items: Sequence[Item],
    seq: int | None = None,
) -> WriteStats:
    """Upsert a page's items of `subject`: one SELECT for the page's ids, executemany to write."""
    if service not in ITEM_TABLES:
        raise Internal(f"no item table for service {service!r}")
    if not conn.in_transaction:
        raise RuntimeError("write_items must run inside the caller's transaction (BEGIN first)")
    table, columns = ITEM_TABLES[service], COLUMNS[service]
    rows = _existing_rows(conn, table, columns, subject, [item.id for item in items])
    writes: dict[str, dict[str, Any]] = {}
    counts = {"inserted": 0, "updated": 0, "unchanged": 0, "deleted": 0}
    created = 0
    blank = dict.fromkeys(columns)
    for item in items:
        fields = _normalise(service, item)
        before = rows.get(item.id)
        if item.deleted:
            after = {**(before or blank), **fields, "deleted": 1}
            outcome = "unchanged" if before is not None and before["deleted"] else "deleted"
        else:
            after = {**blank, **fields, "deleted": 0}
            outcome = "inserted" if before is None else "updated"
            if after == before:
                outcome = "unchanged"
        if after != before:
            writes[item.id] = after
        counts[outcome] += 1
        created += before is None
        rows[item.id] = after
    if writes:
        conn.executemany(
            _UPSERT[service],
            [
                (subject, item_id, *(row[n] for n in columns), row["deleted"], seq, seq)
                for item_id, row in writes.items()
            ],
        )
    listed = [item_id for item_id in rows if item_id not in writes]
    if listed and seq is not None:
        conn.executemany(
            f"UPDATE {_quote(table)} SET listed_seq = ? WHERE subject_email = ? AND id = ?",
            [(seq, subject, item_id) for item_id in listed],
        )
    return WriteStats(fetched=len(items), created=created, **counts)


UNIT_COLUMN: Mapping[str, str] = {"chat": "space"}
"""The column naming a unit's items, for a service whose passes go unit by unit."""


def forget_unlisted(
    conn: sqlite3.Connection,
    service: str,
    subject: str,
    unit: str | None,
    listed_after: int,
    seq: int,
) -> int:
    """Tombstone the live rows of `subject` (and `unit`) that no page after seq `listed_after`
    listed; how many. For the end of a full pass that began after `listed_after`: what it did
    not list, the service no longer holds. A row with no `listed_seq` predates the column and
    was not listed by this pass either."""
    table = _quote(ITEM_TABLES[service])
    sql = (
        f"UPDATE {table} SET deleted = 1, last_seq = ? WHERE subject_email = ? AND deleted = 0 "
        "AND (listed_seq IS NULL OR listed_seq <= ?)"
    )
    args: list[object] = [seq, subject, listed_after]
    if unit is not None:
        sql += f" AND {_quote(UNIT_COLUMN[service])} = ?"
        args.append(unit)
    return conn.execute(sql, args).rowcount


def _upsert_sql(service: str) -> str:
    table, columns = ITEM_TABLES[service], COLUMNS[service]
    names = ["subject_email", "id", *columns, "deleted", "last_seq", "listed_seq"]
    updates = ", ".join(f"{_quote(n)} = excluded.{_quote(n)}" for n in names[2:])
    return (
        f"INSERT INTO {_quote(table)} ({', '.join(map(_quote, names))}) "
        f"VALUES ({', '.join('?' * len(names))}) "
        f"ON CONFLICT (subject_email, id) DO UPDATE SET {updates}"
    )


_UPSERT = {service: _upsert_sql(service) for service in ITEM_TABLES}
"""Each service's upsert statement, built once (a page of items is written per call)."""


@lru_cache(maxsize=256)
def _select_sql(table: str, names: tuple[str, ...], ids: int) -> str:
    """The lookup of `ids` ids; cached per size, so SQLite's statement cache can reuse it."""
    selected = ", ".join(_quote(name) for name in ["id", *names])
    marks = ", ".join("?" * ids)
    return f"SELECT {selected} FROM {_quote(table)} WHERE subject_email = ? AND id IN ({marks})"


def _existing_rows(
    conn: sqlite3.Connection,
    table: str,
    columns: Mapping[str, str],
    subject: str,
    ids: Iterable[str],
) -> dict[str, dict[str, Any]]:
    """The stored rows of these ids, as {id: {column: value, "deleted": 0|1}}."""
    wanted = list(dict.fromkeys(ids))
    names = [*columns, "deleted"]
    rows: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), _SELECT_CHUNK):
        chunk = wanted[start : start + _SELECT_CHUNK]
        cursor = conn.execute(_select_sql(table, tuple(names), len(chunk)), [subject, *chunk])
        for found in cursor:
            rows[found[0]] = dict(zip(names, found[1:], strict=True))
    return rows


def _normalise(service: str, item: Item) -> dict[str, Any]:
    """The item's fields as SQLite stores them, so a re-read compares equal; Internal if unknown."""
    columns = COLUMNS[service]
    fields = item.fields
    if not fields.keys() <= columns.keys():
        unknown = sorted(fields.keys() - columns.keys())
        raise Internal(
            f"{service} item {item.id} has fields that are not columns of "
            f"{ITEM_TABLES[service]}: {', '.join(unknown)}"
        )
    stored: dict[str, Any] = {}
    for name, value in fields.items():
        kind = columns[name]
        # the common cases first: a page has tens of items with about ten fields each
        if value is None or type(value) is _NATIVE.get(kind):
            stored[name] = value
        else:
            stored[name] = _to_sql(service, item.id, name, kind, value)
    return stored


_NATIVE: Mapping[str, type] = {"TEXT": str, "INTEGER": int}
"""Values of these exact types are stored as they are (bool is not int here: it converts)."""


def _to_sql(service: str, item_id: str, name: str, kind: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, list | tuple | dict):
        return orjson.dumps(value).decode()
    if kind == "INTEGER":
        if isinstance(value, bool | int):
            return int(value)
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
    elif isinstance(value, str):
        return value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise Internal(
        f"{service} item {item_id}: field {name} = {value!r} does not fit a {kind} column"
    )
