"""Calendar in the demo workspace: one primary calendar per subject.

As in Google Calendar, a cancelled event is kept (status "cancelled") so an incremental sync can
report it; a full listing leaves it out. Each event remembers the generation of its last change,
which is what a sync token taken at an earlier generation is compared with.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import orjson

from sweepledger.collectors.sim.common import (
    HOUR_US,
    fresh_id,
    other_subjects,
    pair_rng,
    pair_size,
    phrase,
    rfc3339,
    spread,
    window,
)

HALF_HOUR_US = HOUR_US // 2


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    """An event of a subject's primary calendar; times in microseconds."""

    id: str
    summary: str
    status: str
    start: int
    end: int
    updated: int
    organizer: str
    attendees: tuple[str, ...]
    generation: int
    """The generation of the event's last change."""

    @property
    def timestamp(self) -> int:
        """The instant `since` and the listing order look at."""
        return self.updated

    @property
    def cancelled(self) -> bool:
        """Whether a sync reports the event as a deletion."""
        return self.status == "cancelled"

    def fields(self) -> dict[str, Any]:
        """The `calendar_events` columns of this event."""
        return {
            "summary": self.summary,
            "status": self.status,
            "start": rfc3339(self.start, digits=0),
            "end": rfc3339(self.end, digits=0),
            "updated": rfc3339(self.updated),
            "organizer": self.organizer,
            "attendees": orjson.dumps(list(self.attendees)).decode(),
        }


@dataclass(frozen=True, slots=True)
class Calendar:
    """A subject's primary calendar at one generation."""

    events: tuple[CalendarEvent, ...]
    """Every event, cancelled ones included, by (updated, id)."""
    by_id: Mapping[str, CalendarEvent]

    def live(self) -> list[CalendarEvent]:
        """What a full sync lists: events not cancelled, by (updated, id)."""
        return [event for event in self.events if not event.cancelled]

    def changed_after(self, generation: int) -> list[CalendarEvent]:
        """Events created, updated or cancelled after `generation`, by (updated, id)."""
        return [event for event in self.events if event.generation > generation]


@lru_cache(maxsize=1024)
def build_calendar(seed: int, count: int, subject: str, generation: int) -> Calendar:
    """The calendar of `subject` at `generation`, replayed from generation 1 (a pure function)."""
    events: dict[str, CalendarEvent] = {}
    for g in range(1, generation + 1):
        rng = pair_rng(seed, "calendar", subject, g)
        if g == 1:
            actions: list[tuple[str, str]] = [("add", "")] * pair_size(rng)
        else:
            existing = [e.id for e in events.values() if not e.cancelled]
            actions = _later_actions(rng, existing)
        for (action, event_id), at in zip(
            actions, spread(rng, len(actions), *window(g)), strict=True
        ):
            if action == "add":
                event = _new_event(
                    rng, count=count, subject=subject, events=events, at=at, generation=g
                )
                events[event.id] = event
            elif action == "update":
                shift = rng.choice((-2, -1, 1, 2, 24)) * HOUR_US
                old = events[event_id]
                events[event_id] = replace(
                    old, start=old.start + shift, end=old.end + shift, updated=at, generation=g
                )
            else:
                events[event_id] = replace(
                    events[event_id], status="cancelled", updated=at, generation=g
                )
    ordered = sorted(events.values(), key=lambda e: (e.updated, e.id))
    return Calendar(tuple(ordered), dict(events))


def _later_actions(rng: random.Random, existing: list[str]) -> list[tuple[str, str]]:
    """A later generation: a few new events, rescheduled ones and cancellations."""
    updated = min(rng.randint(1, 3), len(existing))
    cancelled = min(rng.randint(0, 2), len(existing) - updated)
    chosen = rng.sample(existing, updated + cancelled)
    actions = [("add", "")] * rng.randint(1, 5)
    actions += [("update", e) for e in chosen[:updated]]
    actions += [("cancel", e) for e in chosen[updated:]]
    rng.shuffle(actions)
    return actions


def _new_event(
    rng: random.Random,
    *,
    count: int,
    subject: str,
    events: dict[str, CalendarEvent],
    at: int,
    generation: int,
) -> CalendarEvent:
    """An event created at `at`, scheduled from two days before to three weeks after."""
    start = (at // HALF_HOUR_US + rng.randint(-96, 1008)) * HALF_HOUR_US
    colleagues = other_subjects(rng, subject, count, 4)
    organizer = subject if rng.random() < 0.6 or not colleagues else colleagues[0]
    return CalendarEvent(
        id=fresh_id(rng, events, "hex26"),
        summary=phrase(rng, 2).capitalize(),
        status="tentative" if rng.random() < 0.1 else "confirmed",
        start=start,
        end=start + rng.choice((1, 2, 3)) * HALF_HOUR_US,
        updated=at,
        organizer=organizer,
        attendees=tuple(sorted({subject, *colleagues})),
        generation=generation,
    )
