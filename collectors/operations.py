"""Operator events: block, unblock, pause, unpause, reset a cursor.

Each is one event appended in one transaction (the projections follow in it). They do not take
the run lock: SQLite serialises the append with a live run's, and that run's projections reread
the tables when they see the head moved. A live run still works through the plan it took at
start; the change shapes every plan after it.

A command says what should hold. When it already holds (blocking a blocked scope, pausing a
paused subject, unblocking or unpausing one that is not, resetting a pair without a cursor)
nothing is appended and the answer says so: a script can be rerun without an error, and the
ledger never fills with repeats. Input the ledger cannot act on as asked (a subject it does not
know, an unblock another block would undo, a bad reason) is refused before anything is appended.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sweepledger.ledger.errors import LedgerError
from sweepledger.ledger.events import Event, EventKind, NewEvent
from sweepledger.ledger.logline import CONTROL, printable
from sweepledger.projections.attach import open_for_writing
from sweepledger.projections.fold import State
from sweepledger.projections.model import SweepInfo, spelled_as


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


class StillBlocked(LedgerError):
    """An unblock whose scope another block of the subject would keep blocked (a pair of a
    subject blocked for every service, or every service of a subject blocked pair by pair)."""

    exit_code = 2


class BadReason(LedgerError):
    """A reason that is empty where the command needs one, or holds a control character."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Unchanged:
    """What the operator asked for already holds, so nothing was appended; `why` says so."""

    why: str


Check = Callable[[State, str], "Unchanged | None"]
"""Whether the event would change nothing for the subject as the ledger spells it (Unchanged,
saying why; input it cannot act on raises); None: append it."""


def _append(db: str | Path, event: NewEvent, check: Check) -> Event | Unchanged:
    store, projector = open_for_writing(db)
    try:
        with store.transaction() as tx:
            state = projector.state
            subject = known_spelling(state, str(event.subject))
            unchanged = check(state, subject)
            if unchanged is not None:
                return unchanged
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


REASON_MAX = 500
"""The longest reason taken: a line of `sweep status`, not a document."""


def checked_reason(reason: str, *, required: bool) -> str:
    """The reason as the ledger records it, without surrounding blanks.

    Refused (`BadReason`): an empty one where the command needs a reason, since a blank one
    explains nothing later; one longer than `REASON_MAX`; and any control character, which
    `sweep status` would otherwise print as the start of a line of its own (a newline can forge
    a BLOCKED line).
    """
    text = reason.strip()
    if required and not text:
        raise BadReason("--reason is empty: say why (the ledger keeps it and status shows it)")
    if len(text) > REASON_MAX:
        raise BadReason(
            f"--reason is {len(text)} characters long: say why in at most {REASON_MAX} (status "
            "prints it on one line)"
        )
    found = CONTROL.search(text)
    if found is not None:
        raise BadReason(
            f"--reason holds a control character ({printable(found.group())}): "
            "give the reason as one line of text"
        )
    return text


def scope_name(subject: str, service: str | None) -> str:
    """`subject` for every service, `service/subject` for one pair."""
    return subject if service is None else f"{service}/{subject}"


def _flag(kind: EventKind, subject: str, service: str | None, reason: str) -> NewEvent:
    return NewEvent(
        kind,
        service=service,
        subject=subject,
        data={"subject": subject, "service": service, "reason": reason},
    )


def _said(text: str, reason: str, asked: str, undo: str) -> str:
    """`text` with the recorded reason, as one printable line; when the command asked for
    another reason, how to change it (a repeat records nothing, so the old reason stays)."""
    said = f"{text} ({printable(reason)})" if reason else text
    if asked and asked != reason:
        said += f"; to record another reason, {undo} first"
    return said


def block(db: str | Path, subject: str, service: str | None, reason: str) -> Event | Unchanged:
    """Leave a subject (or one pair) out of every sweep until unblocked (Unchanged if that
    scope is blocked already; its reason stays the one recorded)."""
    why = checked_reason(reason, required=True)

    def check(state: State, spelled: str) -> Unchanged | None:
        recorded = state.blocked.get((spelled, service))
        if recorded is None:
            return None
        text = f"{scope_name(spelled, service)} is already blocked"
        return Unchanged(_said(text, recorded.reason, why, "unblock it"))

    return _append(db, _flag(EventKind.BLOCK, subject, service, why), check)


def unblock(
    db: str | Path, subject: str, service: str | None, reason: str = ""
) -> Event | Unchanged:
    """Undo exactly one BLOCK: the same subject and the same scope (one pair or every service).

    Unchanged if nothing blocks that scope; refused (`StillBlocked`) if another block of the
    subject would keep it blocked, naming the blocks there are.
    """
    why = checked_reason(reason, required=False)

    def check(state: State, spelled: str) -> Unchanged | None:
        if (spelled, service) in state.blocked:
            return None
        others = {svc for subj, svc in state.blocked if subj == spelled}
        if service is not None and None in others:
            raise StillBlocked(
                f"{scope_name(spelled, service)} has no block of its own: the block of "
                f"{spelled} for every service keeps it blocked (unblock that, without --service)"
            )
        if service is None and others:
            raise StillBlocked(
                f"{spelled} has no block for every service: its pairs stay blocked by "
                f"{_scopes(others)} (unblock each with its --service)"
            )
        # the blocks the subject does have point a mistaken unblock at the right scope
        held = f" (it is blocked for: {_scopes(others)})" if others else ""
        return Unchanged(f"{scope_name(spelled, service)} is not blocked{held}")

    return _append(db, _flag(EventKind.UNBLOCK, subject, service, why), check)


def _scopes(services: set[str | None]) -> str:
    """`every service` or `--service calendar, --service drive`, for a subject's blocks."""
    return ", ".join(
        sorted("every service" if svc is None else f"--service {svc}" for svc in services)
    )


def pause(db: str | Path, subject: str, reason: str = "") -> Event | Unchanged:
    """Skip a subject's pairs (listed as PAUSED) until unpaused (Unchanged if it is paused)."""
    why = checked_reason(reason, required=False)

    def check(state: State, spelled: str) -> Unchanged | None:
        if not state.is_paused(spelled):
            return None
        text = f"{spelled} is already paused"
        return Unchanged(_said(text, state.paused[spelled].reason, why, "unpause it"))

    return _append(
        db,
        NewEvent(EventKind.PAUSE, subject=subject, data={"subject": subject, "reason": why}),
        check,
    )


def unpause(db: str | Path, subject: str, reason: str = "") -> Event | Unchanged:
    """Sweep a paused subject again (Unchanged if it is not paused)."""
    why = checked_reason(reason, required=False)
    return _append(
        db,
        NewEvent(EventKind.UNPAUSE, subject=subject, data={"subject": subject, "reason": why}),
        lambda state, spelled: (
            None if state.is_paused(spelled) else Unchanged(f"{spelled} is not paused")
        ),
    )


def reset_cursor(db: str | Path, service: str, subject: str, reason: str) -> Event | Unchanged:
    """Forget a pair's cursors: its next attempt is a full resync (the only legal way back).

    Unchanged if the pair has no cursor: an attempt without one is a full sync already.
    """
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
            else Unchanged(f"{service}/{spelled} has no cursor to reset")
        ),
    )
