"""The fixed-window limiter Companies House applies per key.

A window opens at a key's first request and lasts ``window`` seconds; the next one opens at the
first request after it expired (not on a fixed grid). Requests over the limit get 429 and do not
extend or reopen the window. This is deliberately *not* a sliding window: a client that is safe
under every sliding window is safe here, but not the other way round.
"""

from __future__ import annotations

import math

import msgspec

from .config import window_label

__all__ = ["FixedWindowLimiter", "RateDecision"]


class RateDecision(msgspec.Struct, frozen=True):
    """Outcome of counting one request, with everything the X-Ratelimit-* headers need."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch seconds, rounded up, so waiting until it is always enough
    window: str  # "5m", "10s"

    def headers(self) -> dict[str, str]:
        return {
            "X-Ratelimit-Limit": str(self.limit),
            "X-Ratelimit-Remain": str(self.remaining),
            "X-Ratelimit-Reset": str(self.reset),
            "X-Ratelimit-Window": self.window,
        }


class _Window(msgspec.Struct):
    start: float
    count: int = 0


class FixedWindowLimiter:
    """Counts requests per key in fixed windows that start at the key's first request."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._label = window_label(window)
        self._windows: dict[str, _Window] = {}

    def hit(self, key: str, now: float) -> RateDecision:
        """Count a request from ``key`` at ``now`` and say whether it may be served."""
        current = self._windows.get(key)
        if current is None or now >= current.start + self.window:
            current = self._windows[key] = _Window(start=now)
        allowed = current.count < self.limit
        if allowed:
            current.count += 1
        return RateDecision(
            allowed=allowed,
            limit=self.limit,
            remaining=self.limit - current.count,
            reset=math.ceil(current.start + self.window),
            window=self._label,
        )
