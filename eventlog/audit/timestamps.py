"""Canonical ISO timestamps <-> integer microseconds, exactly and fast.

The audit compares send times to the microsecond (a window is half-open, so `t + S` itself
must not count), which floats can't promise; integers can. The ledger writes one fixed-width
form (`2026-11-23T00:17:36.123456Z`), so a timestamp is a cached per-minute base plus seconds
and microseconds read from fixed offsets; anything else goes through `clock.parse_iso`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from eventlog.clock import parse_iso

__all__ = ["to_us", "from_us", "canonical"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)
_minute_base: dict[str, int] = {}


def to_us(s: str) -> int:
    """Microseconds since the epoch of an ISO timestamp."""
    if len(s) == 27 and s[26] == "Z" and s[19] == ".":
        base = _minute_base.get(s[:16])
        if base is None:
            if len(_minute_base) > 100_000:
                _minute_base.clear()
            base = (parse_iso(s[:16] + ":00Z") - _EPOCH) // _US
            _minute_base[s[:16]] = base
        return base + int(s[17:19]) * 1_000_000 + int(s[20:26])
    return (parse_iso(s) - _EPOCH) // _US


def from_us(us: int) -> str:
    """The canonical ISO form of a time in microseconds (exact, no float on the way)."""
    return (_EPOCH + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(s: str) -> str:
    """Any accepted ISO form (a date alone, no zone, an offset) as the canonical string."""
    text = s.strip()
    if len(text) == 10:  # a bare date means its midnight, UTC
        text += "T00:00:00Z"
    return from_us(to_us(text))
