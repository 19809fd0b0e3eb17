"""Drive: `files.list` for the full listing, the changes feed after it.

A client can set `modifiedTime` (an upload keeps its original time), so a `modifiedTime > cursor`
filter silently misses files. The changes feed does not: the full listing reads
`changes.getStartPageToken` BEFORE its first page and carries it; incremental sync pages
`changes.list(pageToken=...)` until `newStartPageToken`, which becomes the next start. The
`last_modified_time` cursor operators query is still written (the largest modifiedTime persisted,
never below the previous one) next to `start_page_token`, which is what drives incremental sync.

Shared-drive items are included (`includeItemsFromAllDrives`, `supportsAllDrives`); trashed and
removed files are tombstones. The `fields` mask asks for exactly the columns of `drive_files`
(Drive's default answer holds only id, name and mimeType). A 400 on the cursor's own start token
means it is no longer valid: CursorExpired (reset, full listing); on a continuation token it is
InvalidPageToken (pagination restarts from the cursor).
"""

from __future__ import annotations

from typing import Any

from sweepledger.collectors.errors import CursorExpired, Internal
from sweepledger.collectors.google.client import ApiClient, CallTally
from sweepledger.collectors.google.resources import drive_fields, parse_time, render_time
from sweepledger.collectors.protocol import FetchRequest, Item, Page

SCOPES = ("https://www.googleapis.com/auth/drive.metadata.readonly",)
PAGE_SIZE = 1000
FILE_FIELDS = "id,name,mimeType,modifiedTime,size,owners(emailAddress),parents,trashed,driveId"
ALL_DRIVES = {"supportsAllDrives": "true", "includeItemsFromAllDrives": "true"}
TIME_KEY, TOKEN_KEY = "last_modified_time", "start_page_token"


class DriveReader:
    """Pages of one subject's Drive."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def _get(
        self,
        request: FetchRequest,
        path: str,
        params: dict[str, Any],
        tally: CallTally,
        **kwargs: Any,
    ) -> dict[str, Any]:
        return self.client.get_json(
            "drive", path, params, subject=request.subject, scopes=SCOPES, tally=tally, **kwargs
        )

    def page(self, request: FetchRequest, tally: CallTally) -> Page:
        """One page; every call it makes is counted in `tally`, which outlives a failure."""
        if request.retry_ids:
            raise Internal("drive pages never report failed ids, so none can be retried")
        if request.cursor:
            return self._changes_page(request, tally)
        return self._listing_page(request, tally)

    def _listing_page(self, request: FetchRequest, tally: CallTally) -> Page:
        if request.page_token is None:
            start = self._get(
                request, "/drive/v3/changes/startPageToken", {"supportsAllDrives": "true"}, tally
            )
            carry = {TOKEN_KEY: str(start["startPageToken"])}
        else:
            carry = dict(request.carry)
            if TOKEN_KEY not in carry:
                raise Internal(
                    "drive continuation page without the start page token carried "
                    "from its first page"
                )
        query = "trashed = false"
        if request.since:
            query += f" and modifiedTime >= '{render_time(_parse(request.since), 3)}'"
        params: dict[str, Any] = {
            "corpora": "user",
            **ALL_DRIVES,
            "pageSize": PAGE_SIZE,
            "q": query,
            "fields": f"nextPageToken,files({FILE_FIELDS})",
        }
        if request.page_token:
            params["pageToken"] = request.page_token
        answer = self._get(request, "/drive/v3/files", params, tally)
        items = [Item(str(f["id"]), drive_fields(f)) for f in answer.get("files") or ()]
        next_token = answer.get("nextPageToken") or None
        return _page(request, items, next_token, None, carry, tally)

    def _changes_page(self, request: FetchRequest, tally: CallTally) -> Page:
        start = request.cursor.get(TOKEN_KEY)
        if not start:
            raise CursorExpired(f"drive cursor of {request.subject} has no start_page_token")
        if request.page_token is None:
            carry = {TOKEN_KEY: start}
            if request.cursor.get(TIME_KEY):
                carry[TIME_KEY] = render_time(_parse(request.cursor[TIME_KEY]), 3)
        else:
            carry = dict(request.carry)
        params: dict[str, Any] = {
            "pageToken": request.page_token or start,
            **ALL_DRIVES,
            "includeRemoved": "true",
            "pageSize": PAGE_SIZE,
            "fields": f"nextPageToken,newStartPageToken,changes(fileId,removed,time,"
            f"file({FILE_FIELDS}))",
        }
        overrides = None if request.page_token else {400: CursorExpired, 404: CursorExpired}
        answer = self._get(request, "/drive/v3/changes", params, tally, overrides=overrides)
        items: list[Item] = []
        for change in answer.get("changes") or ():
            file = change.get("file") or {}
            file_id = str(change.get("fileId") or file.get("id") or "")
            if not file_id:
                continue  # a change to a shared drive itself, not to a file
            if change.get("removed") or file.get("trashed") or not file:
                items.append(Item(file_id, {}, deleted=True))
            else:
                items.append(Item(file_id, drive_fields(file)))
        next_token = answer.get("nextPageToken") or None
        new_start = answer.get("newStartPageToken")
        if next_token is None and not new_start:
            raise Internal("GET /drive/v3/changes: the last page has no newStartPageToken")
        return _page(request, items, next_token, new_start, carry, tally)


def _page(
    request: FetchRequest,
    items: list[Item],
    next_token: str | None,
    new_start: str | None,
    carry: dict[str, str],
    tally: CallTally,
) -> Page:
    """Carry the largest modifiedTime delivered; on the last page, the whole cursor."""
    times = [
        parse_time(i.fields["modified_time"])
        for i in items
        if not i.deleted and "modified_time" in i.fields
    ]
    if times and (TIME_KEY not in carry or max(times) > parse_time(carry[TIME_KEY])):
        carry[TIME_KEY] = render_time(max(times), 3)
    cursor: dict[str, str] = {}
    if next_token is None:
        if new_start:
            carry[TOKEN_KEY] = str(new_start)
        carry.setdefault(TIME_KEY, render_time(_parse(request.since) if request.since else 0, 3))
        cursor = {TIME_KEY: carry[TIME_KEY], TOKEN_KEY: carry[TOKEN_KEY]}
    return tally.page(
        items=items,
        next_page_token=next_token,
        exhausted=next_token is None,
        cursor=cursor,
        carry=carry,
    )


def _parse(text: str) -> int:
    try:
        return parse_time(text)
    except ValueError:
        raise Internal(f"{text!r} is not an RFC 3339 timestamp") from None
