"""Fast unit tests of the google:// source's pure parts: error mapping, Retry-After, resource
fields, Gmail history folding, the URL and the batch format."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from sweepledger.collectors.errors import (
    Auth,
    CollectorError,
    CursorExpired,
    Forbidden,
    Internal,
    InvalidPageToken,
    NotFound,
    RateLimited,
    SourceConfigError,
    Transient,
)
from sweepledger.collectors.google import batch
from sweepledger.collectors.google.config import GoogleConfig
from sweepledger.collectors.google.gmail import touched_messages
from sweepledger.collectors.google.resources import (
    calendar_fields,
    chat_fields,
    drive_fields,
    gmail_fields,
    parse_time,
    render_time,
)
from sweepledger.collectors.google.responses import error_for, retry_after_seconds


def _body(status: int, message: str = "", reason: str = "") -> bytes:
    errors = [{"reason": reason, "message": message}] if reason else []
    return orjson.dumps({"error": {"code": status, "message": message, "errors": errors}})


@pytest.mark.parametrize(
    ("status", "reason", "page_token", "expected"),
    [
        (429, "rateLimitExceeded", False, RateLimited),
        (403, "rateLimitExceeded", False, RateLimited),
        (403, "userRateLimitExceeded", False, RateLimited),
        (403, "forbidden", False, Forbidden),
        (403, "insufficientPermissions", False, Forbidden),
        (500, "backendError", False, Transient),
        (502, "", False, Transient),
        (503, "backendError", False, Transient),
        (504, "", False, Transient),
        (401, "authError", False, Auth),
        (404, "notFound", False, NotFound),
        (400, "invalid", True, InvalidPageToken),
        (400, "invalid", False, Internal),
        (410, "fullSyncRequired", False, Internal),
    ],
)
def test_statuses_map_to_the_taxonomy(
    status: int, reason: str, page_token: bool, expected: type[CollectorError]
) -> None:
    """The issue's mapping: rate limits, 5xx, 401, other 403, 404, 400 with and without a page
    token (a 400 otherwise is our bug: Internal, naming the request)."""
    error = error_for(
        status, _body(status, "boom", reason), {}, request="GET /x", had_page_token=page_token
    )
    assert type(error) is expected
    assert "GET /x: HTTP" in str(error)


def test_overrides_give_a_call_its_own_meaning() -> None:
    """Gmail history 404 and Calendar 410 mean an expired cursor for those calls only."""
    error = error_for(
        410,
        _body(410, "gone", "fullSyncRequired"),
        {},
        request="GET /events",
        overrides={410: CursorExpired},
    )
    assert isinstance(error, CursorExpired)


def test_retry_after_prefers_the_bodys_instant_then_the_header() -> None:
    """ "Retry after <RFC 3339>" in the message is a wait to the millisecond; else the header
    (seconds or an HTTP date); negative waits are zero; nothing is None."""
    now = parse_time("2026-01-05T12:00:00Z") / 1e6
    message = "User-rate limit exceeded.  Retry after 2026-01-05T12:00:01.250Z"
    assert retry_after_seconds({}, message, now) == pytest.approx(1.25)
    assert retry_after_seconds({"Retry-After": "7"}, "slow down", now) == 7.0
    assert retry_after_seconds({"retry-after": "Mon, 05 Jan 2026 12:00:30 GMT"}, "", now) == (
        pytest.approx(30.0)
    )
    assert retry_after_seconds({}, "Retry after 2026-01-05T11:00:00Z", now) == 0.0
    assert retry_after_seconds({}, "no hint", now) is None
    limited = error_for(
        429, _body(429, message, "rateLimitExceeded"), {"Retry-After": "2"}, request="GET /x"
    )
    assert limited.retry_after is not None


def test_times_are_normalised_to_utc_with_fixed_digits() -> None:
    """Offsets, nanoseconds and bare dates parse; rendering fixes the digits."""
    assert render_time(parse_time("2026-01-05T13:00:00.123456789+01:00"), 6) == (
        "2026-01-05T12:00:00.123456Z"
    )
    assert render_time(parse_time("2026-01-05"), 0) == "2026-01-05T00:00:00Z"
    with pytest.raises(ValueError, match="without an offset"):
        parse_time("2026-01-05T12:00:00")


def test_resources_become_the_sink_columns() -> None:
    """Gmail headers, Calendar times, Chat senders and Drive folders map as the sim does."""
    message = {
        "id": "a1",
        "threadId": "t1",
        "historyId": "42",
        "internalDate": "1767614400123",
        "labelIds": ["UNREAD", "INBOX"],
        "sizeEstimate": 9,
        "snippet": "hi",
        "payload": {
            "headers": [
                {"name": "From", "value": "Ana <ana@x.com>"},
                {"name": "To", "value": "b@x.com, C <c@x.com>"},
                {"name": "Subject", "value": "Plan"},
            ]
        },
    }
    assert gmail_fields(message) == {
        "thread_id": "t1",
        "history_id": 42,
        "internal_date": "2026-01-05T12:00:00.123Z",
        "subject": "Plan",
        "sender": "ana@x.com",
        "recipients": '["b@x.com","c@x.com"]',
        "labels": '["INBOX","UNREAD"]',
        "size_estimate": 9,
        "snippet": "hi",
    }
    event = {
        "id": "e",
        "status": "confirmed",
        "summary": "S",
        "updated": "2026-01-05T12:00:00Z",
        "start": {"dateTime": "2026-01-05T14:00:00+02:00"},
        "end": {"date": "2026-01-06"},
        "organizer": {"email": "o@x.com"},
        "attendees": [{"email": "o@x.com"}, {}],
    }
    assert calendar_fields(event)["start"] == "2026-01-05T12:00:00Z"
    assert calendar_fields(event)["end"] == "2026-01-06"
    assert calendar_fields(event)["attendees"] == '["o@x.com"]'
    chat = {
        "name": "spaces/A/messages/m",
        "createTime": "2026-01-05T12:00:00.5Z",
        "sender": {"name": "users/1"},
        "thread": {"name": "spaces/A/threads/t"},
    }
    assert chat_fields(chat) == {
        "space": "spaces/A",
        "create_time": "2026-01-05T12:00:00.500000Z",
        "sender": "users/1",
        "thread": "spaces/A/threads/t",
    }
    folder = {
        "id": "f",
        "name": "F",
        "mimeType": "application/vnd.google-apps.folder",
        "modifiedTime": "2026-01-05T12:00:00.000Z",
        "parents": ["root"],
        "owners": [{"emailAddress": "a@x.com"}],
    }
    assert drive_fields(folder)["size"] == 0 and "drive_id" not in drive_fields(folder)
    assert drive_fields(folder)["trashed"] == 0


def test_history_pages_fold_to_each_messages_last_change() -> None:
    """A message touched twice appears once, at its last change; deleted last = tombstone."""
    history = [
        {"id": "1", "messagesAdded": [{"message": {"id": "a"}}]},
        {"id": "2", "labelsAdded": [{"message": {"id": "b"}, "labelIds": ["X"]}]},
        {"id": "3", "messagesDeleted": [{"message": {"id": "a"}}]},
        {"id": "4", "labelsRemoved": [{"message": {"id": "b"}}]},
        {"id": "5", "messages": [{"id": "c"}]},
    ]
    assert list(touched_messages(history).items()) == [("a", True), ("b", False), ("c", False)]


def test_google_urls_are_validated_and_canonical(tmp_path: Path) -> None:
    """Parameters sorted, default customer omitted, key path absolute; bad ones named."""
    key = tmp_path / "k.json"
    config = GoogleConfig.from_url(
        f"google://?endpoint=http://127.0.0.1:9/&credentials={key}"
        "&admin=Root@Corp.example&customer=my_customer"
    )
    assert config.url == (
        f"google://?admin=root@corp.example&credentials={key}&endpoint=http://127.0.0.1:9"
    )
    assert config.base("gmail") == "http://127.0.0.1:9"
    assert GoogleConfig.from_url(config.url) == config
    for bad, said in [
        ("google://?admin=a@b.c", "credentials"),
        (f"google://?credentials={key}&admin=nope", "not an email"),
        (f"google://?credentials={key}&admin=a@b.c&endpoint=ftp://x", "endpoint"),
        (f"google://?credentials={key}&admin=a@b.c&endpoint=http://127.0.0.1:abc", "endpoint"),
        (f"google://?credentials={key}&admin=a@b.c&endpoint=http://127.0.0.1:99999", "endpoint"),
        (f"google://?credentials={key}&admin=a@b.c&endpoint=http://[::1", "endpoint"),
        (f"google://?credentials={key}&admin=a@b.c&endpoint=http://:8080", "endpoint"),
        (f"google://?credentials={key}&admin=a@b.c&scope=x", "unknown"),
    ]:
        with pytest.raises(SourceConfigError, match=said):
            GoogleConfig.from_url(bad)


def test_batch_bodies_round_trip_and_read_googles_shape() -> None:
    """Our encoder's parts decode back; a Google-style response with CRLFs and response- ids
    decodes to per-part statuses and bodies."""
    content_type, body = batch.encode([batch.Part("1", "GET /gmail/v1/users/me/messages/a", {})])
    [part] = batch.decode(content_type, body)
    assert (part.content_id, part.start) == ("1", "GET /gmail/v1/users/me/messages/a")
    google = (
        b"--batch_x\r\nContent-Type: application/http\r\nContent-ID: <response-7>\r\n\r\n"
        b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\r\n"
        b'{"error": {"code": 404}}\r\n--batch_x--\r\n'
    )
    [answer] = batch.decode("multipart/mixed; boundary=batch_x", google)
    assert (answer.content_id, answer.status, orjson.loads(answer.body)["error"]["code"]) == (
        "7",
        404,
        404,
    )
    with pytest.raises(ValueError, match="multipart"):
        batch.decode("application/json", b"{}")
