"""The event store: the `EventStore` interface and its SQLite implementation.

The interface is small on purpose (append in one transaction, read from a seq, the writer lock) so
that a PostgreSQL store can be added without touching projections or the runner. Derived tables
(projections, items) join an append through hooks and the transaction's connection, so they commit
or roll back with the events they come from.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from . import schema
from .codec import GENESIS_HASH, chain_hash, decode_data, encode_data, utc_now
from .errors import CannotOpen, MissingFolder, NoLedger, NotALedger, SchemaTooNew
from .events import Event, EventKind, NewEvent
from .lock import WriterLock

AppendHook = Callable[[sqlite3.Connection, Sequence[Event]], None]
"""Called inside an append's transaction, after its events are inserted and before COMMIT."""

COLUMNS = "seq, ts, sweep_id, run_id, kind, service, subject, data, hash"


class EventStore(Protocol):
    """What the projections and the runner need of a ledger backend."""

    def transaction(self) -> contextlib.AbstractContextManager[Transaction]: ...
    def read(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[Event]: ...
    def head(self) -> int: ...
    def read_where(self, where: str, params: Sequence[object] = ()) -> Iterator[Event]: ...
    def writer_lock(self) -> WriterLock: ...


class Transaction:
    """One atomic append: events plus whatever item rows the caller writes through `conn`."""

    def __init__(self, conn: sqlite3.Connection, head_seq: int, head_hash: str) -> None:
        self.conn = conn
        self._seq = head_seq
        self._hash = head_hash
        self.events: list[Event] = []
        self._rows: list[tuple[object, ...]] = []

    @property
    def next_seq(self) -> int:
        """The seq the next appended event will get (the sink records it on item rows)."""
        return self._seq + 1

    def append(self, new: NewEvent) -> Event:
        """Add one event to this transaction; it is stored when the transaction commits."""
        self._seq += 1
        ts = utc_now()
        text = encode_data(new.data)
        digest = chain_hash(
            self._hash,
            self._seq,
            ts,
            new.sweep_id,
            new.run_id,
            new.kind,
            new.service,
            new.subject,
            text,
        )
        self._hash = digest
        event = Event(
            self._seq,
            ts,
            new.sweep_id,
            new.run_id,
            new.kind,
            new.service,
            new.subject,
            new.data,
            digest,
        )
        self.events.append(event)
        self._rows.append(
            (
                self._seq,
                ts,
                new.sweep_id,
                new.run_id,
                str(new.kind),
                new.service,
                new.subject,
                text,
                digest,
            )
        )
        return event

    def flush(self) -> None:
        """Insert the events appended so far (before hooks read them through SQL)."""
        if self._rows:
            self.conn.executemany(
                f"INSERT INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", self._rows
            )
            self._rows = []


class SqliteStore:
    """A ledger in one SQLite file: WAL, synchronous=FULL by default, appends BEGIN IMMEDIATE."""

    def __init__(self, path: Path, conn: sqlite3.Connection, *, readonly: bool) -> None:
        self.path = path
        self.conn = conn
        self.readonly = readonly
        self.hooks: list[AppendHook] = []

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        create: bool = False,
        readonly: bool = False,
        synchronous: str = "FULL",
    ) -> SqliteStore:
        """Open a ledger; `create` lays out a new one where no file (or an empty one) exists.

        Raises `NoLedger`, `NotALedger`, `CannotOpen` or `SchemaTooNew` with a one-line
        explanation, and never changes a file it refuses. A writer finds out here, not at its
        first append, that SQLite could only read the file.
        """
        path = Path(path)
        if not path.parent.is_dir():
            raise MissingFolder(str(path), str(path.parent))
        if path.is_dir():
            raise NotALedger(str(path), "it is a folder")
        exists = path.exists() and path.stat().st_size > 0
        if not exists and not create:
            raise NoLedger(str(path))
        if exists and not os.access(path, os.R_OK):
            raise CannotOpen(str(path), "the file is not readable")
        if exists and not readonly and not os.access(path, os.W_OK):
            raise CannotOpen(str(path), "the file is read-only, and this command appends to it")
        try:
            if readonly:
                conn = sqlite3.connect(
                    f"{path.resolve().as_uri()}?mode=ro",
                    uri=True,
                    isolation_level=None,
                    check_same_thread=False,
                )
            else:
                conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as error:
            raise _refusal(path, error) from None
        try:
            version = _read_version(conn, path)
            if version is None and (readonly or not create):
                # Only a writer asked to create lays out a ledger; never in a reader's open.
                if not exists:
                    raise NoLedger(str(path))
                raise NotALedger(str(path), "an SQLite database without any table")
            store = cls(path, conn, readonly=readonly)
            conn.execute("PRAGMA busy_timeout = 10000")
            if readonly:
                conn.execute("PRAGMA query_only = ON")
            else:
                conn.execute(f"PRAGMA synchronous = {synchronous}")
                if version is None:
                    # laid out before WAL is switched on, in one commit: the file goes from
                    # empty to a whole ledger, so a reader checking it meanwhile (a second
                    # daemon about to be refused the lock) never finds SQLite without tables
                    with store._immediate():
                        schema.create(conn)
                conn.execute("PRAGMA journal_mode = WAL")
            if version is not None and not readonly:
                with store._immediate():  # takes the write lock: fails if SQLite can only read
                    if version < schema.SCHEMA_VERSION:
                        schema.migrate(conn, version)
        except sqlite3.Error as error:
            conn.close()
            raise _refusal(path, error) from None
        except BaseException:
            conn.close()
            raise
        return store

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _immediate(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Append atomically: everything written inside commits together, or nothing does."""
        with self._immediate():
            row = self.conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
            head = row.fetchone() or (0, GENESIS_HASH)
            tx = Transaction(self.conn, head[0], head[1])
            yield tx
            tx.flush()
            if tx.events:
                for hook in self.hooks:
                    hook(self.conn, tx.events)

    def append(self, events: Sequence[NewEvent]) -> list[Event]:
        """Append a batch of events in one transaction."""
        with self.transaction() as tx:
            for new in events:
                tx.append(new)
        return tx.events

    def head(self) -> int:
        """The last seq (0 for an empty ledger)."""
        row = self.conn.execute("SELECT max(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def read(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[Event]:
        """Events in seq order, decoded."""
        for row in self.read_rows(from_seq, to_seq):
            yield Event(
                row[0],
                row[1],
                row[2],
                row[3],
                EventKind(row[4]),
                row[5],
                row[6],
                decode_data(row[7]),
                row[8],
            )

    def read_rows(
        self,
        from_seq: int = 1,
        to_seq: int | None = None,
        *,
        where: str = "",
        params: Sequence[object] = (),
    ) -> Iterator[tuple[Any, ...]]:
        """Raw rows in seq order (`COLUMNS`), for checks that must see exactly what is stored."""
        sql = f"SELECT {COLUMNS} FROM events WHERE seq >= ?"
        args: list[object] = [from_seq]
        if to_seq is not None:
            sql += " AND seq <= ?"
            args.append(to_seq)
        if where:
            sql += f" AND ({where})"
            args.extend(params)
        cursor = self.conn.execute(sql + " ORDER BY seq", args)
        while batch := cursor.fetchmany(4096):
            yield from batch

    def read_where(self, where: str, params: Sequence[object] = ()) -> Iterator[Event]:
        """Decoded events matching an SQL condition on the event columns, in seq order."""
        for row in self.read_rows(where=where, params=params):
            yield _event(row)

    def writer_lock(self) -> WriterLock:
        return WriterLock(self.path)

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def triggers(self) -> set[str]:
        """Names of the triggers on `events` (check verifies the guard is in place)."""
        rows = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'"
        )
        return {str(r[0]) for r in rows}


_KINDS = {str(kind): kind for kind in EventKind}


def _event(row: tuple[Any, ...]) -> Event:
    return Event(
        row[0], row[1], row[2], row[3], _KINDS[row[4]], row[5], row[6], decode_data(row[7]), row[8]
    )


_NOT_A_DATABASE = {11, 26}
"""SQLite's primary result codes CORRUPT and NOTADB: the file's bytes are not a database. Any
other error (CANTOPEN, READONLY, IOERR, ...) is about access to a file, not about its content."""


def _refusal(path: Path, error: sqlite3.Error) -> NotALedger | CannotOpen:
    """What an SQLite error while opening says about the ledger: its bytes are not a database,
    or it (or the -wal and -shm files SQLite keeps beside it) cannot be opened, with the reason
    in the operator's terms where it can be told."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is None or code & 0xFF in _NOT_A_DATABASE:
        return NotALedger(str(path), f"not an SQLite database ({error})")
    for side in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        if side.is_dir():
            return CannotOpen(str(path), f"{side} is a folder, not SQLite's file ({error})")
    if not os.access(path.parent, os.W_OK):
        return CannotOpen(
            str(path),
            f"its folder {path.parent} cannot be written, and SQLite keeps the ledger's "
            f"-wal and -shm files there ({error})",
        )
    return CannotOpen(str(path), f"SQLite: {error}")


def _read_version(conn: sqlite3.Connection, path: Path) -> int | None:
    """The ledger's schema version, None for an empty database, or a refusal."""
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as e:
        raise _refusal(path, e) from None
    if not tables:
        return None
    if "meta" not in tables or "events" not in tables:
        raise NotALedger(str(path), "an SQLite database without Sweepledger's tables")
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("app") != schema.APP_NAME:
        raise NotALedger(str(path), f"its meta table names application {meta.get('app')!r}")
    try:
        version = int(meta["schema_version"])
    except (KeyError, ValueError):
        raise NotALedger(str(path), "its schema version is missing or malformed") from None
    if version > schema.SCHEMA_VERSION:
        raise SchemaTooNew(str(path), version, schema.SCHEMA_VERSION)
    return version
