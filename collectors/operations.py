"""Operator events: block, unblock, pause, unpause, reset a cursor.

Each is one event appended in one transaction (the projections follow in it). They do not take
the run lock: SQLite serialises the append with a live run's, and that run's projections reread
the tables when they see the head moved. A live run still works through the plan it took at
start; the change shapes every plan after it.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from pathlib import Path

from sweepledger.ledger.errors import LedgerError
from sweepledger.ledger.events import Event, EventKind, NewEvent
from sweepledger.projections.attach import open_for_writing
from sweepledger.projections.fold import State
from sweepledger.projections.model import spelled_as


class NothingToDo(LedgerError):
    """The operator asked for a change that would change nothing (most likely a typo in the
    subject or service), so nothing is appended."""

    exit_code = 2


Precondition = Callable[[State, str], "str | None"]
"""What would make the event change nothing for the subject as the ledger spells it, said as
the refusal (None: go ahead)."""


def _append(db: str | Path, event: NewEvent, precondition: Precondition | None = None) -> Event:
    store, projector = open_for_writing(db)
    try:
        with store.transaction() as tx:
            state = projector.state
            subject = known_spelling(state, str(event.subject))
            refusal = precondition(state, subject) if precondition is not None else None
            if refusal is not None:
                raise NothingToDo(refusal)
            data = event.data
            if "subject" in data:
                data = {**data, "subject": subject}
            sweep = state.sweep
            sweep_id = sweep.sweep_id if sweep is not None and sweep.closed is None else None
            appended = tx.append(NewEvent(event.kind, sweep_id, None, event.service, subject, data))
        return appended
    finally:
        store.close()


def known_spelling(state: State, subject: str) -> str:
    """`subject` as the ledger already spells it (the latest roster, the blocks and pauses).

    Emails match by `subject_key`, as `--subjects` does, but the fold matches the roster's
    spelling exactly: a BLOCK of "USER1@x" would otherwise leave "user1@x" swept. A subject the
    ledger does not know (yet) is kept as typed.
    """
    roster = state.sweep.roster if state.sweep is not None else ()
    flagged = [name for name, _ in state.blocked] + list(state.paused)
    return spelled_as(subject, chain(roster, flagged))


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

    def blocked(state: State, spelled: str) -> str | None:
        if (spelled, service) in state.blocked:
            return None
        scope = spelled if service is None else f"{service}/{spelled}"
        return f"{scope} is not blocked" + _blocks_of(state, spelled)

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
        lambda state, spelled: None if state.is_paused(spelled) else f"{spelled} is not paused",
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
        lambda state, spelled: (
            None
            if state.pair_cursors(service, spelled)
            else f"{service}/{spelled} has no cursor to reset"
        ),
    )
