"""Per-pair state (DESIGN 5), runs and cursors as the fold derives them from hand-built ledgers."""

from __future__ import annotations

import pytest

from sweepledger.ledger.events import EventKind
from sweepledger.projections.fold import State, fold

from .builder import Recorder

A, B = "ana@corp.example", "Bob@corp.example"


def opened(
    roster: tuple[str, ...] = (A, B), services: tuple[str, ...] = ("gmail", "chat")
) -> Recorder:
    rec = Recorder()
    rec.run_start("run-1", "sweep-1")
    rec.sweep_open(roster, services)
    return rec


def state_of(rec: Recorder, service: str = "gmail", subject: str = A) -> str:
    row = fold(rec.events).pairs.get((service, subject))
    return "NOT_STARTED" if row is None else row.state


def test_a_pair_without_events_is_not_started() -> None:
    """Before its first START a pair has no row: NOT_STARTED, in the totals, not attempted."""
    state = fold(opened().events)
    assert state.pairs == {}
    assert state.counters["pairs_total"] == 4
    assert "attempted_count" not in state.counters


def test_start_makes_the_pair_in_progress() -> None:
    """A START opens the attempt: IN_PROGRESS, with the run and seq that opened it."""
    rec = opened()
    seq = rec.start("gmail", A)
    row = fold(rec.events).pairs[("gmail", A)]
    assert (row.state, row.open_run_id, row.open_seq, row.attempts) == (
        "IN_PROGRESS",
        "run-1",
        seq,
        1,
    )


def test_a_written_cursor_and_ok_end_make_it_complete() -> None:
    """START, PAGEs, CURSOR_WRITE, END ok: COMPLETE, exhausted, items summed, cursor stored."""
    rec = opened()
    rec.complete("gmail", A, "1500", counts=(2, 3))
    state = fold(rec.events)
    row = state.pairs[("gmail", A)]
    assert (row.state, row.exhausted, row.items, row.checkpoint, row.open_run_id) == (
        "COMPLETE",
        True,
        5,
        None,
        None,
    )
    assert state.cursors[("gmail", A, "historyId")].value == "1500"


def test_a_skipped_cursor_makes_it_partial_with_a_checkpoint() -> None:
    """A CURSOR_SKIP and an END partial: PARTIAL, with the reason and the last page's token."""
    rec = opened()
    rec.partial("gmail", A, counts=(4, 4))
    row = fold(rec.events).pairs[("gmail", A)]
    assert (row.state, row.skip_reason, row.exhausted) == ("PARTIAL", "partial", False)
    assert row.checkpoint is not None
    assert (row.checkpoint["page"], row.checkpoint["token"]) == (2, "tok-2")


@pytest.mark.parametrize("err", ["RateLimited", "Transient", "Forbidden", "Internal"])
def test_a_failed_end_is_err_with_its_class(err: str) -> None:
    """An END carrying `err` makes the pair `ERR:<class>`."""
    rec = opened()
    rec.error("gmail", A, err, count=2)
    row = fold(rec.events).pairs[("gmail", A)]
    assert (row.state, row.last_err, row.items) == (f"ERR:{err}", err, 2)


def test_an_attempt_left_open_by_an_ended_run_is_interrupted_partial() -> None:
    """A START with no END whose run has ended is PARTIAL and marked interrupted."""
    rec = opened()
    rec.start("gmail", A)
    rec.page("gmail", A, 5, exhausted=False)
    rec.run_end("aborted", "stale")
    row = fold(rec.events).pairs[("gmail", A)]
    assert (row.state, row.interrupted, row.open_run_id, row.items) == ("PARTIAL", True, None, 5)


def test_ending_another_run_leaves_the_pair_in_progress() -> None:
    """Only the run that opened an attempt interrupts it by ending."""
    rec = opened()
    rec.start("gmail", A)
    rec.run_start("run-2")
    rec.run_end(run="run-2")
    assert state_of(rec) == "IN_PROGRESS"


@pytest.mark.parametrize("first", ["partial", "error", "interrupted"])
def test_a_later_complete_attempt_wins(first: str) -> None:
    """Whatever the previous attempt left, a complete attempt makes the pair COMPLETE."""
    rec = opened()
    if first == "partial":
        rec.partial("gmail", A)
    elif first == "error":
        rec.error("gmail", A)
    else:
        rec.start("gmail", A)
        rec.run_end("aborted", "stale")
        rec.run_start("run-2")
    rec.complete("gmail", A, "1001")
    row = fold(rec.events).pairs[("gmail", A)]
    assert (row.state, row.attempts, row.interrupted, row.last_err is None) == (
        "COMPLETE",
        2,
        False,
        first != "error",
    )


def test_a_new_sweep_starts_pairs_afresh_but_keeps_cursors() -> None:
    """SWEEP_OPEN resets every pair to NOT_STARTED; the cursors carry over (incremental)."""
    rec = opened()
    rec.complete("gmail", A, "1500")
    rec.sweep_close("complete")
    rec.run_end()
    rec.run_start("run-2", "sweep-2")
    rec.sweep_open([A, B], ["gmail", "chat"])
    state = fold(rec.events)
    assert state.pairs == {}
    assert state.sweep is not None
    assert state.sweep.sweep_id == "sweep-2"
    assert state.cursors[("gmail", A, "historyId")].value == "1500"


def test_chat_units_accumulate_and_a_unit_reset_forgets_one() -> None:
    """Unit cursors are kept per space; CURSOR_RESET of a unit drops only that space's cursor."""
    rec = opened(services=("chat",))
    rec.start("chat", A, ["spaces/X", "spaces/Y"])
    for unit in ("spaces/X", "spaces/Y"):
        rec.page("chat", A, 1, exhausted=True, unit=unit)
        rec.cursor_write("chat", A, "2025-01-01T00:00:00Z", unit=unit)
    rec.cursor_write("chat", A, "2025-01-01T00:00:00Z")
    rec.end("chat", A, 2, exhausted=True)
    rec.cursor_reset("chat", A, unit="spaces/X")
    state = fold(rec.events)
    assert state.pairs[("chat", A)].units_done == ["spaces/Y"]
    assert sorted(k for (_, _, k) in state.cursors) == [
        "last_create_time",
        "last_create_time@spaces/Y",
    ]


def test_a_pair_reset_forgets_all_its_cursors_only() -> None:
    """CURSOR_RESET of a pair drops its cursors (units too) and nobody else's."""
    rec = opened(services=("gmail", "chat"))
    rec.complete("gmail", A, "1500")
    rec.complete("gmail", B, "1600")
    rec.cursor_reset("gmail", A, "operator")
    state = fold(rec.events)
    assert list(state.cursors) == [("gmail", B, "historyId")]
    assert state.pairs[("gmail", A)].state == "COMPLETE"


def totals(state: State) -> tuple[int, int, int, int]:
    c = state.counters
    return (
        c.get("active_targets_total", 0),
        c.get("pairs_total", 0),
        c.get("blocked_pairs", 0),
        c.get("paused_subjects", 0),
    )


def test_blocking_a_pair_takes_it_out_of_the_totals() -> None:
    """A BLOCKed pair leaves pairs_total; UNBLOCK brings it back."""
    rec = opened()
    rec.operator(EventKind.BLOCK, A, "chat")
    assert totals(fold(rec.events)) == (2, 3, 1, 0)
    rec.operator(EventKind.UNBLOCK, A, "chat")
    assert totals(fold(rec.events)) == (2, 4, 0, 0)


def test_blocking_a_subject_takes_all_its_pairs_out() -> None:
    """A BLOCK with no service blocks the subject: it leaves active_targets_total."""
    rec = opened()
    rec.operator(EventKind.BLOCK, B)
    state = fold(rec.events)
    assert totals(state) == (1, 2, 2, 0)
    assert state.is_blocked(B, "gmail")
    assert not state.is_blocked(A, "gmail")


def test_a_pair_block_named_only_in_the_event_columns_blocks_that_pair() -> None:
    """A BLOCK whose service is in its columns (not repeated in data) blocks the pair alone."""
    rec = opened()
    rec.add(EventKind.BLOCK, "chat", A, {"reason": "403 on spaces.list"}, run=None)
    state = fold(rec.events)
    assert state.is_blocked(A, "chat")
    assert not state.is_blocked(A, "gmail")
    assert totals(state) == (2, 3, 1, 0)


def test_pausing_a_subject_takes_it_out_until_unpaused() -> None:
    """PAUSE removes the subject from every total; UNPAUSE restores it with its pair states."""
    rec = opened()
    rec.complete("gmail", B, "1001")
    rec.operator(EventKind.PAUSE, B)
    state = fold(rec.events)
    assert totals(state) == (1, 2, 0, 1)
    assert "complete:gmail" not in state.counters
    rec.operator(EventKind.UNPAUSE, B)
    state = fold(rec.events)
    assert totals(state) == (2, 4, 0, 0)
    assert state.counters["complete:gmail"] == 1


def test_run_rows_follow_their_lifecycle_and_count_pages() -> None:
    """RUN_START makes a running run; its pages and outcomes are counted; RUN_END sets status."""
    rec = opened()
    rec.complete("gmail", A, "1001", counts=(2, 3))
    rec.error("gmail", B, "Transient")
    running = fold(rec.events).runs["run-1"]
    assert running.status == "running"
    end = rec.run_end("paused", "budget")
    run = fold(rec.events).runs["run-1"]
    assert (run.status, run.reason, run.ended_seq, run.last_seq) == ("paused", "budget", end, end)
    assert run.counters == {
        "pairs_attempted": 2,
        "pages": 2,
        "fetched": 5,
        "pairs_completed": 1,
        "pairs_errored": 1,
    }


def test_sweep_close_is_recorded_on_the_open_sweep_only() -> None:
    """SWEEP_CLOSE of the open sweep closes it; one naming another sweep changes nothing."""
    rec = opened()
    rec.sweep_close("abandoned", sweep="sweep-0")
    state = fold(rec.events)
    assert state.sweep is not None
    assert state.sweep.closed is None
    seq = rec.sweep_close("abandoned")
    state = fold(rec.events)
    assert state.sweep is not None
    assert (state.sweep.closed, state.sweep.closed_seq) == ("abandoned", seq)
