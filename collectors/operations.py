"""Operator events: block, unblock, pause, unpause, reset a cursor.

Each is one event appended in one transaction (the projections follow in it). They do not take
the run lock: SQLite serialises the append with a live run's, and that run's projections reread
the tables when they see the head moved. A live run still works through the plan it took at
start; the change shapes every plan after it.
"""

from __future__ import annotations

from pathlib import Path

from sweepledger.ledger.errors import LedgerError
from sweepledger.ledger.events import Event, EventKind, NewEvent
from sweepledger.projections.attach import open_for_writing


class NothingToDo(LedgerError):
    """The operator asked for a change that would change nothing."""


def _append(db: str | Path, event: NewEvent, precondition: str | None = None) -> Event:
    store, projector = open_for_writing(db)
    try:
        with store.transaction() as tx:
            state = projector.state
            if precondition == "has_cursor":
                service, subject = str(event.service), str(event.subject)
                if not state.pair_cursors(service, subject):
                    raise NothingToDo(f"{service}/{subject} has no cursor to reset")
            sweep = state.sweep
            sweep_id = sweep.sweep_id if sweep is not None and sweep.closed is None else None
            appended = tx.append(
                NewEvent(event.kind, sweep_id, None, event.service, event.subject, event.data)
            )
        return appended
    finally:
        store.close()


def block(db: str | Path, subject: str, service: str | None, reason: str) -> Event:
    """Leave a subject (or one pair) out of every sweep until unblocked."""
    return _append(
        db,
        NewEvent(
            EventKind.BLOCK,
            service=service,
            subject=subject,
            data={"subject": subject, "service": service, "reason": reason},
        ),
    )


def unblock(db: str | Path, subject: str, service: str | None, reason: str = "") -> Event:
    return _append(
        db,
        NewEvent(
            EventKind.UNBLOCK,
            service=service,
            subject=subject,
            data={"subject": subject, "service": service, "reason": reason},
        ),
    )


def pause(db: str | Path, subject: str, reason: str) -> Event:
    """Skip a subject's pairs (listed as PAUSED) until unpaused."""
    return _append(
        db, NewEvent(EventKind.PAUSE, subject=subject, data={"subject": subject, "reason": reason})
    )


def unpause(db: str | Path, subject: str, reason: str = "") -> Event:
    return _append(
        db,
        NewEvent(EventKind.UNPAUSE, subject=subject, data={"subject": subject, "reason": reason}),
    )


def reset_cursor(db: str | Path, service: str, subject: str, reason: str) -> Event:
    """Forget a pair's cursors: its next attempt is a full resync (the only legal way back)."""
    return _append(
        db,
        NewEvent(
            EventKind.CURSOR_RESET,
            service=service,
            subject=subject,
            data={"reason": reason, "operator": True},
        ),
        precondition="has_cursor",
    )
