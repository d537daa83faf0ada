"""Business hours: when the worker may follow the stream, as pure functions of UTC time.

08:30–17:30 Europe/London, Monday to Friday, not on England and Wales bank
holidays. Render's cron jobs can't mount the disk that holds the database, so
this schedule lives inside the worker: outside hours it disconnects, sleeps,
and resumes from its last timepoint.

Everything takes an aware UTC datetime and does the wall-clock reasoning in
London time through zoneinfo, so the two DST changes (last Sunday of March and
of October) move the UTC opening time by an hour without special cases: 08:30
and 17:30 are never inside a transition (those happen at 01:00/02:00).
Bank holidays come from the `holidays` package (`GB`, subdivision `ENG`),
which computes Easter and substitute days, and carries one-off holidays
(a coronation, a state funeral) once they are announced.
"""

from __future__ import annotations

import functools
import logging
from datetime import date, datetime, time, timedelta, timezone
from typing import Awaitable, Callable
from zoneinfo import ZoneInfo

import holidays
import msgspec

from eventlog.clock import Clock, from_epoch

__all__ = [
    "BusinessHours",
    "LONDON_BUSINESS_HOURS",
    "is_business_day",
    "is_open",
    "next_change",
    "wait_until_open",
    "wait_until_closed",
]

log = logging.getLogger(__name__)


class BusinessHours(msgspec.Struct, frozen=True, kw_only=True):
    """When the worker runs: [opens, closes) local time on weekdays that are not holidays."""

    tz: str = "Europe/London"
    opens: time = time(8, 30)
    closes: time = time(17, 30)
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday = 0
    country: str = "GB"
    subdiv: str | None = "ENG"  # England and Wales share their bank holidays


LONDON_BUSINESS_HOURS = BusinessHours()

# A year has at most a handful of consecutive closed days (Christmas, Easter);
# a search that finds no business day in this long has been misconfigured.
_MAX_SEARCH_DAYS = 370


@functools.lru_cache(maxsize=8)
def _calendar(country: str, subdiv: str | None) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdiv)


@functools.lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _utc(now_utc: datetime) -> datetime:
    if now_utc.tzinfo is None or now_utc.utcoffset() is None:
        raise ValueError(f"business hours need an aware datetime, got naive {now_utc.isoformat()}")
    return now_utc.astimezone(timezone.utc)


def is_business_day(day: date, hours: BusinessHours = LONDON_BUSINESS_HOURS) -> bool:
    return day.weekday() in hours.weekdays and day not in _calendar(hours.country, hours.subdiv)


def is_open(now_utc: datetime, hours: BusinessHours = LONDON_BUSINESS_HOURS) -> bool:
    """Whether `now_utc` falls within business hours."""
    local = _utc(now_utc).astimezone(_zone(hours.tz))
    return is_business_day(local.date(), hours) and hours.opens <= local.time() < hours.closes


def _at(day: date, t: time, hours: BusinessHours) -> datetime:
    return datetime.combine(day, t, tzinfo=_zone(hours.tz)).astimezone(timezone.utc)


def next_change(now_utc: datetime, hours: BusinessHours = LONDON_BUSINESS_HOURS) -> datetime:
    """The next moment (UTC) `is_open` flips: today's closing time if open, else the next opening."""
    now = _utc(now_utc)
    local = now.astimezone(_zone(hours.tz))
    day = local.date()
    if is_open(now, hours):
        return _at(day, hours.closes, hours)
    if is_business_day(day, hours) and local.time() < hours.opens:
        return _at(day, hours.opens, hours)
    for _ in range(_MAX_SEARCH_DAYS):
        day += timedelta(days=1)
        if is_business_day(day, hours):
            return _at(day, hours.opens, hours)
    raise ValueError(f"no business day within {_MAX_SEARCH_DAYS} days of {day}: check the schedule")


Sleep = Callable[[float], Awaitable[object]]


async def _wait_for(state: bool, clock: Clock, sleep: Sleep, hours: BusinessHours, max_sleep: float) -> datetime:
    announced = False
    while True:
        now = datetime.fromtimestamp(clock.now(), tz=timezone.utc)
        if is_open(now, hours) == state:
            return now
        change = next_change(now, hours)
        if not announced and state:
            log.info("outside business hours: sleeping", extra={"opens_at": from_epoch(change.timestamp())})
            announced = True
        # Sleep in slices and look again: the wall clock can jump (suspend, NTP)
        # while an event loop's timer does not.
        await sleep(min(max((change - now).total_seconds(), 0.0), max_sleep))


async def wait_until_open(
    clock: Clock, sleep: Sleep, hours: BusinessHours = LONDON_BUSINESS_HOURS, *, max_sleep: float = 600.0
) -> datetime:
    """Return at once if open, else sleep (through `sleep`, e.g. `asyncio.sleep`) until opening.

    `clock` is an `eventlog.clock.Clock`; tests pass a `FixedClock` and a
    `sleep` that advances it. Cancel the task to stop waiting (SIGTERM).
    Returns the UTC time at which it found the schedule open.
    """
    return await _wait_for(True, clock, sleep, hours, max_sleep)


async def wait_until_closed(
    clock: Clock, sleep: Sleep, hours: BusinessHours = LONDON_BUSINESS_HOURS, *, max_sleep: float = 600.0
) -> datetime:
    """The mirror of `wait_until_open`: the worker races its main task against this."""
    return await _wait_for(False, clock, sleep, hours, max_sleep)
