"""Time, in one place, so tests can hold it still.

Timestamps at every edge are ISO 8601 UTC with microseconds and a `Z`
(`2026-11-23T00:17:36.123456Z`). The fixed width matters: the rate limiter and
the audit compare them as strings inside SQLite, which is only correct when
every timestamp has the same shape.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Protocol

__all__ = ["Clock", "SystemClock", "FixedClock", "CompressedClock", "iso", "parse_iso", "to_epoch", "from_epoch",
           "published_epoch"]

_FMT = "%Y-%m-%dT%H:%M:%S.%fZ"


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch, UTC."""


class SystemClock:
    """The wall clock. `time.time` is looked up at call time, so freezegun can freeze it."""

    def now(self) -> float:
        return time.time()


class FixedClock:
    """A clock that moves only when told to: for tests and time-compressed simulations."""

    def __init__(self, start: float = 1_700_000_000.0):
        self.t = float(start)

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def set(self, t: float) -> None:
        self.t = float(t)


class CompressedClock:
    """Time running `rate` times faster than the wall clock, reading `start` at the wall-clock
    instant `origin` (both epoch seconds): a long weekend in seconds, for end-to-end runs. Two
    processes given the same three numbers read the same time, so a worker in a subprocess and
    a simulator in the test agree on when the office closes and when the stream drops.
    `sleep` waits the compressed equivalent of its argument."""

    def __init__(self, start: float, origin: float, rate: float):
        if rate <= 0:
            raise ValueError("the rate must be positive")
        self.start, self.origin, self.rate = float(start), float(origin), float(rate)

    @classmethod
    def parse(cls, text: str) -> "CompressedClock":
        """From `START,ORIGIN,RATE` (three numbers); ValueError on anything else."""
        parts = text.split(",")
        if len(parts) != 3:
            raise ValueError("expected START,ORIGIN,RATE")
        start, origin, rate = (float(p) for p in parts)
        return cls(start, origin, rate)

    def now(self) -> float:
        return self.start + (time.time() - self.origin) * self.rate

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.rate)


def from_epoch(t: float) -> str:
    """Epoch seconds to the canonical ISO string."""
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime(_FMT)


iso = from_epoch


def parse_iso(s: str) -> datetime:
    """Accept the canonical form and the common variants (no fraction, offset, no zone = UTC)."""
    text = s.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def to_epoch(s: str) -> float:
    return parse_iso(s).timestamp()


_TWELVE_HOURS = 12 * 3600.0
_SKEW = 300.0  # CH's clock and ours may disagree by this much


def published_epoch(published_at: str, received: float) -> float:
    """A stream event's `published_at` as epoch seconds (UTC), whatever its form.

    CH writes it three ways: `2025-01-30T10:00:00` (UTC, no offset), `2023-11-04T14:33:29.123Z`
    (older events), and, for six weeks around new year 2025, with a 12-hour clock
    (`2025-01-06T02:33:29` for 14:33:29; midnight's hour as 12). A bare time with an hour of 1-12
    may be either reading: the later one not after `received` (when we got it, plus a few
    minutes of skew) is taken. Live events are read right; an event of that era read more than
    12 hours after it was published can be read 12 hours late.
    """
    t = to_epoch(published_at)
    text = published_at.strip()
    if text.endswith("Z") or "+" in text[10:] or "." in text[10:] or len(text) < 13:
        return t
    hour = int(text[11:13])
    if not 1 <= hour <= 12:
        return t
    base = t - hour * 3600.0  # the same date and minutes, at hour 0
    candidates = [base + (hour % 12) * 3600.0, base + (hour % 12) * 3600.0 + _TWELVE_HOURS]
    fitting = [c for c in candidates if c <= received + _SKEW]
    return max(fitting) if fitting else t