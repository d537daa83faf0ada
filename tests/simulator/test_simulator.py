"""The Companies House simulator, checked over real loopback HTTP with a real aiohttp client.

Time is a fake clock injected into the simulator, so windows and the stream head move when a test
says so and nothing sleeps on purpose.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import msgspec
import pytest

from eventlog.simulator import (
    RECORD,
    STATE,
    STRIKE_OFF_DETAIL,
    SimulatorConfig,
    Timeline,
    Universe,
    build_app,
    max_in_any_window,
    running_simulator,
    serve_forever,
    window_label,
)
from eventlog.simulator.stream import GARBAGE_LINES

# The first captured event of tests/data/captured-events.ndjson, verbatim.
SAMPLE = json.loads(
    '{"resource_kind":"company-profile","resource_uri":"/company/05954546","resource_id":"05954546",'
    '"data":{"accounts":{"accounting_reference_date":{"day":"30","month":"09"},"last_accounts":'
    '{"made_up_to":"2022-09-30","period_end_on":"2022-09-30","period_start_on":"2021-10-01",'
    '"type":"micro-entity"},"next_accounts":{"due_on":"2024-06-30","period_end_on":"2023-09-30",'
    '"period_start_on":"2022-10-01"},"next_due":"2024-06-30","next_made_up_to":"2023-09-30"},'
    '"can_file":true,"company_name":"GLENCOYNE ENGINEERING LTD","company_number":"05954546",'
    '"company_status":"active","confirmation_statement":{"last_made_up_to":"2023-10-03",'
    '"next_due":"2024-10-17","next_made_up_to":"2024-10-03"},"date_of_creation":"2006-10-03",'
    '"etag":"055ef4b361baa737e96bdaf5e7c0cb9b1ba31b3b","jurisdiction":"england-wales",'
    '"last_full_members_list_date":"2015-10-03","links":{"filing_history":'
    '"/company/05954546/filing-history","officers":"/company/05954546/officers",'
    '"persons_with_significant_control":"/company/05954546/persons-with-significant-control",'
    '"self":"/company/05954546"},"registered_office_address":{"address_line_1":'
    '"Unit10 Heath Road Industrial Estate","address_line_2":"Banham","locality":"Norwich",'
    '"postal_code":"NR16 2HS"},"sic_codes":["45200"],"type":"ltd"},"event":{"timepoint":68805561,'
    '"published_at":"2023-11-04T14:33:29","type":"changed"}}'
)
# Keys the sample lacks but a real profile may carry.
OPTIONAL_DATA_KEYS = {
    "company_status_detail",
    "date_of_cessation",
    "has_charges",
    "has_insolvency_history",
}
START = 1_700_000_000.5  # fake epoch; the half second makes X-Ratelimit-Reset rounding visible
TIMEOUT = 5.0


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def auth(key: str = "sim-key") -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(key, "")}


def stream_auth() -> dict[str, str]:
    """The stream's own key: Companies House's stream and REST keys are different keys."""
    return auth("sim-stream-key")


@asynccontextmanager
async def simulator(
    clock: FakeClock | None = None, **knobs: object
) -> AsyncIterator[tuple[object, aiohttp.ClientSession]]:
    """A simulator on loopback plus a client session (no auth by default)."""
    config = SimulatorConfig(**knobs)  # type: ignore[arg-type]
    async with running_simulator(config, clock=clock or FakeClock()) as sim:
        async with aiohttp.ClientSession(sim.base_url) as session:
            yield sim, session


async def read_events(response: aiohttp.ClientResponse, count: int) -> list[dict]:
    """The next ``count`` events of a stream, skipping heartbeats."""
    events: list[dict] = []
    async with asyncio.timeout(TIMEOUT):
        while len(events) < count:
            line = await response.content.readline()
            assert line, "stream ended early"
            if line != b"\n":
                events.append(json.loads(line))
    return events


# --- shape ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_events_have_the_shape_of_the_captured_sample() -> None:
    # The knobs that deliberately leave the sample's shape (data-less deletions, profiles without
    # an officers link) are off here; tests/test_simulator_facts.py covers them.
    async with simulator(seed=7, deleted_without_data_share=0.0, no_officers_link_share=0.0) as (
        sim,
        session,
    ):
        async with session.get("/companies?timepoint=0", headers=stream_auth()) as response:
            assert response.status == 200
            events = await read_events(response, 200)
    sample_data_keys = set(SAMPLE["data"])
    for event in events:
        assert list(event) == list(SAMPLE)  # same keys, same order
        data, meta = event["data"], event["event"]
        assert event["resource_kind"] == "company-profile"
        assert event["resource_uri"] == f"/company/{event['resource_id']}"
        assert data["company_number"] == event["resource_id"]
        assert re.fullmatch(r"(\d{8}|(SC|NI|OC)\d{6})", event["resource_id"])
        assert sample_data_keys - {"last_full_members_list_date"} <= set(data)
        assert set(data) <= sample_data_keys | OPTIONAL_DATA_KEYS
        assert set(data["links"]) == set(SAMPLE["data"]["links"])
        assert set(data["accounts"]) <= set(SAMPLE["data"]["accounts"])
        assert set(data["registered_office_address"]) <= set(
            SAMPLE["data"]["registered_office_address"]
        )
        assert data["sic_codes"] and all(re.fullmatch(r"\d{5}", c) for c in data["sic_codes"])
        assert {"timepoint", "published_at", "type"} <= set(meta)
        # the real envelope's order: fields_changed (when any) first
        assert list(meta) == [
            k for k in ("fields_changed", "timepoint", "published_at", "type") if k in meta
        ]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", meta["published_at"])
        assert meta["type"] in {"changed", "deleted"}
    timepoints = [e["event"]["timepoint"] for e in events]
    assert timepoints[0] == 1000  # first_timepoint
    assert timepoints == sorted(set(timepoints))
    assert timepoints[-1] - timepoints[0] > len(timepoints) - 1  # there are gaps
    strike = sum(e["data"].get("company_status_detail") == STRIKE_OFF_DETAIL for e in events)
    assert 0.15 < strike / len(events) < 0.45  # strike_off_share is 0.3


def test_universe_has_prefixed_numbers_and_the_configured_strike_off_share() -> None:
    universe = Universe(SimulatorConfig(seed=3, company_count=2000, strike_off_share=0.5))
    assert len(set(universe.numbers)) == 2000
    assert {n[:2] for n in universe.numbers} >= {"SC", "NI", "OC"}
    share = sum(
        universe.profile(n).company_status_detail == STRIKE_OFF_DETAIL for n in universe.numbers
    )
    assert 0.45 < share / 2000 < 0.55


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_same_event_and_profile_different_seed_differs() -> None:
    def world(seed: int) -> Timeline:
        config = SimulatorConfig(seed=seed)
        return Timeline(config, Universe(config), start=START)

    first, again, other = world(11), world(11), world(12)
    for index in (0, 1, 57, 999, 123_456):
        assert first.timepoint_of(index) == again.timepoint_of(index)
        encoded = msgspec.json.encode(first.event_at(index))
        assert encoded == msgspec.json.encode(again.event_at(index))
    number = first.universe.numbers[42]
    assert first.universe.profile(number) == again.universe.profile(number)
    assert first.universe.officers(number) == again.universe.officers(number)
    assert first.universe.numbers != other.universe.numbers
    assert [first.timepoint_of(i) for i in range(3000)] != [
        other.timepoint_of(i) for i in range(3000)
    ]


@pytest.mark.asyncio
async def test_two_servers_with_one_seed_serve_identical_bytes_and_rest_agrees() -> None:
    bodies = []
    for _ in range(2):
        async with simulator(seed=5) as (sim, session):
            async with session.get("/companies?timepoint=1100", headers=stream_auth()) as response:
                lines = [await response.content.readline() for _ in range(30)]
            event = json.loads(lines[0])
            async with session.get(event["resource_uri"], headers=auth()) as profile:
                assert profile.status == 200
                assert await profile.json() == event["data"]
            bodies.append(lines)
    assert bodies[0] == bodies[1]


# --- stream: resume, head, retention, auth, faults ---------------------------------------------


@pytest.mark.asyncio
async def test_live_stream_follows_the_clock_and_resume_continues_exactly() -> None:
    clock = FakeClock()
    async with simulator(clock, seed=9, events_per_second=20) as (sim, session):
        timeline = sim.simulator.timeline
        head = timeline.head_timepoint(clock())
        async with session.get("/companies", headers=stream_auth()) as live:
            clock.advance(1.0)  # exactly 20 new events are published
            events = await read_events(live, 20)
        timepoints = [e["event"]["timepoint"] for e in events]
        assert timepoints[0] == timeline.timepoint_of(timeline.index_at_or_after(head + 1))
        assert timepoints[-1] == timeline.head_timepoint(clock())

        resume_from = timepoints[10]
        async with session.get(f"/companies?timepoint={resume_from}", headers=stream_auth()) as again:
            resumed = await read_events(again, 10)
        assert resumed == events[10:]  # same events, same published_at, across connections

        gap = next(t for t in itertools.count(1000) if not timeline.is_used(t))
        async with session.get(f"/companies?timepoint={gap}", headers=stream_auth()) as in_gap:
            (first,) = await read_events(in_gap, 1)
        assert first["event"]["timepoint"] == next(
            t for t in itertools.count(gap) if timeline.is_used(t)
        )
        assert first["event"]["timepoint"] > gap
        assert [s.requested_timepoint for s in sim.state.streams] == [None, resume_from, gap]


@pytest.mark.asyncio
async def test_timepoint_older_than_retention_gets_416() -> None:
    clock = FakeClock()
    async with simulator(clock, retention=50, backlog_events=200, events_per_second=20) as (
        sim,
        session,
    ):
        head = sim.simulator.timeline.head_timepoint(clock())
        async with session.get(f"/companies?timepoint={head - 51}", headers=stream_auth()) as old:
            assert old.status == 416
        async with session.get(f"/companies?timepoint={head - 50}", headers=stream_auth()) as ok:
            assert ok.status == 200
            (event,) = await read_events(ok, 1)
            assert event["event"]["timepoint"] >= head - 50
        clock.advance(10)  # 200 more events: the same timepoint is now out of retention
        async with session.get(f"/companies?timepoint={head - 50}", headers=stream_auth()) as stale:
            assert stale.status == 416
        async with session.get("/companies?timepoint=abc", headers=stream_auth()) as bad:
            assert bad.status == 400


@pytest.mark.asyncio
async def test_wrong_or_missing_key_is_401_on_stream_and_rest() -> None:
    async with simulator(api_key="rest-key", stream_key="stream-key") as (sim, session):
        number = sim.simulator.universe.numbers[0]
        for headers in ({}, auth("wrong"), auth("rest-key")):
            async with session.get("/companies", headers=headers) as response:
                assert response.status == 401
        for headers in ({}, auth("wrong"), auth("stream-key")):
            async with session.get(f"/company/{number}", headers=headers) as response:
                assert response.status == 401
        async with session.get(f"/company/{number}", headers=auth("rest-key")) as response:
            assert response.status == 200
            # the 401s were not counted against the key
            assert response.headers["X-Ratelimit-Remain"] == "599"
        assert sim.state.statuses() == [401, 401, 401, 200]
        assert [s.status for s in sim.state.streams] == [401, 401, 401]


@pytest.mark.asyncio
async def test_heartbeat_while_idle_and_clean_close_after_n_events() -> None:
    async with simulator(heartbeat_interval=0.05, close_after_events=5) as (sim, session):
        async with session.get("/companies", headers=stream_auth()) as idle:  # live: nothing new
            async with asyncio.timeout(TIMEOUT):
                assert await idle.content.readline() == b"\n"
        async with session.get("/companies?timepoint=1000", headers=stream_auth()) as closing:
            events = await read_events(closing, 5)
            async with asyncio.timeout(TIMEOUT):
                assert await closing.content.read() == b""  # clean end of body, no error
        assert len(events) == 5
        assert sim.state.streams[-1].end == "close_after"


@pytest.mark.asyncio
async def test_fault_knobs_garbage_lines_and_mid_line_disconnect() -> None:
    async with simulator(malformed_share=1.0) as (sim, session):
        async with session.get("/companies?timepoint=1000", headers=stream_auth()) as garbage:
            lines = [await garbage.content.readline() for _ in range(10)]
        assert all(line in GARBAGE_LINES for line in lines)

    async with simulator(disconnect_mid_line_share=1.0) as (sim, session):
        async with session.get("/companies?timepoint=1000", headers=stream_auth()) as broken:
            with pytest.raises(aiohttp.ClientPayloadError):
                async with asyncio.timeout(TIMEOUT):
                    await broken.content.read()
        assert sim.state.streams[-1].end == "disconnect"


# --- REST ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_profile_200_404_500() -> None:
    async with simulator(seed=2) as (sim, session):
        universe = sim.simulator.universe
        number = universe.numbers[3]
        async with session.get(f"/company/{number}", headers=auth()) as found:
            assert found.status == 200
            body = await found.json()
        assert body == json.loads(msgspec.json.encode(universe.profile(number)))
        assert body["company_number"] == number

        unknown = next(f"{n:08d}" for n in range(99_999_999, 0, -1) if f"{n:08d}" not in universe)
        async with session.get(f"/company/{unknown}", headers=auth()) as missing:
            assert missing.status == 404
            assert await missing.json() == {
                "errors": [{"error": "company-profile-not-found", "type": "ch:service"}]
            }
        for malformed in ("0595454", "059545461", "sc123456", "05954-46"):
            async with session.get(f"/company/{malformed}", headers=auth()) as bad:
                assert bad.status == 500, malformed
                assert "X-Ratelimit-Remain" in bad.headers  # counted like any other
        assert sim.state.statuses() == [200, 404, 500, 500, 500, 500]


@pytest.mark.asyncio
async def test_officer_pages_merge_to_total_results_without_duplicates() -> None:
    # Counts that lag the items are their own test (tests/test_simulator_officers.py).
    async with simulator(seed=4, lagging_counts_share=0.0) as (sim, session):
        universe = sim.simulator.universe
        number = next(n for n in universe.numbers if len(universe.officers(n)) > 35)
        items: list[dict] = []
        start = 0
        pages = 0
        while True:
            url = f"/company/{number}/officers?start_index={start}&items_per_page=35"
            async with session.get(url, headers=auth()) as response:
                assert response.status == 200
                page = await response.json()
            pages += 1
            assert page["kind"] == "officer-list"
            assert page["start_index"] == start and page["items_per_page"] == 35
            assert page["links"]["self"] == f"/company/{number}/officers"
            items += page["items"]
            start += 35
            if start >= page["total_results"]:
                break
        assert pages >= 2
        assert len(items) == page["total_results"] == (
            page["active_count"] + page["inactive_count"] + page["resigned_count"]
        )
        assert len({item["links"]["self"] for item in items}) == len(items)
        for item in items:
            assert re.fullmatch(r"[A-Z' ]+, [A-Z][a-z]+( [A-Z][a-z]+)?", item["name"])
            assert re.fullmatch(
                r"/officers/[A-Za-z0-9_-]{27}/appointments", item["links"]["officer"]["appointments"]
            )
            assert item["officer_role"] in {
                "director", "secretary", "llp-member", "llp-designated-member"
            }
            assert item["appointed_on"] <= item.get("resigned_on", "9999")
        url = f"/company/{number}/officers?items_per_page=500"
        async with session.get(url, headers=auth()) as capped:
            whole = await capped.json()
        assert whole["items_per_page"] == 100
        assert whole["items"] == items


# --- rate limiting ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_fixed_window_exact_limit_then_429_then_new_window() -> None:
    clock = FakeClock()
    async with simulator(clock, rate_limit_requests=5, rate_limit_window=10) as (sim, session):
        number = sim.simulator.universe.numbers[0]

        async def get() -> aiohttp.ClientResponse:
            async with session.get(f"/company/{number}", headers=auth()) as response:
                await response.read()
                return response

        first_reset = math.ceil(START + 10)
        for remaining in (4, 3, 2, 1, 0):
            response = await get()
            assert response.status == 200
            assert response.headers["X-Ratelimit-Limit"] == "5"
            assert response.headers["X-Ratelimit-Remain"] == str(remaining)
            assert response.headers["X-Ratelimit-Reset"] == str(first_reset)
            assert response.headers["X-Ratelimit-Window"] == "10s"
            clock.advance(1)
        for _ in range(3):  # 429 until the window ends, and the 429s do not extend it
            response = await get()
            assert response.status == 429
            assert response.headers["X-Ratelimit-Remain"] == "0"
            assert response.headers["X-Ratelimit-Reset"] == str(first_reset)
            clock.advance(1.6)
        clock.now = START + 10  # the window is half-open: it ends exactly here
        response = await get()
        assert response.status == 200
        assert response.headers["X-Ratelimit-Remain"] == "4"
        assert response.headers["X-Ratelimit-Reset"] == str(math.ceil(START + 20))

        record = sim.app[RECORD]
        assert record is sim.app[STATE].requests
        assert [r.status for r in record] == [200] * 5 + [429] * 3 + [200]
        assert {(r.key, r.method, r.path) for r in record} == {
            ("sim-key", "GET", f"/company/{number}")
        }
        served = [r.time for r in record if r.status == 200]
        assert max_in_any_window(served, 10) == 5


@pytest.mark.asyncio
async def test_429_storm_and_injected_5xx_still_carry_rate_headers() -> None:
    async with simulator(storm_after_requests=2, storm_requests=3) as (sim, session):
        number = sim.simulator.universe.numbers[0]
        statuses = []
        for _ in range(6):
            async with session.get(f"/company/{number}", headers=auth()) as response:
                statuses.append(response.status)
                assert response.headers["X-Ratelimit-Window"] == "5m"
                if response.status == 429:
                    assert response.headers["X-Ratelimit-Remain"] == "0"
        assert statuses == [200, 200, 429, 429, 429, 200]

    async with simulator(error_5xx_share=1.0) as (sim, session):
        async with session.get(f"/company/{number}", headers=auth()) as response:
            assert response.status in {500, 502, 503}
            assert response.headers["X-Ratelimit-Remain"] == "599"


def test_max_in_any_window_on_hand_made_inputs() -> None:
    assert max_in_any_window([], 10) == 0
    assert max_in_any_window([0, 1, 2, 3, 4], 10) == 5  # exactly at a limit of 5
    assert max_in_any_window([0, 1, 2, 3, 4, 9.99], 10) == 6  # one over
    assert max_in_any_window([0, 10], 10) == 1  # half-open: [0, 10) excludes 10
    assert max_in_any_window([0, 9.999], 10) == 2
    # fixed windows [0,10) and [10,20) hold 2 each, but the sliding window [9, 19) holds 4
    assert max_in_any_window([10.5, 9, 10, 9.5], 10) == 4
    assert max_in_any_window([5.0] * 3, 1) == 3


def test_window_label_and_config_defaults() -> None:
    assert window_label(300) == "5m"
    assert window_label(10) == "10s"
    config = SimulatorConfig()
    # Companies House's stream and REST keys are different keys; equal ones are refused.
    assert (config.api_key, config.stream_key) == ("sim-key", "sim-stream-key")
    with pytest.raises(ValueError, match="stream_key must differ"):
        SimulatorConfig(api_key="k", stream_key="k")
    with pytest.raises(ValueError, match="stream_key must be a non-empty string"):
        SimulatorConfig(stream_key=None)  # type: ignore[arg-type]
    assert (config.rate_limit_requests, config.rate_limit_window) == (600, 300)
    assert (config.ip_limit_requests, config.ip_limit_window) == (2000, 300)
    assert config.events_per_second == 0.5 and config.retention_seconds == 3 * 86_400
    with pytest.raises(ValueError):
        SimulatorConfig(gap_share=1.5)
    with pytest.raises(ValueError, match="add up to"):
        SimulatorConfig(dissolved_share=0.6, liquidation_share=0.5)
    with pytest.raises(ValueError, match="nightly_drop_window"):
        SimulatorConfig(nightly_drop_window=(10_800.0, 7_200.0))


@pytest.mark.asyncio
async def test_stop_ends_open_streams_promptly() -> None:
    async with simulator() as (sim, session):
        async with session.get("/companies", headers=stream_auth()) as live:
            assert live.status == 200
            async with asyncio.timeout(1.5):  # well below the runner's shutdown timeout
                await sim.stop()
            assert await live.content.read() == b""
        assert sim.state.streams[-1].end == "shutdown"
        await sim.stop()  # idempotent


@pytest.mark.asyncio
async def test_serve_forever_listens_until_cancelled() -> None:
    ready: asyncio.Queue[str] = asyncio.Queue()
    task = asyncio.create_task(
        serve_forever(SimulatorConfig(), "127.0.0.1", 0, ready=lambda s: ready.put_nowait(s.base_url))
    )
    async with asyncio.timeout(TIMEOUT):
        base_url = await ready.get()
    async with aiohttp.ClientSession(base_url) as session:
        async with session.get("/company/00000000", headers=auth()) as response:
            assert response.status in {200, 404}
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_build_app_exposes_state_and_record() -> None:
    app = build_app(SimulatorConfig(), clock=FakeClock())
    assert app[RECORD] == [] and app[RECORD] is app[STATE].requests
