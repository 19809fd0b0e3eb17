"""Google's resources -> the item tables' fields (collectors/sink.py COLUMNS), and time formats.

The fields are the ones the demo workspace gives for the same record (a `google://` sweep of the
emulator stores the same rows as a `sim://` sweep): times normalised to UTC with a fixed number of
fractional digits per column, list columns as compact JSON, addresses without display names.
Pure functions, so each mapping is unit-tested without HTTP.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from sweepledger.collectors.errors import Internal

SECOND_US = 1_000_000
FOLDER = "application/vnd.google-apps.folder"
_INSTANT = re.compile(
    r"(\d{4}-\d\d-\d\d)(?:[T ](\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)?)?", re.IGNORECASE
)


def parse_time(text: str) -> int:
    """Microseconds since the epoch of an RFC 3339 instant (any offset, up to nanoseconds; a bare
    date is its midnight UTC); ValueError for anything else."""
    match = _INSTANT.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    day, clock, fraction, offset = match.groups()
    if clock is not None and offset is None:
        raise ValueError(f"RFC 3339 timestamp without an offset: {text!r}")
    offset = "+00:00" if offset in (None, "Z", "z") else offset
    moment = datetime.fromisoformat(f"{day}T{clock or '00:00:00'}{offset}")
    micros = int(((fraction or "") + "000000")[:6])
    return int(moment.timestamp()) * SECOND_US + micros


def render_time(us: int, digits: int) -> str:
    """Microseconds since the epoch as RFC 3339 UTC with `digits` fractional digits and Z."""
    seconds, micros = divmod(us, SECOND_US)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{micros:06d}"[:digits]
    return text + "Z"


def _normal(text: Any, digits: int, what: str) -> str:
    try:
        return render_time(parse_time(str(text)), digits)
    except ValueError:
        raise Internal(f"{what} {text!r} is not an RFC 3339 time") from None


def _json_list(values: list[Any]) -> str:
    return orjson.dumps(values).decode()


def gmail_fields(message: Mapping[str, Any]) -> dict[str, Any]:
    """A `messages.get(format=metadata)` resource as `gmail_messages` columns."""
    headers: dict[str, str] = {}
    for header in (message.get("payload") or {}).get("headers") or ():
        headers.setdefault(str(header.get("name", "")).lower(), str(header.get("value", "")))
    fields: dict[str, Any] = {
        "thread_id": message.get("threadId"),
        "history_id": int(message["historyId"]) if message.get("historyId") else None,
        "subject": headers.get("subject"),
        "sender": email.utils.parseaddr(headers["from"])[1] if "from" in headers else None,
        "recipients": _json_list(
            [address for _, address in email.utils.getaddresses([headers.get("to", "")]) if address]
        ),
        "labels": _json_list(sorted(message.get("labelIds") or ())),
        "size_estimate": message.get("sizeEstimate"),
        "snippet": message.get("snippet"),
    }
    if message.get("internalDate"):
        fields["internal_date"] = render_time(int(message["internalDate"]) * 1000, 3)
    return {k: v for k, v in fields.items() if v is not None}


def _event_time(moment: Mapping[str, Any] | None) -> str | None:
    """An event's start or end: a timed one in UTC to the second, an all-day one as its date."""
    if not moment:
        return None
    if moment.get("dateTime"):
        return _normal(moment["dateTime"], 0, "event time")
    return str(moment["date"]) if moment.get("date") else None


def calendar_fields(event: Mapping[str, Any]) -> dict[str, Any]:
    """An `events.list` item (not cancelled) as `calendar_events` columns."""
    fields: dict[str, Any] = {
        "summary": event.get("summary"),
        "status": event.get("status"),
        "start": _event_time(event.get("start")),
        "end": _event_time(event.get("end")),
        "updated": _normal(event["updated"], 3, "event updated") if event.get("updated") else None,
        "organizer": (event.get("organizer") or {}).get("email"),
        "attendees": _json_list(
            [a["email"] for a in event.get("attendees") or () if a.get("email")]
        ),
    }
    return {k: v for k, v in fields.items() if v is not None}


def chat_fields(message: Mapping[str, Any]) -> dict[str, Any]:
    """A `spaces.messages.list` item as `chat_messages` columns (sender by email if given)."""
    name = str(message.get("name", ""))
    sender = message.get("sender") or {}
    fields: dict[str, Any] = {
        "space": (message.get("space") or {}).get("name") or name.partition("/messages/")[0],
        "create_time": _normal(message["createTime"], 6, "message createTime")
        if message.get("createTime")
        else None,
        "sender": sender.get("email") or sender.get("name"),
        "text": message.get("text"),
        "thread": (message.get("thread") or {}).get("name"),
    }
    return {k: v for k, v in fields.items() if v is not None}


def drive_fields(file: Mapping[str, Any]) -> dict[str, Any]:
    """A Drive file resource (with FILE_FIELDS) as `drive_files` columns. A folder has no size
    in Drive's answer and 0 in the table; a shared-drive file has no owners and a drive_id."""
    size = file.get("size")
    if size is None and file.get("mimeType") == FOLDER:
        size = 0
    fields: dict[str, Any] = {
        "name": file.get("name"),
        "mime_type": file.get("mimeType"),
        "modified_time": _normal(file["modifiedTime"], 3, "file modifiedTime")
        if file.get("modifiedTime")
        else None,
        "size": int(size) if size is not None else None,
        "owners": _json_list(
            [o["emailAddress"] for o in file.get("owners") or () if o.get("emailAddress")]
        ),
        "parents": _json_list(list(file.get("parents") or ())),
        "trashed": int(bool(file.get("trashed"))),
        "drive_id": file.get("driveId"),
    }
    return {k: v for k, v in fields.items() if v is not None}
