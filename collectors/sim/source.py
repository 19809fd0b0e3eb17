"""`SimSource`: the demo workspace behind the Source protocol, paged as Google pages it.

A pass over a pair (or a chat space) is a full sync when the request's cursor is empty and an
incremental sync otherwise; either way it is a fixed, ordered list of entries (the workspace does
not change under a source instance) cut into pages of `page_size`. Page tokens are `<offset>~<mac>`
where the mac binds the offset to the workspace, the pair, the unit, the cursor and `since`: a
token of another pair or pass, or any other string, raises InvalidPageToken.

Per service:

- gmail: full = `messages.list` newest first + one `messages.get` per message; the profile's
  historyId H is read BEFORE listing, carried as `{"historyId": H}` and written as the cursor on the
  last page. Incremental = `history.list` after the cursor's historyId, each touched message once,
  by its last change: a deleted message is a tombstone.
- calendar: full = events not cancelled, by updated; the `syncToken` is only known on the last page.
  Incremental = events changed since the sync token; cancelled ones are tombstones.
- chat (unit = space): by create_time ascending; incremental asks for create_time >= the cursor,
  so the boundary message comes again (the sink's upsert makes that harmless). The cursor is the
  largest create_time delivered, carried from page to page, never below the previous cursor.
- drive: full = files neither trashed nor removed; incremental = the changes feed from the cursor's
  `start_page_token` (trashed or removed = tombstone). The start page token is read before listing;
  `last_modified_time` is the largest delivered modifiedTime, never below the previous cursor.

Retries (`FetchRequest.retry_ids`): the page holds exactly the retried ids, each fetched again by id
at the current generation (a live item, or a tombstone where the service says it is gone), each once
more subject to `item_errors` (failures go to `failed_ids` again). Such a page does not move
pagination: it returns the request's page token as `next_page_token` and its carry (advanced by the
retried items). Retrying after the last page of a pass (no page token, non-empty carry: every
last page carries its cursor) gives `exhausted=True` and that cursor again, so a runner may write
it once the retries have all succeeded; otherwise the page is not exhausted and the runner goes on
with the page token it already had (or starts the pass when it had none).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from sweepledger.collectors.errors import CursorExpired, Internal, InvalidPageToken, NotFound
from sweepledger.collectors.protocol import SERVICES, FetchRequest, Item, Page
from sweepledger.collectors.retry import wait_or_stop
from sweepledger.collectors.sim.common import MAX_GENERATION, digest, parse_rfc3339, rfc3339
from sweepledger.collectors.sim.config import SimConfig
from sweepledger.collectors.sim.faults import FaultPlan, request_identity
from sweepledger.collectors.sim.workspace import Workspace

TIME_CURSORS = {"chat": ("last_create_time", 6), "drive": ("last_modified_time", 3)}
"""Services whose cursor is the largest delivered time: carry key and fractional digits."""
CONTINUATION_CARRY = {"gmail": "historyId", "drive": "start_page_token"}
"""What a continuation page cannot do without: the value captured before the first page."""
GMAIL_QUOTA = {"getProfile": 1, "list": 5, "history": 2, "get": 5}


class Record(Protocol):
    """A workspace record a page can deliver (message, event, file)."""

    @property
    def timestamp(self) -> int: ...

    def fields(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Pass:
    """One pass over a pair or unit: its entries in order (None = deletion) and its first carry."""

    entries: Sequence[tuple[str, Record | None]]
    start_carry: Mapping[str, str]
    first_page_calls: int = 0
    """Calls the first page makes before listing (Gmail getProfile, Drive getStartPageToken)."""


class SimSource:
    """The deterministic demo workspace as a Source; see the module docstring for the contract."""

    def __init__(self, url: str = "sim://", *, generation: int | None = None) -> None:
        """`generation` sets the workspace's generation of a `generation=auto` URL (default 1);
        the URL, and so the sweep's scope, stays `generation=auto`."""
        self.config = SimConfig.from_url(url)
        if generation is not None and self.config.auto_generation:
            self.config = replace(self.config, generation=min(max(generation, 1), MAX_GENERATION))
        self.workspace = Workspace(self.config.subjects, self.config.seed, self.config.generation)
        self._faults = FaultPlan(self.config)
        self._stop = threading.Event()

    def stop_on(self, stop: threading.Event) -> None:
        """End the latency wait of a fetch as soon as `stop` is set (`protocol.Interruptible`),
        as a stop leaves a hung request of a real service behind: `latency_ms` may be a minute."""
        self._stop = stop

    @property
    def url(self) -> str:
        """The canonical URL (defaults omitted, parameters sorted)."""
        return self.config.url

    def roster(self) -> list[str]:
        """Every subject, sorted case-folded (suspended ones included: they fail on fetch)."""
        return self.workspace.roster()

    def units(self, service: str, subject: str) -> list[str] | None:
        """Chat: the subject's spaces, sorted; other services have no units."""
        _check_service(service)
        return self.workspace.chat_spaces(subject) if service == "chat" else None

    def close(self) -> None:
        """Nothing to release: the workspace is computed, not connected to."""

    def fetch(self, request: FetchRequest) -> Page:
        """One page of the request's pass, or the retried items; raises the configured faults."""
        subject = self._check_request(request)
        identity = request_identity(request)
        occurrence = self._faults.occurrence(identity)
        if self.config.latency_ms:
            wait_or_stop(self._stop, self.config.latency_ms / 1000)
        self._faults.raise_fault(request, identity, occurrence)
        if request.retry_ids:
            return self._retry_page(request, subject, identity, occurrence)

        full = not request.cursor
        since = _since(request.since) if full else None
        plan = self._pass(request, subject, since)
        context = self._pass_context(request, subject, since)
        if request.page_token is None:
            offset, carry = 0, dict(plan.start_carry)
        else:
            offset = self._token_offset(context, request.page_token, len(plan.entries))
            carry = dict(request.carry)
            needed = CONTINUATION_CARRY.get(request.service)
            if needed and needed not in carry:
                raise Internal(
                    f"{request.service} continuation page without carry {needed!r}: pass the "
                    f"previous Page.carry back in FetchRequest.carry"
                )

        chunk = plan.entries[offset : offset + self.config.page_size]
        items, failed, delivered = self._deliver(chunk, identity, occurrence)
        carry = _advance_carry(request.service, carry, delivered)
        end = offset + len(chunk)
        exhausted = end >= len(plan.entries)
        cursor: dict[str, str] = {}
        if exhausted:
            carry = self._finish_carry(request, subject, carry, since)
            cursor = _cursor(request.service, carry)
        calls = (plan.first_page_calls if offset == 0 else 0) + 1
        gets = sum(1 for _, record in chunk if record is not None)
        return Page(
            items=items,
            next_page_token=None if exhausted else _page_token(context, end),
            exhausted=exhausted,
            cursor=cursor,
            carry=carry,
            failed_ids=failed,
            requests=calls + (gets if request.service == "gmail" else 0),
            quota_units=_quota(request.service, full, offset == 0, gets, calls),
        )

    # -- the four services ---------------------------------------------------------------------

    def _pass(self, request: FetchRequest, subject: str, since: int | None) -> Pass:
        if request.service == "gmail":
            return self._gmail_pass(request, subject, since)
        if request.service == "calendar":
            return self._calendar_pass(request, subject, since)
        if request.service == "chat":
            return self._chat_pass(request, subject, since)
        return self._drive_pass(request, subject, since)

    def _gmail_pass(self, request: FetchRequest, subject: str, since: int | None) -> Pass:
        ws = self.workspace
        if not request.cursor:
            profile = ws.gmail_profile_history_id(subject)
            listed = [(m.id, m) for m in ws.gmail_messages(subject) if _at_or_after(m, since)]
            return Pass(listed, {"historyId": str(profile)}, first_page_calls=1)
        start = request.cursor.get("historyId", "")
        if not start.isdigit():
            raise CursorExpired(f"gmail cursor of {subject} has no usable historyId: {start!r}")
        changes = ws.gmail_changes(subject, int(start))
        current = ws.gmail_profile_history_id(subject)
        return Pass(changes, {"historyId": str(current)})

    def _calendar_pass(self, request: FetchRequest, subject: str, since: int | None) -> Pass:
        ws = self.workspace
        if not request.cursor:
            return Pass(
                [(e.id, e) for e in ws.calendar_events(subject) if _at_or_after(e, since)], {}
            )
        token = request.cursor.get("syncToken", "")
        changed = ws.calendar_changes(subject, token)
        return Pass([(e.id, None if e.cancelled else e) for e in changed], {})

    def _chat_pass(self, request: FetchRequest, subject: str, since: int | None) -> Pass:
        space = str(request.unit)
        if not request.cursor:
            return Pass(
                [(m.id, m) for m in self.workspace.chat_messages(subject, space, since)], {}
            )
        previous = _cursor_time(request, subject, "last_create_time")
        if previous > self.workspace.window()[1]:
            raise CursorExpired(
                f"chat cursor of {subject} in {space} is later than anything in this workspace"
            )
        messages = self.workspace.chat_messages(subject, space, previous)
        return Pass([(m.id, m) for m in messages], {"last_create_time": rfc3339(previous, 6)})

    def _drive_pass(self, request: FetchRequest, subject: str, since: int | None) -> Pass:
        ws = self.workspace
        carry = {"start_page_token": ws.drive_start_page_token(subject)}
        if not request.cursor:
            listed = [(f.id, f) for f in ws.drive_files(subject) if _at_or_after(f, since)]
            return Pass(listed, carry, first_page_calls=1)
        token = request.cursor.get("start_page_token")
        if not token:
            raise CursorExpired(f"drive cursor of {subject} has no start_page_token")
        changes = ws.drive_changes(subject, token)
        if "last_modified_time" in request.cursor:
            previous = _cursor_time(request, subject, "last_modified_time")
            carry["last_modified_time"] = rfc3339(previous, 3)
        return Pass([(f.id, None if f.gone else f) for f in changes], carry)

    # -- pages, tokens, retries ----------------------------------------------------------------

    def _deliver(
        self, chunk: Sequence[tuple[str, Record | None]], identity: str, occurrence: int
    ) -> tuple[list[Item], list[str], list[Record]]:
        """Items of a page, ids that failed (item_errors), and the records delivered."""
        items: list[Item] = []
        failed: list[str] = []
        delivered: list[Record] = []
        for item_id, record in chunk:
            if record is None:
                items.append(Item(item_id, {}, deleted=True))
            elif self._faults.item_fails(identity, occurrence, item_id):
                failed.append(item_id)
            else:
                items.append(Item(item_id, record.fields()))
                delivered.append(record)
        return items, failed, delivered

    def _retry_page(
        self, request: FetchRequest, subject: str, identity: str, occurrence: int
    ) -> Page:
        """The retried ids only, fetched by id; pagination does not move (module docstring)."""
        ws, service = self.workspace, request.service
        found: list[tuple[str, Record | None]] = []
        for item_id in dict.fromkeys(request.retry_ids):
            record: Record | None
            if service == "gmail":
                record = ws.gmail_message(subject, item_id)
            elif service == "calendar":
                event = ws.calendar_event(subject, item_id)
                record = None if event is None or event.cancelled else event
            elif service == "chat":
                record = ws.chat_message(subject, str(request.unit), item_id)
            else:
                file = ws.drive_file(subject, item_id)
                record = None if file is None or file.gone else file
            found.append((item_id, record))
        items, failed, delivered = self._deliver(found, identity, occurrence)
        carry = _advance_carry(service, dict(request.carry), delivered)
        after_last_page = request.page_token is None and bool(request.carry)
        if after_last_page:
            carry = self._finish_carry(request, subject, carry, None)
        return Page(
            items=items,
            next_page_token=request.page_token,
            exhausted=after_last_page,
            cursor=_cursor(service, carry) if after_last_page else {},
            carry=carry,
            failed_ids=failed,
            requests=len(found),
            quota_units=len(found) * (GMAIL_QUOTA["get"] if service == "gmail" else 1),
        )

    def _finish_carry(
        self, request: FetchRequest, subject: str, carry: dict[str, str], since: int | None
    ) -> dict[str, str]:
        """The last page's carry holds its whole cursor (so a retry after it can repeat it)."""
        if request.service == "calendar" and "syncToken" not in carry:
            carry["syncToken"] = self.workspace.calendar_sync_token(subject)
        if request.service in TIME_CURSORS:
            key, digits = TIME_CURSORS[request.service]
            carry.setdefault(key, rfc3339(since or 0, digits))
        return carry

    def _pass_context(self, request: FetchRequest, subject: str, since: int | None) -> str:
        """What a page token is bound to: workspace, pair, unit, cursor and window."""
        ws = self.workspace
        return digest(
            ws.seed,
            ws.subjects,
            ws.generation,
            request.service,
            subject,
            request.unit,
            sorted(request.cursor.items()),
            since,
            size=32,
        )

    def _token_offset(self, context: str, token: str, total: int) -> int:
        head, _, _ = token.partition("~")
        offset = int(head) if head.isdigit() else 0
        if 0 < offset < total and token == _page_token(context, offset):
            return offset
        raise InvalidPageToken(f"page token {token[:40]!r} was not issued for this pass")

    def _check_request(self, request: FetchRequest) -> str:
        """The request's case-folded subject; Internal if malformed, NotFound for a stranger."""
        _check_service(request.service)
        if not self.workspace.is_subject(request.subject):
            raise NotFound(f"{request.subject} is not a subject of {self.url}")
        subject = request.subject.casefold()
        if request.service == "chat":
            if request.unit is None:
                raise Internal("chat fetches need a unit: one of the subject's spaces")
            if request.unit not in self.workspace.chat_spaces(subject):
                raise NotFound(f"{subject} is not a member of chat space {request.unit}")
        elif request.unit is not None:
            raise Internal(f"{request.service} has no units, got unit {request.unit!r}")
        return subject


def _page_token(context: str, offset: int) -> str:
    return f"{offset}~{digest(context, offset, size=20)}"


def _check_service(service: str) -> None:
    if service not in SERVICES:
        raise Internal(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")


def _since(since: str | None) -> int | None:
    if since is None:
        return None
    try:
        return parse_rfc3339(since)
    except ValueError:
        raise Internal(f"since {since!r} is not an RFC 3339 timestamp") from None


def _at_or_after(record: Record, since: int | None) -> bool:
    return since is None or record.timestamp >= since


def _cursor_time(request: FetchRequest, subject: str, key: str) -> int:
    try:
        return parse_rfc3339(request.cursor.get(key, ""))
    except ValueError:
        value = request.cursor.get(key)
        raise CursorExpired(
            f"{request.service} cursor of {subject} has no usable {key}: {value!r}"
        ) from None


def _advance_carry(
    service: str, carry: dict[str, str], delivered: Sequence[Record]
) -> dict[str, str]:
    """Chat and Drive carry the largest time delivered so far; it never moves backwards."""
    if service in TIME_CURSORS and delivered:
        key, digits = TIME_CURSORS[service]
        latest = max(record.timestamp for record in delivered)
        if key not in carry or latest > parse_rfc3339(carry[key]):
            carry[key] = rfc3339(latest, digits)
    return carry


def _cursor(service: str, carry: Mapping[str, str]) -> dict[str, str]:
    """The cursor a finished pass writes, primary key first."""
    if service == "gmail":
        return {"historyId": carry["historyId"]}
    if service == "calendar":
        return {"syncToken": carry["syncToken"]}
    if service == "chat":
        return {"last_create_time": carry["last_create_time"]}
    return {
        "last_modified_time": carry["last_modified_time"],
        "start_page_token": carry["start_page_token"],
    }


def _quota(service: str, full: bool, first: bool, gets: int, calls: int) -> int:
    """Gmail's published quota units per call; the other services count one per call."""
    if service != "gmail":
        return calls
    listing = GMAIL_QUOTA["list"] if full else GMAIL_QUOTA["history"]
    profile = GMAIL_QUOTA["getProfile"] if full and first else 0
    return profile + listing + gets * GMAIL_QUOTA["get"]
