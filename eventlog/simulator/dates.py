"""Small calendar helpers for the fake data.

The fake register is "as of" a fixed day, not today, so that a profile generated next year is the
same profile: determinism beats freshness for a simulator.
"""

from __future__ import annotations

import calendar
import random
from datetime import UTC, date, datetime, timedelta

AS_OF = date(2023, 11, 4)  # the day the real samples were captured

__all__ = ["AS_OF", "add_months", "add_years", "date_between", "month_end", "utc_stamp"]


def month_end(year: int, month: int) -> date:
    """Last day of a month: accounting reference dates are usually month ends."""
    return date(year, month, calendar.monthrange(year, month)[1])


def add_months(day: date, months: int) -> date:
    """Same day ``months`` later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def add_years(day: date, years: int) -> date:
    """Anniversary ``years`` later; 29 February becomes 28 February in common years."""
    return add_months(day, 12 * years)


def date_between(rng: random.Random, start: date, end: date) -> date:
    """A uniformly chosen day in [start, end]; ``end`` before ``start`` yields ``start``."""
    span = max(0, (end - start).days)
    return start + timedelta(days=rng.randint(0, span))


def utc_stamp(epoch_seconds: float) -> str:
    """Epoch seconds as the stream's ``published_at``: UTC, whole seconds, no offset suffix."""
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
