"""The read side as a Python API: status, replay and check of a ledger file.

The `sweep` commands are thin shells over these functions; a program can call them directly::

    from sweepledger.projections.api import read_status, check_ledger
    report = read_status("sweep.db")
    print(report.verdict, report.completeness.complete_subjects_count)
    assert check_ledger("sweep.db", require_complete=True).ok
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from sweepledger.ledger.errors import PastHead
from sweepledger.ledger.lock import is_locked, lock_path, read_holder
from sweepledger.ledger.store import SqliteStore

from .attach import open_for_reading, projections_current, read_snapshot
from .check import CheckResult, Violation, check_store
from .completeness import completeness
from .fold import State
from .live import parse_ts
from .parallel import fold_parallel
from .status import (
    PROBLEM_LIMIT,
    StatusReport,
    build_report,
    gather_from_state,
    gather_from_tables,
)


def live_run_ids(db_path: str | Path) -> set[str]:
    """The run whose process holds the ledger's writer lock now, if any."""
    if not is_locked(db_path):
        return set()
    holder = read_holder(lock_path(db_path)).get("run_id")
    return {str(holder)} if holder else set()


def fold_store(store: SqliteStore, as_of: int | None = None) -> State:
    """Every projection rebuilt in memory from seq 1 (up to `as_of`), on every CPU when the
    ledger is big (`projections.parallel`).

    An `as_of` past the last event is refused rather than answered with the state now: an
    auditor asking for a point the ledger has not reached must not read today's state as it.
    """
    if as_of is not None and as_of > (head := store.head()):
        raise PastHead(str(store.path), as_of, head)
    return fold_parallel(store.path, store.conn, as_of)


def read_status(
    db_path: str | Path, *, as_of: int | None = None, problem_limit: int | None = PROBLEM_LIMIT
) -> StatusReport:
    """The status report; from the projection tables, or folded up to `as_of`. It lists the
    first `problem_limit` problem pairs (None: every one) and says how many more there are."""
    with open_for_reading(db_path) as store:
        if as_of is None:
            # The lock is probed before and after the snapshot: a run that started or ended
            # while the tables were read is live for this report, not "interrupted".
            before = live_run_ids(db_path)
            with read_snapshot(store):
                if projections_current(store):
                    gathered = gather_from_tables(store.conn, problem_limit=problem_limit)
                    live = before | live_run_ids(db_path)
                    return build_report(gathered, live_run_ids=live)
        return folded_report(db_path, fold_store(store, as_of), as_of, problem_limit)


def folded_report(
    db_path: str | Path,
    state: State,
    as_of: int | None,
    problem_limit: int | None = PROBLEM_LIMIT,
) -> StatusReport:
    """The report of a fold: of the ledger now, or as it stood right after event `as_of`, when
    the runs open then were live and ages, rates and ETAs are measured from that event's time.

    The fold itself knows no lock and no clock; liveness and time are added here, as the
    table-read report adds them, so both reports of one ledger are the same."""
    gathered = gather_from_state(state, problem_limit=problem_limit)
    if as_of is None:
        return build_report(gathered, live_run_ids=live_run_ids(db_path))
    live = {r.run_id for r in state.runs.values() if r.status == "running"}
    then = parse_ts(state.head_ts) if state.head_ts else None
    return build_report(gathered, live_run_ids=live, now=then)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    report: StatusReport
    events: int
    seconds: float


def replay(
    db_path: str | Path, *, as_of: int | None = None, problem_limit: int | None = PROBLEM_LIMIT
) -> ReplayResult:
    """Rebuild everything from seq 1 in memory (audit and time travel)."""
    with open_for_reading(db_path) as store:
        started = time.perf_counter()
        state = fold_store(store, as_of)
        seconds = time.perf_counter() - started
        report = folded_report(db_path, state, as_of, problem_limit)
        return ReplayResult(report, state.head, seconds)


def check_ledger(db_path: str | Path, *, require_complete: bool = False) -> CheckResult:
    """Integrity and invariants; with `require_complete`, the latest sweep must be COMPLETE."""
    with open_for_reading(db_path) as store:
        # One snapshot for every read (head, rows, tables), so a run appending meanwhile is not
        # mistaken for tampering; the lock is probed before and after the snapshot starts, so a
        # run that starts or ends meanwhile counts as live.
        before = live_run_ids(db_path)
        with read_snapshot(store):
            store.head()  # the snapshot starts with the first read
            live = before | live_run_ids(db_path)
            result = check_store(store, live)
    if require_complete:
        state = result.state
        sweep = state.sweep
        if sweep is None:
            result.violations.append(Violation(state.head, "complete", "the ledger has no sweep"))
        elif sweep.closed != "complete":
            figures = completeness(state.counters, sweep.services, run_live=bool(live))
            why = "; ".join(figures.failures()) or "it was not closed complete"
            result.violations.append(
                Violation(state.head, "complete", f"sweep {sweep.sweep_id} is not COMPLETE: {why}")
            )
    return result
