"""The resume plan (DESIGN 7): which pairs remain, in one deterministic order."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from sweepledger.ledger.events import EventKind
from sweepledger.projections.fold import State, fold
from sweepledger.projections.model import service_rank, subject_order
from sweepledger.projections.plan import resume_plan

from .builder import Recorder, as_events, valid_ledger

ANA, BOB, CARLA, DAN = (
    "ana@corp.example",
    "Bob@corp.example",
    "carla@corp.example",
    "Dan@corp.example",
)
SERVICES = ("gmail", "calendar", "chat", "drive")


def opened(
    roster: tuple[str, ...] = (DAN, CARLA, BOB, ANA), services: tuple[str, ...] = SERVICES
) -> Recorder:
    rec = Recorder()
    rec.run_start("run-1", "sweep-1")
    rec.sweep_open(roster, services)
    return rec


def plan(rec: Recorder, live: Collection[str] = (), **options: object) -> list[tuple[str, str]]:
    return resume_plan(fold(rec.events), live_run_ids=live, **options)  # type: ignore[arg-type]


def test_plan_is_subject_major_by_casefolded_email_then_canonical_services() -> None:
    """Subjects by email case-folded ascending, each with its services in canonical order."""
    rec = opened(services=("drive", "gmail", "chat"))
    assert plan(rec) == [
        (service, subject)
        for subject in (ANA, BOB, CARLA, DAN)
        for service in ("gmail", "chat", "drive")
    ]


def test_plan_takes_not_started_partial_interrupted_and_err_and_skips_complete() -> None:
    """COMPLETE pairs are skipped; NOT_STARTED, PARTIAL, interrupted and ERR pairs are taken."""
    rec = opened(roster=(ANA,))
    rec.complete("gmail", ANA, "1001")
    rec.partial("calendar", ANA)
    rec.error("chat", ANA, "Transient")
    rec.start("drive", ANA)
    rec.run_end("aborted", "stale")
    assert plan(rec) == [("calendar", ANA), ("chat", ANA), ("drive", ANA)]


def test_only_remaining_drops_err_pairs_but_keeps_interrupted_ones() -> None:
    """With only_remaining, ERR pairs are left out; NOT_STARTED, PARTIAL and interrupted stay."""
    rec = opened(roster=(ANA, BOB))
    rec.partial("gmail", ANA)
    rec.error("calendar", ANA, "RateLimited")
    rec.start("chat", ANA)
    rec.run_end("aborted", "stale")
    assert plan(rec, only_remaining=True) == [
        ("gmail", ANA),
        ("chat", ANA),
        ("drive", ANA),
        *[(service, BOB) for service in SERVICES],
    ]


def test_a_pair_in_progress_in_a_live_run_is_not_planned_again() -> None:
    """An open attempt of a live run is skipped; once that run is not live it is taken."""
    rec = opened(roster=(ANA,), services=("gmail", "drive"))
    rec.start("gmail", ANA)
    assert plan(rec, live={"run-1"}) == [("drive", ANA)]
    assert plan(rec) == [("gmail", ANA), ("drive", ANA)]


def test_blocked_and_paused_are_skipped() -> None:
    """BLOCKED pairs, blocked subjects and PAUSED subjects are not in the plan."""
    rec = opened(services=("gmail", "drive"))
    rec.operator(EventKind.BLOCK, ANA, "drive")
    rec.operator(EventKind.BLOCK, BOB)
    rec.operator(EventKind.PAUSE, CARLA)
    assert plan(rec) == [("gmail", ANA), ("gmail", DAN), ("drive", DAN)]
    rec.operator(EventKind.UNPAUSE, CARLA)
    assert ("gmail", CARLA) in plan(rec)


def test_subject_and_service_filters() -> None:
    """`subjects` match case-insensitively and `services` narrow the plan, order unchanged."""
    rec = opened()
    chosen = plan(
        rec, subjects=["DAN@corp.example", "bob@CORP.example"], services=("drive", "gmail")
    )
    assert chosen == [("gmail", BOB), ("drive", BOB), ("gmail", DAN), ("drive", DAN)]


def test_no_sweep_no_plan() -> None:
    """A ledger with no sweep has nothing to plan."""
    assert resume_plan(fold([])) == []


def test_same_state_gives_the_same_plan_whatever_the_order_of_attempts() -> None:
    """Two ledgers reaching the same pair states in different orders plan identically."""
    first, second = opened(), opened()
    first.complete("chat", BOB, "2025-01-01T00:00:00Z")
    first.error("gmail", ANA)
    second.error("gmail", ANA)
    second.complete("chat", BOB, "2025-01-01T00:00:00Z")
    assert plan(first) == plan(second)
    assert plan(first) == plan(first)
    assert ("chat", BOB) not in plan(first)


def expected_plan(state: State, only_remaining: bool, live: set[str]) -> list[tuple[str, str]]:
    """The plan by its definition, independently of `resume_plan`."""
    assert state.sweep is not None
    chosen = []
    for subject in state.sweep.roster:
        for service in state.sweep.services:
            row = state.pairs.get((service, subject))
            pair_state = "NOT_STARTED" if row is None else row.state
            if state.is_paused(subject) or state.is_blocked(subject, service):
                continue
            if pair_state == "COMPLETE":
                continue
            if pair_state == "IN_PROGRESS" and row is not None and row.open_run_id in live:
                continue
            if only_remaining and pair_state.startswith("ERR:"):
                continue
            chosen.append((service, subject))
    return sorted(chosen, key=lambda p: (subject_order(p[1]), service_rank(p[0])))


@pytest.mark.parametrize("only_remaining", [False, True])
def test_plan_matches_its_definition_on_generated_ledgers(only_remaining: bool) -> None:
    """On many generated ledgers the plan is exactly the remaining pairs in the defined order."""
    for seed in range(60):
        news, live = valid_ledger(seed)
        state = fold(as_events(news))
        got = resume_plan(state, only_remaining=only_remaining, live_run_ids=live)
        assert got == expected_plan(state, only_remaining, live), f"seed {seed}"
        assert got == resume_plan(
            fold(as_events(news)), only_remaining=only_remaining, live_run_ids=live
        )
