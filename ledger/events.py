"""Event kinds and the two records: an event to append, and an event as stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    """Every kind of event the ledger holds (DESIGN 3)."""

    SWEEP_OPEN = "SWEEP_OPEN"
    SWEEP_CLOSE = "SWEEP_CLOSE"
    RUN_START = "RUN_START"
    RUN_END = "RUN_END"
    START = "START"
    PAGE = "PAGE"
    CURSOR_WRITE = "CURSOR_WRITE"
    CURSOR_SKIP = "CURSOR_SKIP"
    END = "END"
    BLOCK = "BLOCK"
    UNBLOCK = "UNBLOCK"
    PAUSE = "PAUSE"
    UNPAUSE = "UNPAUSE"
    CURSOR_RESET = "CURSOR_RESET"
    HEARTBEAT = "HEARTBEAT"


PAIR_PHASES: frozenset[EventKind] = frozenset(
    {
        EventKind.START,
        EventKind.PAGE,
        EventKind.CURSOR_WRITE,
        EventKind.CURSOR_SKIP,
        EventKind.END,
    }
)
"""The kinds that belong to an attempt and print as SWEEP lines."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event before it is appended: the store gives it seq, ts and hash."""

    kind: EventKind
    sweep_id: str | None = None
    run_id: str | None = None
    service: str | None = None
    subject: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    """An event as the ledger holds it; immutable once appended."""

    seq: int
    ts: str
    sweep_id: str | None
    run_id: str | None
    kind: EventKind
    service: str | None
    subject: str | None
    data: dict[str, Any]
    hash: str
