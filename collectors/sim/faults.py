"""Deterministic fault injection for the `sim://` source.

Whether a request fails is a pure function of (seed, the request, the pair's attempt number, how
many times this process has made that same request before): a retry of the same request is a new
draw and can succeed, and two processes that make the same sequence of requests see the same
faults. The attempt number comes from the ledger, so a rerun of the same command (the next
attempt) meets new draws, as it would on a real service, instead of repeating the faults that
stopped the last run. The per-process occurrence
counter is the only mutable state, behind a lock, because the runner fetches from several threads.
"""

from __future__ import annotations

import threading

import orjson

from sweepledger.collectors.errors import (
    CursorExpired,
    Forbidden,
    InvalidPageToken,
    RateLimited,
    Transient,
)
from sweepledger.collectors.protocol import FetchRequest
from sweepledger.collectors.sim.common import digest, unit_interval
from sweepledger.collectors.sim.config import SimConfig


def request_identity(request: FetchRequest) -> str:
    """A digest of everything in the request: two requests are the same iff their digests are."""
    encoded = orjson.dumps(
        [
            request.service,
            request.subject.casefold(),
            request.unit,
            sorted(request.cursor.items()),
            request.page_token,
            sorted(request.carry.items()),
            list(request.retry_ids),
            request.since,
            request.attempt,
        ]
    )
    return digest(encoded.decode(), size=32)


class FaultPlan:
    """Decides, request by request, which configured fault (if any) the source raises."""

    def __init__(self, config: SimConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._made: dict[str, int] = {}

    def occurrence(self, identity: str) -> int:
        """How many times this process made the request before (0 the first time), and count it."""
        with self._lock:
            made = self._made.get(identity, 0)
            self._made[identity] = made + 1
            return made

    def raise_fault(self, request: FetchRequest, identity: str, occurrence: int) -> None:
        """Raise the fault this occurrence of the request draws, in the order a service would."""
        config = self._config
        subject = request.subject.casefold()
        if subject in config.suspended:
            raise Forbidden(f"{subject} is suspended (403 on every {request.service} request)")
        if self._draw("rate_limit", identity, occurrence) < config.rate_limit:
            retry_after = 0.01 + 0.04 * self._draw("retry_after", identity, occurrence)
            raise RateLimited(
                f"{request.service} rate limit for {subject} (429)",
                retry_after=round(retry_after, 3),
            )
        if self._draw("errors", identity, occurrence) < config.errors:
            raise Transient(f"{request.service} backend error for {subject} (503)")
        if request.retry_ids:
            return
        if (
            request.page_token is not None
            and self._draw("expire_tokens", identity, occurrence) < config.expire_tokens
        ):
            raise InvalidPageToken(f"{request.service} page token for {subject} has expired")
        if (
            request.cursor
            and request.page_token is None
            and self._draw("expire_cursors", identity, occurrence) < config.expire_cursors
        ):
            raise CursorExpired(
                f"{request.service} cursor of {subject} has expired (Gmail 404 / Calendar 410)"
            )

    def item_fails(self, identity: str, occurrence: int, item_id: str) -> bool:
        """Whether this item of this occurrence of the request cannot be fetched."""
        if not self._config.item_errors:
            return False
        return unit_interval(self._config.seed, "item", identity, occurrence, item_id) < (
            self._config.item_errors
        )

    def _draw(self, kind: str, identity: str, occurrence: int) -> float:
        return unit_interval(self._config.seed, kind, identity, occurrence)
