"""The events an append benchmark appends: realistic attempts, and the ways to group them.

Every system under test appends exactly these `NewEvent`s with the same data, so a difference in
speed is a difference in how they are stored. PAGE events carry the items that commit with them
(shaped like the demo workspace's), for the systems that store items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sweepledger.collectors.protocol import Item
from sweepledger.ledger.events import EventKind, NewEvent

SERVICES = ("gmail", "calendar", "chat", "drive")
ITEMS_PER_PAGE = 4
"""'A few items' per page: enough to exercise the sink's SELECT and upsert on every page."""

SWEEP_ID = "sweep-0bench00000001"
RUN_ID = "run-0bench000000001"


@dataclass(frozen=True, slots=True)
class Step:
    """One event to append and, for a PAGE, the items that commit with it."""

    event: NewEvent
    items: tuple[Item, ...] = ()


Group = list[Step]
"""The events of one transaction."""


def roster_of(subjects: int) -> list[str]:
    return [f"user{n:06d}@corp.example" for n in range(1, subjects + 1)]


def _item(service: str, subject: str, serial: int) -> Item:
    """An item shaped like the demo workspace's, so the sink writes realistic rows."""
    stamp = f"2026-01-{1 + serial % 28:02d}T{serial % 24:02d}:15:00.000Z"
    if service == "gmail":
        fields: dict[str, Any] = {
            "thread_id": f"{serial * 7919:016x}", "history_id": 50_000 + serial,
            "internal_date": stamp, "subject": "Re: Pricing design retro",
            "sender": "ana@corp.example", "recipients": [subject, "bo@corp.example"],
            "labels": ["INBOX", "IMPORTANT"], "size_estimate": 4_450,
            "snippet": "launch contract migration budget survey backlog roadmap",
        }  # fmt: skip
    elif service == "calendar":
        fields = {
            "summary": "Invoice release", "status": "confirmed", "start": stamp, "end": stamp,
            "updated": stamp, "organizer": subject, "attendees": [subject, "bo@corp.example"],
        }  # fmt: skip
    elif service == "chat":
        fields = {
            "space": "spaces/AAAA8VBcFvc", "create_time": stamp, "sender": subject,
            "text": "Hiring roadmap release survey audit quarterly",
            "thread": f"spaces/AAAA8VBcFvc/threads/{serial:x}",
        }  # fmt: skip
    else:
        fields = {
            "name": f"Forecast {serial}.xlsx", "mime_type": "application/vnd.ms-excel",
            "modified_time": stamp, "size": 3_274_098 + serial, "owners": [subject],
            "parents": ["root"], "trashed": 0,
        }  # fmt: skip
    return Item(f"{service[:2]}-{serial:010d}", fields)


def attempts(number: int, roster: Sequence[str]) -> list[list[Step]]:
    """`number` attempts of 5 events over the roster's pairs, subject-major."""
    out = []
    serial = 0
    for n in range(number):
        subject = roster[(n // len(SERVICES)) % len(roster)]
        service = SERVICES[n % len(SERVICES)]

        def event(kind: EventKind, data: dict[str, Any], subject: str = subject,
                  service: str = service) -> NewEvent:  # fmt: skip
            return NewEvent(kind, SWEEP_ID, RUN_ID, service, subject, data)

        steps = [Step(event(EventKind.START, {"attempt": 1 + n // (4 * len(roster))}))]
        for page in (1, 2):
            items = []
            for _ in range(ITEMS_PER_PAGE):
                serial += 1
                items.append(_item(service, subject, serial))
            data: dict[str, Any] = {
                "count": ITEMS_PER_PAGE, "deleted": 0, "exhausted": page == 2,
                "inserted": ITEMS_PER_PAGE, "page": page, "quota_units": 25,
                "rate_limited": 0, "requests": 5, "unchanged": 0, "updated": 0,
            }  # fmt: skip
            if page == 1:
                data["next_page_token"] = f"{page * ITEMS_PER_PAGE}~{serial * 104729:020x}"
            steps.append(Step(event(EventKind.PAGE, data), tuple(items)))
        cursor = {"key": "historyId", "value": str(60_000 + n)}
        steps.append(Step(event(EventKind.CURSOR_WRITE, cursor)))
        end = {"count": 2 * ITEMS_PER_PAGE, "exhausted": True, "ok": True, "partial": False}
        steps.append(Step(event(EventKind.END, end)))
        out.append(steps)
    return out


def per_attempt(work: list[list[Step]]) -> list[Group]:
    """One transaction per attempt: 5 events."""
    return [list(steps) for steps in work]


def like_the_runner(work: list[list[Step]]) -> list[Group]:
    """The runner's grouping: START | PAGE+items | PAGE+items | CURSOR_WRITE+END."""
    groups: list[Group] = []
    for start, page1, page2, cursor, end in work:
        groups += [[start], [page1], [page2], [cursor, end]]
    return groups


def batched(work: list[list[Step]], events: int = 1_000) -> list[Group]:
    """Many attempts per transaction, `events` events each (bulk import, backfill)."""
    flat = [step for steps in work for step in steps]
    return [flat[i : i + events] for i in range(0, len(flat), events)]


def opening_events(roster: list[str]) -> list[NewEvent]:
    """RUN_START and SWEEP_OPEN over `roster`: appended (untimed) before the measured events."""
    return [
        NewEvent(EventKind.RUN_START, SWEEP_ID, RUN_ID, data={
            "argv": ["run"], "host": "bench", "options": {}, "pid": 1, "trigger": "cli"}),
        NewEvent(EventKind.SWEEP_OPEN, SWEEP_ID, RUN_ID, data={
            "options": {}, "roster": roster, "services": list(SERVICES), "source": "sim://"}),
    ]  # fmt: skip
