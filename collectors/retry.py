"""Retries of one request: exponential backoff with full jitter, honouring Retry-After.

Every retry and every rate-limit refusal is counted, and the counts go into the PAGE event, so the
ledger says how hard each page was to get. What each failed call spent is counted too (its
`CollectorError.cost` when the source knows it, else one request), because a failed page can
already have made several calls that the service metered. Waits are interruptible: a stop
request ends them (`wait_or_stop`, which a source's own waits use too), and a fetch a stop
interrupted counts what it spent as well.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from .errors import CollectorError, Cost, RateLimited, Stopped

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one request before the attempt ends in ERR."""

    max_retries: int = 5
    base_delay: float = 0.05
    max_delay: float = 30.0
    max_retry_after: float = 60.0


@dataclass(slots=True)
class RetryTally:
    """What the failed calls cost: counted into the PAGE event (or END, if none succeeded)."""

    retries: int = 0
    rate_limited: int = 0
    requests: int = 0
    """Calls made by the failed fetches (the successful one counts its own in its Page)."""
    quota_units: int = 0
    waits: list[float] = field(default_factory=list)

    def add_failure(self, error: CollectorError) -> None:
        """Count what one failed fetch spent."""
        if error.cost is None:
            self.requests += 1
            self.rate_limited += isinstance(error, RateLimited)
        else:
            self.add_cost(error.cost)

    def add_cost(self, cost: Cost) -> None:
        """Count what a fetch that did not deliver its page spent."""
        self.requests += cost.requests
        self.rate_limited += cost.rate_limited
        self.quota_units += cost.quota_units

    def absorb(self, other: RetryTally) -> None:
        """Take over another tally's counts (a restarted pass keeps what its failures cost)."""
        self.retries += other.retries
        self.rate_limited += other.rate_limited
        self.requests += other.requests
        self.quota_units += other.quota_units
        self.waits += other.waits


def call_with_retries(
    call: Callable[[], T],
    policy: RetryPolicy,
    tally: RetryTally,
    *,
    stop: threading.Event,
    rng: random.Random,
) -> T:
    """`call()`, retried on retryable errors; the last error propagates after the retries."""
    attempt = 0
    while True:
        try:
            return call()
        except Stopped as stopped:
            if stopped.cost is not None:
                tally.add_cost(stopped.cost)
            raise
        except CollectorError as error:
            tally.add_failure(error)
            if not error.retryable or attempt >= policy.max_retries:
                raise
            delay = backoff_delay(policy, attempt, error.retry_after, rng)
            attempt += 1
            tally.retries += 1
            tally.waits.append(delay)
            wait_or_stop(stop, delay)


def wait_or_stop(stop: threading.Event, seconds: float) -> None:
    """Wait `seconds`, or raise Stopped as soon as `stop` is set: a signal must not wait out a
    backoff or a pacing delay (they can last a minute) before the run hears it."""
    if stop.wait(max(seconds, 0.0)):
        raise Stopped


def backoff_delay(
    policy: RetryPolicy, attempt: int, retry_after: float | None, rng: random.Random
) -> float:
    """Full jitter (uniform in [0, base * 2^attempt], capped), or the service's hint if it gave
    one (capped too): a hint is a floor the service asked for, so no jitter goes below it."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), policy.max_retry_after)
    return rng.uniform(0.0, min(policy.max_delay, policy.base_delay * 2**attempt))
