"""The /filings stream: the shape of a captured event, its own timepoints, and first Gazette
notices consistent with the simulator's companies (before, or instead of, /companies events)."""

from __future__ import annotations

import base64
import json
import re

from eventlog.simulator import (
    GAZETTE_TYPES,
    STRIKE_OFF_DETAIL,
    first_seen,
    is_first_gazette_notice,
)
from support.ch_simulator import REST, STREAM, FakeClock, read_events, simulator

# A /filings event captured from the real stream, verbatim.
SAMPLE = json.loads(
    '{"resource_kind":"filing-history","resource_uri":"/company/10620794/filing-history/'
    'MzM5ODkyOTYzNmFkaXF6a2N4","resource_id":"MzM5ODkyOTYzNmFkaXF6a2N4","data":{"barcode":'
    '"XCFK6VA9","category":"accounts","date":"2023-11-04","description":'
    '"accounts-with-accounts-type-dormant","description_values":{"made_up_date":"2023-02-28"},'
    '"links":{"document_metadata":"https://frontend-doc-api.company-information.service.gov.uk/'
    'document/xvJsYKTWjnevji-qZ4WIsluwUQWzTeoeyCQfv1zvo_0","self":"/company/10620794/'
    'filing-history/MzM5ODkyOTYzNmFkaXF6a2N4"},"pages":2,"transaction_id":'
    '"MzM5ODkyOTYzNmFkaXF6a2N4","type":"AA"},"event":{"fields_changed":'
    '["links.document_metadata"],"timepoint":140062688,"published_at":"2023-11-04T14:33:31",'
    '"type":"changed"}}'
)


def company_of(event: dict) -> str:
    return re.fullmatch(r"/company/([A-Z0-9]{8})/filing-history/.+", event["resource_uri"])[1]


def check_transaction_id(value: str) -> None:
    assert re.fullmatch(r"\d{10}adiqzkcx", base64.b64decode(value).decode())


def test_the_captured_sample_passes_the_same_checks() -> None:
    """The checks below are the real stream's shape: the captured event passes them."""
    check_transaction_id(SAMPLE["resource_id"])
    assert company_of(SAMPLE) == "10620794"


async def test_filing_events_have_the_shape_of_the_captured_sample() -> None:
    async with simulator(seed=3, filings_backlog_events=400, gazette_share=0.1) as (sim, session):
        async with session.get("/filings?timepoint=0", headers=STREAM) as response:
            assert response.status == 200
            events = await read_events(response, 400)
    item_keys = set(SAMPLE["data"]) | {"paper_filed"}
    kinds = set()
    for event in events:
        assert list(event) == list(SAMPLE)
        data, meta = event["data"], event["event"]
        assert event["resource_kind"] == "filing-history"
        assert event["resource_id"] == data["transaction_id"]
        check_transaction_id(data["transaction_id"])
        assert event["resource_uri"] == data["links"]["self"]
        assert event["resource_uri"] == f"/company/{company_of(event)}/filing-history/{event['resource_id']}"
        assert list(data) == sorted(data) and set(data) <= item_keys
        assert {"category", "date", "description", "links", "transaction_id", "type"} <= set(data)
        document = data["links"].get("document_metadata")
        assert document is None or re.fullmatch(
            r"https://frontend-doc-api\.company-information\.service\.gov\.uk/document/[\w-]{43}",
            document)
        assert list(meta) == [k for k in SAMPLE["event"] if k in meta]
        assert meta.get("fields_changed", ["links.document_metadata"]) == ["links.document_metadata"]
        assert meta["type"] == "changed"
        kinds.add((data["type"], data["category"]))
    assert {("AA", "accounts"), ("CS01", "confirmation-statement"), ("AD01", "address"),
            ("GAZ1", "gazette")} <= kinds
    # accounts read like the sample: the description names the type, the values the date
    accounts = [e["data"] for e in events if e["data"]["type"] == "AA"]
    assert all(re.fullmatch(r"accounts-with-accounts-type-[a-z-]+", a["description"]) and
               set(a["description_values"]) == {"made_up_date"} and "barcode" in a
               for a in accounts)


async def test_filings_has_its_own_timepoints_and_resume() -> None:
    # (Retention per path: tests/test_simulator_stream_facts.py.)
    clock = FakeClock()
    async with simulator(clock, seed=4, events_per_second=10.0) as (sim, session):
        filings = sim.simulator.filings
        assert filings.timepoint_of(0) == sim.simulator.config.filings_first_timepoint == 1_000_000
        async with session.get("/filings?timepoint=0", headers=STREAM) as response:
            (first,) = await read_events(response, 1)
        assert first["event"]["timepoint"] == 1_000_000
        async with session.get("/companies?timepoint=0", headers=STREAM) as response:
            (company,) = await read_events(response, 1)
        assert company["event"]["timepoint"] == 1000  # the other stream's numbering
        head = filings.head_timepoint(clock())
        async with session.get(f"/filings?timepoint={head - 30}", headers=STREAM) as resumed:
            events = await read_events(resumed, 5)
        start = filings.index_at_or_after(head - 30)
        assert [e["event"]["timepoint"] for e in events] == [
            filings.timepoint_of(i) for i in range(start, start + 5)]
        async with session.get("/filings", headers=STREAM) as live:
            clock.advance(1.0)  # twice /companies' pace: 20 new filings
            fresh = await read_events(live, 20)
        assert fresh[-1]["event"]["timepoint"] == filings.head_timepoint(clock())
        assert [s.path for s in sim.state.streams] == ["/filings", "/companies", "/filings",
                                                       "/filings"]


async def test_first_gazette_notices_are_about_companies_proposed_for_strike_off() -> None:
    async with simulator(seed=5, gazette_share=0.3, filings_backlog_events=600) as (sim, session):
        async with session.get("/filings?timepoint=0", headers=STREAM) as response:
            events = await read_events(response, 600)
        notices = [e for e in events if is_first_gazette_notice(e["data"])]
        assert 120 < len(notices) < 240
        assert not any(e["data"]["category"] == "gazette" for e in events if e not in notices)
        ids: dict[str, set[str]] = {}
        for event in notices:
            data = event["data"]
            assert data["description"] == GAZETTE_TYPES[data["type"]]
            assert "barcode" not in data and data["pages"] == 1  # not a scanned paper filing
            ids.setdefault(company_of(event), set()).add(data["transaction_id"])
        assert {e["data"]["type"] for e in notices} == {"GAZ1", "GAZ1(A)"}
        assert all(len(found) == 1 for found in ids.values())  # one notice per company, re-sent
        assert any(sum(company_of(e) == n for e in notices) > 1 for n in ids)
        for number in list(ids)[:10]:  # the REST API agrees: these are strike-off proposals
            async with session.get(f"/company/{number}", headers=REST) as profile:
                body = await profile.json()
            assert (body["company_status"], body.get("company_status_detail")) == (
                "active", STRIKE_OFF_DETAIL)
        universe = sim.simulator.universe
        assert set(ids) <= set(universe.strike_off_numbers)


async def test_a_gazette_notice_comes_before_or_instead_of_the_companies_event() -> None:
    async with simulator(seed=6, filings_only_share=0.2, gazette_share=0.2,
                         backlog_events=4000) as (sim, session):
        universe = sim.simulator.universe
        companies, filings = sim.simulator.timeline, sim.simulator.filings
        filings_only = universe.filings_only
        assert len(filings_only) > 0.1 * len(universe.strike_off_numbers)
        now = sim.simulator.clock()
        first_on_companies = first_seen(companies, companies.published_count(now))
        # never on /companies: a client that follows only /companies never hears of them
        assert not set(first_on_companies) & filings_only
        # ... but /filings proposes them
        gazetted = [filings.number_at(i) for i in range(filings.published_count(sim.simulator.clock()))
                    if filings.is_gazette_at(i)]
        assert set(gazetted) & filings_only
        # for the others, the notice sometimes comes first, sometimes the /companies event
        first_notice: dict[str, int] = {}
        for index in range(filings.published_count(sim.simulator.clock())):
            if filings.is_gazette_at(index):
                first_notice.setdefault(filings.number_at(index), index)
        order = {"notice first": 0, "companies first": 0}
        for number, index in first_notice.items():
            if number in filings_only:
                continue
            seen = first_on_companies.get(number)
            if seen is None or filings.publish_time(index) < companies.publish_time(seen):
                order["notice first"] += 1
            else:
                order["companies first"] += 1
        assert order["notice first"] > 5 and order["companies first"] > 5, order
        # the streams served exactly what the schedule says: check one notice over the wire
        number = next(n for n in first_notice if n in filings_only)
        timepoint = filings.timepoint_of(first_notice[number])
        async with session.get(f"/filings?timepoint={timepoint}", headers=STREAM) as response:
            (event,) = await read_events(response, 1)
        assert company_of(event) == number and is_first_gazette_notice(event["data"])


async def test_without_the_knob_every_proposed_company_also_appears_on_companies() -> None:
    async with simulator(seed=7, filings_only_share=0.0, company_count=300) as (sim, session):
        universe = sim.simulator.universe
        assert universe.filings_only == frozenset()
        assert set(universe.stream_numbers) == set(universe.numbers)
