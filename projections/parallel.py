"""The bulk fold split over processes by subject: replay on every CPU, still from seq 1.

A pair's events change only that pair's row, its cursors and its run's counters; everything
else (sweeps, runs starting and ending, operator flags, heartbeats) is a handful of events. So
each part folds, from seq 1, every event of its own range of subjects plus every other event,
and the parts add up:

- pairs and cursors: each belongs to the part that owns its subject (a union of those);
- a run's counters: sums over the parts; its last event: the latest of the parts';
- a sweep's counters: each part counts only its own subjects (`State.subjects`), so they sum;
- sweeps, runs' other fields, flags, heartbeat: every part folded the same events (any part's).

Part 0 is folded in the calling process while the others run as `python -m
sweepledger.projections.parallel` workers (`ledger.workers`), which return their `State`
pickled on stdout; the part of a worker that failed is folded in the calling process.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from sweepledger.ledger.events import PAIR_PHASES
from sweepledger.ledger.scan import BATCH, FOLD_COLUMNS, hash_of
from sweepledger.ledger.workers import collect, spawn, stop

from .bulk import fold_ledger, fold_rows, gc_paused
from .fold import Bounds, State, owns

PARALLEL_FROM = 200_000
"""Ledgers smaller than this fold in one process (starting another costs ~0.2 s)."""
SAMPLES = 4096
"""Events sampled (by seq) to place the subject boundaries so the parts get similar work."""

_PHASE_LIST = ", ".join(f"'{kind}'" for kind in sorted(PAIR_PHASES))


def fold_parallel(
    path: str | Path, conn: sqlite3.Connection, to_seq: int | None = None, parts: int | None = None
) -> State:
    """Every projection folded from seq 1 up to `to_seq`, over `parts` processes.

    Equal to `fold_ledger(conn, to_seq)`; `parts` defaults to the CPUs on a big ledger, one on
    a small one.
    """
    head = _head(conn, to_seq)
    if parts is None:
        parts = (os.cpu_count() or 1) if head >= PARALLEL_FROM else 1
    bounds = subject_bounds(conn, head, parts)
    if len(bounds) == 1:
        return fold_ledger(conn, to_seq)
    where = str(Path(path).resolve())
    procs = [spawn(__name__, where, _args(head, part)) for part in bounds[1:]]
    try:
        states = [fold_part(conn, head, bounds[0])]
        for part, out in zip(bounds[1:], collect(procs), strict=True):
            if out is None:  # the worker failed: its part is folded here
                states.append(fold_part(conn, head, part))
                continue
            with gc_paused():  # unpickling creates the part's every row: nothing to collect
                states.append(pickle.loads(out))  # our own child's output, never a file's
    finally:
        stop(procs)
    state = merge(states, bounds)
    if state.head:
        state.head_hash = hash_of(conn, state.head)
    return state


def fold_part(conn: sqlite3.Connection, head: int, part: Bounds) -> State:
    """One part: the events of its subjects' pairs and every event that is not a pair's."""
    return fold_rows(State(incremental=False, subjects=part), part_batches(conn, head, part))


def subject_bounds(conn: sqlite3.Connection, head: int, parts: int) -> list[Bounds]:
    """Up to `parts` subject ranges with about as many pair events each (from a sample)."""
    if parts <= 1 or head <= 0:
        return [(None, None)]
    step = max(1, head // SAMPLES)
    seqs = list(range(1, head + 1, step))
    subjects: list[str] = []
    for first in range(0, len(seqs), 500):
        chunk = seqs[first : first + 500]
        marks = ", ".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT subject FROM events WHERE seq IN ({marks}) AND subject IS NOT NULL "
            "AND typeof(subject) = 'text'",
            chunk,
        )
        subjects += [str(r[0]) for r in rows]
    subjects.sort()
    cuts: list[str] = []
    for i in range(1, parts):
        cut = subjects[len(subjects) * i // parts] if subjects else None
        if cut is not None and cut > (cuts[-1] if cuts else subjects[0]):
            cuts.append(cut)
    edges: list[str | None] = [None, *cuts, None]
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def merge(states: list[State], bounds: list[Bounds]) -> State:
    """The whole from its parts, folded over `bounds` (the module docstring says why each
    piece adds up)."""
    first = states[0]
    state = State(incremental=False)
    last = max(states, key=lambda s: s.head)
    state.head, state.head_ts = last.head, last.head_ts
    state.sweep = first.sweep
    if first.sweep is not None:
        state._roster_set = set(first.sweep.roster)
    state.blocked, state.paused, state.heartbeat = first.blocked, first.paused, first.heartbeat
    for part, held in zip(states, bounds, strict=True):
        # a shared event naming a pair (a HEARTBEAT with a service and subject, say) makes a
        # row for it in every part: only the part that owns the subject has the real one
        state.pairs.update((k, row) for k, row in part.pairs.items() if owns(held, k[1]))
        state.cursors.update((k, c) for k, c in part.cursors.items() if owns(held, k[1]))
        for key, keys in part._by_pair.items():
            if owns(held, key[1]):
                state._by_pair.setdefault(key, set()).update(keys)
    state.runs = first.runs
    for part in states[1:]:
        for run_id, run in state.runs.items():
            other = part.runs[run_id]
            _add(run.counters, other.counters)
            for service, counts in other.by_service.items():
                _add(run.by_service.setdefault(service, {}), counts)
            if other.last_seq > run.last_seq:
                run.last_seq, run.last_ts = other.last_seq, other.last_ts
    for sweep_id, (info, counters) in first.past_sweeps.items():
        total = dict(counters)
        for part in states[1:]:
            _add(total, part.past_sweeps[sweep_id][1])
        state.past_sweeps[sweep_id] = (info, total)
    state.counters = state.recount()
    if first.frozen is not None:  # each part froze its own subjects' share at the close
        state.frozen = {}
        for part in states:
            _add(state.frozen, part.frozen or {})
    return state


def _add(total: dict[str, int], more: dict[str, int]) -> None:
    for key, value in more.items():
        total[key] = total.get(key, 0) + value


def _head(conn: sqlite3.Connection, to_seq: int | None) -> int:
    sql, args = "SELECT max(seq) FROM events", []
    if to_seq is not None:
        sql, args = sql + " WHERE seq <= ?", [to_seq]
    return int(conn.execute(sql, args).fetchone()[0] or 0)


def part_batches(
    conn: sqlite3.Connection, head: int, part: Bounds, first: int | None = 1
) -> Iterator[list[Any]]:
    """A part's rows with `first` <= seq <= `head` (None: from the lowest row): every shared
    row, and the pair phases of its subjects."""
    low, high = part
    owned = ["subject IS NOT NULL"]
    args: list[object] = [head]
    if low is not None:
        owned.append("subject >= ?")
        args.append(low)
    if high is not None:
        owned.append("subject < ?")
        args.append(high)
    # the test `bulk.fold_rows` makes: a pair phase with a service and a subject, else shared
    shared = f"kind NOT IN ({_PHASE_LIST}) OR service IS NULL OR subject IS NULL"
    sql = (
        f"SELECT {FOLD_COLUMNS} FROM events WHERE seq <= ? "
        f"AND ({shared} OR ({' AND '.join(owned)}))"
    )
    if first is not None:
        sql += " AND seq >= ?"
        args.append(first)
    cursor = conn.execute(sql + " ORDER BY seq", args)
    while batch := cursor.fetchmany(BATCH):
        yield batch


def _args(head: int, part: Bounds) -> str:
    return orjson.dumps([head, *part]).decode()


def _worker(path: str, args: str) -> None:
    """`python -m sweepledger.projections.parallel PATH '[head, low, high]'`: a pickled State."""
    head, low, high = orjson.loads(args)
    conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        state = fold_part(conn, head, (low, high))
    finally:
        conn.close()
    state.subjects = None
    sys.stdout.buffer.write(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2])
