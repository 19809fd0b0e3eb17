"""A worker process that fails only costs time: the caller does its share itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweepledger.ledger.chain import ParallelChain, verify_rows
from sweepledger.ledger.events import EventKind, NewEvent
from sweepledger.ledger.schema import GUARD_TRIGGERS
from sweepledger.ledger.store import SqliteStore
from sweepledger.ledger.workers import collect, spawn


def test_a_worker_answers_on_stdout(tmp_path: Path) -> None:
    """`spawn` runs a module of this very sweepledger; `collect` hands back its stdout."""
    procs = [spawn("sweepledger.ledger.chain", str(tmp_path / "missing.db"), "[]")]
    assert list(collect(procs)) == [b"[]"]


@pytest.mark.usefixtures("failing_workers")
def test_failed_chain_workers_share_is_verified_in_process(fresh_db: SqliteStore) -> None:
    """The chain problems are the same when every worker failed."""
    fresh_db.append([NewEvent(EventKind.HEARTBEAT, data={"n": n}) for n in range(30)])
    for name in GUARD_TRIGGERS:
        fresh_db.conn.execute(f"DROP TRIGGER {name}")
    fresh_db.conn.execute("UPDATE events SET data = '{}' WHERE seq IN (4, 21)")
    with ParallelChain(fresh_db.path, fresh_db.head(), workers=2, range_size=5) as chain:
        assert chain.problems() == list(verify_rows(fresh_db.read_rows()))
