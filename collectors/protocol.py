"""The Collector protocol: what a source promises the runner.

A source lists the roster and, per (service, subject[, unit]), fetches one page at a time given the
current cursor and a page token. It keeps no state between calls that matters for correctness:
whatever it must remember from one page to the next (Gmail's historyId captured before listing,
Drive's start page token, the largest timestamp persisted so far) travels in `Page.carry` and comes
back in `FetchRequest.carry`, so a later attempt in another process can continue from the ledger.
Sources import nothing from the ledger or the projections.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

SERVICES: tuple[str, ...] = ("gmail", "calendar", "chat", "drive")
"""Canonical service order: plans, tables and reports always follow it."""

CURSOR_KEYS: Mapping[str, str] = {
    "gmail": "historyId",
    "calendar": "syncToken",
    "chat": "last_create_time",
    "drive": "last_modified_time",
}
"""The primary cursor key of each service (the one operators query in `sync_cursor`)."""


@dataclass(frozen=True, slots=True)
class Item:
    """One collected record: `fields` are the item table's columns; `deleted` makes a tombstone."""

    id: str
    fields: Mapping[str, Any]
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """Everything a source needs to fetch one page, all of it recoverable from the ledger."""

    service: str
    subject: str
    unit: str | None
    cursor: Mapping[str, str]
    """Current cursor values of the pair (or unit); empty means a full sync."""
    page_token: str | None
    """None for the first page of a pass."""
    carry: Mapping[str, str] = field(default_factory=dict)
    """What the previous page of this pass asked to carry (empty on the first page)."""
    retry_ids: Sequence[str] = ()
    """Item ids that failed earlier and must be fetched again before new pages."""
    since: str | None = None
    """RFC 3339 lower bound of a full sync's window, or None for no bound."""
    attempt: int = 1
    """The pair's attempt number (its START's `attempt`). A service ignores it; the demo source
    draws its faults on it, so a rerun meets new faults as it would on a real service instead of
    the very ones the last process met."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page as the service gave it."""

    items: Sequence[Item]
    next_page_token: str | None
    exhausted: bool
    """Pagination finished by the service's own rule (no next token, history caught up...)."""
    cursor: Mapping[str, str] = field(default_factory=dict)
    """On an exhausted page: the cursor values to write (primary key first)."""
    carry: Mapping[str, str] = field(default_factory=dict)
    failed_ids: Sequence[str] = ()
    """Ids listed on this page whose item could not be fetched (their siblings are stored)."""
    requests: int = 1
    rate_limited: int = 0
    quota_units: int = 0


class Source(Protocol):
    """A workspace to sweep: the demo simulator or Google Workspace."""

    @property
    def url(self) -> str:
        """The canonical URL, recorded in SWEEP_OPEN and compared on resume."""
        ...

    def roster(self) -> list[str]:
        """Every subject's email, in any order."""
        ...

    def units(self, service: str, subject: str) -> list[str] | None:
        """The pair's units (chat spaces), or None where the service has none."""
        ...

    def fetch(self, request: FetchRequest) -> Page:
        """Fetch one page or raise a `collectors.errors.CollectorError`."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class Interruptible(Protocol):
    """A source that waits of its own accord (quota pacing, retries inside one fetch, a request
    in flight, the demo's latency). The runner hands it its stop event before the first call:
    once the event is set, every such wait ends at once with `errors.Stopped` (carrying the
    fetch's cost), so a signal or the time budget stops the run in well under a second instead
    of after the longest wait in flight."""

    def stop_on(self, stop: threading.Event) -> None:
        """End every wait, present and future, as soon as `stop` is set."""
        ...


def item_fields(**fields: Any) -> dict[str, Any]:
    """Item fields with None values dropped, so tables keep their column defaults."""
    return {k: v for k, v in fields.items() if v is not None}
