"""The two pieces of quota pacing, free of threads and clocks so tests drive them with a fake one.

`TokenBucket` spaces sends: it holds `burst` seconds of the rate, and a reservation returns the
instant its units may go (reservations are first come, first served, so a 250-unit Gmail batch is
not starved by a stream of 1-unit calls). It keeps one number, the instant the bucket would be
full again (the "theoretical arrival time" of the generic cell rate algorithm), so a shared
backend can hold a bucket in one row and update it atomically.

`AdaptiveRate` is the rate a bucket refills at, learned AIMD-style because the limiter is not
told the quota. Refusals cut it (multiplicatively; at most once per round of news, since a
refusal of a call reserved before the last cut's queue had gone out was sent at the old rate
and says nothing new), and while callers queue on the bucket and calls succeed it probes
upward, quickly back to near the rate an episode's first cut was made from, a few percent a
second beyond it. A Google quota window forgives the sawtooth: units left unused while the rate
is below the quota are banked in the window (up to its size) and spent in the next climb. The
rules that keep it from starving a sweep (evidence before a cut, the admitted rate as a bound,
random refusals learned as noise, growth that goes on at a rate so low that each call waits
seconds) are on the class.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

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
        """Reserve `units` at `rate`; the instant the rate lets them out (>= now; a pause may
        hold them longer, see `paused_until`).

        A reservation larger than the bucket waits for a full bucket and leaves it in debt,
        which the next reservations repay."""
        interval = units / rate
        self.full_at = max(self.full_at, now) + interval
        return max(now, self.full_at - max(self.burst, interval))

    def pause(self, until: float) -> None:
        """Nothing is sent before `until`, and the bucket is empty then: after a refusal the
        service's window is empty too, so what follows must be paced, not a burst."""
        self.paused_until = max(self.paused_until, until)
        self.full_at = max(self.full_at, until + self.burst)

    def drain(self, now: float) -> None:
        """Empty the bucket: what follows is paced from now on, with no burst."""
        self.full_at = max(self.full_at, now + self.burst)

    def queued_until(self, now: float) -> float:
        """When the last reservation made so far goes out (`now` if none waits)."""
        return max(now, self.full_at - self.burst)

    def level(self, now: float, rate: float) -> float:
        """Units the bucket holds at `now` (negative while reservations are queued)."""
        return rate * (self.burst - max(0.0, self.full_at - now))


@dataclass(slots=True)
class AdaptiveRate:
    """A rate in units per second, learned from refusals and successes; see the module doc.

    One refusal alone only pauses (the service's hint); a cut needs `evidence` refusals within
    `window` seconds, which a quota overrun gives at once (a batch has several parts refused,
    the next paced call is refused too) and a stray refusal does not. The cut is steeper when
    refusals are a large share of the recent outcomes (the rate is far above the quota), and,
    once an episode has lasted `measure` seconds, never far below what the service admitted
    meanwhile: a window that keeps refusing admits its quota, no more, no less.

    Refusals come in episodes (an episode ends after `quiet` seconds and `calm` admitted answers
    without one: at a low rate two seconds hold a handful of calls, and random refusals a few
    seconds apart would each start an episode of their own, none long enough to be recognised
    as noise, each from the rate the last one cut, so the cuts would go on). A quota answers
    cuts: the refusals stop, and meanwhile the service keeps admitting about the quota,
    whatever is sent. Refusals that go on for `patience` seconds through several cuts while the
    admitted rate falls to half what the episode's first second admitted do not answer to the
    rate (a service refusing a share of
    calls at random, as the demo's `rate_limit` fault does): cutting further would only starve
    the sweep, so the rate goes back to where the episode began and their share is learned as
    `noise`; from then on a refusal cuts only when the recent share is well above it.
    """

    rate: float
    ceiling: float | None = None
    """Never probe above this (the operator's hint of the quota), if set."""
    floor: float = 1.0
    decrease: float = 0.7
    """A refusal multiplies the rate by this..."""
    steep: float = 0.5
    """...or by this when at least a quarter of the recent outcomes were refusals."""
    probe: float = 0.05
    """Relative growth per second while saturated and succeeding..."""
    rebound: float = 0.25
    """...or this while below 90% of the rate the last cut was made from (known to have run,
    only a little too fast): the way back to it is quick, past it careful."""
    hold: float = 1.0
    """Seconds after a cut before probing resumes."""
    memory: float = 1.0
    """A bucket counts as saturated this long after the wait of the last caller that had to
    queue on it ended."""
    window: float = 2.0
    """Seconds of outcomes the recent share of refusals and admitted rate are measured over."""
    evidence: int = 2
    """Refusals within `window` it takes to cut."""
    measure: float = 0.5
    """Seconds into an episode after which the admitted rate bounds a cut..."""
    measured: float = 0.85
    """...from below, at this share of it."""
    quiet: float = 2.0
    calm: int = 50
    """Admitted answers in a row that end an episode, with `quiet`: refusals drawn at random
    rarely leave 50 in a row (one call in five refused: once in 70 000 tries)."""
    sample: int = 50
    """The share of refusals is measured over at least this many outcomes: at a low rate
    `window` seconds hold a handful, and their share swings far above the noise and back."""
    patience: float = 3.0
    halflife: float = 60.0
    """`noise` halves every this many seconds, so a real quota is still found later."""
    noise: float = 0.0
    noise_at: float = NEVER
    last_cut: float = NEVER
    news_after: float = NEVER
    """A refusal is news of the rate only for a call reserved from then on: once every call
    reserved before the last cut had been sent (they went at the old rate and left the
    service's window empty; calls paced into an empty window are refused by jitter alone, and a
    cascade of cuts on such refusals ends far below the quota)."""
    cut_from: float = 0.0
    saturated_at: float = NEVER
    probed_at: float = NEVER
    last_refusal: float = NEVER
    admitted_in_a_row: int = 0
    cuts: int = 0
    first_outcome: float = NEVER
    episode: Episode | None = None
    news: deque[float] = field(default_factory=deque)
    """When the refusals that are news (see `news_after`) came, over the last `window`
    seconds: `evidence` of them make a cut, so a cut after a cut needs news of its own."""
    outcomes: deque[tuple[float, int]] = field(default_factory=deque)
    """(time, units admitted), or (time, -1) for a refusal, over the last `window` seconds (at
    least the last `sample`)."""

    def saturated(self, until: float) -> None:
        """A caller waits for this rate until `until`: demand is at least the rate. What
        counts is when the wait ends: a call that waited longer than `memory` (any call at a
        low rate) still met a saturated rate, or a rate cut low could never grow again."""
        self.saturated_at = max(self.saturated_at, until)

    def succeeded(self, now: float, units: int) -> None:
        """A call of `units` paced by this rate was admitted: probe upward if demand is
        pressing, for the time since the last admitted call (at a low rate, calls are seconds
        apart and each one must credit all of it, or the rate climbs slower than it was cut)."""
        self._record(now, units)
        self.admitted_in_a_row += 1
        since = 0.0 if self.probed_at == NEVER else now - self.probed_at
        self.probed_at = now
        if now - self.last_cut < self.hold or now - self.saturated_at > self.memory:
            return
        self._grow(min(since, now - self.last_cut - self.hold))

    def _grow(self, seconds: float) -> None:
        """`seconds` of growth: `rebound` up to 90 % of the rate last cut from, `probe` past it
        (a rebound never overshoots that mark, however long since the last admitted call)."""
        mark = 0.9 * self.cut_from
        if self.rate < mark:
            self.rate = min(mark, self.rate * math.exp(self.rebound * seconds))
        else:
            self.rate *= math.exp(self.probe * seconds)
        if self.ceiling is not None:
            self.rate = min(self.rate, self.ceiling)

    def refused(
        self, ticket: float, now: float, recent: float | None = None, queued: float = NEVER
    ) -> bool:
        """A request reserved at `ticket` was refused for rate. Cut the rate (from the lower of
        the rate and `recent`, the rate actually sent lately, when known) unless the request
        was reserved before the last cut's calls were sent (old news: see `news_after`), the
        evidence is thin, or the refusals are noise; True if it cut. `queued`: when the last
        call reserved so far goes out."""
        calm = now - self.last_refusal > self.quiet and self.admitted_in_a_row >= self.calm
        if calm or self.episode is None:
            self.episode = Episode(now, self.rate)
        self._record(now, -1)
        self.last_refusal = now
        self.admitted_in_a_row = 0
        share, episode = self.share(now), self.episode
        if episode.early is None and now - episode.start >= 1.0:
            episode.early = self.admitted(now, since=episode.start)
        if (
            episode.early is not None
            and episode.cuts >= 3
            and now - episode.start >= self.patience
            and self.admitted(now, since=now - 1.0) < 0.5 * episode.early
        ):
            self.noise, self.noise_at = max(self.current_noise(now), share), now
            self.rate = max(self.rate, episode.rate)
            self.episode = Episode(now, self.rate)
            return False
        if ticket >= self.news_after:
            self.news.append(now)
        while self.news and self.news[0] < now - self.window:
            self.news.popleft()
        if len(self.news) < self.evidence or share <= 1.5 * self.current_noise(now):
            return False
        base = self.rate if recent is None else min(self.rate, recent)
        self.cut_from = base
        cut = base * (self.steep if share >= 0.25 else self.decrease)
        if now - episode.start >= self.measure:
            # the service has been admitting what its window allows all episode long: that
            # rate is the best estimate of the quota, so no cut goes far below it
            cut = max(cut, self.measured * self.admitted(now, since=episode.start))
        self.rate = max(self.floor, min(cut, base))
        if episode.cuts:
            # an episode's first cut is from a rate that ran, only a little too fast: the
            # rebound goes back near it. A further cut proves that rate far too fast (a quota
            # lowered, not a sawtooth's overshoot): past the new rate, only careful probing
            self.cut_from = self.rate
        self.last_cut = now
        self.news_after = max(now, queued)
        self.news.clear()
        self.cuts += 1
        episode.cuts += 1
        return True

    def share(self, now: float) -> float:
        """The share of refusals among the outcomes of the last `window` seconds, or of the
        last `sample` outcomes if that is more."""
        self._forget(now)
        if not self.outcomes:
            return 0.0
        return sum(units < 0 for _, units in self.outcomes) / len(self.outcomes)

    def admitted(self, now: float, since: float = NEVER) -> float:
        """Units per second admitted over the last `window` seconds (or since the first
        outcome, or `since`, if that is more recent)."""
        self._forget(now)
        start = max(now - self.window, self.first_outcome, since)
        units = sum(max(units, 0) for at, units in self.outcomes if at >= start)
        return units / max(now - start, 0.1)

    def current_noise(self, now: float) -> float:
        if self.noise_at == NEVER:
            return 0.0
        return float(self.noise * 0.5 ** ((now - self.noise_at) / self.halflife))

    def _record(self, now: float, units: int) -> None:
        if self.first_outcome == NEVER:
            self.first_outcome = now
        self.outcomes.append((now, units))
        self._forget(now)

    def _forget(self, now: float) -> None:
        while len(self.outcomes) > self.sample and self.outcomes[0][0] < now - self.window:
            self.outcomes.popleft()


@dataclass(slots=True)
class Episode:
    """A run of refusals: when it began, the rate then, cuts made since, and the rate the
    service admitted over its first second (a quota keeps admitting that much while it refuses;
    random refusals let less through as the rate is cut)."""

    start: float
    rate: float
    cuts: int = 0
    early: float | None = None
