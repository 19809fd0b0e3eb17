"""The chain verified over seq ranges in worker processes finds exactly what one pass finds.

Each range starts from the stored hash of the row before it, so a change is named at the same
seq wherever it falls: inside a range, on its first row, on its last row.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from sweepledger.ledger.chain import ParallelChain, split, verify_rows
from sweepledger.ledger.codec import chain_hash
from sweepledger.ledger.events import EventKind, NewEvent
from sweepledger.ledger.schema import GUARD_TRIGGERS
from sweepledger.ledger.store import SqliteStore
from sweepledger.projections.check import check_store

EVENTS = 40
RANGE = 7
"""Ranges (None, 7], (7, 14], ... (35, 40]: boundaries at 7/8, 14/15, ..., 35/36."""
BOUNDARY_SEQS = [1, 2, 7, 8, 14, 15, 21, 22, 35, 36, 39, 40]


@pytest.fixture
def ledger(fresh_db: SqliteStore) -> SqliteStore:
    """Forty events whose guard triggers were dropped, as a tamperer would."""
    fresh_db.append([NewEvent(EventKind.HEARTBEAT, "s", "r", data={"n": n}) for n in range(EVENTS)])
    for name in GUARD_TRIGGERS:
        fresh_db.conn.execute(f"DROP TRIGGER {name}")
    return fresh_db


def sequential(store: SqliteStore) -> list[tuple[int, str]]:
    return list(verify_rows(store.read_rows()))


def parallel(store: SqliteStore, workers: int = 2) -> list[tuple[int, str]]:
    with ParallelChain(store.path, store.head(), workers=workers, range_size=RANGE) as chain:
        return chain.problems()


def test_untouched_ledger_has_no_problem_in_any_range(ledger: SqliteStore) -> None:
    """Six ranges over two workers, all clean."""
    assert parallel(ledger) == [] == sequential(ledger)


@pytest.mark.parametrize("seq", BOUNDARY_SEQS)
def test_changed_row_is_named_alone_wherever_it_falls(ledger: SqliteStore, seq: int) -> None:
    """A changed row is named at its own seq, also on a range's first or last row."""
    ledger.conn.execute("UPDATE events SET data = '{\"n\":-1}' WHERE seq = ?", (seq,))
    assert [s for s, _ in parallel(ledger)] == [seq]
    assert parallel(ledger) == sequential(ledger)


@pytest.mark.parametrize("seq", BOUNDARY_SEQS[:-1])
def test_rewritten_row_with_recomputed_hash_breaks_the_next(ledger: SqliteStore, seq: int) -> None:
    """A row rewritten with a matching hash is caught at the row after it, even when that row
    starts the next range (it is checked against the hash the rewritten row *stores*)."""
    rows = {int(r[0]): r for r in ledger.read_rows()}
    previous = rows[seq - 1][8] if seq > 1 else "0" * 64
    _, ts, sweep_id, run_id, kind, service, subject, _, _ = rows[seq]
    digest = chain_hash(previous, seq, ts, sweep_id, run_id, kind, service, subject, "{}")
    ledger.conn.execute("UPDATE events SET data = '{}', hash = ? WHERE seq = ?", (digest, seq))
    assert [s for s, _ in parallel(ledger)] == [seq + 1]
    assert parallel(ledger) == sequential(ledger)


@pytest.mark.parametrize("seq", [1, 7, 8, 20, 40])
def test_deleted_row_is_a_gap_and_a_broken_link(ledger: SqliteStore, seq: int) -> None:
    """A deleted row shows at the next row (seq gap and chain), as in one sequential pass."""
    ledger.conn.execute("DELETE FROM events WHERE seq = ?", (seq,))
    found = parallel(ledger)
    assert found == sequential(ledger)
    assert (seq == EVENTS) == (found == [])  # the last row's removal is the anchor's business


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_any_number_of_workers_finds_the_same(ledger: SqliteStore, workers: int) -> None:
    """In-process, one worker, more workers than needed: the same problems, in seq order."""
    for seq in (3, 15, 29):
        ledger.conn.execute("UPDATE events SET ts = 'x' WHERE seq = ?", (seq,))
    assert parallel(ledger, workers) == sequential(ledger)
    assert [s for s, _ in parallel(ledger, workers)] == [3, 15, 29]


@pytest.mark.parametrize(("head", "size"), [(0, 5), (1, 5), (40, 7), (42, 7), (100, 1000)])
def test_ranges_cover_every_seq_once(head: int, size: int) -> None:
    """The ranges are contiguous, the first open below (a row at seq <= 0 is still seen)."""
    ranges = split(head, 4, size)
    assert ranges[0][0] is None and ranges[-1][1] == head
    assert all(after == last for (_, last), (after, _) in itertools.pairwise(ranges))


def test_check_store_names_chain_breaks_the_same_with_workers(ledger: SqliteStore) -> None:
    """`check_store` reports the same chain violations whether workers verify it or not."""
    ledger.conn.execute("UPDATE events SET data = '{\"n\":-1}' WHERE seq IN (7, 8, 30)")

    def chain_violations(workers: int) -> list[str]:
        result = check_store(ledger, chain_workers=workers, chain_range=RANGE)
        return [str(v) for v in result.violations if v.rule == "chain"]

    assert chain_violations(2) == chain_violations(0)
    assert [v.split(":")[0] for v in chain_violations(2)] == ["seq 7", "seq 8", "seq 30"]


def test_row_added_after_the_head_is_left_out(ledger: SqliteStore, tmp_path: Path) -> None:
    """Workers verify up to the head they were given (events appended meanwhile wait for the
    next check), so the fold and the chain cover the same rows."""
    head = ledger.head()
    ledger.append([NewEvent(EventKind.HEARTBEAT, data={"late": True})])
    ledger.conn.execute("UPDATE events SET data = '{}' WHERE seq = ?", (head + 1,))
    with ParallelChain(ledger.path, head, workers=2, range_size=RANGE) as chain:
        assert chain.problems() == []
