"""Chat: the subject's spaces are the pair's units; each space is read by `create_time`.

The Chat filter knows only `>` and `<`, so "from the cursor on, inclusive" is written as
`create_time > "<cursor minus one microsecond>"` (Chat's times have microsecond precision): a
message committed with exactly the cursor's instant after the last sync is read again rather than
lost, and the idempotent upsert makes the repeat harmless. The cursor per space is the largest
createTime persisted, carried from page to page and never below the previous cursor; a space with
nothing yet has the epoch (or the window's start) as its cursor, as in the demo workspace.
Messages are ordered `createTime ASC`; deleted ones (showDeleted) are tombstones.
"""

from __future__ import annotations

from typing import Any

from sweepledger.collectors.errors import CursorExpired, Internal
from sweepledger.collectors.google.client import ApiClient, CallTally
from sweepledger.collectors.google.resources import chat_fields, parse_time, render_time
from sweepledger.collectors.protocol import FetchRequest, Item, Page

SCOPES = (
    "https://www.googleapis.com/auth/chat.messages.readonly",
    "https://www.googleapis.com/auth/chat.spaces.readonly",
)
PAGE_SIZE = 1000
KEY = "last_create_time"


class ChatReader:
    """Spaces of a subject and pages of one space."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def spaces(self, subject: str, tally: CallTally) -> list[str]:
        """Every space the subject is a member of (`spaces.list` as the subject), sorted; the
        calls are counted in `tally`."""
        names: list[str] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"pageSize": PAGE_SIZE}
            if token:
                params["pageToken"] = token
            answer = self.client.get_json(
                "chat", "/v1/spaces", params, subject=subject, scopes=SCOPES, tally=tally
            )
            names += [str(space["name"]) for space in answer.get("spaces") or ()]
            token = answer.get("nextPageToken") or None
            if token is None:
                return sorted(set(names))

    def page(self, request: FetchRequest, tally: CallTally) -> Page:
        """One page of one space; its call is counted in `tally`, which outlives a failure."""
        if request.retry_ids:
            raise Internal("chat pages never report failed ids, so none can be retried")
        if request.unit is None:
            raise Internal("chat fetches need a unit: one of the subject's spaces")
        lower = self._lower_bound(request)
        params: dict[str, Any] = {
            "pageSize": PAGE_SIZE,
            "orderBy": "createTime ASC",
            "showDeleted": "true",
        }
        if lower is not None:
            params["filter"] = f'create_time > "{render_time(lower - 1, 6)}"'
        if request.page_token:
            params["pageToken"] = request.page_token
        answer = self.client.get_json(
            "chat",
            f"/v1/{request.unit}/messages",
            params,
            subject=request.subject,
            scopes=SCOPES,
            tally=tally,
        )
        if request.page_token is None:
            carry = {KEY: render_time(lower, 6)} if request.cursor and lower is not None else {}
        else:
            carry = dict(request.carry)
        items: list[Item] = []
        latest = parse_time(carry[KEY]) if KEY in carry else None
        for message in answer.get("messages") or ():
            name = str(message["name"])
            if message.get("deleteTime") or message.get("deletionMetadata"):
                items.append(Item(name, {}, deleted=True))
                continue
            fields = chat_fields(message)
            items.append(Item(name, fields))
            created = parse_time(fields["create_time"])
            latest = created if latest is None else max(latest, created)
        if latest is not None:
            carry[KEY] = render_time(latest, 6)
        next_token = answer.get("nextPageToken") or None
        cursor: dict[str, str] = {}
        if next_token is None:
            since = _parse(request.since, "since") if request.since else 0
            carry.setdefault(KEY, render_time(since, 6))
            cursor = {KEY: carry[KEY]}
        return tally.page(
            items=items,
            next_page_token=next_token,
            exhausted=next_token is None,
            cursor=cursor,
            carry=carry,
        )

    def _lower_bound(self, request: FetchRequest) -> int | None:
        """The inclusive lower bound of the pass: the cursor, or the window's start."""
        if request.cursor:
            value = request.cursor.get(KEY, "")
            try:
                return parse_time(value)
            except ValueError:
                raise CursorExpired(
                    f"chat cursor of {request.subject} in {request.unit} is not a time: {value!r}"
                ) from None
        return _parse(request.since, "since") if request.since else None


def _parse(text: str | None, what: str) -> int:
    try:
        return parse_time(text or "")
    except ValueError:
        raise Internal(f"{what} {text!r} is not an RFC 3339 timestamp") from None
