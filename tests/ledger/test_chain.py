"""Tampering behind the triggers' back is found by the hash chain, at the right seq."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sweepledger.ledger.chain import verify_rows
from sweepledger.ledger.codec import chain_hash
from sweepledger.ledger.events import EventKind, NewEvent
from sweepledger.ledger.schema import GUARD_TRIGGERS
from sweepledger.ledger.store import SqliteStore
from sweepledger.projections.check import check_store

COLUMNS = ("ts", "sweep_id", "run_id", "kind", "service", "subject", "data")


@pytest.fixture
def ledger(fresh_db: SqliteStore) -> SqliteStore:
    """Eight events whose guard triggers were dropped, as a tamperer would."""
    fresh_db.append(
        [
            NewEvent(EventKind.HEARTBEAT, "sweep-1", "run-1", data={"n": n, "text": "x" * n})
            for n in range(8)
        ]
    )
    for name in GUARD_TRIGGERS:
        fresh_db.conn.execute(f"DROP TRIGGER {name}")
    return fresh_db


def chain_problems(store: SqliteStore) -> list[tuple[int, str]]:
    return list(verify_rows(store.read_rows()))


def chain_violations(store: SqliteStore) -> list[int]:
    return [v.seq for v in check_store(store).violations if v.rule == "chain"]


def test_untouched_ledger_verifies(fresh_db: SqliteStore) -> None:
    """A ledger nobody changed has no chain problem and no check violation."""
    fresh_db.append([NewEvent(EventKind.HEARTBEAT, data={"n": n}) for n in range(5)])
    assert chain_problems(fresh_db) == []
    assert check_store(fresh_db).violations == []


def test_dropped_triggers_are_reported(ledger: SqliteStore) -> None:
    """`check` reports each missing guard trigger."""
    guard = [v for v in check_store(ledger).violations if v.rule == "guard"]
    assert sorted(v.message.split()[1] for v in guard) == sorted(GUARD_TRIGGERS)


@pytest.mark.parametrize("seq", [1, 4, 8])
def test_changed_data_is_named_at_its_seq(ledger: SqliteStore, seq: int) -> None:
    """One row's data changed: exactly that seq is named, by `verify_rows` and by `check`."""
    ledger.conn.execute("UPDATE events SET data = '{\"n\":99}' WHERE seq = ?", (seq,))
    assert [s for s, _ in chain_problems(ledger)] == [seq]
    assert chain_violations(ledger) == [seq]


@pytest.mark.parametrize("column", COLUMNS)
def test_every_column_is_covered_by_the_hash(ledger: SqliteStore, column: str) -> None:
    """Changing any column of an event (not only data) breaks the chain at that event."""
    value = '{"n":3,"text":"xxy"}' if column == "data" else "tampered"
    ledger.conn.execute(f"UPDATE events SET {column} = ? WHERE seq = 3", (value,))
    assert [s for s, _ in chain_problems(ledger)] == [3]


@pytest.mark.parametrize("seq", [1, 4, 7])
def test_changed_data_with_recomputed_hash_is_named_at_the_next_seq(
    ledger: SqliteStore, seq: int
) -> None:
    """A row rewritten with a matching hash breaks the link of the row after it, named alone."""
    rows = {int(r[0]): r for r in ledger.read_rows()}
    previous = rows[seq - 1][8] if seq > 1 else "0" * 64
    _, ts, sweep_id, run_id, kind, service, subject, _, _ = rows[seq]
    data = '{"n":99}'
    digest = chain_hash(previous, seq, ts, sweep_id, run_id, kind, service, subject, data)
    ledger.conn.execute("UPDATE events SET data = ?, hash = ? WHERE seq = ?", (data, digest, seq))
    assert [s for s, _ in chain_problems(ledger)] == [seq + 1]
    assert chain_violations(ledger) == [seq + 1]


@pytest.mark.parametrize("seq", [1, 4, 7])
def test_deleted_row_is_named_as_a_seq_gap(ledger: SqliteStore, seq: int) -> None:
    """A deleted event shows as a seq gap (and a broken link) at the event after it."""
    ledger.conn.execute("DELETE FROM events WHERE seq = ?", (seq,))
    problems = chain_problems(ledger)
    assert {s for s, _ in problems} == {seq + 1}
    assert f"seq gap: expected seq {seq}, found {seq + 1}" in [p for _, p in problems]
    assert set(chain_violations(ledger)) == {seq + 1}


def test_tampering_found_by_check_on_a_reopened_file(ledger: SqliteStore) -> None:
    """A change made by a foreign connection is found by `check` on a read-only open."""
    with sqlite3.connect(ledger.path) as foreign:
        foreign.execute("UPDATE events SET subject = 'eve@corp.example' WHERE seq = 5")
    with SqliteStore.open(ledger.path, readonly=True) as reader:
        assert chain_violations(reader) == [5]


def test_events_cut_off_at_the_end_are_found(tmp_path: Path) -> None:
    """Removing the last events (triggers dropped) leaves the chain valid but the projections'
    anchor (head seq and hash written in the same transactions) no longer matches: named."""
    from sweepledger.collectors.protocol import SERVICES
    from sweepledger.collectors.runner import RunOptions, SweepRunner
    from sweepledger.collectors.sim.source import SimSource

    db = tmp_path / "cut.db"
    source = SimSource("sim://?subjects=2")
    SweepRunner(db, source, RunOptions(source.url, SERVICES, max_pages=None)).run()
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_no_delete")
    conn.execute("DELETE FROM events WHERE seq > (SELECT max(seq) - 3 FROM events)")
    conn.commit()
    conn.close()
    with SqliteStore.open(db, readonly=True) as store:
        rules = {v.rule for v in check_store(store).violations}
    assert "anchor" in rules
