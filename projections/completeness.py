"""The COMPLETE figures of DESIGN 6, kept as sums of per-subject contributions.

Each subject contributes a small vector of counts (is it active, attempted, complete, partial...);
the sweep's figures are the sums. When an event touches a subject, only that subject's vector is
recomputed and the difference applied, which is why `status` costs the same at any ledger size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .model import COMPLETE, ERR_PREFIX, IN_PROGRESS, PARTIAL, PairRow

Vector = dict[str, int]


def subject_vector(
    subject: str,
    services: Sequence[str],
    pair: Callable[[str, str], PairRow | None],
    is_blocked: Callable[[str, str], bool],
    is_paused: Callable[[str], bool],
) -> Vector:
    """What one subject adds to the sweep's counters."""
    vector: Vector = {}
    if is_paused(subject):
        vector["paused_subjects"] = 1
        return vector
    active = [s for s in services if not is_blocked(subject, s)]
    if len(active) < len(services):
        vector["blocked_pairs"] = len(services) - len(active)
    if not active:
        return vector
    vector["active_targets_total"] = 1
    vector["pairs_total"] = len(active)
    started = complete = 0
    partial = open_ = False
    for service in active:
        keys = _service_keys(service)
        vector[keys.pairs] = 1
        row = pair(service, subject)
        if row is None:
            continue
        if row.attempts:
            started += 1
        state = row.state
        if state == COMPLETE:
            complete += 1
            vector[keys.complete] = 1
        elif state == PARTIAL:
            partial = True
            vector[keys.partial] = 1
        elif state == IN_PROGRESS:
            open_ = True
            vector[keys.in_progress] = 1
        elif state.startswith(ERR_PREFIX):
            vector["errors_count"] = vector.get("errors_count", 0) + 1
            vector[keys.errors] = 1
        if row.exhausted:
            vector[keys.exhausted] = 1
        if row.items:
            vector[keys.items] = row.items
    if started == len(active):
        vector["attempted_count"] = 1
    if complete == len(active):
        vector["complete_subjects_count"] = 1
    if partial:
        vector["partial_subjects_count"] = 1
    if partial or open_:
        vector["partial_or_open_subjects"] = 1
    return vector


@dataclass(frozen=True, slots=True)
class _ServiceKeys:
    pairs: str
    complete: str
    partial: str
    in_progress: str
    errors: str
    exhausted: str
    items: str


_KEYS: dict[str, _ServiceKeys] = {}


def _service_keys(service: str) -> _ServiceKeys:
    """The counter names of one service, built once (a vector is computed per event)."""
    keys = _KEYS.get(service)
    if keys is None:
        keys = _KEYS[service] = _ServiceKeys(
            *(f"{name}:{service}" for name in _ServiceKeys.__slots__)
        )
    return keys


def apply_difference(counters: dict[str, int], old: Vector, new: Vector) -> set[str]:
    """Add `new - old` to `counters`; returns the keys that changed."""
    changed: set[str] = set()
    for key in old.keys() | new.keys():
        delta = new.get(key, 0) - old.get(key, 0)
        if delta:
            changed.add(key)
            value = counters.get(key, 0) + delta
            if value:
                counters[key] = value
            else:
                counters.pop(key, None)
    return changed


@dataclass(frozen=True, slots=True)
class Completeness:
    """The DESIGN 6 figures of a sweep and its verdict."""

    active_targets_total: int
    pairs_total: int
    attempted_count: int
    complete_subjects_count: int
    partial_subjects_count: int
    errors_count: int
    pagination_exhausted: dict[str, int]
    pairs_per_service: dict[str, int]
    blocked_pairs: int
    paused_subjects: int

    @property
    def complete(self) -> bool:
        """The verdict, before `check`'s integrity checks are added to it."""
        total = self.active_targets_total
        return (
            self.attempted_count == total
            and self.complete_subjects_count == total
            and self.partial_subjects_count == 0
            and self.errors_count == 0
            and all(
                self.pagination_exhausted.get(s, 0) == n for s, n in self.pairs_per_service.items()
            )
        )

    def failures(self) -> list[str]:
        """Each invariant that does not hold, as a plain sentence."""
        total = self.active_targets_total
        out = []
        if self.attempted_count != total:
            out.append(f"attempted_count {self.attempted_count} != active_targets_total {total}")
        if self.complete_subjects_count != total:
            out.append(
                f"complete_subjects_count {self.complete_subjects_count} != "
                f"active_targets_total {total}"
            )
        if self.partial_subjects_count:
            out.append(f"partial_subjects_count {self.partial_subjects_count} != 0")
        if self.errors_count:
            out.append(f"errors_count {self.errors_count} != 0")
        for service, n in self.pairs_per_service.items():
            got = self.pagination_exhausted.get(service, 0)
            if got != n:
                out.append(f"pagination_exhausted[{service}] {got} != {n}")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "active_targets_total": self.active_targets_total,
            "pairs_total": self.pairs_total,
            "attempted_count": self.attempted_count,
            "complete_subjects_count": self.complete_subjects_count,
            "partial_subjects_count": self.partial_subjects_count,
            "errors_count": self.errors_count,
            "pagination_exhausted": self.pagination_exhausted,
            "blocked_pairs": self.blocked_pairs,
            "paused_subjects": self.paused_subjects,
            "complete": self.complete,
        }


def completeness(
    counters: Mapping[str, int], services: Sequence[str], *, run_live: bool
) -> Completeness:
    """The figures from the sweep's counters.

    An attempt left open by a run that is no longer live is interrupted and counts as partial;
    while the run is live its open attempts are simply in progress.
    """
    partial_key = "partial_subjects_count" if run_live else "partial_or_open_subjects"
    return Completeness(
        active_targets_total=counters.get("active_targets_total", 0),
        pairs_total=counters.get("pairs_total", 0),
        attempted_count=counters.get("attempted_count", 0),
        complete_subjects_count=counters.get("complete_subjects_count", 0),
        partial_subjects_count=counters.get(partial_key, 0),
        errors_count=counters.get("errors_count", 0),
        pagination_exhausted={s: counters.get(f"exhausted:{s}", 0) for s in services},
        pairs_per_service={s: counters.get(f"pairs:{s}", 0) for s in services},
        blocked_pairs=counters.get("blocked_pairs", 0),
        paused_subjects=counters.get("paused_subjects", 0),
    )
