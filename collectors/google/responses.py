"""What a Google error response means for a sweep: the status and body -> a collector error.

Google's APIs answer errors with `{"error": {"code", "message", "status", "errors": [{"reason",
"location"...}]}}` (the older APIs fill `errors`, the newer ones only `status`). The mapping is the
issue's: 429 and 403 rate-limit reasons are RateLimited (with the wait Google asked for), 5xx are
Transient, 401 is Auth (the client refreshes once before it gets here), other 403 Forbidden, 404
NotFound, 400 on a request that carried a page token InvalidPageToken, any other 400 a clear
Internal error naming the request (our request was wrong: retrying cannot help). Meanings that
depend on the call (Gmail history 404, Calendar 410: the cursor expired) are the caller's, passed
as `overrides`.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from sweepledger.collectors.errors import (
    Auth,
    CollectorError,
    Forbidden,
    Internal,
    InvalidPageToken,
    NotFound,
    RateLimited,
    Transient,
)

RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
RETRY_AFTER_IN_BODY = re.compile(r"Retry after (\S+?)\.?(?:\s|$)", re.IGNORECASE)
MAX_HINT_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """The parts of an error body that decide its meaning."""

    message: str
    reasons: tuple[str, ...]
    status: str


def parse_error_body(body: bytes) -> ErrorBody:
    """Google's error envelope, tolerant of anything else (an HTML 502 from a proxy)."""
    try:
        decoded: Any = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        return ErrorBody(body[:200].decode("utf-8", "replace").strip(), (), "")
    error = decoded.get("error") if isinstance(decoded, dict) else None
    if isinstance(error, str):  # OAuth style: {"error": "invalid_grant", ...}
        return ErrorBody(str(decoded.get("error_description") or error), (error,), "")
    if not isinstance(error, dict):
        return ErrorBody("", (), "")
    reasons = tuple(
        str(item.get("reason"))
        for item in error.get("errors") or ()
        if isinstance(item, dict) and item.get("reason")
    )
    return ErrorBody(str(error.get("message") or ""), reasons, str(error.get("status") or ""))


def retry_after_seconds(
    headers: Mapping[str, str], message: str, now: float | None = None
) -> float | None:
    """The wait the service asked for: the body's "Retry after <time>" (to the millisecond),
    else the Retry-After header (seconds or an HTTP date), else None (the runner backs off)."""
    now = time.time() if now is None else now
    found = RETRY_AFTER_IN_BODY.search(message)
    if found:
        hint = _hint(found.group(1), now)
        if hint is not None:
            return hint
    header = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    return None if header is None else _hint(header.strip(), now)


def _hint(text: str, now: float) -> float | None:
    """Seconds until `text` (RFC 3339, HTTP date, `12`, `1.5s`), clamped to [0, an hour]."""
    seconds: float | None = None
    number = re.fullmatch(r"(\d+(?:\.\d+)?)\s*s?", text)
    if number:
        seconds = float(number.group(1))
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            seconds = moment.timestamp() - now
        except ValueError:
            try:
                seconds = email.utils.parsedate_to_datetime(text).timestamp() - now
            except (TypeError, ValueError):
                return None
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_HINT_SECONDS)


def error_for(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    request: str,
    had_page_token: bool = False,
    overrides: Mapping[int, type[CollectorError]] | None = None,
) -> CollectorError:
    """The collector error a non-2xx response stands for; `request` names the call (method and
    path, never a header) so the ledger says which call failed."""
    parsed = parse_error_body(body)
    detail = f"{request}: HTTP {status}" + (f" {parsed.message}" if parsed.message else "")
    if overrides and status in overrides:
        return overrides[status](detail)
    rate_limited = status == 429 or (
        status == 403 and bool(RATE_LIMIT_REASONS.intersection(parsed.reasons))
    )
    if rate_limited:
        return RateLimited(detail, retry_after=retry_after_seconds(headers, parsed.message))
    if status in TRANSIENT_STATUSES:
        return Transient(detail, retry_after=retry_after_seconds(headers, parsed.message))
    if status == 401:
        return Auth(detail)
    if status == 403:
        return Forbidden(detail)
    if status == 404:
        return NotFound(detail)
    if status == 400 and had_page_token:
        return InvalidPageToken(detail)
    if status == 408:
        return Transient(detail)
    return Internal(f"{detail} (the request was refused as malformed: a bug to report)")
