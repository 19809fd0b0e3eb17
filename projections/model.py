"""The rows the projections derive: a sweep, its pairs, runs, cursors, operator flags."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

SERVICES: tuple[str, ...] = ("gmail", "calendar", "chat", "drive")

NOT_STARTED = "NOT_STARTED"
IN_PROGRESS = "IN_PROGRESS"
COMPLETE = "COMPLETE"
PARTIAL = "PARTIAL"
BLOCKED = "BLOCKED"
PAUSED = "PAUSED"
ERR_PREFIX = "ERR:"

RUN_STATUSES = ("running", "completed", "paused", "interrupted", "failed", "aborted")


def closed_as_stale(status: str | None, reason: str | None) -> bool:
    """Whether a RUN_END is the one the next run appends for a run whose process died
    (`status=aborted reason=stale`, DESIGN 10). It is written later, by another process: the
    dead run's own last event is where its work stopped, not this event."""
    return status == "aborted" and reason == "stale"


def interrupted_detail(run_id: str | None) -> str:
    """Why a pair is PARTIAL when its attempt has a START and no END whose run is no longer
    live (DESIGN 4 "interrupted"), worded as an END's own detail (`interrupted: cursor not
    written` after a signal): the attempt left no END to say it."""
    return f"interrupted: run {run_id} ended without closing the attempt"


def service_rank(service: str) -> int:
    """Position in the canonical order; unknown services sort last."""
    return SERVICES.index(service) if service in SERVICES else len(SERVICES)


def subject_key(subject: str) -> str:
    """How subjects compare: emails are case-insensitive, so case-folded (the one rule for
    sorting, matching `--subjects`, operator commands and `log --subject`)."""
    return subject.casefold()


def spelled_as(subject: str, names: Iterable[str]) -> str:
    """`subject` as the first of `names` equal to it by `subject_key` spells it, else as given.

    The fold keys pairs, cursors and flags by the roster's exact spelling, so a subject typed in
    another letter case is turned into that spelling before it is looked up or recorded.
    """
    wanted = subject_key(subject)
    return next((name for name in names if subject_key(name) == wanted), subject)


def subject_order(subject: str) -> tuple[str, str]:
    """Subjects sort by `subject_key` (ties broken by the exact text)."""
    return (subject_key(subject), subject)


def pair_order(subject: str, service: str | None) -> tuple[str, str, int, str]:
    """Pairs sort subject-major, then by service in the canonical order (the resume plan's
    order, DESIGN 7), so every list of pairs reads the same wherever it was built. A whole
    subject's entry (`service` None, as a subject-wide block) comes before its services."""
    if service is None:
        return (*subject_order(subject), -1, "")
    return (*subject_order(subject), service_rank(service), service)


class Flag(NamedTuple):
    """A BLOCK or PAUSE in force: the operator's reason, and the event that set it (so a
    reader can say since when, and an auditor find the event)."""

    reason: str
    seq: int
    ts: str


def to_second(ts: str) -> str:
    """A ledger timestamp as readers show it: `2026-11-23 12:30:12` (UTC, to the second)."""
    return ts[:19].replace("T", " ")


def since_text(ts: str, seq: int) -> str:
    """`2026-11-23 12:30:12 (seq 71)`: when a flag was set, to the second, and by which event
    (what `sweep status` and the web view say of every flag)."""
    return f"{to_second(ts)} (seq {seq})"


def flag_record(flag: Flag) -> dict[str, Any]:
    """A flag as reports give it: the reason, and `since` / `since_seq`, the time and seq of
    the BLOCK or PAUSE that set it."""
    return {"reason": flag.reason, "since": flag.ts, "since_seq": flag.seq}


@dataclass(frozen=True, slots=True)
class OperatorFlag:
    """Why an operator left a pair out of the sweeps: PAUSED (its subject) or BLOCKED (the
    subject, `service` None, or this one pair), with the flag's reason and event."""

    state: str
    service: str | None
    flag: Flag


def operator_flag(
    subject: str,
    service: str,
    blocked: Mapping[tuple[str, str | None], Flag],
    paused: Mapping[str, Flag],
) -> OperatorFlag | None:
    """The flag that takes the pair out of the sweeps, or None.

    One rule for every reader (the status's problem list, a pair's own page): a pause names the
    pair before a block does, and a whole-subject block before the pair's own.
    """
    flag = paused.get(subject)
    if flag is not None:
        return OperatorFlag(PAUSED, None, flag)
    for scope in (None, service):
        flag = blocked.get((subject, scope))
        if flag is not None:
            return OperatorFlag(BLOCKED, scope, flag)
    return None


@dataclass(slots=True)
class SweepInfo:
    """The latest sweep: its frozen roster and scope, and how it closed."""

    sweep_id: str
    opened_seq: int
    opened_ts: str
    roster: list[str]
    services: list[str]
    source: str
    options: dict[str, Any]
    closed: str | None = None
    closed_seq: int | None = None
    closed_ts: str | None = None
    roster_size: int = -1

    def __post_init__(self) -> None:
        if self.roster_size < 0:
            self.roster_size = len(self.roster)


@dataclass(slots=True)
class PairRow:
    """One pair's state in the current sweep."""

    service: str
    subject: str
    state: str = NOT_STARTED
    attempts: int = 0
    items: int = 0
    last_run_id: str | None = None
    open_run_id: str | None = None
    open_seq: int | None = None
    attempt_count: int = 0
    last_page_exhausted: bool = False
    exhausted: bool = False
    interrupted: bool = False
    last_err: str | None = None
    last_detail: str | None = None
    skip_reason: str | None = None
    checkpoint: dict[str, Any] | None = None
    units_done: list[str] = field(default_factory=list)
    outstanding: list[str] = field(default_factory=list)
    permanent_failures: int = 0
    updated_seq: int = 0


@dataclass(slots=True)
class RunRow:
    """One process invocation of `sweep run` (or a daemon cycle) and what it did."""

    run_id: str
    sweep_id: str | None
    started_seq: int
    started_ts: str
    pid: int | None = None
    host: str | None = None
    argv: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    trigger: str = "cli"
    status: str = "running"
    reason: str | None = None
    ended_seq: int | None = None
    ended_ts: str | None = None
    last_seq: int = 0
    last_ts: str = ""
    counters: dict[str, int] = field(default_factory=dict)
    by_service: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(slots=True)
class CursorRow:
    """A pair's (or unit's) current cursor value, and the event that set it."""

    value: str
    seq: int
