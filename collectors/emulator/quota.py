"""The emulator's quota model (issue 7): quota units per call, per-user and per-project windows.

Google meters Gmail in units per method (getProfile 1, history.list 2, messages.list 5,
messages.get 5) against two limits at once, one per user and one per project; the other APIs
count requests against limits of their own. The emulator charges every API call one unit except
Gmail's methods, against ONE per-user and ONE per-project window shared by all APIs, so the
physical limit of a sweep is exactly max(total units / project rate, largest user's units /
per-user rate). The rates come from the workspace URL (`quota_user`, `quota_project`, in units
per second; absent: no limit) and change at runtime through `POST /_emulator/quota`.

A window is a bucket holding one second's worth of units (`WINDOW`), refilled continuously at
the rate: over any span of T seconds at most rate x (T + WINDOW) units pass, and a sender that
keeps to the rate is never refused. That is the "window" Google's per-minute quotas describe,
scaled to seconds so tests run in seconds. A call is admitted when both windows hold its units
(a call larger than a window waits for a full one), and only then charged. A refused call is
not charged; a call admitted and then answered with a rate-limit fault of the workspace's fault
plan is refunded, so `units` is what the emulator let through.

Refusals answer as Google's do, each with a "Retry after <instant>" hint in the message: the
instant the window will hold the call's units (exact, rounded up to the millisecond):

- per-user window: 403 `userRateLimitExceeded` (domain `usageLimits`);
- per-project window: 429 `rateLimitExceeded` (domain `usageLimits`, status RESOURCE_EXHAUSTED).

The user is the token's subject (the admin for the Directory); the project is the service
account's client id: two runs with the same key share the project's window, as they would at
Google.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sweepledger.collectors.emulator.dispatch import ApiError, Call
from sweepledger.collectors.sim.common import rfc3339

WINDOW = 1.0
"""Seconds of units a window holds when full: the burst a client may send at once."""
GMAIL_UNITS = {
    "gmail.users.getProfile": 1,
    "gmail.users.history.list": 2,
    "gmail.users.messages.list": 5,
    "gmail.users.messages.get": 5,
}
"""Gmail's published quota units per method; every other metered call costs one unit."""
UNMETERED = frozenset({"oauth2.token", "gmail.batch"})
"""The token endpoint is not an API call, and a batch is charged by its parts, one by one."""
SECOND_US = 1_000_000


def units_of(route: str) -> int:
    """Quota units one call of the method `route` costs (0: not metered)."""
    if route in UNMETERED:
        return 0
    return GMAIL_UNITS.get(route, 1)


@dataclass(slots=True)
class Window:
    """One limit's bucket: `tokens` units available at `updated` (seconds, the caller's clock)."""

    rate: float
    tokens: float
    updated: float

    @property
    def capacity(self) -> float:
        return self.rate * WINDOW

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def shortfall(self, units: int) -> float:
        """Seconds until the window holds `units` (or is full, for a call larger than it)."""
        needed = min(float(units), self.capacity)
        return max(0.0, (needed - self.tokens) / self.rate)


class QuotaModel:
    """The Admission policy of the module docstring; thread-safe (one lock)."""

    def __init__(self, user_rate: float | None = None, project_rate: float | None = None) -> None:
        self._lock = threading.Lock()
        self.user_rate, self.project_rate = user_rate, project_rate
        self._users: dict[tuple[str, str], Window] = {}
        self._projects: dict[str, Window] = {}
        self.units = 0
        self.admitted = 0
        self.refused: Counter[str] = Counter()
        self.refused_routes: Counter[str] = Counter()

    def configure(self, user_rate: float | None, project_rate: float | None) -> None:
        """New rates from now on. A window keeps the units it holds, cut to its new size, so
        lowering a quota takes effect at once (as a quota change does at Google)."""
        with self._lock:
            self.user_rate, self.project_rate = user_rate, project_rate
            _retune(self._users.values(), user_rate)
            _retune(self._projects.values(), project_rate)
            if user_rate is None:
                self._users.clear()
            if project_rate is None:
                self._projects.clear()

    def admit(self, call: Call, now: float) -> ApiError | None:
        units = units_of(call.route.name)
        if units == 0 or call.grant is None:
            return None
        user, project = call.grant.subject, call.grant.client_id
        with self._lock:
            user_window = self._window(self._users, (project, user), self.user_rate, now)
            project_window = self._window(self._projects, project, self.project_rate, now)
            for scope, window in (("user", user_window), ("project", project_window)):
                wait = window.shortfall(units) if window is not None else 0.0
                if wait > 0:
                    self.refused[scope] += 1
                    self.refused_routes[call.route.name] += 1
                    return _refusal(scope, call, project, now + wait)
            for window in (user_window, project_window):
                if window is not None:
                    window.tokens -= units
            self.units += units
            self.admitted += 1
        return None

    def refund(self, call: Call, now: float) -> None:
        """Give back what an admitted call was charged: it was answered with a rate-limit fault."""
        units = units_of(call.route.name)
        if units == 0 or call.grant is None:
            return
        user, project = call.grant.subject, call.grant.client_id
        with self._lock:
            for window in (self._users.get((project, user)), self._projects.get(project)):
                if window is not None:
                    window.refill(now)
                    window.tokens = min(window.capacity, window.tokens + units)
            self.units -= units
            self.admitted -= 1

    def snapshot(self) -> dict[str, Any]:
        """The rates and what the model counted: units charged, calls admitted and refused."""
        with self._lock:
            return {
                "quota_user": self.user_rate,
                "quota_project": self.project_rate,
                "units": self.units,
                "admitted": self.admitted,
                "refused": {"user": self.refused["user"], "project": self.refused["project"]},
                "refused_total": sum(self.refused.values()),
                "refused_routes": dict(sorted(self.refused_routes.items())),
            }

    def reset_counts(self) -> None:
        with self._lock:
            self.units = self.admitted = 0
            self.refused.clear()
            self.refused_routes.clear()

    @staticmethod
    def _window(
        windows: dict[Any, Window], key: Any, rate: float | None, now: float
    ) -> Window | None:
        if rate is None:
            return None
        window = windows.get(key)
        if window is None:
            window = windows[key] = Window(rate, rate * WINDOW, now)
        window.refill(now)
        return window


def _retune(windows: Any, rate: float | None) -> None:
    for window in windows:
        if rate is not None:
            window.rate = rate
            window.tokens = min(window.tokens, window.capacity)


def _refusal(scope: str, call: Call, project: str, until: float) -> ApiError:
    """Google's answer for an exceeded window, saying when the call would be admitted."""
    instant = rfc3339(math.ceil(until * 1000) * (SECOND_US // 1000), 3)
    if scope == "user":
        return ApiError(
            403,
            "User Rate Limit Exceeded. Rate of requests for user exceed configured project "
            f"quota. Retry after {instant}",
            "userRateLimitExceeded",
            domain="usageLimits",
        )
    service = call.route.name.split(".", 1)[0]
    return ApiError(
        429,
        f"Rate Limit Exceeded. Quota exceeded for quota metric 'Queries' and limit 'Queries "
        f"per second' of service '{service}.googleapis.com' for consumer "
        f"'project_number:{project}'. Retry after {instant}",
        "rateLimitExceeded",
        domain="usageLimits",
    )
