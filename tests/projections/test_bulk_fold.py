"""The bulk fold (`fold_rows` / `fold_ledger`, replay and rebuild) equals the write-through fold.

The bulk path skips what only the write-through projector needs (dirty sets, counters kept
current, a checkpoint built for every PAGE) and reads plain rows instead of `Event` records; none
of that may change a single derived row, at any point of any ledger.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

from sweepledger.ledger.events import EventKind, NewEvent
from sweepledger.ledger.store import SqliteStore
from sweepledger.projections.bulk import fold_ledger, fold_rows
from sweepledger.projections.fold import State, fold
from sweepledger.projections.tables import state_rows

from .builder import valid_ledger


def snapshot(state: State) -> dict[str, Any]:
    """Everything a fold derives, in comparable form (every table row, the head, the flags)."""
    return {
        **state_rows(state),
        "head": (state.head, state.head_ts, state.head_hash),
        "heartbeat": state.heartbeat,
        "counters": dict(state.counters),
    }


def stored_ledger(path: Path, seed: int) -> SqliteStore:
    """A generated valid ledger appended to a real SQLite file, a few events per transaction."""
    news, _ = valid_ledger(seed)
    store = SqliteStore.open(path, create=True, synchronous="OFF")
    for first in range(0, len(news), 5):
        store.append(news[first : first + 5])
    return store


def _opening(subject: str, service: str) -> list[NewEvent]:
    """RUN_START of run "r" and SWEEP_OPEN of sweep "s" over one pair."""
    return [
        NewEvent(EventKind.RUN_START, "s", "r", data={"pid": 1}),
        NewEvent(
            EventKind.SWEEP_OPEN,
            "s",
            "r",
            data={"roster": [subject], "services": [service], "source": "sim://"},
        ),
    ]


@pytest.mark.parametrize("seed", [3, 11, 29])
def test_bulk_fold_equals_incremental_fold_after_every_event(tmp_path: Path, seed: int) -> None:
    """For every prefix of a generated ledger, `fold_ledger` up to that seq equals the
    write-through State that applied the same events one by one."""
    with stored_ledger(tmp_path / "ledger.db", seed) as store:
        incremental = State()
        for event in store.read():
            incremental.apply(event)
            incremental.clear_dirty()
            bulk = fold_ledger(store.conn, event.seq)
            assert snapshot(bulk) == snapshot(incremental), f"after seq {event.seq}"


@pytest.mark.parametrize("seed", [5, 17])
def test_bulk_fold_equals_fold_of_events(tmp_path: Path, seed: int) -> None:
    """`fold_ledger` (rows) and `fold` (decoded events through `apply`) derive the same state."""
    with stored_ledger(tmp_path / "ledger.db", seed) as store:
        assert snapshot(fold_ledger(store.conn)) == snapshot(fold(store.read()))


def test_pending_checkpoint_is_built_from_the_last_page(tmp_path: Path) -> None:
    """A pair left PARTIAL after several pages gets the checkpoint of its last page, and one
    completed afterwards has none (the bulk fold builds checkpoints only at the end)."""
    pair = {"service": "gmail", "subject": "ana@corp.example", "sweep_id": "s", "run_id": "r"}
    pages = [
        NewEvent(EventKind.PAGE, **pair, data={"count": 2, "page": n, "next_page_token": f"t{n}"})
        for n in (1, 2, 3)
    ]
    with SqliteStore.open(tmp_path / "ledger.db", create=True) as store:
        store.append(
            [
                *_opening(pair["subject"], "gmail"),
                NewEvent(EventKind.START, **pair, data={"attempt": 1}),
                *pages,
                NewEvent(EventKind.CURSOR_SKIP, **pair, data={"reason": "partial"}),
                NewEvent(EventKind.END, **pair, data={"ok": True, "partial": True, "count": 6}),
            ]
        )
        row = fold_ledger(store.conn).pairs[("gmail", pair["subject"])]
        assert row.checkpoint == {"unit": None, "page": 3, "token": "t3", "carry": {}}
        store.append(
            [
                NewEvent(EventKind.START, **pair, data={"attempt": 2}),
                NewEvent(EventKind.PAGE, **pair, data={"count": 1, "page": 4, "exhausted": True}),
                NewEvent(EventKind.CURSOR_WRITE, **pair, data={"key": "historyId", "value": "9"}),
                NewEvent(EventKind.END, **pair, data={"ok": True, "count": 1}),
            ]
        )
        row = fold_ledger(store.conn).pairs[("gmail", pair["subject"])]
        assert (row.state, row.checkpoint, row.items) == ("COMPLETE", None, 7)


def test_every_page_field_folds_alike(tmp_path: Path) -> None:
    """PAGE fields the generated ledgers rarely carry (every run counter, retried and failed
    item ids, units, an exhausted page with items outstanding) fold the same in bulk."""
    pair = {"service": "chat", "subject": "ana@corp.example", "sweep_id": "s", "run_id": "r"}
    counters = {"inserted": 3, "updated": 1, "unchanged": 2, "deleted": 1, "requests": 4}
    counters |= {"rate_limited": 1, "quota_units": 9, "retries": 2}
    with SqliteStore.open(tmp_path / "ledger.db", create=True) as store:
        store.append(
            [
                *_opening(pair["subject"], "chat"),
                NewEvent(EventKind.START, **pair, data={"units": ["spaces/A"]}),
                NewEvent(
                    EventKind.PAGE,
                    **pair,
                    data={"count": 5, "unit": "spaces/A", "failed_ids": ["m1", "m2"], **counters},
                ),
                NewEvent(
                    EventKind.PAGE,
                    **pair,
                    data={
                        "count": 2,
                        "unit": "spaces/A",
                        "exhausted": True,
                        "retried_ids": ["m1"],
                        "carry": {"k": "v"},
                        **counters,
                    },
                ),
                NewEvent(EventKind.CURSOR_SKIP, **pair, data={"reason": "error"}),
                NewEvent(
                    EventKind.END, **pair, data={"err": "Transient", "count": 7, "retries": 1}
                ),
            ]
        )
        incremental = State()
        for event in store.read():
            incremental.apply(event)
        bulk = fold_ledger(store.conn)
        assert snapshot(bulk) == snapshot(incremental)
        row = bulk.pairs[("chat", pair["subject"])]
        assert row.outstanding == ["m2"]
        assert row.checkpoint is not None and row.checkpoint["exhausted"] is True
        assert bulk.runs["r"].counters["retries"] == 5


def test_bulk_fold_restores_the_garbage_collector(tmp_path: Path) -> None:
    """The collector paused during a bulk fold is running again after it, even on an error."""
    with stored_ledger(tmp_path / "ledger.db", 7) as store:
        fold_ledger(store.conn)
        assert gc.isenabled()
        with pytest.raises(ValueError, match="NO_SUCH_KIND"):
            fold_rows(
                State(incremental=False), [[(1, "t", None, None, "NO_SUCH_KIND", None, None, "{}")]]
            )
        assert gc.isenabled()


def test_empty_ledger_folds_to_nothing(fresh_db: SqliteStore) -> None:
    """No event: head 0, no hash, no sweep (as `fold` of nothing)."""
    assert snapshot(fold_ledger(fresh_db.conn)) == snapshot(fold([]))
