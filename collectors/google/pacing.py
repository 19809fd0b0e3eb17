"""Quota pacing: run a sweep at Google's rate limits, not into them (issue 7).

Google meters each call in quota units against two limits at once: one per user, one per Cloud
project. Ignoring them spends a sweep in 429 storms and backoff; being timid leaves quota unused.
So every API call first takes its units from a token bucket of its subject and from the project's
bucket (`QuotaLimiter.acquire`), and what the service answers feeds back: a refusal names the
limit it hit (`userRateLimitExceeded` or "too many requests for user": the user's, otherwise
`rateLimitExceeded`: the project's) and when
to come back, and cuts that limit's rate (`penalise`); admitted calls let the rate probe upward
while callers queue (`succeeded`).

The limiter is not told the quota. It starts from Google's published Gmail defaults (15 000 units
a minute per user, 1 200 000 per project: 250 and 20 000 a second) and learns from there; a
`quota_user` / `quota_project` hint in the `google://` URL replaces a default and also caps the
probing (the operator knows the project's quota: no refusal is needed to find it). The per-user
rate is one learned figure shared by every subject's bucket: Google's per-user limit is one
setting of the project, so what one mailbox teaches holds for all.

Quotas are per project, so two sweeps of different ledgers under one project share them. The
state lives in this process for now, behind `QuotaLimiter`, the interface a shared backend (the
future PostgreSQL store: a row per bucket holding its `full_at`, a row per learned rate, updated
in one statement each) implements to pace several processes as one. `NoPacing` is the plain
policy the benchmark compares with: no buckets, refusals left to the runner's exponential backoff.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from sweepledger.collectors.google.buckets import AdaptiveRate, TokenBucket
from sweepledger.collectors.google.responses import ErrorBody

DEFAULT_USER_RATE = 15_000 / 60
DEFAULT_PROJECT_RATE = 1_200_000 / 60
BURST = 0.5
"""Seconds of its rate a bucket lets out at once: under the one-second window Google's
per-second rates imply, with room for network jitter."""
MAX_PAUSE = 5.0
"""The longest a refusal holds a bucket (and every caller queued on it). A caller asked to wait
longer is not retried by the client but handed to the runner, which backs that pair off alone
(a retry the ledger counts) while the other pairs go on. Every wait, here or in the runner,
ends at once on a stop request (`sleep` is the source's `pause`)."""
DEFAULT_PAUSE = 0.25
"""How long a refusal without a "Retry after" hint holds its bucket."""
RECENT = 3.0
"""Seconds of sends a project cut looks back on (when the bucket was not what held them)."""
MIN_RECENT = 0.5
MAX_BATCH_UNITS = 250
UNSETTLED_BATCH_UNITS = 25
"""The largest batch while refusals are recent (within `UNSETTLED` seconds of the last): a
batch sent into an exhausted window is refused part by part, each part a refused call, and a
batch of five messages brings the news of a lowered quota as fast as one of fifty."""
UNSETTLED = 2.0


class Scope(StrEnum):
    """Which limit a refusal hit."""

    USER = "user"
    PROJECT = "project"


class QuotaLimiter(Protocol):
    """Paces API calls to the quota; shared by every worker thread of a run."""

    paces: ClassVar[bool]
    """False for a policy that does not pace: callers then leave refusals to the runner."""

    def acquire(self, user: str, units: int) -> float:
        """Block until `units` may be spent as `user`; returns a ticket (when the units were
        reserved, so under which rates) to hand back to `succeeded` or `penalise`."""
        ...

    def succeeded(self, user: str, units: int, ticket: float) -> None:
        """The service admitted `units` spent as `user`."""
        ...

    def penalise(self, user: str, scope: Scope, ticket: float, retry_after: float | None) -> None:
        """The service refused a call as `user` for `scope`'s limit, asking to come back after
        `retry_after` seconds (None: no hint)."""
        ...

    def batch_units(self, user: str) -> int:
        """The most units worth sending in one exchange now (a batch larger than the bucket
        only waits longer and risks more refusals at once)."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """The learned rates and counts, for benchmarks and tests."""
        ...


class NoPacing:
    """The plain policy: no pacing; rate-limit refusals go back to the runner's backoff."""

    paces: ClassVar[bool] = False

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock

    def acquire(self, user: str, units: int) -> float:
        return self.clock()

    def succeeded(self, user: str, units: int, ticket: float) -> None:
        return None

    def penalise(self, user: str, scope: Scope, ticket: float, retry_after: float | None) -> None:
        return None

    def batch_units(self, user: str) -> int:
        return MAX_BATCH_UNITS

    def snapshot(self) -> dict[str, Any]:
        return {"policy": "none"}


class AdaptiveLimiter:
    """In-process buckets (one per subject, one for the project) with learned rates."""

    paces: ClassVar[bool] = True

    def __init__(
        self,
        *,
        user_hint: float | None = None,
        project_hint: float | None = None,
        burst: float = BURST,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`sleep` is how a caller waits for its turn: the source's `pause`, which raises
        `Stopped` once a stop is requested (a fake clock's, in tests)."""
        self.user = AdaptiveRate(user_hint or DEFAULT_USER_RATE, ceiling=user_hint)
        self.project = AdaptiveRate(project_hint or DEFAULT_PROJECT_RATE, ceiling=project_hint)
        self.burst = burst
        self.clock, self.sleep = clock, sleep
        self._users: dict[str, TokenBucket] = {}
        self._project = TokenBucket(burst)
        self._sent: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()
        self.refusals = {Scope.USER: 0, Scope.PROJECT: 0}
        self.started = clock()

    def _bucket(self, user: str) -> TokenBucket:
        key = user.casefold()
        bucket = self._users.get(key)
        if bucket is None:
            bucket = self._users[key] = TokenBucket(self.burst)
        return bucket

    def acquire(self, user: str, units: int) -> float:
        with self._lock:
            now = self.clock()
            bucket = self._bucket(user)
            self._sent.append((now, units))
            while self._sent[0][0] < now - RECENT:
                self._sent.popleft()
            send_at = self._reserve(bucket, units, now)
        while True:
            wait = send_at - self.clock()
            if wait > 0:
                self.sleep(wait)
            with self._lock:
                paused = max(bucket.paused_until, self._project.paused_until)
                if paused <= send_at:
                    return now
                # a refusal seen while this caller slept: its turn was lost to the pause, so it
                # takes a new one behind it at the rates now in force (the caller's ticket with
                # it); released at the pause's end with every other caller held, it would go in
                # a burst into the window the refusal found empty
                now = self.clock()
                send_at = self._reserve(bucket, units, now)

    def _reserve(self, bucket: TokenBucket, units: int, now: float) -> float:
        """The instant `units` may go as `bucket`'s user and for the project; under the lock."""
        user_at = bucket.reserve(units, now, self.user.rate)
        project_at = self._project.reserve(units, now, self.project.rate)
        if user_at > now:
            self.user.saturated(user_at)
        if project_at > now:
            self.project.saturated(project_at)
        # after a pause the service's window is empty: the first call waits its own share of
        # the refill too, or it would find the window short again
        return max(
            user_at,
            project_at,
            bucket.paused_until + units / self.user.rate,
            self._project.paused_until + units / self.project.rate,
        )

    def succeeded(self, user: str, units: int, ticket: float) -> None:
        with self._lock:
            now = self.clock()
            self.user.succeeded(now, units)
            self.project.succeeded(now, units)

    def penalise(self, user: str, scope: Scope, ticket: float, retry_after: float | None) -> None:
        with self._lock:
            now = self.clock()
            pause = DEFAULT_PAUSE if retry_after is None else min(max(retry_after, 0.0), MAX_PAUSE)
            self.refusals[scope] += 1
            if scope is Scope.USER:
                bucket = self._bucket(user)
                queued = bucket.queued_until(now)
                bucket.pause(now + pause)
                if self.user.refused(ticket, now, queued=queued):
                    # every mailbox ran at the rate just proved too high: none may burst now
                    for each in self._users.values():
                        each.drain(now)
            else:
                queued = self._project.queued_until(now)
                self._project.pause(now + pause)
                self.project.refused(ticket, now, self._recent_rate(now), queued)

    def _recent_rate(self, now: float) -> float | None:
        """Units per second reserved over the last RECENT seconds (None before there were
        RECENT seconds to look at). When the project bucket held nobody back, this, not its
        rate, is what a refusal proves too high (the default 20 000 a second is far above what
        a sweep sends: cutting it would change nothing for many rounds)."""
        while self._sent and self._sent[0][0] < now - RECENT:
            self._sent.popleft()
        span = min(RECENT, now - self.started)
        if span < MIN_RECENT:
            return None
        return sum(units for _, units in self._sent) / span

    def batch_units(self, user: str) -> int:
        with self._lock:
            rate = min(self.user.rate, self.project.rate)
            refused = max(self.user.last_refusal, self.project.last_refusal)
            unsettled = self.clock() - refused < UNSETTLED
        largest = UNSETTLED_BATCH_UNITS if unsettled else MAX_BATCH_UNITS
        return max(1, min(largest, int(rate * self.burst)))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "policy": "adaptive",
                "user_rate": round(self.user.rate, 1),
                "project_rate": round(self.project.rate, 1),
                "user_cuts": self.user.cuts,
                "project_cuts": self.project.cuts,
                "refusals": {str(k): v for k, v in self.refusals.items()},
            }


def scope_of(body: ErrorBody) -> Scope:
    """The limit a refusal names: `rateLimitExceeded` is the project's, unless its message says
    it is about one user (Gmail's 429 "Too many concurrent requests for user" carries that
    reason too: read as the project's, one mailbox's refusals would cut the rate every mailbox
    shares); the user's (`userRateLimitExceeded`, or a bare 429) otherwise, the narrower
    guess."""
    if "rateLimitExceeded" in body.reasons and "userRateLimitExceeded" not in body.reasons:
        return Scope.USER if "for user" in body.message.casefold() else Scope.PROJECT
    return Scope.USER
