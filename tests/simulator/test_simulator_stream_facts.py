"""What the real streaming API does, taught to the simulator: one test per fact, over loopback.

Keys, data-less deletions, stripped nulls, the three ``published_at`` forms, nightly drops and the
24-hour cap, gateway pages and 429s on connect, the realistic pace and the retention, each on the
simulator's fake clock.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime

import msgspec
import pytest

from eventlog.simulator import SimulatorConfig, connection_deadline, nightly_drop_at
from support.ch_simulator import (
    REST,
    REST_KEY,
    STREAM,
    STREAM_KEY,
    TIMEOUT,
    FakeClock,
    epoch,
    read_events,
    read_to_end,
    simulator,
)

PATHS = ("/companies", "/filings")


# --- keys -------------------------------------------------------------------------------------


async def test_stream_and_rest_keys_are_different_keys_by_default() -> None:
    async with simulator() as (sim, session):
        assert sim.simulator.config.stream_key != sim.simulator.config.api_key
        number = sim.simulator.universe.numbers[0]
        for path in PATHS:
            async with session.get(path, headers=REST) as refused:
                assert refused.status == 401
            async with session.get(path, headers=STREAM) as admitted:
                assert admitted.status == 200
        async with session.get(f"/company/{number}", headers=STREAM) as refused:
            assert refused.status == 401
        async with session.get(f"/company/{number}", headers=REST) as admitted:
            assert admitted.status == 200
        state = sim.state
        assert [(s.path, s.key, s.status) for s in state.streams] == [
            ("/companies", REST_KEY, 401),
            ("/companies", STREAM_KEY, 200),
            ("/filings", REST_KEY, 401),
            ("/filings", STREAM_KEY, 200),
        ]
        assert [(r.key, r.status) for r in state.requests] == [(STREAM_KEY, 401), (REST_KEY, 200)]
        assert state.served(401) == 3
        assert [s.key for s in state.streams_on("/filings")] == [REST_KEY, STREAM_KEY]


# --- what events look like ----------------------------------------------------------------------


async def test_deleted_events_may_carry_no_data_at_all() -> None:
    knobs = dict(seed=3, deleted_share=1.0, backlog_events=300)
    async with simulator(deleted_without_data_share=1.0, **knobs) as (sim, session):
        async with session.get("/companies?timepoint=0", headers=STREAM) as response:
            bare = await read_events(response, 300)
    assert all(e["event"]["type"] == "deleted" and "data" not in e for e in bare)
    assert all(list(e) == ["resource_kind", "resource_uri", "resource_id", "event"] for e in bare)

    async with simulator(deleted_without_data_share=0.5, **knobs) as (sim, session):
        async with session.get("/companies?timepoint=0", headers=STREAM) as response:
            mixed = await read_events(response, 300)
    with_data = [e for e in mixed if "data" in e]
    assert 90 < len(with_data) < 210  # both shapes, about half each
    assert all(e["data"]["company_number"] == e["resource_id"] for e in with_data)
    assert all("fields_changed" not in e["event"] for e in mixed)  # a deletion changes no field


def _nulls(value: object, path: str = "") -> list[str]:
    """Paths of every null inside ``value``."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _nulls(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _nulls(item, f"{path}[{i}]")]
    return []


async def test_null_fields_are_stripped_unless_the_older_shape_is_asked_for() -> None:
    knobs = dict(seed=8, deleted_share=0.2, backlog_events=200, filings_backlog_events=200)
    async with simulator(**knobs) as (sim, session):
        stripped = []
        for path in PATHS:
            async with session.get(f"{path}?timepoint=0", headers=STREAM) as response:
                stripped += await read_events(response, 200)
    assert [p for e in stripped for p in _nulls(e)] == []  # absent, never null
    profiles = [e["data"] for e in stripped if e["resource_kind"] == "company-profile" and "data" in e]
    assert any("company_status_detail" not in d for d in profiles)  # optionals really absent
    assert any("barcode" not in e["data"] for e in stripped if e["resource_kind"] == "filing-history")

    async with simulator(null_fields=True, **knobs) as (sim, session):
        async with session.get("/companies?timepoint=0", headers=STREAM) as response:
            older = await read_events(response, 200)
    profiles = [e["data"] for e in older if e["data"] is not None]
    # every optional is present: a null where the record has no value
    assert all("company_status_detail" in d and "date_of_cessation" in d for d in profiles)
    assert any(d["company_status_detail"] is None for d in profiles)
    assert any(e["data"] is None for e in older)  # a data-less deletion, as "data": null
    assert all(e["event"].get("fields_changed", ()) is not None for e in older)
    # the same events otherwise: drop the nulls and they are today's events
    async with simulator(**knobs) as (sim, session):
        async with session.get("/companies?timepoint=0", headers=STREAM) as response:
            today = await read_events(response, 200)

    def strip(value: object) -> object:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    assert [strip(e) for e in older] == today


_PLAIN = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
_FRACTION = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


async def test_published_at_comes_in_three_forms() -> None:
    # Events published in the afternoon (UTC), where a 12-hour clock differs from a 24-hour one.
    clock = FakeClock(epoch("2025-01-06T14:30:00"))
    knobs = dict(seed=2, backlog_events=120, events_per_second=0.5)
    forms = {}
    for name, extra in {
        "plain": {},
        "fraction": dict(published_at_fraction_share=1.0),
        "twelve_hour": dict(published_at_12h_share=1.0),
    }.items():
        async with simulator(clock, **knobs, **extra) as (sim, session):
            timeline = sim.simulator.timeline
            async with session.get("/companies?timepoint=0", headers=STREAM) as response:
                events = await read_events(response, 120)
            forms[name] = [e["event"]["published_at"] for e in events]
            truth = [
                datetime.fromtimestamp(timeline.publish_time(i), UTC) for i in range(len(events))
            ]
    assert all(_PLAIN.fullmatch(s) for s in forms["plain"])
    assert forms["plain"] == [t.strftime("%Y-%m-%dT%H:%M:%S") for t in truth]
    assert all(_FRACTION.fullmatch(s) for s in forms["fraction"])
    assert [s[:19] for s in forms["fraction"]] == forms["plain"]
    assert len({s[20:23] for s in forms["fraction"]}) > 10  # the milliseconds vary
    # 12-hour: the same stamp with the hour on a 12-hour clock and no AM/PM marker
    assert all(_PLAIN.fullmatch(s) for s in forms["twelve_hour"])
    expected = [f"{t:%Y-%m-%dT}{(t.hour % 12) or 12:02d}:{t:%M:%S}" for t in truth]
    assert forms["twelve_hour"] == expected
    assert any(t.hour >= 13 for t in truth)  # so the two clocks really differ here
    assert forms["twelve_hour"] != forms["plain"]

    async with simulator(clock, published_at_fraction_share=0.3, published_at_12h_share=0.3,
                         **knobs) as (sim, session):
        async with session.get("/companies?timepoint=0", headers=STREAM) as response:
            mixed = [e["event"]["published_at"] for e in await read_events(response, 120)]
        async with session.get("/companies?timepoint=1050", headers=STREAM) as response:
            again = [e["event"]["published_at"] for e in await read_events(response, 10)]
    fractions = sum(bool(_FRACTION.fullmatch(s)) for s in mixed)
    twelve = sum(s != p for s, p in zip(mixed, forms["plain"]) if not _FRACTION.fullmatch(s))
    assert fractions > 10 and twelve > 5 and 120 - fractions - twelve > 10
    # a form belongs to the event: resumed, the same event has the same stamp
    resumed_from = sim.simulator.timeline.index_at_or_after(1050)
    assert again == mixed[resumed_from : resumed_from + 10]


# --- connection lifetime ----------------------------------------------------------------------


async def alive(response) -> None:
    """Read (events, if any) up to a heartbeat: proof the connection is still open."""
    async with asyncio.timeout(TIMEOUT):
        while (line := await response.content.readline()) != b"\n":
            assert line, "the connection ended"


async def test_every_connection_is_dropped_once_a_night_between_two_and_three() -> None:
    clock = FakeClock(epoch("2025-01-30T01:59:00"))
    async with simulator(clock, seed=5, events_per_second=0.001, heartbeat_interval=0.02) as (
        sim,
        session,
    ):
        config = sim.simulator.config
        drop = nightly_drop_at(config, epoch("2025-01-30T00:00:00"))
        assert epoch("2025-01-30T02:00:00") <= drop < epoch("2025-01-30T03:00:00")
        async with session.get("/companies", headers=STREAM) as companies:
            async with session.get("/filings", headers=STREAM) as filings:
                clock.now = drop - 0.5  # just before: both connections are still alive
                for live in (companies, filings):
                    await alive(live)
                clock.now = drop
                for live in (companies, filings):
                    assert await read_to_end(live) == []  # a clean end of the body
        assert [s.end for s in sim.state.streams] == ["nightly", "nightly"]
        # a connection opened after tonight's drop lives until tomorrow night's
        clock.now = drop + 60
        tomorrow = nightly_drop_at(config, epoch("2025-01-31T00:00:00"))
        assert epoch("2025-01-31T02:00:00") <= tomorrow < epoch("2025-01-31T03:00:00")
        uncapped = msgspec.structs.replace(config, max_connection_seconds=0)
        assert connection_deadline(uncapped, clock.now) == (tomorrow, "nightly")
        # with the 24 h cap, whichever comes first
        assert connection_deadline(config, clock.now) == min(
            (tomorrow, "nightly"), (clock.now + 86_400, "max_age")
        )
        async with session.get("/companies", headers=STREAM) as after:
            await alive(after)
    # another night, another moment; and the knob turns it off
    moments = {nightly_drop_at(config, epoch(f"2025-02-{d:02d}T00:00:00")) % 86_400
               for d in range(1, 8)}
    assert len(moments) == 7
    assert connection_deadline(SimulatorConfig(nightly_drop=False, max_connection_seconds=0),
                               drop) == (float("inf"), "")


async def test_no_connection_outlives_24_hours() -> None:
    clock = FakeClock(epoch("2025-01-30T10:00:00"))
    knobs = dict(nightly_drop=False, events_per_second=0.0001, heartbeat_interval=0.02)
    async with simulator(clock, **knobs) as (sim, session):
        assert sim.simulator.config.max_connection_seconds == 86_400
        opened = clock.now
        async with session.get("/filings", headers=STREAM) as live:
            clock.now = opened + 86_399.9
            await alive(live)
            clock.now = opened + 86_400
            await read_to_end(live)
        (record,) = sim.state.streams
        assert record.end == "max_age" and record.path == "/filings"


# --- refused connects ----------------------------------------------------------------------------


async def test_stream_connects_can_meet_html_gateway_pages() -> None:
    async with simulator(stream_gateway_error_share=1.0) as (sim, session):
        for path in PATHS:
            async with session.get(f"{path}?timepoint=0", headers=STREAM) as page:
                assert page.status in {502, 503, 504}
                assert page.content_type == "text/html"
                body = await page.text()
                assert body.startswith("<html>") and f"<h1>{page.status} " in body
                with pytest.raises(json.JSONDecodeError):
                    json.loads(body)

    outcomes = []
    for _ in range(2):  # the same seed meets the same pages on the same attempts
        async with simulator(seed=4, stream_gateway_error_share=0.4) as (sim, session):
            for _ in range(30):
                async with session.get("/companies", headers=STREAM):
                    pass
            outcomes.append([s.status for s in sim.state.streams])
    assert outcomes[0] == outcomes[1]
    assert {200, 502, 503, 504} >= set(outcomes[0]) and 200 in outcomes[0]
    assert 5 < sum(s != 200 for s in outcomes[0]) < 20


async def test_connecting_too_often_is_answered_429() -> None:
    clock = FakeClock()
    async with simulator(clock, stream_connect_min_interval=60.0) as (sim, session):
        async def connect(path: str = "/companies", headers=STREAM) -> int:
            async with session.get(path, headers=headers) as response:
                return response.status

        assert await connect() == 200
        assert await connect() == 429
        assert await connect("/filings") == 429  # per key: the other stream must wait too
        clock.advance(59.9)
        assert await connect() == 429  # refusals do not restart the interval ...
        clock.advance(0.1)
        assert await connect("/filings") == 200  # ... so waiting it out always gets in
        assert await connect(headers=REST) == 401  # a wrong key is refused before pacing
        statuses = [(s.path, s.status) for s in sim.state.streams]
    assert statuses == [
        ("/companies", 200), ("/companies", 429), ("/filings", 429), ("/companies", 429),
        ("/filings", 200), ("/companies", 401),
    ]
    assert sim.state.served(429) == 3

    # per (key, path): each stream keeps its own interval
    async with simulator(clock, stream_connect_min_interval=60.0,
                         stream_connect_per_path=True) as (sim, session):
        for path, expected in (("/companies", 200), ("/filings", 200), ("/companies", 429)):
            async with session.get(path, headers=STREAM) as response:
                assert response.status == expected


# --- pace and retention ---------------------------------------------------------------------------


async def test_default_pace_is_half_an_event_a_second_after_a_backlog_served_at_once() -> None:
    clock = FakeClock()
    async with simulator(clock) as (sim, session):
        config = sim.simulator.config
        assert (config.events_per_second, config.backlog_events) == (0.5, 1000)
        assert config.filings_pace == 1.0 and config.filings_backlog == 2000
        async with session.get(f"/companies?timepoint={config.first_timepoint}",
                               headers=STREAM) as backlog:
            served = await read_events(backlog, 1000)  # no clock movement needed
        timeline = sim.simulator.timeline
        assert served[-1]["event"]["timepoint"] == timeline.head_timepoint(clock())
        async with session.get("/companies", headers=STREAM) as live:
            clock.advance(10.0)
            fresh = await read_events(live, 5)
            assert timeline.published_count(clock()) == 1005  # 10 s at 0.5/s
        assert fresh[-1]["event"]["timepoint"] == timeline.head_timepoint(clock())
        # a day of it is about 43,000 events, the real stream's volume
        assert timeline.published_count(clock() + 86_400) - timeline.published_count(clock()) == 43_200


async def test_a_resume_point_older_than_three_days_of_retention_is_416() -> None:
    clock = FakeClock()
    async with simulator(clock, backlog_events=100) as (sim, session):
        config = sim.simulator.config
        assert config.retention_seconds == 3 * 86_400 and config.retention is None
        for path, feed in sim.simulator.feeds.items():
            first = feed.timepoint_of(0)
            async with session.get(f"{path}?timepoint={first}", headers=STREAM) as fresh:
                assert fresh.status == 200  # nothing has expired yet
            # three days after the 11th event was published, the first 11 have expired
            clock.now = feed.publish_time(10) + config.retention_seconds + 0.5
            expired_last = feed.timepoint_of(10)
            assert feed.oldest_resumable(clock()) == expired_last + 1
            async with session.get(f"{path}?timepoint={expired_last}", headers=STREAM) as old:
                assert old.status == 416
            async with session.get(f"{path}?timepoint={expired_last + 1}", headers=STREAM) as ok:
                assert ok.status == 200
                (event,) = await read_events(ok, 1)
                assert event["event"]["timepoint"] == feed.timepoint_of(11)
            clock.now = sim.simulator.timeline.start
        statuses = [(s.path, s.status) for s in sim.state.streams]
    assert statuses == [(p, s) for p in PATHS for s in (200, 416, 200)]
    assert sim.state.served(416) == 2
