"""How every view judges a run that died: liveness and time are the reader's, the rest the
fold's."""

from __future__ import annotations

from sweepledger.projections.fold import fold
from sweepledger.projections.live import run_verdict
from sweepledger.projections.status import build_report, gather_from_state

from .builder import Recorder

A = "ana@corp.example"


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
