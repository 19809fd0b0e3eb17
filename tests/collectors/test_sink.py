"""The item sink: tables, idempotent upserts, tombstones and the stats of each write."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sweepledger.collectors.errors import Internal
from sweepledger.collectors.protocol import SERVICES, FetchRequest, Item
from sweepledger.collectors.sim.source import SimSource
from sweepledger.collectors.sink import (
    COLUMNS,
    ITEM_TABLES,
    WriteStats,
    ensure_item_tables,
    forget_unlisted,
    write_items,
)

SUBJECT = "ana@corp.example"


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A real SQLite file with the item tables, inside an open transaction."""
    connection = sqlite3.connect(tmp_path / "items.db", isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    ensure_item_tables(connection)
    yield connection
    connection.rollback()
    connection.close()


def message(item_id: str, **changes: Any) -> Item:
    """A gmail item with every column filled."""
    fields: dict[str, Any] = {
        "thread_id": "t1",
        "history_id": 100,
        "internal_date": "2026-01-05T10:00:00.000Z",
        "subject": "Budget",
        "sender": "bob@corp.example",
        "recipients": '["ana@corp.example"]',
        "labels": '["INBOX"]',
        "size_estimate": 1234,
        "snippet": "numbers",
    }
    return Item(item_id, {**fields, **changes})


def row(conn: sqlite3.Connection, item_id: str, table: str = "gmail_messages") -> dict[str, Any]:
    """One stored row as a dict."""
    cursor = conn.execute(
        f"SELECT * FROM {table} WHERE subject_email = ? AND id = ?", [SUBJECT, item_id]
    )
    names = [d[0] for d in cursor.description]
    found = cursor.fetchone()
    assert found is not None, item_id
    return dict(zip(names, found, strict=True))


def test_tables_have_the_operator_columns(conn: sqlite3.Connection) -> None:
    """Each item table has subject_email, id, deleted, last_seq, listed_seq and its service's
    columns."""
    ensure_item_tables(conn)
    for service in SERVICES:
        info = conn.execute(f"PRAGMA table_info({ITEM_TABLES[service]})").fetchall()
        names = [column[1] for column in info]
        assert names == [
            "subject_email",
            "id",
            *COLUMNS[service],
            "deleted",
            "last_seq",
            "listed_seq",
        ]
        assert [column[1] for column in info if column[5]] == ["subject_email", "id"]
    assert set(ITEM_TABLES) == set(SERVICES)


def test_insert_then_same_items_are_unchanged(conn: sqlite3.Connection) -> None:
    """Writing a page inserts its items; writing it again changes nothing and says so."""
    page = [message("m1"), message("m2")]
    assert write_items(conn, "gmail", SUBJECT, page, seq=7) == WriteStats(2, 2, 0, 0, 0, created=2)
    assert write_items(conn, "gmail", SUBJECT, page, seq=9) == WriteStats(2, 0, 0, 2, 0)
    assert row(conn, "m1")["last_seq"] == 7
    assert row(conn, "m1")["labels"] == '["INBOX"]'


def test_a_changed_item_updates_its_row(conn: sqlite3.Connection) -> None:
    """A changed field counts as updated and the row takes the new values and the page's seq."""
    write_items(conn, "gmail", SUBJECT, [message("m1")], seq=1)
    changed = message("m1", labels=["INBOX", "STARRED"], history_id="140")
    stats = write_items(conn, "gmail", SUBJECT, [changed, message("m2")], seq=2)
    assert stats == WriteStats(fetched=2, inserted=1, updated=1, created=1)
    stored = row(conn, "m1")
    assert (stored["labels"], stored["history_id"], stored["last_seq"]) == (
        '["INBOX","STARRED"]',
        140,
        2,
    )
    assert write_items(conn, "gmail", SUBJECT, [changed], seq=3).unchanged == 1


def test_a_tombstone_keeps_the_row_and_counts_once(conn: sqlite3.Connection) -> None:
    """A tombstone sets deleted=1, keeps the other columns, and counts as deleted only once."""
    write_items(conn, "gmail", SUBJECT, [message("m1")], seq=1)
    tombstone = Item("m1", {}, deleted=True)
    assert write_items(conn, "gmail", SUBJECT, [tombstone], seq=2) == WriteStats(1, deleted=1)
    stored = row(conn, "m1")
    assert (stored["deleted"], stored["subject"], stored["last_seq"]) == (1, "Budget", 2)
    assert write_items(conn, "gmail", SUBJECT, [tombstone], seq=3) == WriteStats(1, unchanged=1)
    assert row(conn, "m1")["last_seq"] == 2


def test_a_tombstone_for_an_unknown_id_records_the_deletion(conn: sqlite3.Connection) -> None:
    """A tombstone for an id never stored still leaves a row with deleted=1, so it counts as
    a row created although the item counts as deleted."""
    stats = write_items(conn, "drive", SUBJECT, [Item("f9", {}, deleted=True)], seq=4)
    assert stats == WriteStats(1, deleted=1, created=1)
    stored = row(conn, "f9", "drive_files")
    assert (stored["deleted"], stored["name"], stored["last_seq"]) == (1, None, 4)


def test_an_item_coming_back_clears_its_tombstone(conn: sqlite3.Connection) -> None:
    """A live item over a deleted row counts as updated and clears deleted."""
    write_items(conn, "gmail", SUBJECT, [Item("m1", {}, deleted=True)])
    assert write_items(conn, "gmail", SUBJECT, [message("m1")]) == WriteStats(1, updated=1)
    assert row(conn, "m1")["deleted"] == 0


def test_the_last_occurrence_of_an_id_in_a_page_wins(conn: sqlite3.Connection) -> None:
    """An id twice in one page is written as its last occurrence, and each occurrence counted."""
    page = [message("m1"), Item("m1", {}, deleted=True), message("m1", subject="Again")]
    stats = write_items(conn, "gmail", SUBJECT, page)
    assert stats == WriteStats(fetched=3, inserted=1, deleted=1, updated=1, created=1)
    assert (row(conn, "m1")["deleted"], row(conn, "m1")["subject"]) == (0, "Again")


def test_subjects_do_not_share_rows(conn: sqlite3.Connection) -> None:
    """The same id under two subjects is two rows."""
    write_items(conn, "gmail", SUBJECT, [message("m1")])
    assert write_items(conn, "gmail", "bob@corp.example", [message("m1")]).inserted == 1


def test_bad_items_and_misuse_are_refused(tmp_path: Path) -> None:
    """Unknown fields or services are Internal; writing outside a transaction is refused."""
    connection = sqlite3.connect(tmp_path / "items.db", isolation_level=None)
    ensure_item_tables(connection)
    with pytest.raises(RuntimeError, match="transaction"):
        write_items(connection, "gmail", SUBJECT, [message("m1")])
    connection.execute("BEGIN")
    with pytest.raises(Internal, match="colour"):
        write_items(connection, "gmail", SUBJECT, [message("m1", colour="red")])
    with pytest.raises(Internal, match="size_estimate"):
        write_items(connection, "gmail", SUBJECT, [message("m1", size_estimate="big")])
    with pytest.raises(Internal, match="docs"):
        write_items(connection, "docs", SUBJECT, [])
    connection.rollback()
    connection.close()


def test_sim_sweep_then_incremental_matches_the_next_generation(tmp_path: Path) -> None:
    """Writing a full sweep, re-writing it, then applying generation 2's incremental sync leaves
    exactly generation 2's items live, and the re-write is all unchanged."""
    connection = sqlite3.connect(tmp_path / "items.db", isolation_level=None)
    connection.execute("BEGIN")
    ensure_item_tables(connection)
    gen1, gen2 = SimSource("sim://?subjects=3"), SimSource("sim://?subjects=3&generation=2")
    # a full sync, the same full sync again, then an incremental one from its cursor
    passes = [(gen1, False), (gen1, False), (gen2, True)]
    totals = [WriteStats()] * len(passes)
    for subject in gen1.roster():
        for service in SERVICES:
            for unit in gen1.units(service, subject) or [None]:
                cursor: dict[str, str] = {}
                for index, (source, incremental) in enumerate(passes):
                    token, carry = None, {}
                    while True:
                        request = FetchRequest(
                            service, subject, unit, cursor if incremental else {}, token, carry
                        )
                        page = source.fetch(request)
                        stats = write_items(connection, service, subject, page.items, seq=index)
                        totals[index] += stats
                        if page.exhausted:
                            break
                        token, carry = page.next_page_token, page.carry
                    cursor = dict(page.cursor)
    assert totals[0].inserted == totals[0].fetched > 1_000
    assert totals[1] == WriteStats(fetched=totals[0].fetched, unchanged=totals[0].fetched)
    assert min(totals[2].inserted, totals[2].updated, totals[2].deleted) > 0
    for service in SERVICES:
        table = ITEM_TABLES[service]
        stored = {
            (r[0], r[1])
            for r in connection.execute(f"SELECT subject_email, id FROM {table} WHERE NOT deleted")
        }
        expected = set()
        for subject in gen2.roster():
            for unit in gen2.units(service, subject) or [None]:
                listing = _listing(gen2, service, subject, unit)
                expected |= {(subject, item_id) for item_id in listing}
        assert stored == expected
    connection.rollback()
    connection.close()


def _listing(source: SimSource, service: str, subject: str, unit: str | None) -> list[str]:
    ws = source.workspace
    if service == "gmail":
        return [m.id for m in ws.gmail_messages(subject)]
    if service == "calendar":
        return [e.id for e in ws.calendar_events(subject)]
    if service == "chat":
        return [m.id for m in ws.chat_messages(subject, str(unit))]
    return [f.id for f in ws.drive_files(subject)]


def test_a_full_pass_tombstones_only_what_it_did_not_list(conn: sqlite3.Connection) -> None:
    """An unchanged item a page lists gets that page's seq as `listed_seq` (not `last_seq`);
    the end of a full pass that began after seq 15 tombstones the live rows no later page
    listed, and nothing else."""
    write_items(conn, "gmail", SUBJECT, [message("m1"), message("m2"), message("m3")], seq=10)
    write_items(conn, "gmail", SUBJECT, [Item("m4", {}, deleted=True)], seq=11)
    stats = write_items(conn, "gmail", SUBJECT, [message("m1"), message("m3")], seq=20)
    assert stats.unchanged == 2
    assert (row(conn, "m1")["last_seq"], row(conn, "m1")["listed_seq"]) == (10, 20)
    assert row(conn, "m2")["listed_seq"] == 10
    assert forget_unlisted(conn, "gmail", SUBJECT, None, 15, 21) == 1
    assert row(conn, "m2")["deleted"] == 1 and row(conn, "m2")["last_seq"] == 21
    assert row(conn, "m2")["subject"] == "Budget"  # a tombstone keeps what was known
    assert [row(conn, i)["deleted"] for i in ("m1", "m3", "m4")] == [0, 0, 1]
    assert forget_unlisted(conn, "gmail", SUBJECT, None, 15, 22) == 0  # nothing more to forget


def test_a_units_pass_forgets_only_that_units_items(conn: sqlite3.Connection) -> None:
    """Chat passes go space by space: the end of one space's pass leaves the others alone."""

    def chat(item_id: str, space: str) -> Item:
        return Item(item_id, {"space": space, "text": "hi"})

    write_items(conn, "chat", SUBJECT, [chat("a1", "spaces/A"), chat("b1", "spaces/B")], seq=5)
    assert forget_unlisted(conn, "chat", SUBJECT, "spaces/A", 8, 9) == 1
    assert row(conn, "a1", "chat_messages")["deleted"] == 1
    assert row(conn, "b1", "chat_messages")["deleted"] == 0


def test_tables_made_before_listed_seq_get_the_column(tmp_path: Path) -> None:
    """A ledger whose item tables predate `listed_seq` gains it (empty) when opened for a run."""
    connection = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    connection.execute(
        "CREATE TABLE gmail_messages (subject_email TEXT NOT NULL, id TEXT NOT NULL, "
        "deleted INTEGER NOT NULL DEFAULT 0, last_seq INTEGER, PRIMARY KEY (subject_email, id))"
    )
    connection.execute("INSERT INTO gmail_messages (subject_email, id) VALUES ('a@x', 'm1')")
    ensure_item_tables(connection)
    names = [c[1] for c in connection.execute("PRAGMA table_info(gmail_messages)")]
    assert names[-1] == "listed_seq"
    assert connection.execute("SELECT listed_seq FROM gmail_messages").fetchall() == [(None,)]
    connection.close()
