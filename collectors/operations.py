"""Operator events: block, unblock, pause, unpause, reset a cursor.

Each is one event appended in one transaction (the projections follow in it). They do not take
the run lock: SQLite serialises the append with a live run's, and that run's projections reread
the tables when they see the head moved. A live run still works through the plan it took at
start; the change shapes every plan after it.

Input the ledger cannot act on as asked (a subject it does not know, a bad reason) is refused
before anything is appended.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sweepledger.ledger.errors import LedgerError
from sweepledger.ledger.events import Event, EventKind, NewEvent
from sweepledger.ledger.logline import CONTROL, printable
from sweepledger.projections.attach import open_for_writing
from sweepledger.projections.fold import State
from sweepledger.projections.model import SweepInfo, spelled_as


class NothingToDo(LedgerError):
    """The operator asked for a change that would change nothing (most likely a typo in the
    subject or service), so nothing is appended."""

    exit_code = 2


class UnknownSubject(LedgerError):
    """A subject neither the latest sweep's roster nor a block or pause names: most likely a
    typo, which would otherwise stay in the ledger for good and in `status` as a pair that never
    existed."""

    exit_code = 2

    def __init__(self, subject: str, sweep: SweepInfo) -> None:
        which = "last" if sweep.closed else "open"
        super().__init__(
            f"{subject} is not in the roster of the {which} sweep {sweep.sweep_id} "
            f"({sweep.roster_size} subjects), nor blocked or paused"
        )


class BadReason(LedgerError):
    """A reason that is empty where the command needs one, or holds a control character."""

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
    """`subject` as the ledger spells it: in the latest sweep's roster, or blocked or paused.

    Emails match by `subject_key`, as `--subjects` does, but the fold matches the roster's
    spelling exactly: a BLOCK of "USER1@x" would otherwise leave "user1@x" swept. A subject the
    ledger does not know is refused (`UnknownSubject`); before the first sweep there is no
    roster to hold it to, so it is kept as typed.
    """
    sweep = state.sweep
    roster = sweep.roster if sweep is not None else ()
    known = [*roster, *(name for name, _ in state.blocked), *state.paused]
    spelled = spelled_as(subject, known)
    if sweep is None or spelled in known:
        return spelled
    raise UnknownSubject(subject, sweep)


def checked_reason(reason: str, *, required: bool) -> str:
    """The reason as the ledger records it, without surrounding blanks.

    Refused (`BadReason`): an empty one where the command needs a reason, since a blank one
    explains nothing later; and any control character, which `sweep status` would otherwise
    print as the start of a line of its own (a newline can forge a BLOCKED line).
    """
    text = reason.strip()
    if required and not text:
        raise BadReason("--reason is empty: say why (the ledger keeps it and status shows it)")
    found = CONTROL.search(text)
    if found is not None:
        raise BadReason(
            f"--reason holds a control character ({printable(found.group())}): "
            "give the reason as one line of text"
        )
    return text


def block(db: str | Path, subject: str, service: str | None, reason: str) -> Event:
    """Leave a subject (or one pair) out of every sweep until unblocked."""
    why = checked_reason(reason, required=True)
    return _append(
        db,
        NewEvent(
            EventKind.BLOCK,
            service=service,
            subject=subject,
            data={"subject": subject, "service": service, "reason": why},
        ),
    )


def unblock(db: str | Path, subject: str, service: str | None, reason: str = "") -> Event:
    """Undo exactly one BLOCK: the same subject and the same scope (one pair or every service)."""
    why = checked_reason(reason, required=False)

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
            data={"subject": subject, "service": service, "reason": why},
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
    why = checked_reason(reason, required=False)
    return _append(
        db, NewEvent(EventKind.PAUSE, subject=subject, data={"subject": subject, "reason": why})
    )


def unpause(db: str | Path, subject: str, reason: str = "") -> Event:
    """Sweep a paused subject again."""
    why = checked_reason(reason, required=False)
    return _append(
        db,
        NewEvent(EventKind.UNPAUSE, subject=subject, data={"subject": subject, "reason": why}),
        lambda state, spelled: None if state.is_paused(spelled) else f"{spelled} is not paused",
    )


def reset_cursor(db: str | Path, service: str, subject: str, reason: str) -> Event:
    """Forget a pair's cursors: its next attempt is a full resync (the only legal way back)."""
    why = checked_reason(reason, required=True)
    return _append(
        db,
        NewEvent(
            EventKind.CURSOR_RESET,
            service=service,
            subject=subject,
            data={"reason": why, "operator": True},
        ),
        lambda state, spelled: (
            None
            if state.pair_cursors(service, spelled)
            else f"{service}/{spelled} has no cursor to reset"
        ),
    )
