"""Backoff with full jitter and the circuit breaker, on injected random and time."""

from __future__ import annotations

import random

import pytest

from eventlog.worker.stream.backoff import Backoff, BreakerState, CircuitBreaker, full_jitter
from eventlog.clock import FixedClock


def test_each_delay_is_drawn_from_zero_to_the_doubling_ceiling() -> None:
    backoff = Backoff(1.0, 300.0, random.Random(7))
    twin = random.Random(7)
    for n in range(15):
        ceiling = min(300.0, 2.0 ** n)
        assert backoff.ceiling() == ceiling
        delay = backoff.fail()
        assert delay == twin.uniform(0.0, ceiling)
        assert 0.0 <= delay <= ceiling
    assert backoff.failures == 15


def test_full_jitter_covers_the_range_not_just_the_top() -> None:
    rng = random.Random(1)
    draws = [full_jitter(9, 1.0, 300.0, rng) for _ in range(2000)]
    assert max(draws) <= 300.0
    assert min(draws) < 30.0 and max(draws) > 270.0  # spread across [0, 300]


def test_reset_starts_the_series_again() -> None:
    backoff = Backoff(2.0, 100.0, random.Random(0))
    for _ in range(5):
        backoff.fail()
    backoff.reset()
    assert backoff.ceiling() == 2.0


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert full_jitter(10_000, 1.0, 5.0, random.Random(0)) <= 5.0


def test_invalid_delays_are_refused() -> None:
    with pytest.raises(ValueError):
        Backoff(0.0, 1.0)


def test_breaker_opens_after_threshold_then_half_opens_after_cooldown() -> None:
    clock = FixedClock(1000.0)
    breaker = CircuitBreaker(3, 60.0, clock.now)
    assert [breaker.failure() for _ in range(2)] == [False, False]
    assert breaker.state is BreakerState.CLOSED
    assert breaker.failure() is True
    assert breaker.state is BreakerState.OPEN
    assert breaker.remaining() == 60.0
    clock.advance(59.0)
    assert breaker.state is BreakerState.OPEN and breaker.remaining() == 1.0
    clock.advance(1.0)
    assert breaker.state is BreakerState.HALF_OPEN
    # The probe fails: open again for a whole cooldown.
    assert breaker.failure() is True
    assert breaker.state is BreakerState.OPEN and breaker.remaining() == 60.0
    assert breaker.times_opened == 2
    breaker.success()
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0


def test_a_failing_probe_doubles_the_cooldown_up_to_the_cap_and_success_resets_it():
    clock = FixedClock(0)
    breaker = CircuitBreaker(2, 30.0, clock.now, max_cooldown=100.0)
    assert not breaker.failure() and breaker.failure()  # the second failure opens it: 30 s
    assert breaker.remaining() == 30.0
    waits = []
    for _ in range(4):  # each failed probe after the cooldown: 60, 100 (cap), 100, 100
        clock.advance(breaker.remaining())
        assert breaker.state is BreakerState.HALF_OPEN
        assert breaker.failure()
        waits.append(breaker.remaining())
    assert waits == [60.0, 100.0, 100.0, 100.0]
    breaker.success()
    assert breaker.state is BreakerState.CLOSED
    assert not breaker.failure() and breaker.failure() and breaker.remaining() == 30.0  # from the start again
