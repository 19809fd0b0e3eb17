"""The token bucket and the AIMD rate, driven by explicit instants (no clock, no threads)."""

from __future__ import annotations

import math

import pytest

from sweepledger.collectors.google.buckets import AdaptiveRate, TokenBucket


def test_a_full_bucket_lets_its_burst_out_at_once_then_paces_at_the_rate() -> None:
    """Half a second of a 100 units/s rate goes at once; every later unit waits its 1/100 s."""
    bucket = TokenBucket(burst=0.5)
    sends = [bucket.reserve(10, 0.0, 100.0) for _ in range(8)]
    assert sends[:5] == [0.0] * 5
    assert sends[5:] == pytest.approx([0.1, 0.2, 0.3])


def test_a_reservation_larger_than_the_bucket_waits_for_a_full_one_and_leaves_a_debt() -> None:
    """A 250-unit batch at 100 units/s (bucket of 50) goes when the bucket is full, and the
    next reservation repays the debt before it goes."""
    bucket = TokenBucket(burst=0.5)
    assert bucket.reserve(50, 0.0, 100.0) == 0.0
    assert bucket.reserve(250, 0.0, 100.0) == pytest.approx(0.5)
    assert bucket.reserve(10, 0.0, 100.0) == pytest.approx(3.0 - 0.5 + 0.1)


def test_reservations_are_first_come_first_served() -> None:
    """A big reservation is not overtaken by small ones made after it."""
    bucket = TokenBucket(burst=0.1)
    big = bucket.reserve(100, 0.0, 100.0)
    smalls = [bucket.reserve(1, 0.0, 100.0) for _ in range(3)]
    assert all(small > big for small in smalls)


def test_a_pause_empties_the_bucket_at_its_end() -> None:
    """After a pause nothing bursts: the bucket is empty when the pause ends."""
    bucket = TokenBucket(burst=0.5)
    bucket.pause(2.0)
    assert bucket.paused_until == 2.0
    assert bucket.level(2.0, 100.0) == pytest.approx(0.0)
    assert bucket.reserve(10, 2.0, 100.0) == pytest.approx(2.1)
    assert bucket.level(10.0, 100.0) == pytest.approx(50.0)


def _rate(**kwargs: float) -> AdaptiveRate:
    return AdaptiveRate(**{"rate": 1000.0, **kwargs})  # type: ignore[arg-type]


def _successes(
    rate: AdaptiveRate, start: float, end: float, *, queued: bool = True, step: float = 0.01
) -> float:
    """Admitted calls every `step` seconds, callers queueing on the rate (`queued`) or not."""
    now = start
    while now < end:
        if queued:
            rate.saturated(now)
        rate.succeeded(now, 5)
        now += step
    return now


def test_one_refusal_only_pauses_a_second_one_cuts() -> None:
    """A stray refusal is not evidence; two within the window cut the rate by `decrease`."""
    rate = _rate()
    _successes(rate, 0.0, 1.0, queued=False)
    assert not rate.refused(1.0, 1.0)
    assert rate.rate == 1000.0
    assert rate.refused(1.01, 1.01)
    assert rate.rate == pytest.approx(700.0)


def test_the_cut_is_steep_when_refusals_are_a_large_share() -> None:
    """With a quarter or more of the recent outcomes refused the rate halves."""
    rate = _rate()
    rate.succeeded(0.0, 5)
    rate.refused(0.0, 0.01)
    assert rate.refused(0.02, 0.02)
    assert rate.rate == pytest.approx(500.0)


def test_at_a_low_rate_the_share_of_refusals_is_taken_over_the_last_50_answers() -> None:
    """Two seconds at a low rate hold a handful of answers, and one refusal among them is no
    fifth of the calls refused: the share counts the last 50 answers when the window holds
    fewer (random refusals learned as noise are otherwise mistaken for an overrun again)."""
    rate = _rate(rate=10.0)
    now = 0.0
    for _ in range(49):
        rate.succeeded(now, 5)
        now += 0.5
    rate.refused(now, now)
    assert rate.share(now) == pytest.approx(1 / 50)


def test_the_cut_starts_from_what_was_actually_sent() -> None:
    """A rate far above what was sent (Google's default, 20 000/s) is cut from the send rate,
    not from itself: cutting it would change nothing for many rounds."""
    rate = _rate(rate=20_000.0)
    _successes(rate, 0.0, 1.0, queued=False)
    rate.refused(1.0, 1.0, recent=900.0)
    assert rate.refused(1.0, 1.0, recent=900.0)
    assert rate.rate == pytest.approx(630.0)


def test_refusals_of_calls_reserved_before_the_cut_went_out_are_old_news() -> None:
    """A call reserved before the cut, or before every call queued then had gone out at the
    old rate (`queued`: they leave the service's window empty), says nothing about the new
    rate. A cut after a cut needs `evidence` refusals of its own that are news."""
    rate = _rate()
    _successes(rate, 0.0, 1.0, queued=False)
    rate.refused(1.0, 1.0)
    assert rate.refused(1.0, 1.0, queued=1.3)
    assert rate.rate == pytest.approx(700.0)
    assert not rate.refused(0.99, 1.05)
    assert not rate.refused(1.2, 1.35)
    assert not rate.refused(1.25, 1.4)
    assert rate.rate == pytest.approx(700.0)
    assert not rate.refused(1.3, 1.45)
    assert rate.refused(1.31, 1.46)
    assert rate.rate == pytest.approx(490.0)


def test_a_second_cut_in_an_episode_is_not_rebounded_from() -> None:
    """The first cut's rate had run, only a little too fast: the rate rebounds to near it.
    A second cut in the same episode proves the rate it was made from far too fast (a quota
    lowered): from then on the rate only probes, a few percent a second."""
    rate = _rate()
    _successes(rate, 0.0, 1.0, queued=False)
    rate.refused(1.0, 1.0)
    rate.refused(1.0, 1.0)
    rate.refused(1.1, 1.1)
    assert rate.refused(1.1, 1.1)
    assert rate.rate == pytest.approx(490.0)
    _successes(rate, 1.1, 4.0)
    assert rate.rate == pytest.approx(490.0 * math.exp(0.05 * 1.9), rel=0.02)


def test_probing_grows_the_rate_only_while_callers_queue_and_calls_succeed() -> None:
    """e^0.05 a second while saturated; nothing while demand is below the rate."""
    rate = _rate()
    _successes(rate, 0.0, 10.0)
    assert rate.rate == pytest.approx(1000.0 * math.exp(0.05 * 10), rel=0.01)
    idle = _rate()
    _successes(idle, 0.0, 10.0, queued=False)
    assert idle.rate == 1000.0


def test_probing_waits_the_hold_after_a_cut_then_rebounds_fast_to_near_the_cut() -> None:
    """For a second after a cut the rate stays; then it climbs fast (rebound) back to 90 % of
    the rate it was cut from, and slowly (probe) beyond."""
    rate = _rate()
    _successes(rate, 0.0, 1.0, queued=False)
    rate.refused(1.0, 1.0)
    rate.refused(1.0, 1.0)
    assert rate.rate == pytest.approx(700.0)
    _successes(rate, 1.0, 1.99)
    assert rate.rate == pytest.approx(700.0)
    _successes(rate, 1.99, 3.0)
    assert rate.rate == pytest.approx(700.0 * math.exp(0.25), rel=0.01)
    _successes(rate, 3.0, 4.5)
    assert 900.0 < rate.rate < 910.0 * math.exp(0.05 * 1.5)


def test_a_hint_caps_probing() -> None:
    rate = _rate(ceiling=1100.0)
    _successes(rate, 0.0, 10.0)
    assert rate.rate == 1100.0


def test_refusals_that_do_not_answer_to_the_rate_are_learned_as_noise() -> None:
    """One call in ten refused at random, whatever the rate: after three cuts and three seconds
    with the admitted rate falling with the rate, the rate goes back to where the episode began
    and later refusals at that share no longer cut."""
    rate = _rate(probe=0.0, rebound=0.0)
    now, calls = 0.0, 0
    while now < 8.0:
        calls += 1
        interval = 5 / rate.rate
        if calls % 10 == 0:
            rate.refused(now, now)
        else:
            rate.saturated(now)
            rate.succeeded(now, 5)
        now += interval
    assert rate.noise == pytest.approx(0.1, abs=0.03)
    assert rate.rate == pytest.approx(1000.0)
    cuts = rate.cuts
    for step in range(200):
        t = now + step * 0.005
        if step % 10 == 0:
            rate.refused(t, t)
        else:
            rate.succeeded(t, 5)
    assert rate.cuts == cuts


def test_noise_fades_so_a_real_quota_is_found_later() -> None:
    rate = _rate(noise=0.2, noise_at=0.0)
    assert rate.current_noise(60.0) == pytest.approx(0.1)
    assert rate.current_noise(600.0) < 0.001


def test_the_rate_never_falls_below_its_floor() -> None:
    rate = _rate(rate=2.0)
    now = 0.0
    for _ in range(50):
        rate.refused(now, now)
        now += 1.0
    assert rate.rate == 1.0
