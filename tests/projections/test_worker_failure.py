"""The parts of a fold or check whose worker failed are done in the calling process."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweepledger.ledger.store import SqliteStore
from sweepledger.projections.bulk import fold_ledger
from sweepledger.projections.check import check_store
from sweepledger.projections.parallel import fold_parallel
from sweepledger.projections.tables import state_rows

from .builder import valid_ledger


@pytest.mark.usefixtures("failing_workers")
def test_failed_fold_and_check_workers_parts_are_done_in_process(tmp_path: Path) -> None:
    """`fold_parallel` and `check_store` give one process's answers when their workers fail."""
    news, live = valid_ledger(12)
    with SqliteStore.open(tmp_path / "ledger.db", create=True) as store:
        store.append(news)
        whole = fold_ledger(store.conn)
        assert state_rows(fold_parallel(store.path, store.conn, parts=3)) == state_rows(whole)
        split = check_store(store, live, parts=3, chain_workers=2, chain_range=10)
        assert [str(v) for v in split.violations] == [
            str(v) for v in check_store(store, live, parts=1).violations
        ]
        assert state_rows(split.state) == state_rows(whole)
