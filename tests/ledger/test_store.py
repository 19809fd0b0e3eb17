"""The event store contract (every backend subclasses it) and what the SQLite store adds to it."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from sweepledger.ledger.chain import verify_rows
from sweepledger.ledger.events import Event, EventKind, NewEvent
from sweepledger.ledger.store import SqliteStore


def heartbeat(n: int) -> NewEvent:
    return NewEvent(EventKind.HEARTBEAT, "sweep-1", "run-1", data={"n": n})


def pair_event(n: int) -> NewEvent:
    return NewEvent(
        EventKind.PAGE,
        "sweep-1",
        "run-1",
        "gmail",
        "ana@corp.example",
        {"page": n, "count": n, "exhausted": False, "note": 'ünïcode "q" \\ = \n'},
    )


class Boom(Exception):
    """Raised inside a transaction by a test."""


class EventStoreContract:
    """What every ledger backend promises; a backend's class provides `store` and four helpers.

    `create_items(store)` makes an item table `items (n)`, `insert_item(conn, n)` writes one row
    of it through a transaction's connection, `count_items(store)` counts its committed rows and
    `reopen(store)` opens a second handle on the same ledger.
    """

    def create_items(self, store: Any) -> None:
        raise NotImplementedError

    def insert_item(self, conn: Any, n: int) -> None:
        raise NotImplementedError

    def count_items(self, store: Any) -> int:
        raise NotImplementedError

    def reopen(self, store: Any) -> Any:
        raise NotImplementedError

    def test_empty_store_has_head_zero_and_reads_nothing(self, store: Any) -> None:
        """A new ledger's head is 0 and reading it yields no event."""
        assert store.head() == 0
        assert list(store.read()) == []

    def test_seq_is_gapless_across_batches(self, store: Any) -> None:
        """Batches of any size get seq 1, 2, 3... with no gap between batches."""
        seqs = []
        for size in (1, 3, 1, 5, 2):
            seqs += [e.seq for e in store.append([heartbeat(i) for i in range(size)])]
        assert seqs == list(range(1, 13))
        assert [e.seq for e in store.read()] == seqs
        assert store.head() == 12

    def test_appended_events_read_back_unchanged(self, store: Any) -> None:
        """Every field of an appended event reads back as it was appended."""
        appended = store.append([heartbeat(0), pair_event(2)])
        read = list(store.read())
        assert read == appended
        assert read[1].data["note"] == 'ünïcode "q" \\ = \n'
        assert (read[1].kind, read[1].service, read[1].subject) == (
            EventKind.PAGE,
            "gmail",
            "ana@corp.example",
        )

    def test_exception_inside_transaction_leaves_nothing(self, store: Any) -> None:
        """An exception inside `transaction()` leaves neither its events nor its item rows."""
        self.create_items(store)
        store.append([heartbeat(0)])

        def append_then_fail() -> None:
            with store.transaction() as tx:
                self.insert_item(tx.conn, 1)
                tx.append(pair_event(1))
                tx.append(pair_event(2))
                raise Boom

        with pytest.raises(Boom):
            append_then_fail()
        assert store.head() == 1
        assert [e.seq for e in store.read()] == [1]
        assert self.count_items(store) == 0

    def test_items_and_events_commit_together(self, store: Any) -> None:
        """Item rows written through `tx.conn` commit with the transaction's events."""
        self.create_items(store)
        with store.transaction() as tx:
            assert tx.next_seq == 1
            self.insert_item(tx.conn, 1)
            tx.append(pair_event(1))
            assert tx.next_seq == 2
        assert self.count_items(store) == 1
        assert store.head() == 1

    def test_seq_after_a_rolled_back_transaction_has_no_gap(self, store: Any) -> None:
        """The seq a rolled-back transaction would have used is given to the next append."""
        store.append([heartbeat(0)])

        def append_then_fail() -> None:
            with store.transaction() as tx:
                tx.append(heartbeat(1))
                raise Boom

        with pytest.raises(Boom):
            append_then_fail()
        assert [e.seq for e in store.append([heartbeat(2)])] == [2]

    @pytest.mark.parametrize(
        ("from_seq", "to_seq", "expected"),
        [
            (1, None, [1, 2, 3, 4, 5]),
            (3, None, [3, 4, 5]),
            (2, 4, [2, 3, 4]),
            (4, 4, [4]),
            (6, None, []),
            (1, 0, []),
        ],
    )
    def test_read_from_to_seq(
        self, store: Any, from_seq: int, to_seq: int | None, expected: list[int]
    ) -> None:
        """`read(from_seq, to_seq)` yields exactly the events in that closed range, in order."""
        store.append([heartbeat(i) for i in range(5)])
        assert [e.seq for e in store.read(from_seq, to_seq)] == expected

    def test_hooks_run_inside_the_transaction(self, store: Any) -> None:
        """A hook sees the transaction's events, already queryable, and its writes commit too."""
        self.create_items(store)
        seen: list[tuple[list[int], int]] = []

        def hook(conn: Any, events: Sequence[Event]) -> None:
            stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
            seen.append(([e.seq for e in events], stored))
            self.insert_item(conn, len(events))

        store.hooks.append(hook)
        store.append([heartbeat(0), heartbeat(1)])
        store.append([heartbeat(2)])
        assert seen == [([1, 2], 2), ([3], 3)]
        assert self.count_items(store) == 2

    def test_a_failing_hook_rolls_back_the_events(self, store: Any) -> None:
        """If a hook raises, the append fails and none of its events or writes remain."""
        self.create_items(store)
        store.append([heartbeat(0)])

        def hook(conn: Any, events: Sequence[Event]) -> None:
            self.insert_item(conn, 1)
            raise Boom

        store.hooks.append(hook)
        with pytest.raises(Boom):
            store.append([heartbeat(1), heartbeat(2)])
        store.hooks.remove(hook)
        assert store.head() == 1
        assert self.count_items(store) == 0

    def test_hooks_are_not_called_for_an_empty_transaction(self, store: Any) -> None:
        """A transaction that appends nothing does not wake the hooks."""
        calls: list[int] = []
        store.hooks.append(lambda conn, events: calls.append(len(events)))
        with store.transaction():
            pass
        assert calls == []

    def test_head_is_the_last_seq(self, store: Any) -> None:
        """`head()` is the seq of the last committed event."""
        store.append([heartbeat(0)])
        assert store.head() == 1
        store.append([heartbeat(1), heartbeat(2), heartbeat(3)])
        assert store.head() == 4

    def test_hash_chain_verifies(self, store: Any) -> None:
        """Each appended event's hash chains from its predecessor's."""
        store.append([heartbeat(0), pair_event(1)])
        store.append([pair_event(2)])
        assert list(verify_rows(store.read_rows())) == []
        assert len({e.hash for e in store.read()}) == 3

    def test_a_second_handle_continues_the_same_chain(self, store: Any) -> None:
        """Appends through two handles interleave into one gapless, verifiable chain."""
        other = self.reopen(store)
        try:
            store.append([heartbeat(0)])
            other.append([heartbeat(1), heartbeat(2)])
            store.append([heartbeat(3)])
            assert [e.seq for e in other.read()] == [1, 2, 3, 4]
        finally:
            other.close()
        assert list(verify_rows(store.read_rows())) == []


class TestSqliteStore(EventStoreContract):
    """The SQLite store passes the contract, plus its own durability settings."""

    @pytest.fixture
    def store(self, fresh_db: SqliteStore) -> SqliteStore:
        return fresh_db

    def create_items(self, store: SqliteStore) -> None:
        store.conn.execute("CREATE TABLE items (n INTEGER)")

    def insert_item(self, conn: sqlite3.Connection, n: int) -> None:
        conn.execute("INSERT INTO items (n) VALUES (?)", (n,))

    def count_items(self, store: SqliteStore) -> int:
        with sqlite3.connect(store.path) as conn:
            return int(conn.execute("SELECT count(*) FROM items").fetchone()[0])

    def reopen(self, store: SqliteStore) -> SqliteStore:
        return SqliteStore.open(store.path)

    def test_wal_and_synchronous_full_by_default(self, fresh_db: SqliteStore) -> None:
        """A ledger opens in WAL mode with synchronous=FULL unless asked otherwise."""
        assert fresh_db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert fresh_db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2

    def test_synchronous_can_be_relaxed(self, db_path: Path) -> None:
        """`synchronous="NORMAL"` is honoured (for benchmarks), WAL stays."""
        with SqliteStore.open(db_path, create=True, synchronous="NORMAL") as store:
            assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 1
            assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    def test_read_only_store_refuses_to_append(self, fresh_db: SqliteStore) -> None:
        """A store opened read-only cannot append, and the ledger is left as it was."""
        fresh_db.append([heartbeat(0)])
        with SqliteStore.open(fresh_db.path, readonly=True) as reader:
            assert reader.head() == 1
            with pytest.raises(sqlite3.OperationalError):
                reader.append([heartbeat(1)])
        assert fresh_db.head() == 1

    def test_ledger_survives_reopening(self, fresh_db: SqliteStore) -> None:
        """Events committed by one handle are there, unchanged, for the next process."""
        appended = fresh_db.append([heartbeat(0), pair_event(1)])
        fresh_db.close()
        with SqliteStore.open(fresh_db.path) as again:
            assert list(again.read()) == appended
            assert again.get_meta("app") == "sweepledger"
