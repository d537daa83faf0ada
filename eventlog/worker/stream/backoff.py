"""How long to wait before trying a connection again.

Exponential backoff with *full jitter* (AWS's "Exponential Backoff and
Jitter"): the n-th consecutive failure waits a uniform draw from
`[0, min(maximum, initial * 2**n))`. Full jitter spreads reconnecting clients
over the whole interval, so a fleet that lost the stream at the same instant
does not come back at the same instant.

A circuit breaker sits on top: after `threshold` consecutive failures it
opens, and the next attempt waits the breaker's whole `cooldown` (a fixed
pause, not a draw that may come out near zero). The attempt after the
cooldown is a probe (half-open); success closes the breaker, failure opens it
again for twice as long, up to `max_cooldown`: a blip costs a short pause, a
long outage is probed ever more gently. The random source and the clock are injected, so tests draw known
numbers and never sleep.
"""

from __future__ import annotations

import enum
import random
from typing import Callable

__all__ = ["Backoff", "CircuitBreaker", "BreakerState", "full_jitter"]


def full_jitter(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """The wait before retry number `attempt` (0-based): uniform in `[0, min(max, initial·2^n)]`."""
    ceiling = min(maximum, initial * (2 ** min(attempt, 62)))
    return rng.uniform(0.0, ceiling)


class Backoff:
    """Consecutive-failure counter that turns each failure into a jittered delay."""

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        if initial <= 0 or maximum <= 0:
            raise ValueError("backoff delays must be positive")
        self.initial = initial
        self.maximum = max(maximum, initial)
        self.rng = rng or random.Random()
        self.failures = 0

    def ceiling(self) -> float:
        """The upper bound of the next draw (for logs and tests)."""
        return min(self.maximum, self.initial * (2 ** min(self.failures, 62)))

    def fail(self) -> float:
        """Record a failure and return how long to wait before the next attempt."""
        delay = full_jitter(self.failures, self.initial, self.maximum, self.rng)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Opens after `threshold` consecutive failures; half-open once `cooldown` has passed."""

    def __init__(self, threshold: int, cooldown: float, clock: Callable[[], float],
                 max_cooldown: float | None = None) -> None:
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.threshold = threshold
        self.base_cooldown = self.cooldown = cooldown
        self.max_cooldown = max(cooldown, max_cooldown if max_cooldown is not None else cooldown)
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.times_opened = 0

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if self.clock() - self.opened_at >= self.cooldown:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def remaining(self) -> float:
        """Seconds until a probe is allowed (0 when closed or half-open)."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.cooldown - self.clock())

    def failure(self) -> bool:
        """Record a failure; True when this failure (re)opened the breaker."""
        self.failures += 1
        if self.opened_at is not None or self.failures >= self.threshold:
            if self.opened_at is not None:  # the probe failed too: wait twice as long, up to the cap
                self.cooldown = min(self.cooldown * 2, self.max_cooldown)
            self.opened_at = self.clock()
            self.times_opened += 1
            return True
        return False

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.cooldown = self.base_cooldown
