"""`sweep check`: every rule the ledger promises, each violation named with its seq.

The rows are decoded, checked against the event rules (`rules.EventChecker`) and folded, split
by subject over processes on a big ledger (`projections.parallel`: each part folds every shared
event and its own subjects' pair events from seq 1); meanwhile more worker processes verify the
hash chain and gapless seq over ranges of seq (`ledger.chain.ParallelChain`). Then the parts
are merged and the projection tables compared with the fold.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import sys
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from sweepledger.ledger.chain import ParallelChain
from sweepledger.ledger.codec import decode_data
from sweepledger.ledger.events import PAIR_PHASES, Event, EventKind
from sweepledger.ledger.items import ITEM_TABLES, rows_per_pair
from sweepledger.ledger.scan import fold_batches, hash_of
from sweepledger.ledger.schema import GUARD_TRIGGERS
from sweepledger.ledger.store import SqliteStore
from sweepledger.ledger.workers import collect, spawn, stop

from .attach import read_snapshot
from .bulk import gc_paused, step
from .completeness import completeness
from .fold import Bounds, State
from .parallel import PARALLEL_FROM, merge, part_batches, subject_bounds
from .rules import EventChecker, PartResult, Violation
from .tables import PROJECTION_VERSION, state_rows, stored_rows

__all__ = ["CheckResult", "EventChecker", "Violation", "check_events", "check_store"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    violations: list[Violation]
    state: State

    @property
    def ok(self) -> bool:
        return not self.violations


def check_events(events: Iterable[Event], live_run_ids: Collection[str] = ()) -> CheckResult:
    """The event rules alone, over decoded events (used on generated sequences in tests)."""
    checker = EventChecker()
    for event in events:
        checker.feed(event)
    checker.finish(live_run_ids)
    return CheckResult(checker.violations, checker.state)


def check_store(
    store: SqliteStore,
    live_run_ids: Collection[str] = (),
    *,
    chain_workers: int | None = None,
    chain_range: int | None = None,
    parts: int | None = None,
) -> CheckResult:
    """Every rule, over a stored ledger: rows, chain, guard, events and projection tables.

    The chain is verified by `ParallelChain` (worker processes on a big ledger, see its
    defaults; `chain_workers` and `chain_range` override them) while the events are checked and
    folded up to the head seen at the start, in `parts` split by subject (default: the CPUs on
    a big ledger, else one) of which this process takes the first. Every read of this
    connection sees one snapshot (`read_snapshot`), so rows appended meanwhile are not seen.
    """
    with read_snapshot(store):
        return _check_store(store, live_run_ids, chain_workers, chain_range, parts)


def _check_store(
    store: SqliteStore,
    live_run_ids: Collection[str],
    chain_workers: int | None,
    chain_range: int | None,
    parts: int | None,
) -> CheckResult:
    missing = [t for t in GUARD_TRIGGERS if t not in store.triggers()]
    violations = [
        Violation(0, "guard", f"trigger {name} is missing: events could be changed")
        for name in missing
    ]
    head = store.head()
    if parts is None:
        parts = (os.cpu_count() or 1) if head >= PARALLEL_FROM else 1
    bounds = subject_bounds(store.conn, head, parts)
    split = len(bounds) > 1
    with ParallelChain(store.path, head, workers=chain_workers, range_size=chain_range) as chain:
        where = str(Path(store.path).resolve())
        procs = [spawn(__name__, where, _args(head, part)) for part in bounds[1:]]
        try:
            mine = check_part(store.conn, head, bounds[0] if split else None, primary=True)
            results = [mine]
            for part, out in zip(bounds[1:], collect(procs), strict=True):
                if out is None:  # the worker failed: its part is checked here
                    results.append(check_part(store.conn, head, part, primary=False))
                    continue
                with gc_paused():  # unpickling creates the part's every row: nothing to collect
                    results.append(pickle.loads(out))  # our own child's output, never a file's
        finally:
            stop(procs)
        # a sequential pass names a row's chain problem before its rules' findings
        violations += [Violation(seq, "chain", problem) for seq, problem in chain.problems()]
    for result in results:
        violations += result.violations
    violations += _judged_closes(results)
    checker = mine.checker
    checker.finish(live_run_ids)
    violations += checker.violations
    state = merge([r.checker.state for r in results], bounds) if split else checker.state
    if state.head:
        state.head_hash = hash_of(store.conn, state.head)
    if store.get_meta("projection_version") == PROJECTION_VERSION:
        violations += _compare_tables(store, state)
    violations += _count_items(store.conn, results, state.head)
    violations.sort(key=lambda v: v.seq)
    return CheckResult(violations, state)


def check_part(
    conn: sqlite3.Connection, head: int, part: Bounds | None, *, primary: bool
) -> PartResult:
    """Decode, check and fold one part's rows (every row when `part` is None)."""
    checker = EventChecker(part, primary=primary)
    check, state = checker.check, checker.state  # `feed_fields`, one call less per event
    kinds, loads, reports = _KINDS, orjson.loads, checker.reports
    # from the lowest row, not seq 1: a row stored below seq 1 is checked too
    if part is None:
        batches = fold_batches(conn, None, head)
    else:
        batches = part_batches(conn, head, part, None)
    with gc_paused():
        for batch in batches:
            for seq, ts, sweep_id, run_id, kind_text, service, subject, text in batch:
                if part is not None:
                    shared = kind_text not in _PHASES or service is None or subject is None
                    checker.muted = not reports(shared, subject)
                kind = kinds.get(kind_text)
                try:
                    data = loads(text)
                except ValueError:
                    data = None
                if kind is None or type(data) is not dict:
                    why = _unreadable(kind_text, text)
                    checker._flag(seq, "decode", f"unreadable event: {why}")
                    continue
                check(seq, sweep_id, run_id, kind, service, subject, data)
                step(state, seq, ts, sweep_id, run_id, kind, service, subject, data)
    checker.muted = False
    checker.state.settle()
    found, checker.violations = checker.violations, []
    return PartResult(found, checker)


def _judged_closes(results: list[PartResult]) -> list[Violation]:
    """SWEEP_CLOSE complete judged on the sum of the parts' counters (every part saw it)."""
    found = []
    for closes in zip(*(r.checker.closes for r in results), strict=True):
        seq, _, services = closes[0]
        total: dict[str, int] = {}
        for _, counters, _ in closes:
            for key, value in counters.items():
                total[key] = total.get(key, 0) + value
        figures = completeness(total, services, run_live=True)
        if not figures.complete:
            why = "closed complete while " + "; ".join(figures.failures())
            found.append(Violation(seq, "complete", why))
    return found


_PHASES = frozenset(str(kind) for kind in PAIR_PHASES)
_KINDS = {str(kind): kind for kind in EventKind}


def _unreadable(kind: Any, text: Any) -> str:
    """Why a stored event does not decode, in the words of `EventKind` and `decode_data`."""
    try:
        EventKind(kind)
        decode_data(text)
    except (ValueError, TypeError) as e:
        return str(e)
    return "undecodable"


def _compare_tables(store: SqliteStore, state: State) -> list[Violation]:
    found = []
    meta = dict(store.conn.execute("SELECT key, value FROM projection_state").fetchall())
    if int(meta.get("head", 0)) != state.head or meta.get("head_hash", "") != state.head_hash:
        found.append(
            Violation(
                state.head,
                "anchor",
                f"the projections were written through seq "
                f"{meta.get('head')} (hash {str(meta.get('head_hash'))[:12]}) but the "
                f"ledger ends at seq {state.head} (hash {state.head_hash[:12]}): events "
                "at the end were removed or rewritten",
            )
        )
    expected = state_rows(state)
    stored = stored_rows(store.conn)
    for table, rows in expected.items():
        extra = stored[table] - rows
        lacking = rows - stored[table]
        if extra or lacking:
            sample = next(iter(extra or lacking))
            found.append(
                Violation(
                    state.head,
                    "projection",
                    f"table {table} differs from a rebuild "
                    f"({len(extra)} rows extra, {len(lacking)} missing; e.g. {sample[:3]})",
                )
            )
    return found


def _count_items(conn: sqlite3.Connection, results: list[PartResult], head: int) -> list[Violation]:
    """Each pair's rows in its item table against the rows its PAGE events say they added:
    a row removed, or one written outside a page, shows as a difference. Pairs with a PAGE
    that did not say (an older ledger) are left out."""
    created: dict[tuple[str, str], tuple[int | None, int]] = {}
    for result in results:  # the parts hold disjoint subjects
        created.update(result.checker.created)
    stored = rows_per_pair(conn)
    found = []
    for key in sorted(created.keys() | stored.keys()):
        added, seq = created.get(key, (0, head))
        rows = stored.get(key, 0)
        if added is None or rows == added:
            continue
        service, subject = key
        held = f"{rows} row" + ("" if rows == 1 else "s")
        why = "rows were removed" if rows < added else "rows were written outside any PAGE"
        message = (
            f"{ITEM_TABLES.get(service, service)} holds {held} of {subject}, but the PAGE "
            f"events of {service}/{subject} added {added}: {why}"
        )
        found.append(Violation(seq, "items", message))
    return found


def _args(head: int, part: Bounds) -> str:
    return orjson.dumps([head, *part]).decode()


def _worker(path: str, args: str) -> None:
    """`python -m sweepledger.projections.check PATH '[head, low, high]'`: a pickled
    `PartResult` on stdout (a part other than the primary)."""
    head, low, high = orjson.loads(args)
    conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        result = check_part(conn, head, (low, high), primary=False)
    finally:
        conn.close()
    sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2])
