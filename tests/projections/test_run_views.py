"""How every view judges a run that died: liveness and time are the reader's, the rest the fold's.

The ledgers here are written to real SQLite files through the write-through projector, so the
tables `status` and `runs` read and the fold `replay` does are both exercised.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from sweepledger.ledger.store import SqliteStore
from sweepledger.projections.attach import open_for_writing
from sweepledger.projections.fold import fold
from sweepledger.projections.live import run_duration, run_verdict
from sweepledger.projections.model import PARTIAL, interrupted_detail
from sweepledger.projections.runs import read_runs
from sweepledger.projections.status import build_report, gather_from_state, gather_from_tables
from sweepledger.projections.tables import state_rows, stored_rows

from .builder import Recorder

A, B = "ana@corp.example", "Bob@corp.example"


def _append(store: SqliteStore, rec: Recorder, start: int) -> int:
    """Append the recorder's events from index `start` one by one (each its own transaction,
    with its own timestamp, as a run appends them); returns where the next call starts."""
    for event in rec.news[start:]:
        store.append([event])
    return len(rec.news)


def test_a_run_closed_as_stale_worked_until_its_own_last_event(db_path: Path) -> None:
    """The next run's `RUN_END aborted stale` closes the dead run but is not its event: the run's
    last event stays its own, its duration ends there (not at the close, after the time it lay
    dead), and its rate is what it was before the close, in the tables and in the fold."""
    rec = Recorder()
    rec.run_start("run-1", "sweep-1")
    rec.sweep_open([A], ["gmail"])
    rec.start("gmail", A)
    rec.page("gmail", A, 40, exhausted=False)
    store, _ = open_for_writing(db_path, create=True)
    with store:
        done = _append(store, rec, 0)
        [before] = read_runs(db_path)
        time.sleep(0.5)
        rec.run_end("aborted", "stale", run="run-1")
        _append(store, rec, done)
        [after] = read_runs(db_path)
        state = fold(store.read())
        assert stored_rows(store.conn) == state_rows(state)
    assert (before["status"], after["status"]) == ("interrupted", "aborted")
    assert after["finished"] is not None and after["finished"] > before["last_event"]
    assert after["last_event"] == before["last_event"]
    assert after["duration_s"] == before["duration_s"] < 0.5
    assert after["items_per_s"] == before["items_per_s"] is not None
    run = state.runs["run-1"]
    assert run.last_seq == rec.seq - 1
    assert run_duration(run, live=False, now=datetime.now(UTC)) == before["duration_s"]


def test_a_dead_run_is_interrupted_for_every_reader() -> None:
    """A run still `running` in the ledger is `running` only while live; otherwise interrupted
    (stale) with the reason `sweep runs` gives, and an ended run keeps its own status."""
    rec = Recorder()
    rec.run_start("run-1", "sweep-1")
    rec.sweep_open([A], ["gmail"])
    state = fold(rec.events)
    run = state.runs["run-1"]
    assert run_verdict(run, live=True) == ("running", None)
    status, reason = run_verdict(run, live=False)
    assert status == "interrupted" and reason is not None and reason.startswith("stale:")
    report = build_report(gather_from_state(state), live_run_ids=set())
    assert (report.runs[0]["status"], report.runs[0]["reason"]) == (status, reason)
    assert report.verdict == "INTERRUPTED"
    rec.run_end("aborted", "stale", run="run-1")
    assert run_verdict(fold(rec.events).runs["run-1"], live=False) == ("aborted", "stale")


def test_a_pair_left_open_names_the_run_before_and_after_the_close(db_path: Path) -> None:
    """A pair whose attempt a dead run left open is PARTIAL and interrupted with the detail
    `interrupted: run <id> ended without closing the attempt`: while the run is merely gone
    (the report says it) and once the next run has closed it (the fold records it), from the
    tables and from the fold alike."""
    why = interrupted_detail("run-1")
    assert why == "interrupted: run run-1 ended without closing the attempt"
    rec = Recorder()
    rec.run_start("run-1", "sweep-1")
    rec.sweep_open([A, B], ["gmail", "drive"])
    rec.partial("gmail", A)  # an earlier END's detail must not stand for the open attempt
    rec.start("gmail", A)
    rec.page("gmail", A, 4, exhausted=False)
    store, _ = open_for_writing(db_path, create=True)
    with store:
        done = _append(store, rec, 0)
        reports = [
            build_report(gather_from_tables(store.conn), live_run_ids=set()),
            build_report(gather_from_state(fold(store.read())), live_run_ids=set()),
        ]
        rec.run_end("aborted", "stale", run="run-1")
        rec.run_start("run-2")
        _append(store, rec, done)
        state = fold(store.read())
        assert stored_rows(store.conn) == state_rows(state)
        reports += [
            build_report(gather_from_tables(store.conn), live_run_ids={"run-2"}),
            build_report(gather_from_state(state), live_run_ids={"run-2"}),
        ]
    assert state.pairs[("gmail", A)].last_detail == why
    for report in reports:
        [pair] = [p for p in report.problems if (p["service"], p["subject"]) == ("gmail", A)]
        assert (pair["state"], pair["detail"], pair["interrupted"]) == (PARTIAL, why, True)
    live = build_report(gather_from_state(fold(rec.events[:done])), live_run_ids={"run-1"})
    [pair] = [p for p in live.problems if (p["service"], p["subject"]) == ("gmail", A)]
    assert (pair["state"], pair["interrupted"]) == ("IN_PROGRESS", False)
