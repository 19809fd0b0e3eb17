"""The error taxonomy sources raise (DESIGN 5); the runner decides what each means for a pair."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class Cost:
    """What a failed fetch spent before it failed: the calls it made, how many of them were
    refused for rate, and the quota units the service charged."""

    requests: int = 0
    rate_limited: int = 0
    quota_units: int = 0


class CollectorError(Exception):
    """A source could not deliver a page.

    `cost`, when a source sets it, is what the failed fetch spent (a page of several calls can
    fail on its last one); without it the retry loop counts one request, refused if the error is
    RateLimited, and no units.
    """

    error_class: ClassVar[str] = "Internal"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message or self.error_class)
        self.retry_after = retry_after
        self.cost: Cost | None = None


class RateLimited(CollectorError):
    """429 or a 403 rate-limit reason; `retry_after` carries the service's hint in seconds."""

    error_class = "RateLimited"
    retryable = True


class Transient(CollectorError):
    """5xx, timeouts, connection resets: worth retrying."""

    error_class = "Transient"
    retryable = True


class CursorExpired(CollectorError):
    """The service no longer accepts the cursor: reset it and resync in full."""

    error_class = "CursorExpired"


class InvalidPageToken(CollectorError):
    """The service rejected a page token: restart pagination from the cursor."""

    error_class = "InvalidPageToken"


class Auth(CollectorError):
    """401, or the token exchange failed."""

    error_class = "Auth"


class Forbidden(CollectorError):
    """Permanent for the pair: subject suspended or service disabled."""

    error_class = "Forbidden"


class NotFound(CollectorError):
    """Permanent for the pair: the subject or resource does not exist."""

    error_class = "NotFound"


class NoProgress(CollectorError):
    """The source returned the same page token or the same oldest item twice."""

    error_class = "NoProgress"


class ItemFailed(CollectorError):
    """Some items of a pair kept failing past the attempt limit; named by id in the detail."""

    error_class = "ItemFailed"


class Internal(CollectorError):
    """A bug in a source: never swallowed silently."""

    error_class = "Internal"


class Stopped(Exception):
    """A stop was requested (a signal) while a wait was under way: a retry's backoff, or a
    source's own pacing. Not a CollectorError: nothing failed, the attempt is interrupted.
    `cost`, when a source sets it, is what the interrupted fetch spent, as a CollectorError's."""

    def __init__(self, message: str = "stopped while waiting") -> None:
        super().__init__(message)
        self.cost: Cost | None = None


class SourceConfigError(ValueError):
    """A source URL or one of its parameters is invalid; the CLI shows it as one line."""


ERROR_CLASSES: dict[str, type[CollectorError]] = {
    cls.error_class: cls
    for cls in (
        RateLimited,
        Transient,
        CursorExpired,
        InvalidPageToken,
        Auth,
        Forbidden,
        NotFound,
        NoProgress,
        ItemFailed,
        Internal,
    )
}
PERMANENT_CLASSES = frozenset({"Forbidden", "NotFound"})
