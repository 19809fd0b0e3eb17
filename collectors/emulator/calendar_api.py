"""Calendar v3 on the emulator: `events.list` with page tokens and sync tokens.

As Google does: `nextSyncToken` only on the last page; with `syncToken`, only changed events
(cancelled ones included whatever `showDeleted` says) and a 400 for parameters a sync token cannot
be combined with; an expired or foreign sync token is 410 `fullSyncRequired`. A full listing may
begin with an empty page that still has a `nextPageToken` (Google stops scanning at a time limit):
the emulator does so for about one calendar in three, decided by the workspace, so a client that
stops at an empty page loses events.
"""

from __future__ import annotations

import re
from typing import Any

from sweepledger.collectors.emulator.dispatch import ApiError, Call, Reply, Route
from sweepledger.collectors.emulator.paging import binding, cut, offset_of, page_size, token_for
from sweepledger.collectors.emulator.state import EmulatorState
from sweepledger.collectors.errors import CursorExpired
from sweepledger.collectors.sim.calendar_data import CalendarEvent
from sweepledger.collectors.sim.common import digest, parse_rfc3339, rfc3339, unit_interval
from sweepledger.collectors.sim.workspace import Workspace

SCOPES = frozenset(
    "https://www.googleapis.com/auth/" + s
    for s in (
        "calendar",
        "calendar.readonly",
        "calendar.events",
        "calendar.events.readonly",
    )
)
INCOMPATIBLE_WITH_SYNC = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)


def routes(state: EmulatorState) -> list[Route]:
    path = re.compile(r"/calendar/v3/calendars/(?P<calendar>[^/]+)/events")
    return [Route("calendar.events.list", "GET", path, CalendarApi(state).list, SCOPES)]


def starts_with_empty_page(workspace: Workspace, subject: str) -> bool:
    """Whether this calendar's full listing opens with an empty page (about one in three)."""
    return (
        unit_interval(
            workspace.seed, "calendar-empty-page", subject.casefold(), workspace.generation
        )
        < 1 / 3
    )


class CalendarApi:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def list(self, call: Call) -> Reply:
        view = self.state.view()
        user = self.state.own_data(call, call.path["calendar"], view, me=("primary",))
        token, sync_token = call.param("pageToken"), call.param("syncToken")
        gone = ApiError(
            410, "Sync token is no longer valid, a full sync is required.", "fullSyncRequired"
        )
        view.inject(
            call,
            "calendar",
            cursor={"syncToken": sync_token} if sync_token else None,
            page_token=token,
            expired=gone,
        )
        ws = view.workspace
        if sync_token:
            clash = [p for p in INCOMPATIBLE_WITH_SYNC if call.param(p) is not None]
            if clash:
                raise ApiError(
                    400,
                    f"The syncToken cannot be combined with {', '.join(clash)}",
                    "invalid",
                    location=clash[0],
                )
            try:
                events = ws.calendar_changes(user, sync_token)
            except CursorExpired:
                raise gone from None
        else:
            events = list(ws.calendar(user).events)
            if not call.flag("showDeleted"):
                events = [e for e in events if not e.cancelled]
            if call.param("updatedMin"):
                bound = _instant(call.param("updatedMin") or "", "updatedMin")
                events = [e for e in events if e.updated >= bound]
        context = binding(call, view.config.generation, view.config.seed)
        size = page_size(call, "maxResults", 250, 2500, view.config.page_size)
        body: dict[str, Any] = {
            "kind": "calendar#events",
            "etag": f'"{digest(context, size=16)}"',
            "summary": user,
            "updated": rfc3339(ws.window()[1] - 1000),
            "timeZone": "UTC",
            "accessRole": "owner",
            "defaultReminders": [],
        }
        if token is None and not sync_token and starts_with_empty_page(ws, user):
            body.update(items=[], nextPageToken=token_for(context, 0))
            return Reply.json(body)
        offset = offset_of(context, token, len(events))
        chunk, following = cut(events, offset, size)
        body["items"] = [_event(e, user) for e in chunk]
        if following is not None:
            body["nextPageToken"] = token_for(context, following)
        else:
            body["nextSyncToken"] = ws.calendar_sync_token(user)
        return Reply.json(body)


def _event(event: CalendarEvent, owner: str) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": "calendar#event",
        "etag": f'"{event.updated}"',
        "id": event.id,
        "status": event.status,
    }
    if event.cancelled:
        return base
    return {
        **base,
        "htmlLink": f"https://www.google.com/calendar/event?eid={event.id}",
        "updated": rfc3339(event.updated),
        "summary": event.summary,
        "creator": {"email": event.organizer},
        "organizer": {
            "email": event.organizer,
            **({"self": True} if event.organizer == owner else {}),
        },
        "start": {"dateTime": rfc3339(event.start, 0), "timeZone": "UTC"},
        "end": {"dateTime": rfc3339(event.end, 0), "timeZone": "UTC"},
        "iCalUID": f"{event.id}@google.com",
        "sequence": 0,
        "eventType": "default",
        "attendees": [
            {
                "email": a,
                "responseStatus": "accepted" if a == event.organizer else "needsAction",
                **({"self": True} if a == owner else {}),
            }
            for a in event.attendees
        ],
    }


def _instant(text: str, name: str) -> int:
    try:
        return parse_rfc3339(text)
    except ValueError:
        raise ApiError(400, f"Invalid value for {name}: {text}", "invalid", location=name) from None
