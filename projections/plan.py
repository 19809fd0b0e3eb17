"""The resume plan (DESIGN 7): the remaining pairs, in one deterministic order."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from .fold import State
from .model import (
    COMPLETE,
    ERR_PREFIX,
    IN_PROGRESS,
    NOT_STARTED,
    PARTIAL,
    service_rank,
    subject_key,
    subject_order,
)


def resume_plan(
    state: State,
    *,
    subjects: Collection[str] | None = None,
    services: Sequence[str] | None = None,
    only_remaining: bool = False,
    live_run_ids: Collection[str] = (),
) -> list[tuple[str, str]]:
    """(service, subject) pairs still to do: subjects by email ascending, services in canonical
    order, subject-major. COMPLETE, BLOCKED and PAUSED pairs are skipped; NOT_STARTED, PARTIAL,
    interrupted and ERR are taken (`only_remaining`: NOT_STARTED and PARTIAL only, an interrupted
    attempt being partial). Same state and arguments give the same plan.
    """
    sweep = state.sweep
    if sweep is None:
        return []
    chosen = [s for s in sweep.services if services is None or s in services]
    chosen_services = sorted(chosen, key=service_rank)
    roster = sorted(sweep.roster, key=subject_order)
    if subjects is not None:
        wanted = {subject_key(s) for s in subjects}
        roster = [s for s in roster if subject_key(s) in wanted]
    plan = []
    for subject in roster:
        if state.is_paused(subject):
            continue
        for service in chosen_services:
            if state.is_blocked(subject, service):
                continue
            row = state.pairs.get((service, subject))
            pair_state = NOT_STARTED if row is None else row.state
            if pair_state == IN_PROGRESS and row is not None and row.open_run_id in live_run_ids:
                continue
            if pair_state == IN_PROGRESS:
                pair_state = PARTIAL
            if pair_state == COMPLETE:
                continue
            if only_remaining and pair_state.startswith(ERR_PREFIX):
                continue
            plan.append((service, subject))
    return plan
