"""Time, in one place, so tests can hold it still.

Timestamps at every edge are ISO 8601 UTC with microseconds and a `Z`
(`2026-11-23T00:17:36.123456Z`). The fixed width matters: the rate limiter and
the audit compare them as strings inside SQLite, which is only correct when
every timestamp has the same shape.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol

__all__ = ["Clock", "SystemClock", "FixedClock", "iso", "parse_iso", "to_epoch", "from_epoch"]

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
