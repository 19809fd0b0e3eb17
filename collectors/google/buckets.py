"""The two pieces of quota pacing, free of threads and clocks so tests drive them with a fake one.

`TokenBucket` spaces sends: it holds `burst` seconds of the rate, and a reservation returns the
instant its units may go (reservations are first come, first served, so a 250-unit Gmail batch is
not starved by a stream of 1-unit calls). It keeps one number, the instant the bucket would be
full again (the "theoretical arrival time" of the generic cell rate algorithm), so a shared
backend can hold a bucket in one row and update it atomically.

`AdaptiveRate` is the rate a bucket refills at, learned AIMD-style because the limiter is not
told the quota: a refusal cuts it (multiplicatively, at most once per round of news: a refusal
of a request reserved before the last cut says nothing new), and while callers queue on the
bucket and requests succeed it probes upward a few percent per second, after a hold that lets
the cut show its effect. A Google quota window forgives this: units left unused while the rate
is below the quota are banked in the window (up to its size) and spent in the next climb, so the
sawtooth costs little throughput.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

NEVER = -math.inf


@dataclass(slots=True)
class TokenBucket:
    """Spaces sends to a rate with a burst of `burst` seconds; see the module docstring."""

    burst: float
    full_at: float = NEVER
    """When the bucket would be full again if nothing more were reserved."""
    paused_until: float = NEVER
    """No send before this instant: the service asked to come back then."""

    def reserve(self, units: float, now: float, rate: float) -> float:
        """Reserve `units` at `rate`; the instant they may be sent (>= now).

        A reservation larger than the bucket waits for a full bucket and leaves it in debt,
        which the next reservations repay."""
        interval = units / rate
        self.full_at = max(self.full_at, now) + interval
        return max(now, self.full_at - max(self.burst, interval), self.paused_until)

    def pause(self, until: float) -> None:
        """Nothing is sent before `until`, and the bucket is empty then: after a refusal the
        service's window is empty too, so what follows must be paced, not a burst."""
        self.paused_until = max(self.paused_until, until)
        self.full_at = max(self.full_at, until + self.burst)

    def level(self, now: float, rate: float) -> float:
        """Units the bucket holds at `now` (negative while reservations are queued)."""
        return rate * (self.burst - max(0.0, self.full_at - now))


@dataclass(slots=True)
class AdaptiveRate:
    """A rate in units per second, learned from refusals and successes; see the module doc."""

    rate: float
    ceiling: float | None = None
    """Never probe above this (the operator's hint of the quota), if set."""
    floor: float = 0.5
    decrease: float = 0.7
    """A refusal multiplies the rate by this."""
    probe: float = 0.05
    """Relative growth per second while saturated and succeeding."""
    hold: float = 1.0
    """Seconds after a cut before probing resumes."""
    memory: float = 1.0
    """A bucket counts as saturated this long after a caller last had to queue on it."""
    last_cut: float = NEVER
    saturated_at: float = NEVER
    probed_at: float = NEVER
    cuts: int = 0

    def saturated(self, now: float) -> None:
        """A caller had to wait for this rate: demand is at least the rate."""
        self.saturated_at = now

    def succeeded(self, now: float) -> None:
        """A request paced by this rate was admitted: probe upward if demand is pressing."""
        since = 0.0 if self.probed_at == NEVER else now - self.probed_at
        self.probed_at = now
        if now - self.last_cut < self.hold or now - self.saturated_at > self.memory:
            return
        self.rate *= math.exp(self.probe * min(since, self.memory))
        if self.ceiling is not None:
            self.rate = min(self.rate, self.ceiling)

    def refused(self, ticket: float, now: float, recent: float | None = None) -> bool:
        """A request reserved at `ticket` was refused for rate. Cut the rate (to `decrease` times
        the lower of the rate and `recent`, the rate actually sent lately, when known) unless the
        request was reserved before the last cut; True if it cut."""
        if ticket < self.last_cut:
            return False
        base = self.rate if recent is None else min(self.rate, recent)
        self.rate = max(self.floor, base * self.decrease)
        self.last_cut = now
        self.cuts += 1
        return True
