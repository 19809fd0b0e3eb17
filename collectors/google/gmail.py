"""Gmail: `getProfile` + `messages.list` + `messages.get` for a full sync, `history.list` after.

Full sync: the profile's historyId H is read BEFORE the first list page and carried, so whatever
arrives while the listing runs is in the history after H, which the next incremental sync reads;
H is the cursor once the listing is exhausted. Incremental: `history.list(startHistoryId=cursor)`
with the start fixed while paging; each page's touched messages are fetched once (by their last
change in the page; a deleted one is a tombstone without a call) and the response's historyId is
carried and becomes the cursor on the last page. A 404 there means the start id is too old:
CursorExpired, which the runner answers with CURSOR_RESET and a full sync.

`messages.get` is per item, so its failures are per item: each get is retried here (honouring the
service's wait); one that still fails goes to `Page.failed_ids` while its siblings are stored, and
the runner retries exactly those ids first on the next attempt (`FetchRequest.retry_ids`). A 404
on a get is a message deleted since it was listed: a tombstone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sweepledger.collectors.errors import CursorExpired, Internal
from sweepledger.collectors.google.client import ApiClient, CallTally
from sweepledger.collectors.google.messages import SCOPES, MessageFetcher
from sweepledger.collectors.google.resources import parse_time
from sweepledger.collectors.protocol import FetchRequest, Item, Page

UNITS = {"getProfile": 1, "list": 5, "history": 2, "get": 5}
"""Gmail's published quota units per method."""
HISTORY_TYPES = ["messageAdded", "messageDeleted", "labelAdded", "labelRemoved"]
MAX_RESULTS = 500


class GmailReader:
    """Pages of one mailbox, as the Source protocol asks for them."""

    def __init__(self, client: ApiClient, fetcher: MessageFetcher) -> None:
        self.client = client
        self.fetcher = fetcher

    def page(self, request: FetchRequest, tally: CallTally) -> Page:
        """One page; every call it makes is counted in `tally`, which outlives a failure."""
        if request.retry_ids:
            return self._retry_page(request, tally)
        if request.cursor:
            return self._history_page(request, tally)
        return self._listing_page(request, tally)

    def _get(
        self,
        subject: str,
        path: str,
        params: Mapping[str, Any],
        tally: CallTally,
        units: int,
        **kwargs: Any,
    ) -> dict[str, Any]:
        user = f"/gmail/v1/users/{subject}"
        return self.client.get_json(
            "gmail",
            user + path,
            params,
            subject=subject,
            scopes=SCOPES,
            tally=tally,
            units=units,
            **kwargs,
        )

    def _listing_page(self, request: FetchRequest, tally: CallTally) -> Page:
        subject = request.subject
        if request.page_token is None:
            profile = self._get(subject, "/profile", {}, tally, UNITS["getProfile"])
            carry = {"historyId": str(profile["historyId"])}
        else:
            carry = dict(request.carry)
            if "historyId" not in carry:
                raise Internal(
                    "gmail continuation page without the historyId carried from its first page"
                )
        params: dict[str, Any] = {"maxResults": MAX_RESULTS}
        if request.since:
            params["q"] = f"after:{_epoch_seconds(request.since)}"
        if request.page_token:
            params["pageToken"] = request.page_token
        listing = self._get(subject, "/messages", params, tally, UNITS["list"])
        ids = [str(m["id"]) for m in listing.get("messages") or ()]
        found, failed = self.fetcher.fetch(subject, ids, tally)
        items = [found[i] for i in ids if i in found]
        return _page(items, failed, listing.get("nextPageToken"), carry, tally)

    def _history_page(self, request: FetchRequest, tally: CallTally) -> Page:
        start = request.cursor.get("historyId", "")
        if not start.isdigit():
            raise CursorExpired(f"gmail cursor of {request.subject} has no usable historyId")
        params: dict[str, Any] = {
            "startHistoryId": start,
            "historyTypes": HISTORY_TYPES,
            "maxResults": MAX_RESULTS,
        }
        if request.page_token:
            params["pageToken"] = request.page_token
        answer = self._get(
            request.subject,
            "/history",
            params,
            tally,
            UNITS["history"],
            overrides={404: CursorExpired},
        )
        last_change = touched_messages(answer.get("history") or ())
        wanted = [i for i, deleted in last_change.items() if not deleted]
        found, failed = self.fetcher.fetch(request.subject, wanted, tally)
        items = [
            Item(i, {}, deleted=True) if deleted else found[i]
            for i, deleted in last_change.items()
            if deleted or i in found
        ]
        carry = {
            "historyId": str(answer.get("historyId") or request.carry.get("historyId") or start)
        }
        return _page(items, failed, answer.get("nextPageToken"), carry, tally)

    def _retry_page(self, request: FetchRequest, tally: CallTally) -> Page:
        """Only the ids that failed before; pagination stays where it was (protocol contract):
        after the last page of a pass the carried cursor is offered again."""
        ids = list(dict.fromkeys(request.retry_ids))
        found, failed = self.fetcher.fetch(request.subject, ids, tally)
        carry = dict(request.carry)
        after_last_page = request.page_token is None and "historyId" in carry
        return tally.page(
            items=[found[i] for i in ids if i in found],
            next_page_token=request.page_token,
            exhausted=after_last_page,
            cursor={"historyId": carry["historyId"]} if after_last_page else {},
            carry=carry,
            failed_ids=failed,
        )


def touched_messages(history: Sequence[Mapping[str, Any]]) -> dict[str, bool]:
    """Message id -> deleted, for every message a page of history records touched, ordered by
    each message's last change (a later change moves it to the end)."""
    last: dict[str, bool] = {}
    kinds = (
        ("messagesAdded", False),
        ("labelsAdded", False),
        ("labelsRemoved", False),
        ("messagesDeleted", True),
    )
    for record in history:
        changes: list[tuple[str, bool]] = []
        for key, deleted in kinds:
            changes += [(str(c["message"]["id"]), deleted) for c in record.get(key) or ()]
        if not changes:
            changes = [(str(m["id"]), False) for m in record.get("messages") or ()]
        for message_id, deleted in changes:
            last.pop(message_id, None)
            last[message_id] = deleted
    return last


def _page(
    items: list[Item], failed: list[str], next_token: Any, carry: dict[str, str], tally: CallTally
) -> Page:
    exhausted = not next_token
    return tally.page(
        items=items,
        next_page_token=None if exhausted else str(next_token),
        exhausted=exhausted,
        cursor={"historyId": carry["historyId"]} if exhausted else {},
        carry=carry,
        failed_ids=failed,
    )


def _epoch_seconds(since: str) -> int:
    """Gmail's `after:` takes epoch seconds."""
    try:
        return parse_time(since) // 1_000_000
    except ValueError:
        raise Internal(f"since {since!r} is not an RFC 3339 timestamp") from None
