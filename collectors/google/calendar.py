"""Calendar: `events.list` on the primary calendar, full then with the `syncToken`.

`nextSyncToken` is only on the last page of a listing, and a page may be empty yet carry a
`nextPageToken` (Google stops scanning at a time limit): only a page without a next token ends
the pass. Incremental sync sends the `syncToken` and nothing that is incompatible with it (no
time bounds, no `updatedMin`, no `orderBy`); 410 `fullSyncRequired` means the token expired:
CursorExpired, answered by CURSOR_RESET and a full listing. Cancelled events are tombstones.
`showDeleted=true` on the full listing too, so a resync after a reset also reports the events
cancelled meanwhile, and `singleEvents=false` keeps a recurring series as one event.
"""

from __future__ import annotations

from typing import Any

from sweepledger.collectors.errors import CursorExpired, Internal
from sweepledger.collectors.google.client import ApiClient, CallTally
from sweepledger.collectors.google.resources import calendar_fields, parse_time, render_time
from sweepledger.collectors.protocol import FetchRequest, Item, Page

SCOPES = ("https://www.googleapis.com/auth/calendar.readonly",)
MAX_RESULTS = 2500
PATH = "/calendar/v3/calendars/primary/events"


class CalendarReader:
    """Pages of one primary calendar."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def page(self, request: FetchRequest, tally: CallTally) -> Page:
        """One page; its call is counted in `tally`, which outlives a failure."""
        if request.retry_ids:
            raise Internal("calendar pages never report failed ids, so none can be retried")
        params: dict[str, Any] = {
            "maxResults": MAX_RESULTS,
            "showDeleted": "true",
            "singleEvents": "false",
        }
        if request.cursor:
            token = request.cursor.get("syncToken")
            if not token:
                raise CursorExpired(f"calendar cursor of {request.subject} has no syncToken")
            params["syncToken"] = token
        elif request.since:
            try:
                params["updatedMin"] = render_time(parse_time(request.since), 3)
            except ValueError:
                raise Internal(f"since {request.since!r} is not an RFC 3339 timestamp") from None
        if request.page_token:
            params["pageToken"] = request.page_token
        answer = self.client.get_json(
            "calendar",
            PATH,
            params,
            subject=request.subject,
            scopes=SCOPES,
            tally=tally,
            overrides={410: CursorExpired},
        )
        items = [
            Item(str(e["id"]), {}, deleted=True)
            if e.get("status") == "cancelled"
            else Item(str(e["id"]), calendar_fields(e))
            for e in answer.get("items") or ()
        ]
        next_token = answer.get("nextPageToken")
        carry: dict[str, str] = {}
        cursor: dict[str, str] = {}
        if not next_token:
            sync_token = answer.get("nextSyncToken")
            if not sync_token:
                raise Internal(f"GET {PATH}: the last page has no nextSyncToken")
            carry = cursor = {"syncToken": str(sync_token)}
        return tally.page(
            items=items,
            next_page_token=str(next_token) if next_token else None,
            exhausted=not next_token,
            cursor=cursor,
            carry=carry,
        )
