"""Business hours across both DST changes and bank holidays, on explicit and frozen time."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta, timezone

import pytest
from freezegun import freeze_time

from eventlog.clock import FixedClock, SystemClock
from eventlog.worker.schedule import (
    BusinessHours,
    is_business_day,
    is_open,
    next_change,
    wait_until_closed,
    wait_until_open,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# --- winter (GMT = UTC) and summer (BST = UTC+1) ------------------------------------


@pytest.mark.parametrize(
    "moment, expected",
    [
        (utc(2025, 1, 15, 8, 29, 59), False),  # Wednesday in GMT: opens 08:30 UTC
        (utc(2025, 1, 15, 8, 30), True),
        (utc(2025, 1, 15, 17, 29, 59), True),
        (utc(2025, 1, 15, 17, 30), False),  # closing time is already closed
        (utc(2025, 7, 16, 7, 29, 59), False),  # Wednesday in BST: opens 07:30 UTC
        (utc(2025, 7, 16, 7, 30), True),
        (utc(2025, 7, 16, 16, 29, 59), True),
        (utc(2025, 7, 16, 16, 30), False),
        (utc(2025, 7, 16, 17, 0), False),  # 18:00 in London
        (utc(2025, 1, 18, 12, 0), False),  # Saturday
        (utc(2025, 1, 19, 12, 0), False),  # Sunday
    ],
)
def test_is_open(moment, expected):
    assert is_open(moment) is expected


def test_aware_times_in_other_zones_mean_the_same_instant():
    from zoneinfo import ZoneInfo

    ny = datetime(2025, 7, 16, 3, 30, tzinfo=ZoneInfo("America/New_York"))  # 08:30 BST
    assert is_open(ny) and not is_open(ny - timedelta(seconds=1))


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="aware"):
        is_open(datetime(2025, 1, 15, 12, 0))


# --- the two DST changes ----------------------------------------------------------------


def test_spring_forward_moves_monday_opening_an_hour_earlier_in_utc():
    # Clocks go forward on Sunday 30 March 2025.
    friday_close = next_change(utc(2025, 3, 28, 12, 0))
    assert friday_close == utc(2025, 3, 28, 17, 30)  # GMT
    monday_open = next_change(friday_close)
    assert monday_open == utc(2025, 3, 31, 7, 30)  # 08:30 BST
    assert monday_open - friday_close == timedelta(days=2, hours=14)  # the weekend lost an hour
    assert not is_open(utc(2025, 3, 31, 7, 29, 59)) and is_open(utc(2025, 3, 31, 7, 30))
    assert next_change(utc(2025, 3, 31, 7, 30)) == utc(2025, 3, 31, 16, 30)  # 17:30 BST


def test_fall_back_moves_monday_opening_an_hour_later_in_utc():
    # Clocks go back on Sunday 26 October 2025.
    friday_close = next_change(utc(2025, 10, 24, 12, 0))
    assert friday_close == utc(2025, 10, 24, 16, 30)  # 17:30 BST
    monday_open = next_change(friday_close)
    assert monday_open == utc(2025, 10, 27, 8, 30)  # 08:30 GMT
    assert monday_open - friday_close == timedelta(days=2, hours=16)  # the weekend gained an hour
    assert is_open(utc(2025, 10, 27, 8, 30)) and not is_open(utc(2025, 10, 27, 7, 30))


@pytest.mark.parametrize("sunday", [utc(2025, 3, 30), utc(2025, 10, 26)])
def test_the_transition_night_itself_is_closed(sunday):
    for minutes in range(0, 24 * 60, 15):
        assert not is_open(sunday + timedelta(minutes=minutes))


def test_dst_change_across_easter_2024():
    # Clocks went forward on 31 March 2024, between Good Friday (29th) and Easter Monday (1 April).
    thursday_close = next_change(utc(2024, 3, 28, 9, 0))
    assert thursday_close == utc(2024, 3, 28, 17, 30)
    assert next_change(thursday_close) == utc(2024, 4, 2, 7, 30)  # Tuesday, 08:30 BST
    assert not is_open(utc(2024, 3, 29, 12, 0)) and not is_open(utc(2024, 4, 1, 12, 0))


# --- bank holidays of England and Wales --------------------------------------------------


@pytest.mark.parametrize(
    "day, open_",
    [
        (date(2025, 12, 25), False),  # Christmas Day (Thursday)
        (date(2025, 12, 26), False),  # Boxing Day (Friday)
        (date(2026, 12, 28), False),  # Boxing Day observed: the 26th is a Saturday
        (date(2025, 4, 21), False),  # Easter Monday
        (date(2025, 5, 5), False),  # Early May bank holiday
        (date(2025, 8, 25), False),  # Summer bank holiday, England: last Monday of August
        (date(2025, 8, 4), True),  # ...Scotland's is the first Monday: open here
        (date(2025, 1, 2), True),  # 2 January: a holiday in Scotland only
        (date(2023, 5, 8), False),  # one-off: the coronation
        (date(2025, 12, 24), True),  # Christmas Eve is a working day
    ],
)
def test_bank_holidays(day, open_):
    assert is_business_day(day) is open_
    noon_london = datetime.combine(day, time(12, 0)).replace(tzinfo=timezone.utc)  # 12:00 or 13:00 London
    assert is_open(noon_london) is open_


def test_christmas_closes_for_the_long_weekend():
    christmas_eve_close = next_change(utc(2025, 12, 24, 10, 0))
    assert christmas_eve_close == utc(2025, 12, 24, 17, 30)
    assert next_change(christmas_eve_close) == utc(2025, 12, 29, 8, 30)  # Monday


def test_next_change_before_opening_on_a_business_day():
    assert next_change(utc(2025, 1, 15, 3, 0)) == utc(2025, 1, 15, 8, 30)


def test_next_change_always_flips_is_open():
    # Walk 2025 change by change: each flips the state, and nothing flips in between.
    t = utc(2025, 1, 1)
    state = is_open(t)
    opens = 0
    while t.year == 2025:
        change = next_change(t)
        assert change > t
        assert is_open(change - timedelta(seconds=1)) is state
        assert is_open(change) is not state
        opens += (not state) and change.year == 2025
        t, state = change, not state
    # 261 weekdays in 2025, 8 of them English bank holidays.
    assert opens == 253


def test_other_hours_and_calendars():
    scotland = BusinessHours(subdiv="SCT", opens=time(9, 0), closes=time(17, 0))
    assert not is_business_day(date(2025, 1, 2), scotland)
    assert next_change(utc(2025, 1, 3, 8, 0), scotland) == utc(2025, 1, 3, 9, 0)


# --- waiting, on a fake clock and on frozen real time ---------------------------------------


async def test_wait_until_open_sleeps_over_the_weekend_in_slices():
    clock = FixedClock(utc(2025, 10, 24, 18, 0).timestamp())  # Friday evening, BST ended Sunday
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    opened = await wait_until_open(clock, sleep, max_sleep=3600)
    assert opened == utc(2025, 10, 27, 8, 30)
    assert sum(slept) == (opened - utc(2025, 10, 24, 18, 0)).total_seconds()
    assert max(slept) == 3600 and len(slept) == 63  # 62.5 hours in hour slices


async def test_wait_until_open_returns_at_once_when_open():
    clock = FixedClock(utc(2025, 1, 15, 12, 0).timestamp())

    async def sleep(seconds: float) -> None:
        raise AssertionError("must not sleep while open")

    assert await wait_until_open(clock, sleep) == utc(2025, 1, 15, 12, 0)


async def test_wait_notices_a_clock_jump():
    # Suspended overnight: during the first slice the wall clock jumps 13 hours.
    clock = FixedClock(utc(2025, 1, 14, 20, 0).timestamp())  # Tuesday evening
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        clock.advance(seconds + (13 * 3600 if not slept else 0))
        slept.append(seconds)

    opened = await wait_until_open(clock, sleep, max_sleep=600)
    assert slept == [600]  # a 10-minute slice that ended at 20:10 + 13 h
    assert opened == utc(2025, 1, 15, 9, 10)


async def test_wait_until_closed_with_frozen_real_time():
    # The worker's real clock under freezegun, through DST spring-forward morning.
    with freeze_time("2025-03-31 07:00:00") as frozen:  # Monday, 08:00 BST
        clock = SystemClock()

        async def sleep(seconds: float) -> None:
            frozen.tick(timedelta(seconds=seconds))

        assert await wait_until_open(clock, sleep) == utc(2025, 3, 31, 7, 30)
        assert await wait_until_closed(clock, sleep) == utc(2025, 3, 31, 16, 30)
        assert await wait_until_open(clock, sleep) == utc(2025, 4, 1, 7, 30)


async def test_waiting_can_be_cancelled():
    clock = FixedClock(utc(2025, 1, 18, 12, 0).timestamp())  # Saturday
    task = asyncio.create_task(wait_until_open(clock, asyncio.sleep, max_sleep=3600))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
