"""Backoff: full jitter, Retry-After honoured and capped, retries counted, stop interrupts."""

from __future__ import annotations

import random
import threading
import time

import pytest

from sweepledger.collectors.errors import Cost, Forbidden, RateLimited, Transient
from sweepledger.collectors.retry import (
    RetryPolicy,
    RetryTally,
    Stopped,
    backoff_delay,
    call_with_retries,
)


def test_retry_after_is_honoured_and_capped() -> None:
    """A service's Retry-After hint is the wait (no jitter below it), capped at max_retry_after."""
    policy = RetryPolicy(max_retry_after=2.0)
    rng = random.Random(1)
    assert backoff_delay(policy, 0, 0.75, rng) == 0.75
    assert backoff_delay(policy, 3, 120.0, rng) == 2.0


def test_full_jitter_stays_inside_the_exponential_envelope() -> None:
    """Without a hint the wait is uniform in [0, base * 2^attempt], capped at max_delay."""
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0)
    rng = random.Random(7)
    for attempt in range(8):
        waits = [backoff_delay(policy, attempt, None, rng) for _ in range(200)]
        bound = min(1.0, 0.1 * 2**attempt)
        assert all(0 <= w <= bound for w in waits)
        assert max(waits) > bound * 0.8


def test_retries_are_counted_and_the_last_error_propagates() -> None:
    """Rate limits and transient errors are retried max_retries times, each counted; then the
    error propagates."""
    calls = []

    def flaky() -> str:
        calls.append(1)
        raise RateLimited("slow down", retry_after=0.001) if len(calls) % 2 else Transient("503")

    tally = RetryTally()
    with pytest.raises(Transient):
        call_with_retries(
            flaky, RetryPolicy(max_retries=3), tally, stop=threading.Event(), rng=random.Random(0)
        )
    assert len(calls) == 4
    assert tally.retries == 3
    assert tally.rate_limited == 2


def test_permanent_errors_are_not_retried() -> None:
    """Forbidden is not retryable: one call, no retry."""
    calls = []

    def forbidden() -> str:
        calls.append(1)
        raise Forbidden("suspended")

    with pytest.raises(Forbidden):
        call_with_retries(
            forbidden, RetryPolicy(), RetryTally(), stop=threading.Event(), rng=random.Random(0)
        )
    assert calls == [1]


def test_a_stop_request_ends_a_long_wait() -> None:
    """A wait for Retry-After ends as soon as a stop is requested (signals must act fast)."""
    stop = threading.Event()

    def limited() -> str:
        raise RateLimited("later", retry_after=30)

    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Stopped):
        call_with_retries(
            limited, RetryPolicy(max_retry_after=60), RetryTally(), stop=stop, rng=random.Random(0)
        )
    assert time.monotonic() - started < 2


def test_a_fetch_a_stop_interrupted_counts_what_it_spent_and_is_not_retried() -> None:
    """A source whose own wait a stop ended raises Stopped with the calls it made: they are
    counted (the ledger's counters stay exact) and nothing is retried."""
    calls = []

    def paced() -> str:
        calls.append(1)
        stopped = Stopped()
        stopped.cost = Cost(requests=3, rate_limited=1, quota_units=10)
        raise stopped

    tally = RetryTally()
    with pytest.raises(Stopped):
        call_with_retries(paced, RetryPolicy(), tally, stop=threading.Event(), rng=random.Random(0))
    assert calls == [1]
    assert (tally.requests, tally.rate_limited, tally.quota_units, tally.retries) == (3, 1, 10, 0)
