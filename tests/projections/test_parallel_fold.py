"""The fold split by subject over processes (`projections.parallel`) equals the single fold.

Parts fold every shared event (sweeps, runs, flags) and only their own subjects' pair events;
their union must be exactly the state one process derives, at any point of any ledger.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from sweepledger.ledger.events import EventKind, NewEvent
from sweepledger.ledger.store import SqliteStore
from sweepledger.projections.api import replay
from sweepledger.projections.bulk import fold_ledger
from sweepledger.projections.parallel import fold_parallel, fold_part, merge, subject_bounds

from .builder import valid_ledger
from .test_bulk_fold import snapshot, stored_ledger


def merged_in_process(store: SqliteStore, head: int, parts: int) -> dict[str, object]:
    bounds = subject_bounds(store.conn, head, parts)
    state = merge([fold_part(store.conn, head, part) for part in bounds], bounds)
    state.head_hash = fold_ledger(store.conn, head).head_hash
    return snapshot(state)


@pytest.mark.parametrize("seed", [6, 9, 12, 24, 35])
@pytest.mark.parametrize("parts", [2, 3])
def test_merged_parts_equal_the_single_fold_after_every_event(
    tmp_path: Path, seed: int, parts: int
) -> None:
    """For every prefix of a generated ledger, the merged parts equal `fold_ledger`."""
    with stored_ledger(tmp_path / "ledger.db", seed) as store:
        assert len(subject_bounds(store.conn, store.head(), parts)) > 1
        for head in range(1, store.head() + 1):
            expected = snapshot(fold_ledger(store.conn, head))
            assert merged_in_process(store, head, parts) == expected, f"up to seq {head}"


def test_subject_bounds_cover_every_subject_once(tmp_path: Path) -> None:
    """The ranges are contiguous and unbounded at both ends: every subject is in one part."""
    with stored_ledger(tmp_path / "ledger.db", 12) as store:
        bounds = subject_bounds(store.conn, store.head(), 4)
        assert len(bounds) > 2
        assert bounds[0][0] is None and bounds[-1][1] is None
        assert all(a[1] == b[0] is not None for a, b in itertools.pairwise(bounds))


@pytest.mark.parametrize("parts", [1, 2, 3])
def test_fold_parallel_with_worker_processes_equals_the_single_fold(
    tmp_path: Path, parts: int
) -> None:
    """Through real worker processes (pickled states), up to the end and up to an `as_of`."""
    with stored_ledger(tmp_path / "ledger.db", 17) as store:
        for as_of in (None, store.head() // 2):
            got = fold_parallel(store.path, store.conn, as_of, parts=parts)
            assert snapshot(got) == snapshot(fold_ledger(store.conn, as_of))


def test_a_subject_that_is_not_text_is_folded_once(tmp_path: Path) -> None:
    """A pair whose subject SQLite stores as a number (no runner writes one) is owned by the
    first part, as SQLite orders numbers before text, and counted once."""
    path = tmp_path / "ledger.db"
    news, _ = valid_ledger(24)
    with SqliteStore.open(path, create=True) as store:
        store.append(news)
        store.append([NewEvent(EventKind.START, "s", None, "gmail", "7", data={})])
        store.conn.execute("DROP TRIGGER events_no_update")
        store.conn.execute("UPDATE events SET subject = 7 WHERE seq = ?", (store.head(),))
        assert merged_in_process(store, store.head(), 3) == snapshot(fold_ledger(store.conn))


def test_replay_report_is_the_same_split_or_not(tmp_path: Path) -> None:
    """`api.replay` (which splits big ledgers) reports what one process folds."""
    with stored_ledger(tmp_path / "ledger.db", 29) as store:
        state = fold_ledger(store.conn)
    result = replay(tmp_path / "ledger.db")
    assert result.events == state.head
    assert result.report.completeness is not None


def test_a_shared_event_naming_a_pair_leaves_the_owners_row(tmp_path: Path) -> None:
    """A HEARTBEAT naming a pair is folded by every part (it is not a pair phase), which makes
    a bare row for that pair in each; the merge keeps the owner's, with its attempts."""
    news, _ = valid_ledger(24)
    opened = max(i for i, n in enumerate(news) if n.kind is EventKind.SWEEP_OPEN)
    starts = [n for n in news[opened:] if n.kind is EventKind.START]
    first = min(starts, key=lambda n: str(n.subject))  # in the first part
    with SqliteStore.open(tmp_path / "ledger.db", create=True) as store:
        store.append(news)
        store.append([NewEvent(EventKind.HEARTBEAT, "s", None, first.service, first.subject)])
        merged = merged_in_process(store, store.head(), 3)
        assert merged == snapshot(fold_ledger(store.conn))
        key = (first.service, first.subject)
        assert fold_ledger(store.conn).pairs[key].attempts > 0
