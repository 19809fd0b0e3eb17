"""The DESIGN 6 figures and the COMPLETE verdict, on hand-built and on generated ledgers."""

from __future__ import annotations

from sweepledger.ledger.events import EventKind
from sweepledger.projections.completeness import Completeness, apply_difference, completeness
from sweepledger.projections.fold import State, fold

from .builder import Recorder, as_events, valid_ledger

A, B, C = "ana@corp.example", "Bob@corp.example", "carla@corp.example"
SERVICES = ("gmail", "drive")
DRIVE_VALUE = "2025-01-01T00:00:00Z"


def opened(roster: tuple[str, ...] = (A, B)) -> Recorder:
    rec = Recorder()
    rec.run_start("run-1", "sweep-1")
    rec.sweep_open(roster, SERVICES)
    return rec


def figures(rec: Recorder, *, run_live: bool = False) -> Completeness:
    state = fold(rec.events)
    assert state.sweep is not None
    return completeness(state.counters, state.sweep.services, run_live=run_live)


def numbers(f: Completeness) -> tuple[int, int, int, int, int, int, dict[str, int]]:
    return (
        f.active_targets_total,
        f.pairs_total,
        f.attempted_count,
        f.complete_subjects_count,
        f.partial_subjects_count,
        f.errors_count,
        f.pagination_exhausted,
    )


def complete_subject(rec: Recorder, subject: str) -> None:
    rec.complete("gmail", subject, "1001")
    rec.complete("drive", subject, DRIVE_VALUE)


def test_a_fresh_sweep_counts_its_targets_and_nothing_else() -> None:
    """Right after SWEEP_OPEN: every subject is a target, nothing attempted, not COMPLETE."""
    f = figures(opened())
    assert numbers(f) == (2, 4, 0, 0, 0, 0, {"gmail": 0, "drive": 0})
    assert not f.complete
    assert "attempted_count 0 != active_targets_total 2" in f.failures()


def test_every_pair_complete_is_complete() -> None:
    """All pairs COMPLETE and exhausted: every figure equals the total and the verdict holds."""
    rec = opened()
    complete_subject(rec, A)
    complete_subject(rec, B)
    f = figures(rec)
    assert numbers(f) == (2, 4, 2, 2, 0, 0, {"gmail": 2, "drive": 2})
    assert f.complete
    assert f.failures() == []


def test_a_partial_pair_makes_its_subject_partial() -> None:
    """One PARTIAL pair: the subject is attempted and partial, not complete; no verdict."""
    rec = opened()
    complete_subject(rec, A)
    rec.complete("gmail", B, "1001")
    rec.partial("drive", B)
    f = figures(rec)
    assert numbers(f) == (2, 4, 2, 1, 1, 0, {"gmail": 2, "drive": 1})
    assert not f.complete
    assert "partial_subjects_count 1 != 0" in f.failures()


def test_err_pairs_are_counted_per_pair() -> None:
    """errors_count counts pairs in ERR, two for a subject with two failed pairs."""
    rec = opened()
    complete_subject(rec, A)
    rec.error("gmail", B, "RateLimited")
    rec.error("drive", B, "Forbidden")
    f = figures(rec)
    assert numbers(f) == (2, 4, 2, 1, 0, 2, {"gmail": 1, "drive": 1})
    assert "errors_count 2 != 0" in f.failures()


def test_attempted_needs_a_start_for_every_service() -> None:
    """A subject with a START for only some of its services is not attempted."""
    rec = opened()
    rec.complete("gmail", A, "1001")
    rec.partial("gmail", B)
    rec.error("drive", B)
    f = figures(rec)
    assert (f.attempted_count, f.complete_subjects_count) == (1, 0)


def test_pagination_exhausted_follows_the_last_attempt() -> None:
    """A pair whose last attempt ended on a non-exhausted page no longer counts as exhausted."""
    rec = opened(roster=(A,))
    complete_subject(rec, A)
    assert figures(rec).pagination_exhausted == {"gmail": 1, "drive": 1}
    rec.partial("gmail", A)
    assert figures(rec).pagination_exhausted == {"gmail": 0, "drive": 1}


def test_an_interrupted_attempt_is_partial_unless_its_run_is_live() -> None:
    """An open attempt counts as partial when no run is live, and as in progress while one is."""
    rec = opened(roster=(A,))
    rec.complete("gmail", A, "1001")
    rec.start("drive", A)
    assert figures(rec, run_live=False).partial_subjects_count == 1
    assert figures(rec, run_live=True).partial_subjects_count == 0
    rec.run_end("aborted", "stale")
    assert figures(rec, run_live=True).partial_subjects_count == 1


def test_blocked_pairs_and_paused_subjects_leave_the_totals() -> None:
    """BLOCKED pairs and PAUSED subjects are left out, so the rest can be COMPLETE."""
    rec = opened(roster=(A, B, C))
    rec.operator(EventKind.BLOCK, B, "drive")
    rec.operator(EventKind.PAUSE, C)
    complete_subject(rec, A)
    rec.complete("gmail", B, "1001")
    f = figures(rec)
    assert numbers(f) == (2, 3, 2, 2, 0, 0, {"gmail": 2, "drive": 1})
    assert (f.blocked_pairs, f.paused_subjects, f.pairs_per_service) == (
        1,
        1,
        {"gmail": 2, "drive": 1},
    )
    assert f.complete


def test_a_blocked_subject_is_not_a_target() -> None:
    """A subject blocked for every service leaves active_targets_total."""
    rec = opened()
    rec.operator(EventKind.BLOCK, B)
    complete_subject(rec, A)
    f = figures(rec)
    assert (f.active_targets_total, f.blocked_pairs, f.complete) == (1, 2, True)


def test_apply_difference_adds_and_drops_zeroes() -> None:
    """Counters move by new - old, keys that reach zero disappear, and a change is reported."""
    counters = {"a": 2, "b": 1}
    assert apply_difference(counters, {"a": 1, "b": 1}, {"a": 1, "c": 3})
    assert counters == {"a": 2, "c": 3}
    assert not apply_difference(counters, {"a": 1}, {"a": 1})


def recount(state: State) -> dict[str, int]:
    """The counters summed from scratch over the roster."""
    total: dict[str, int] = {}
    if state.sweep is not None:
        for subject in state.sweep.roster:
            apply_difference(total, {}, state.vector(subject))
    return total


def test_incremental_counters_equal_a_recount_after_every_event() -> None:
    """The counters kept by differences equal a fresh sum of subject vectors at every seq."""
    for seed in range(40):
        state = State()
        for event in as_events(valid_ledger(seed)[0]):
            state.apply(event)
            assert state.counters == recount(state), f"seed {seed}, seq {event.seq}"
