"""How much room the ledger has left, and how long it will last.

The ledger only grows: nothing is ever deleted, so the disk that holds it fills
at the rate the stream and the worker append. Left alone on Render's 10 GB disk
the worker would one day meet a full disk in the middle of an append. SQLite
rolls that transaction back, so nothing is lost, but there may then be no room
left to record the stop, check the WAL back in, or run `replay` and `backup`,
which need space of their own. So the worker watches the free space: it
refuses to start, or stops cleanly, once less than `DISK_RESERVE_MB` is free.
`status`, `/health` and `/metrics` say how many days are left at the rate of
the last day, so an operator can grow the disk in time.

The forecast reads the ledger, not the clock history of this process: the
entries appended over the last 24 hours (found by bisecting positions on
`received_at`, about 20 index lookups) times the database's bytes per entry.
"""

from __future__ import annotations

import os
import shutil
from typing import Callable, NamedTuple

import apsw
import msgspec

from eventlog.clock import from_epoch, to_epoch
from eventlog.errors import DiskLow

__all__ = ["DiskReport", "Usage", "measure", "database_bytes", "entries_since", "check_reserve",
           "WARN_DAYS", "RATE_SPAN", "MIN_SPAN"]

WARN_DAYS = 7.0  # /health fails this long before the reserve would be reached
RATE_SPAN = 86_400.0  # the growth rate is the last day's
MIN_SPAN = 3_600.0  # a younger ledger gives no forecast: an hour's burst is not a rate
_MB = 1024 * 1024


class Usage(NamedTuple):
    """`shutil.disk_usage`'s answer: bytes; `free` is what this user may still write."""

    total: int
    used: int
    free: int


DiskUsage = Callable[[str], Usage]


class DiskReport(msgspec.Struct, frozen=True, kw_only=True):
    directory: str  # where the database file lives
    database_bytes: int  # the file, its WAL and shared-memory index
    free_bytes: int
    total_bytes: int
    reserve_bytes: int  # DISK_RESERVE_MB: below this the worker stops
    entries: int  # ledger entries
    entries_per_day: float | None  # over the last day (or the ledger's age, if at least an hour)
    bytes_per_day: float | None
    days_left: float | None  # until free space reaches the reserve, at that rate; None: no growth known

    @property
    def low(self) -> bool:
        return self.free_bytes < self.reserve_bytes

    @property
    def warning(self) -> str | None:
        """Why `/health` should fail, or None: the reserve is near, or a week of room is all that is left."""
        if self.free_bytes < 2 * self.reserve_bytes:
            return f"{mb(self.free_bytes)} free, under twice the reserve of {mb(self.reserve_bytes)}"
        if self.days_left is not None and self.days_left < WARN_DAYS:
            return f"about {self.days_left:.1f} days of room left at the last day's rate"
        return None

    def describe(self) -> str:
        text = (f"database {mb(self.database_bytes)}, {mb(self.free_bytes)} free of {mb(self.total_bytes)} "
                f"(reserve {mb(self.reserve_bytes)})")
        if self.days_left is not None and self.entries_per_day:
            text += f"; {self.entries_per_day:,.0f} entries/day: about {self.days_left:,.0f} days left"
        return text


def mb(n: float) -> str:
    if n >= 1024 * _MB:
        return f"{n / _MB / 1024:,.1f} GB"
    return f"{n / _MB:,.0f} MB" if n >= 10 * _MB else f"{n / _MB:.1f} MB"


def database_bytes(path: str) -> int:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        try:
            total += os.path.getsize(path + suffix)
        except OSError:
            continue
    return total


def _disk_usage(directory: str) -> Usage:
    u = shutil.disk_usage(directory)
    return Usage(u.total, u.used, u.free)


def entries_since(conn: apsw.Connection, since: str) -> tuple[int, int, str | None]:
    """(entries received at or after `since`, all entries, the oldest entry's time).

    Positions are contiguous from 1 and `received_at` grows with them (the
    appender stamps a transaction's entries from one clock), so a bisection
    finds the first entry of the span without a scan. A wall clock stepped back
    breaks that order: the count is then approximate, which a forecast can bear.
    """
    head, first_at = conn.execute(
        "SELECT max(id), (SELECT received_at FROM event_log ORDER BY id LIMIT 1) FROM event_log").fetchone()
    if not head:
        return 0, 0, None
    at = "SELECT received_at FROM event_log WHERE id = ?"
    lo, hi = 1, head + 1  # the answer is in [lo, hi]: the first position received at or after `since`
    while lo < hi:
        mid = (lo + hi) // 2
        row = conn.execute(at, (mid,)).fetchone()
        if row is not None and row[0] >= since:
            hi = mid
        else:
            lo = mid + 1
    return head - lo + 1, head, first_at


def measure(conn: apsw.Connection, path: str, now: float, reserve_bytes: int, *,
            usage: DiskUsage = _disk_usage) -> DiskReport:
    directory = os.path.dirname(os.path.realpath(path))  # a symlinked database: the disk it is really on
    u = usage(directory)
    size = database_bytes(path)
    recent, entries, first_at = entries_since(conn, from_epoch(now - RATE_SPAN))
    per_day = per_byte = days = None
    if first_at is not None:
        span = min(RATE_SPAN, now - to_epoch(first_at))
        if span >= MIN_SPAN:
            per_day = recent * RATE_SPAN / span
            per_byte = per_day * size / entries
            room = u.free - reserve_bytes
            days = max(0.0, room / per_byte) if per_byte > 0 else None
    return DiskReport(directory=directory, database_bytes=size, free_bytes=u.free, total_bytes=u.total,
                      reserve_bytes=reserve_bytes, entries=entries, entries_per_day=per_day,
                      bytes_per_day=per_byte, days_left=days)


def check_reserve(path: str, reserve_bytes: int, *, usage: DiskUsage = _disk_usage) -> int:
    """Raise DiskLow when less than the reserve is free beside the database; else return the free bytes."""
    directory = os.path.dirname(os.path.realpath(path))
    free = usage(directory).free
    if free < reserve_bytes:
        raise DiskLow(f"only {mb(free)} free on the disk of {directory} (DISK_RESERVE_MB keeps "
                      f"{mb(reserve_bytes)}): the ledger needs room to grow; free some space or enlarge "
                      f"the disk, then start again")
    return free
