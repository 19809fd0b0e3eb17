"""Operator events: block, unblock, pause, unpause, reset a cursor.

Each is one event appended in one transaction (the projections follow in it). They do not take
the run lock: SQLite serialises the append with a live run's, and that run's projections reread
the tables when they see the head moved. A live run still works through the plan it took at
start; the change shapes every plan after it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sweepledger.ledger.errors import LedgerError
from sweepledger.ledger.events import Event, EventKind, NewEvent
from sweepledger.projections.attach import open_for_writing
from sweepledger.projections.fold import State


class NothingToDo(LedgerError):
    """The operator asked for a change that would change nothing (most likely a typo in the
    subject or service), so nothing is appended."""

    exit_code = 2


Precondition = Callable[[State], "str | None"]
"""What would make the event change nothing, said as the refusal (None: go ahead)."""


def _append(db: str | Path, event: NewEvent, precondition: Precondition | None = None) -> Event:
    store, projector = open_for_writing(db)
    try:
        with store.transaction() as tx:
            state = projector.state
            refusal = precondition(state) if precondition is not None else None
            if refusal is not None:
                raise NothingToDo(refusal)
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
    """Undo exactly one BLOCK: the same subject and the same scope (one pair or every service)."""

    def blocked(state: State) -> str | None:
        if (subject, service) in state.blocked:
            return None
        scope = subject if service is None else f"{service}/{subject}"
        return f"{scope} is not blocked" + _blocks_of(state, subject)

    return _append(
        db,
        NewEvent(
            EventKind.UNBLOCK,
            service=service,
            subject=subject,
            data={"subject": subject, "service": service, "reason": reason},
        ),
        blocked,
    )


def _blocks_of(state: State, subject: str) -> str:
    """The blocks the subject does have, to point a mistaken unblock at the right scope."""
    scopes = sorted(
        "every service" if svc is None else f"--service {svc}"
        for subj, svc in state.blocked
        if subj == subject
    )
    return f" (it is blocked for: {', '.join(scopes)})" if scopes else ""


def pause(db: str | Path, subject: str, reason: str) -> Event:
    """Skip a subject's pairs (listed as PAUSED) until unpaused."""
    return _append(
        db, NewEvent(EventKind.PAUSE, subject=subject, data={"subject": subject, "reason": reason})
    )


def unpause(db: str | Path, subject: str, reason: str = "") -> Event:
    return _append(
        db,
        NewEvent(EventKind.UNPAUSE, subject=subject, data={"subject": subject, "reason": reason}),
        lambda state: None if state.is_paused(subject) else f"{subject} is not paused",
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
        lambda state: (
            None
            if state.pair_cursors(service, subject)
            else f"{service}/{subject} has no cursor to reset"
        ),
    )
