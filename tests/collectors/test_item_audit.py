"""`sweep check` counts each pair's item rows against the rows its PAGE events say they added.

Real sweeps of the demo workspace through the runner into real SQLite files, then the item
tables changed behind the ledger's back, as a careless script or a tamperer would.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sweepledger.collectors.protocol import SERVICES
from sweepledger.collectors.runner import RunOptions, SweepRunner
from sweepledger.collectors.sim.source import SimSource
from sweepledger.ledger.items import ITEM_TABLES
from sweepledger.ledger.store import SqliteStore
from sweepledger.projections.api import check_ledger
from sweepledger.projections.check import check_store

WORKSPACE = "sim://?subjects=3&seed=5"


def _sweep(db: Path, url: str) -> None:
    source = SimSource(url)
    outcome = SweepRunner(db, source, RunOptions(source.url, SERVICES, max_pages=None)).run()
    assert outcome.exit_code == 0


@pytest.fixture
def swept(tmp_path: Path) -> Path:
    """A full sweep, then an incremental one at generation 2 (new, changed and deleted items,
    tombstones of ids never stored among them)."""
    db = tmp_path / "sweep.db"
    _sweep(db, WORKSPACE)
    _sweep(db, WORKSPACE + "&generation=2")
    return db


def _items(result: object) -> list[tuple[int, str]]:
    return [(v.seq, v.message) for v in result.violations if v.rule == "items"]  # type: ignore[attr-defined]


def _last_page(db: Path, service: str, subject: str) -> int:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT MAX(seq) FROM events WHERE kind = 'PAGE' AND service = ? AND subject = ?",
            (service, subject),
        ).fetchone()
    return int(row[0])


def test_every_row_of_a_real_sweep_is_accounted_for(swept: Path) -> None:
    """The rows of every item table are exactly the rows the PAGE events say they added, over
    a full and an incremental sweep, and check finds nothing."""
    with sqlite3.connect(swept) as conn:
        added = conn.execute(
            "SELECT SUM(json_extract(data, '$.created')) FROM events WHERE kind = 'PAGE'"
        ).fetchone()[0]
        rows = sum(
            conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ITEM_TABLES.values()
        )
        tombstones = conn.execute("SELECT COUNT(*) FROM drive_files WHERE deleted = 1").fetchone()
    assert rows == added > 0
    assert tombstones[0] > 0  # the incremental sweep did record deletions
    assert check_ledger(swept).ok


def _a_subject(conn: sqlite3.Connection, table: str) -> tuple[str, int]:
    """A subject with rows in `table`, and how many."""
    subject, rows = conn.execute(
        f"SELECT subject_email, COUNT(*) FROM {table} GROUP BY subject_email LIMIT 1"
    ).fetchone()
    return str(subject), int(rows)


def test_a_removed_row_is_named_at_the_pairs_last_page(swept: Path) -> None:
    """One row deleted from a pair's table: one violation, at the pair's last PAGE."""
    with sqlite3.connect(swept) as conn:
        subject, before = _a_subject(conn, "chat_messages")
        conn.execute(
            "DELETE FROM chat_messages WHERE rowid = "
            "(SELECT MIN(rowid) FROM chat_messages WHERE subject_email = ?)",
            (subject,),
        )
    assert _items(check_ledger(swept)) == [
        (
            _last_page(swept, "chat", subject),
            f"chat_messages holds {before - 1} rows of {subject}, but the PAGE events of "
            f"chat/{subject} added {before}: rows were removed",
        )
    ]


def test_rows_written_outside_any_page_are_named(swept: Path) -> None:
    """A row added to a swept pair is named at the pair's last PAGE; a row of a subject no page
    ever wrote, at the ledger's head."""
    with sqlite3.connect(swept) as conn:
        subject, count = _a_subject(conn, "gmail_messages")
        conn.execute(
            "INSERT INTO gmail_messages (subject_email, id) VALUES (?, 'planted')", (subject,)
        )
        conn.execute("INSERT INTO drive_files (subject_email, id) VALUES ('eve@x.example', 'f')")
        head = conn.execute("SELECT MAX(seq) FROM events").fetchone()[0]
    found = _items(check_ledger(swept))
    assert found == sorted(
        [
            (
                _last_page(swept, "gmail", subject),
                f"gmail_messages holds {count + 1} rows of {subject}, but the PAGE events of "
                f"gmail/{subject} added {count}: rows were written outside any PAGE",
            ),
            (
                head,
                "drive_files holds 1 row of eve@x.example, but the PAGE events of "
                "drive/eve@x.example added 0: rows were written outside any PAGE",
            ),
        ]
    )


def test_the_parts_of_a_parallel_check_count_the_same(swept: Path) -> None:
    """Split by subject over processes, check names the same difference as one pass."""
    with sqlite3.connect(swept) as conn:
        conn.execute("DELETE FROM drive_files WHERE rowid = (SELECT MAX(rowid) FROM drive_files)")
    with SqliteStore.open(swept, readonly=True) as store:
        alone = _items(check_store(store, parts=1, chain_workers=0))
        split = _items(check_store(store, parts=2, chain_workers=0))
    assert len(alone) == 1 and split == alone
