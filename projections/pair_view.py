"""One pair as an operator inspects it: its state, cursors, attempts and SWEEP lines.

Attempts are grouped from the pair's own events (START .. END), read newest-last through the
ledger's `events_by_pair` index, so the page costs the same on any ledger size (unless the
projection tables are stale, when its state is folded from the events); an attempt with no
END is `open` while its run holds the lock and `interrupted` once it does not. A block or pause
shows as `sweep status` shows it (BLOCKED or PAUSED, with the operator's reason); a subject in
another letter case than the ledger's finds the pair, at the cost of decoding the latest roster.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from sweepledger.ledger.events import PAIR_PHASES, Event, EventKind
from sweepledger.ledger.logline import render
from sweepledger.ledger.store import SqliteStore

from .attach import open_for_reading, projections_current, read_snapshot
from .bulk import fold_ledger
from .fold import State
from .model import (
    NOT_STARTED,
    PARTIAL,
    SERVICES,
    OperatorFlag,
    PairRow,
    SweepInfo,
    interrupted_detail,
    operator_flag,
    spelled_as,
)
from .tables import Flags, load_flags, load_sweep, pair_from_row

EVENT_LIMIT = 2000
"""The pair's newest events shown (attempts before them are summarised as omitted)."""


@dataclass(slots=True)
class AttemptView:
    """One attempt at the pair, as its events tell it."""

    attempt: int | None
    run_id: str | None
    sweep_id: str | None
    started: str
    start_seq: int
    mode: str
    pages: int = 0
    count: int = 0
    outcome: str = "open"
    err: str | None = None
    detail: str | None = None
    cursor: dict[str, str] = field(default_factory=dict)
    skip_reason: str | None = None
    ended: str | None = None


@dataclass(slots=True)
class PairView:
    service: str
    subject: str
    state: dict[str, Any] | None
    cursors: dict[str, str]
    attempts: list[AttemptView]
    lines: list[str]
    events_total: int
    events_shown: int
    flag: OperatorFlag | None = None
    """The operator's block or pause that leaves the pair out of the sweeps, if any."""


def _mode(data: dict[str, Any]) -> str:
    if data.get("resume_token"):
        return "resume"
    return "incremental" if data.get("cursor_before") else "full"


def attempts_of(events: list[Event], live_run_ids: Collection[str]) -> list[AttemptView]:
    """Group a pair's events into attempts; an unended attempt is `open` or `interrupted`."""
    attempts: list[AttemptView] = []
    current: AttemptView | None = None
    for event in events:
        data = event.data
        if event.kind is EventKind.START:
            current = AttemptView(
                data.get("attempt"), event.run_id, event.sweep_id, event.ts, event.seq, _mode(data)
            )
            attempts.append(current)
        elif current is None:
            continue
        elif event.kind is EventKind.PAGE:
            current.pages += 1
            current.count += int(data.get("count", 0))
        elif event.kind is EventKind.CURSOR_WRITE:
            key = str(data.get("key"))
            unit = data.get("unit")
            current.cursor[f"{key}@{unit}" if unit else key] = str(data.get("value"))
        elif event.kind is EventKind.CURSOR_SKIP:
            current.skip_reason = data.get("reason")
        elif event.kind is EventKind.END:
            current.ended = event.ts
            current.err = data.get("err")
            current.detail = data.get("detail")
            if current.err:
                current.outcome = f"ERR:{current.err}"
            else:
                current.outcome = "PARTIAL" if data.get("partial") else "COMPLETE"
            current = None
    for attempt in attempts:
        if attempt.ended is None and attempt.run_id not in live_run_ids:
            attempt.outcome = "interrupted"
    return attempts


def _pair_events(store: SqliteStore, service: str, subject: str) -> tuple[list[Event], int]:
    conn = store.conn
    where = "service = ? AND subject = ?"
    total = int(
        conn.execute(f"SELECT COUNT(*) FROM events WHERE {where}", (service, subject)).fetchone()[0]
    )
    first = conn.execute(
        f"SELECT seq FROM events WHERE {where} ORDER BY seq DESC LIMIT 1 OFFSET ?",
        (service, subject, EVENT_LIMIT - 1),
    ).fetchone()
    start = 1 if first is None else int(first[0])
    events = list(store.read_where(f"{where} AND seq >= ?", (service, subject, start)))
    return events, total


@dataclass(slots=True)
class _Stored:
    """What the ledger holds of one pair spelled one way (all read in one snapshot)."""

    events: list[Event]
    total: int
    row: PairRow | None
    cursors: dict[str, str]
    flag: OperatorFlag | None
    in_sweep: bool = False
    """Whether the latest sweep's roster and services name the pair (read only when needed)."""

    @property
    def known(self) -> bool:
        return bool(self.events) or self.row is not None or self.flag is not None or self.in_sweep


class _Derived:
    """The pair's derived rows: from the projection tables when they are current (indexed
    reads), else from a fold of every event, as `sweep status` reads a ledger whose tables are
    behind its head or of an older version (a read-only view never rebuilds them)."""

    def __init__(self, store: SqliteStore) -> None:
        self.conn = store.conn
        self.folded: State | None = None if projections_current(store) else fold_ledger(self.conn)
        self.flags: Flags = (
            load_flags(self.conn)
            if self.folded is None
            else (self.folded.blocked, self.folded.paused)
        )

    def pair(self, service: str, subject: str) -> PairRow | None:
        if self.folded is not None:
            return self.folded.pairs.get((service, subject))
        row = self.conn.execute(
            "SELECT * FROM pair_state WHERE service = ? AND subject = ?", (service, subject)
        ).fetchone()
        return None if row is None else pair_from_row(row)

    def cursors(self, service: str, subject: str) -> dict[str, str]:
        if self.folded is not None:
            found = self.folded.pair_cursors(service, subject)
            return {key: found[(svc, subj, key)].value for svc, subj, key in sorted(found)}
        query = "SELECT key, value FROM sync_cursor WHERE service = ? AND subject = ? ORDER BY key"
        return dict(self.conn.execute(query, (service, subject)).fetchall())

    def sweep(self) -> SweepInfo | None:
        return load_sweep(self.conn)[0] if self.folded is None else self.folded.sweep


def _stored(store: SqliteStore, service: str, subject: str, derived: _Derived) -> _Stored:
    events, total = _pair_events(store, service, subject)
    # a whole-subject flag names no service: it makes pages of the real services only
    flag = operator_flag(subject, service, *derived.flags) if service in SERVICES else None
    pair, cursors = derived.pair(service, subject), derived.cursors(service, subject)
    return _Stored(events, total, pair, cursors, flag)


def _find(store: SqliteStore, service: str, subject: str) -> tuple[str, _Stored]:
    """The pair as the ledger spells its subject, and what the ledger holds of it.

    The subject matches in any letter case (`model.subject_key`), as `--subjects`, the operator
    commands and `sweep log --subject` match it. The exact spelling is tried first (indexed
    reads); only a spelling with no event and no state row costs decoding the latest roster,
    which gives the ledger's spelling (or a flag gives it) and says whether the latest sweep
    has the pair at all (NOT_STARTED: swept by none of its runs yet).
    """
    derived = _Derived(store)
    found = _stored(store, service, subject, derived)
    if found.events or found.row is not None:
        return subject, found
    sweep = derived.sweep()
    roster = [] if sweep is None else sweep.roster
    blocked, paused = derived.flags
    spelled = spelled_as(subject, chain(roster, (name for name, _ in blocked), paused))
    if spelled != subject:
        found = _stored(store, service, spelled, derived)
    found.in_sweep = sweep is not None and service in sweep.services and spelled in roster
    return spelled, found


def _state(pair: PairRow, live_run_ids: Collection[str]) -> dict[str, Any]:
    """The pair's row as the page shows it; an attempt whose run is gone is PARTIAL
    (interrupted), as `sweep status` says."""
    state: dict[str, Any] = {
        "state": pair.state,
        "attempts": pair.attempts,
        "items": pair.items,
        "last_run_id": pair.last_run_id,
        "open_run_id": pair.open_run_id,
        "interrupted": pair.interrupted,
        "last_err": pair.last_err,
        "last_detail": pair.last_detail,
        "skip_reason": pair.skip_reason,
        "checkpoint": pair.checkpoint,
        "outstanding": list(pair.outstanding),
    }
    if pair.open_run_id and pair.open_run_id not in live_run_ids:
        state["state"] = PARTIAL
        state["interrupted"] = True
        state["last_detail"] = interrupted_detail(pair.open_run_id)
    return state


def _flagged(state: dict[str, Any] | None, flag: OperatorFlag | None) -> dict[str, Any] | None:
    """The state with an operator's flag applied as `sweep status` applies it: the pair is
    BLOCKED or PAUSED whatever its attempts left; that state stays beside it as `swept_state`
    (where the pair resumes once the flag is lifted)."""
    if state is None or flag is None:
        return state
    return {"state": flag.state, "swept_state": state["state"]} | {
        k: v for k, v in state.items() if k != "state"
    }


def read_pair(
    db_path: str | Path, service: str, subject: str, live_run_ids: Collection[str]
) -> PairView | None:
    """The pair's view, or None if the ledger knows no such pair: no event, no state row, no
    flag, and not in the latest sweep."""
    with open_for_reading(db_path) as store, read_snapshot(store):
        spelled, found = _find(store, service, subject)
    if not found.known:
        return None
    state: dict[str, Any] | None = None
    if found.row is not None:
        state = _state(found.row, live_run_ids)
    elif found.in_sweep:
        state = {"state": NOT_STARTED}
    lines = [render(e) for e in found.events if e.kind in PAIR_PHASES]
    return PairView(
        service,
        spelled,
        _flagged(state, found.flag),
        found.cursors,
        attempts_of(found.events, live_run_ids),
        lines,
        found.total,
        len(found.events),
        found.flag,
    )
