"""One pair as an operator inspects it: its state, cursors, attempts and SWEEP lines.

Attempts are grouped from the pair's own events (START .. END), read newest-last through the
ledger's `events_by_pair` index, so the page costs the same on any ledger size; an attempt with no
END is `open` while its run holds the lock and `interrupted` once it does not.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweepledger.ledger.events import PAIR_PHASES, Event, EventKind
from sweepledger.ledger.logline import render
from sweepledger.ledger.store import SqliteStore

from .attach import open_for_reading, read_snapshot
from .model import interrupted_detail
from .tables import pair_from_row

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


def read_pair(
    db_path: str | Path, service: str, subject: str, live_run_ids: Collection[str]
) -> PairView | None:
    """The pair's view, or None if the ledger never mentions it."""
    with open_for_reading(db_path) as store, read_snapshot(store):
        events, total = _pair_events(store, service, subject)
        row = store.conn.execute(
            "SELECT * FROM pair_state WHERE service = ? AND subject = ?", (service, subject)
        ).fetchone()
        cursors = dict(
            store.conn.execute(
                "SELECT key, value FROM sync_cursor WHERE service = ? AND subject = ? ORDER BY key",
                (service, subject),
            ).fetchall()
        )
    if not events and row is None:
        return None
    state = None
    if row is not None:
        pair = pair_from_row(row)
        state = {
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
            state["state"] = "PARTIAL"
            state["interrupted"] = True
            state["last_detail"] = interrupted_detail(pair.open_run_id)
    lines = [render(e) for e in events if e.kind in PAIR_PHASES]
    return PairView(
        service,
        subject,
        state,
        cursors,
        attempts_of(events, live_run_ids),
        lines,
        total,
        len(events),
    )
