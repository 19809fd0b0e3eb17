"""Run history (job tracking): one record per run, newest first, every figure folded from events.

A run's counters are the fold's (`fold._bump` from its PAGE and END events), never kept by hand,
so the history of a ledger can always be rebuilt and `sweep check` compares it. What a reader adds
is only liveness (does the run's process hold the lock?) and the time for a live run's duration,
both judged by `live.run_verdict` and `live.run_duration` as `sweep status` judges them.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .api import live_run_ids
from .attach import open_for_reading, projections_current, read_snapshot
from .bulk import fold_ledger
from .live import run_record
from .model import COMPLETE, RunRow, pair_order
from .tables import PAIR_ORDER_SQL, _unjson, run_from_row

HISTORY_LIMIT = 20
CHECKPOINT_LIMIT = 1000
"""Unfinished pairs listed in a run's detail (a huge sweep's first ones; the count is exact)."""


def run_detail(
    run: RunRow, unfinished: list[dict[str, Any]], total: int, *, live: bool, now: datetime
) -> dict[str, Any]:
    """A run with what a dashboard polls for: progress, config and checkpoints."""
    record = run_record(run, live=live, now=now)
    c = record["counters"]
    opts = record["options"]
    window: dict[str, Any] = {}
    if opts["since"] is not None:
        window["since"] = opts["since"]
    if opts["months_back"] is not None:
        window["months_back"] = opts["months_back"]
    return {
        **record,
        "progress": {
            "scanned": c["items_fetched"],
            "inserted": c["items_inserted"],
            "updated": c["items_updated"],
            "skipped": c["items_unchanged"],
            "deleted": c["items_deleted"],
            "errors": c["pairs_errored"],
            "pairs_attempted": c["pairs_attempted"],
            "pairs_completed": c["pairs_completed"],
        },
        "config": {
            "window": window,
            "run_to_completion": opts["run_to_completion"],
            "max_seconds_per_run": opts["max_seconds"],
        },
        "checkpoint": {"unfinished_pairs": total, "pairs": unfinished},
    }


def checkpoint_entry(service: str, subject: str, state: str, cp: Any) -> dict[str, Any]:
    """One unfinished pair's page checkpoint: where its next attempt continues."""
    cp = cp if isinstance(cp, dict) else {}
    token = cp.get("token")
    return {
        "service": service,
        "subject": subject,
        "state": state,
        "unit": cp.get("unit"),
        "page": cp.get("page"),
        "has_next": token is not None,
        "last_page_token": token,
    }


def read_runs(db_path: str | Path, *, limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """The run history of a ledger, newest first (`sweep runs`, `GET /api/runs`)."""
    now = datetime.now(UTC)
    before = live_run_ids(db_path)
    with open_for_reading(db_path) as store, read_snapshot(store):
        if projections_current(store):
            rows = store.conn.execute(
                "SELECT * FROM runs ORDER BY started_seq DESC LIMIT ?", (limit,)
            )
            runs = [run_from_row(r) for r in rows]
        else:
            state = fold_ledger(store.conn)
            runs = sorted(state.runs.values(), key=lambda r: r.started_seq, reverse=True)[:limit]
        live = before | live_run_ids(db_path)
    return [run_record(r, live=r.run_id in live, now=now) for r in runs]


def read_run(db_path: str | Path, run_id: str) -> dict[str, Any] | None:
    """One run's detail (`GET /api/runs/<id>`), or None if the ledger has no such run."""
    now = datetime.now(UTC)
    before = live_run_ids(db_path)
    with open_for_reading(db_path) as store, read_snapshot(store):
        if projections_current(store):
            row = store.conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            run = None if row is None else run_from_row(row)
            unfinished, total = _unfinished_from_tables(store.conn, run_id)
        else:
            state = fold_ledger(store.conn)
            run = state.runs.get(run_id)
            pairs = sorted(
                (
                    p
                    for p in state.pairs.values()
                    if p.last_run_id == run_id and p.state != COMPLETE
                ),
                key=lambda p: pair_order(p.subject, p.service),
            )
            total = len(pairs)
            unfinished = [
                checkpoint_entry(p.service, p.subject, p.state, p.checkpoint)
                for p in pairs[:CHECKPOINT_LIMIT]
            ]
        live = before | live_run_ids(db_path)
    if run is None:
        return None
    return run_detail(run, unfinished, total, live=run_id in live, now=now)


def _unfinished_from_tables(
    conn: sqlite3.Connection, run_id: str
) -> tuple[list[dict[str, Any]], int]:
    """The current sweep's pairs this run attempted last and did not complete."""
    where = "FROM pair_state WHERE last_run_id = ? AND state != 'COMPLETE'"
    total = int(conn.execute(f"SELECT COUNT(*) {where}", (run_id,)).fetchone()[0])
    rows = conn.execute(
        f"SELECT service, subject, state, checkpoint {where} ORDER BY {PAIR_ORDER_SQL} LIMIT ?",
        (run_id, CHECKPOINT_LIMIT),
    )
    return [checkpoint_entry(s, e, st, _unjson(cp)) for s, e, st, cp in rows], total


def last_daemon_cycle(conn: sqlite3.Connection) -> int:
    """The highest N of a `daemon cycle N` run in the ledger (0 if none): a restarted daemon
    numbers its cycles on from there, so `generation=auto` never goes back in time."""
    from .live import daemon_cycle

    rows = conn.execute("SELECT trigger FROM runs WHERE trigger LIKE 'daemon cycle %'")
    return max((daemon_cycle(r[0]) or 0 for r in rows), default=0)
