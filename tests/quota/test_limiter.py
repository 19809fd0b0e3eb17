"""The in-process limiter with a fake clock: pacing, pauses, hints, and the control loop against
the emulator's own quota windows (deterministic, a minute of simulated time in milliseconds)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from functools import partial

import pytest

from sweepledger.collectors.emulator.quota import Window
from sweepledger.collectors.errors import Stopped
from sweepledger.collectors.google.pacing import (
    DEFAULT_PROJECT_RATE,
    DEFAULT_USER_RATE,
    MAX_PAUSE,
    AdaptiveLimiter,
    NoPacing,
    Scope,
    scope_of,
)
from sweepledger.collectors.google.responses import ErrorBody
from sweepledger.collectors.retry import wait_or_stop


@dataclass
class FakeClock:
    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _limiter(clock: FakeClock, **hints: float) -> AdaptiveLimiter:
    return AdaptiveLimiter(clock=clock, sleep=clock.sleep, **hints)  # type: ignore[arg-type]


def test_a_subject_is_paced_at_the_per_user_rate() -> None:
    """Without a hint a mailbox gets Google's default 250 units/s: after its half-second burst,
    one 5-unit get every 20 ms."""
    clock = FakeClock()
    limiter = _limiter(clock)
    for _ in range(25 + 50):
        limiter.acquire("a@x.com", 5)
    assert clock.now == pytest.approx(50 * 5 / DEFAULT_USER_RATE)


def test_the_project_bucket_paces_all_subjects_together() -> None:
    """Two subjects under a 100 units/s project hint share it."""
    clock = FakeClock()
    limiter = _limiter(clock, project_hint=100.0)
    for _ in range(20):
        limiter.acquire("a@x.com", 5)
        limiter.acquire("b@x.com", 5)
    assert clock.now == pytest.approx((40 * 5 - 50) / 100.0)


def test_a_user_refusal_holds_that_mailbox_only() -> None:
    """The hint holds the refused subject's bucket; another subject goes at once."""
    clock = FakeClock(now=10.0)
    limiter = _limiter(clock)
    ticket = limiter.acquire("a@x.com", 5)
    limiter.penalise("a@x.com", Scope.USER, ticket, 0.3)
    limiter.acquire("b@x.com", 5)
    assert clock.now == pytest.approx(10.0)
    limiter.acquire("a@x.com", 5)
    assert clock.now == pytest.approx(10.3 + 5 / DEFAULT_USER_RATE)


def test_a_project_refusal_holds_every_mailbox_and_a_pause_is_capped() -> None:
    """A project refusal holds everyone; a hint beyond MAX_PAUSE holds only MAX_PAUSE (the
    runner, whose waits a signal cuts short, waits the rest)."""
    clock = FakeClock(now=10.0)
    limiter = _limiter(clock)
    ticket = limiter.acquire("a@x.com", 5)
    limiter.penalise("a@x.com", Scope.PROJECT, ticket, 3600.0)
    assert limiter.acquire("b@x.com", 5) == 10.0
    assert clock.now == pytest.approx(10.0 + MAX_PAUSE, abs=0.01)


def test_hints_seed_and_cap_the_rates_and_size_the_batches() -> None:
    clock = FakeClock()
    limiter = _limiter(clock, user_hint=40.0, project_hint=1000.0)
    assert (limiter.user.rate, limiter.user.ceiling) == (40.0, 40.0)
    assert (limiter.project.rate, limiter.project.ceiling) == (1000.0, 1000.0)
    assert limiter.batch_units("a@x.com") == 20
    assert _limiter(clock).project.rate == DEFAULT_PROJECT_RATE


def test_a_caller_held_by_a_pause_takes_a_new_turn_behind_it_at_the_rate_in_force() -> None:
    """A refusal seen while a caller waits for its turn pauses the project; the caller goes
    after the pause, paced at the rate then (cut by the refusals), not at the pause's end with
    every other caller held, and its ticket is when it took the new turn."""
    clock = FakeClock(now=10.0)
    limiter = _limiter(clock, project_hint=100.0)
    for _ in range(6):
        limiter.acquire("a@x.com", 10)
    refused_at: list[float] = []

    def refusal_meanwhile(seconds: float) -> None:
        if not refused_at:
            refused_at.append(clock.now)
            for _ in range(2):
                limiter.penalise("b@x.com", Scope.PROJECT, 10.0, 1.0)
        clock.sleep(seconds)

    limiter.sleep = refusal_meanwhile
    reserved = clock.now
    ticket = limiter.acquire("a@x.com", 10)
    assert limiter.project.rate < 100.0
    assert ticket > reserved
    assert clock.now == pytest.approx(refused_at[0] + 1.0 + 10 / limiter.project.rate)


def test_batches_stay_small_while_refusals_are_recent() -> None:
    """A batch sent into an exhausted window is refused part by part: for two seconds after
    a refusal a batch carries at most five messages' units, then the rate sizes it again."""
    clock = FakeClock(now=10.0)
    limiter = _limiter(clock, user_hint=1000.0, project_hint=2000.0)
    assert limiter.batch_units("a@x.com") == 250
    limiter.penalise("a@x.com", Scope.USER, clock.now, 0.0)
    assert limiter.batch_units("a@x.com") == 25
    clock.sleep(1.9)
    assert limiter.batch_units("b@x.com") == 25
    clock.sleep(0.2)
    assert limiter.batch_units("a@x.com") == 250


def test_the_plain_policy_never_waits() -> None:
    clock = FakeClock()
    plain = NoPacing(clock)
    for _ in range(1000):
        plain.acquire("a@x.com", 5)
    plain.penalise("a@x.com", Scope.PROJECT, 0.0, 10.0)
    assert clock.now == 0.0 and not plain.paces


def test_refusal_reasons_name_their_limit() -> None:
    """`rateLimitExceeded` is the project's limit unless the message says it is one user's
    (Gmail's 429 for too many concurrent requests carries that reason too)."""
    project = "Quota exceeded for quota metric 'Queries' for consumer 'project_number:1'"
    assert scope_of(ErrorBody(project, ("rateLimitExceeded",), "")) is Scope.PROJECT
    concurrent = "Too many concurrent requests for user. Retry after 2026-01-01T00:00:00Z"
    assert scope_of(ErrorBody(concurrent, ("rateLimitExceeded",), "")) is Scope.USER
    assert scope_of(ErrorBody("", ("userRateLimitExceeded",), "")) is Scope.USER
    assert scope_of(ErrorBody("", (), "")) is Scope.USER


def test_a_rate_refused_down_to_its_floor_climbs_back_once_calls_are_admitted() -> None:
    """Refused call after call, a mailbox's rate falls to a few units a second, where each
    5-unit get waits seconds for its turn. Once the service admits again, every such wait is
    demand and all of it counts as time to grow: the rate is back to 90 % of Google's default
    within 100 s and 1 000 calls (it used to stay where the refusals left it)."""
    clock = FakeClock()
    limiter = _limiter(clock)
    for _ in range(40):
        ticket = limiter.acquire("a@x.com", 5)
        limiter.penalise("a@x.com", Scope.USER, ticket, 0.05)
    assert limiter.user.rate < 5.0
    start, calls = clock.now, 0
    while limiter.user.rate < 0.9 * DEFAULT_USER_RATE and calls < 1000:
        ticket = limiter.acquire("a@x.com", 5)
        limiter.succeeded("a@x.com", 5, ticket)
        calls += 1
    assert limiter.user.rate >= 0.9 * DEFAULT_USER_RATE
    assert clock.now - start < 100.0


def test_a_stop_request_ends_a_wait_for_a_turn_at_once() -> None:
    """With the source's stop-aware sleep, a caller queued for a minute by a low quota raises
    Stopped as soon as the stop is requested, instead of sleeping its turn out."""
    stop = threading.Event()
    limiter = AdaptiveLimiter(user_hint=0.1, sleep=partial(wait_or_stop, stop))
    limiter.acquire("a@x.com", 5)
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Stopped):
        limiter.acquire("a@x.com", 5)
    assert time.monotonic() - started < 1.0


@dataclass
class Service:
    """The emulator's two windows, answered without a network (no latency, no jitter)."""

    clock: FakeClock
    user_rate: float
    project_rate: float
    users: dict[str, Window] = field(default_factory=dict)
    project: Window | None = None
    log: list[tuple[float, bool]] = field(default_factory=list)

    def call(self, limiter: AdaptiveLimiter, user: str, units: int) -> None:
        ticket = limiter.acquire(user, units)
        now = self.clock.now
        mine = self.users.setdefault(user, Window(self.user_rate, self.user_rate, now))
        if self.project is None:
            self.project = Window(self.project_rate, self.project_rate, now)
        for scope, window in ((Scope.USER, mine), (Scope.PROJECT, self.project)):
            window.rate = self.user_rate if scope is Scope.USER else self.project_rate
            window.refill(now)
            window.tokens = min(window.tokens, window.capacity)
            wait = window.shortfall(units)
            if wait > 0:
                self.log.append((now, False))
                limiter.penalise(user, scope, ticket, wait)
                return
        mine.tokens -= units
        self.project.tokens -= units
        self.log.append((now, True))
        limiter.succeeded(user, units, ticket)

    def between(self, start: float, end: float) -> tuple[int, int]:
        """(admitted calls, refused calls) in [start, end)."""
        calls = [ok for t, ok in self.log if start <= t < end]
        return sum(calls), len(calls) - sum(calls)


def _sweep(service: Service, limiter: AdaptiveLimiter, until: float) -> None:
    users = [f"user{i:02d}@x.com" for i in range(20)]
    i = 0
    while service.clock.now < until:
        service.call(limiter, users[i % len(users)], 5)
        i += 1


def test_the_limiter_finds_an_unknown_project_quota_and_runs_close_to_it() -> None:
    """Told nothing (it starts at 20 000 units/s), the limiter meets a 1 000 units/s project
    quota: after the first second it runs at over 90 % of the quota with under 1 % of its calls
    refused."""
    clock = FakeClock()
    service = Service(clock, user_rate=300.0, project_rate=1000.0)
    limiter = _limiter(clock)
    _sweep(service, limiter, 60.0)
    admitted, refused = service.between(1.0, 60.0)
    assert admitted * 5 / 59.0 >= 0.9 * 1000.0
    assert refused / (admitted + refused) < 0.01


def test_the_limiter_adapts_within_seconds_when_the_quota_drops() -> None:
    """Lowered from 1 000 to 300 units/s at t=30, the refusals stop within two seconds; over
    the next 30 s under 1 % of calls are refused and the sweep runs at 90 % of the new quota."""
    clock = FakeClock()
    service = Service(clock, user_rate=300.0, project_rate=1000.0)
    limiter = _limiter(clock)
    _sweep(service, limiter, 30.0)
    service.project_rate = 300.0
    _sweep(service, limiter, 60.0)
    refusals = [t for t, ok in service.log if t >= 30.0 and not ok]
    first_burst = [t for t in refusals if t < 30.0 + 5.0]
    assert first_burst and max(first_burst) < 32.0
    admitted, refused = service.between(30.0, 60.0)
    assert refused / (admitted + refused) < 0.01
    assert service.between(32.0, 60.0)[0] * 5 / 28.0 >= 0.9 * 300.0
