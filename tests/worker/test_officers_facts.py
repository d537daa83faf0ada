"""The officers facts of the real Companies House, each against the simulator with its knob on.

A real simulator on loopback, a real ledger with every projection attached, the live policy
(`sweep`) and one real `Sender`, driven until nothing is left to do: zero appointments, no
`links.officers`, ceased companies' officers (inactive, not current), counts that lag the list,
and the IP limit's 403.
"""

from __future__ import annotations

import asyncio

import pytest

import projections
from eventlog.clock import SystemClock
from eventlog.config.settings import Settings
from eventlog.ledger.entries import Interest, RequestQueued, WorkerStarted
from eventlog.ledger.store import Ledger
from eventlog.simulator import SimulatorConfig, running_simulator
from eventlog.worker import sender as sender_module
from eventlog.worker.limiter import SlidingWindowLimiter
from eventlog.worker.policy import NO_OFFICERS_LINK, recover_in_flight, sweep
from eventlog.worker.sender import Sender, rest_session
from projections.projectors import officers
from projections.projectors.request_queue import earliest_not_before
from projections.records import MAX_OFFICERS_LISTED, next_page_start

STRIKE_OFF = Interest()


def officer_requests(sim, number: str) -> list[str]:
    return [r.path for r in sim.state.requests if r.path.startswith(f"/company/{number}/officers")]


async def drive(conn, sim, numbers: list[str], *, interest: Interest = STRIKE_OFF,
                max_steps: int = 500) -> Ledger:
    """Queue a profile request per company, then run policy and sender until nothing is left."""
    clock = SystemClock()
    ledger = Ledger(conn, clock)
    projections.attach(ledger)
    settings = Settings(api_url=sim.base_url, api_key="sim-key", max_retries=6, initial_retry_delay=0.01,
                        max_retry_delay=0.02)
    ledger.append(WorkerStarted(version="t", pid=1, rate_limit_requests=600, rate_limit_window=300,
                                interest=interest))
    ledger.append_many(RequestQueued(request_id=f"p-{n}", kind="profile", company_number=n) for n in numbers)
    limiter = SlidingWindowLimiter(conn, clock, limit=600, window=300, slack=2)
    async with rest_session() as session:
        sender = Sender(settings, ledger, limiter, session, clock=clock, stop=asyncio.Event(),
                        wake=asyncio.Event())
        for _ in range(max_steps):
            grant = sender._grant(None, 0)
            if grant.item is not None:
                await sender._perform(grant.item, grant.page_start)
                continue
            entries = sweep(conn, settings, clock.now())
            if entries:
                ledger.append_many(entries)
                continue
            due = earliest_not_before(conn)
            if grant.why == "idle" and due is not None and due - clock.now() < 1.0:
                await asyncio.sleep(max(due - clock.now(), 0.005))  # a retry's backoff
                continue
            break
        else:
            raise AssertionError("the worker never ran out of work: a loop")
    return ledger


def state_of(conn, number: str) -> str:
    return conn.execute("SELECT processing_state FROM company_processing_state WHERE company_number = ?",
                        (number,)).fetchone()[0]


def pick(sim, predicate, n: int = 3) -> list[str]:
    universe = sim.simulator.universe
    found = [c for c in universe.strike_off_numbers if predicate(universe, c)][:n]
    assert found, "the knob gave no company to test with"
    return found


async def test_a_company_with_zero_officers_completes_not_fails(conn) -> None:
    config = SimulatorConfig(zero_officer_share=1.0, no_officers_link_share=0.0, company_count=200)
    async with running_simulator(config) as sim:
        numbers = pick(sim, lambda u, c: u.quirks(c).zero_officers)
        await drive(conn, sim, numbers)
        for number in numbers:
            assert state_of(conn, number) == "completed"
            assert len(officer_requests(sim, number)) == 1  # one call, answered 200 with items []
        assert sim.state.served(404) == 0
    assert conn.execute("SELECT count(*) FROM officers").fetchone()[0] == 0


async def test_no_officers_call_for_a_profile_without_an_officers_link(conn) -> None:
    config = SimulatorConfig(no_officers_link_share=1.0, company_count=200)
    async with running_simulator(config) as sim:
        numbers = pick(sim, lambda u, c: u.quirks(c).no_officers_link)
        await drive(conn, sim, numbers)
        for number in numbers:
            assert officer_requests(sim, number) == []  # no wasted 404
            assert state_of(conn, number) == "completed"
        assert sim.state.served(404) == 0
    reasons = [r[0] for r in conn.execute(
        "SELECT json_extract(event_data, '$.reason') FROM event_log WHERE event_type = 'company.completed'")]
    assert len(reasons) == len(numbers) and all(r.startswith(NO_OFFICERS_LINK) for r in reasons)


@pytest.mark.parametrize("status", ["dissolved", "closed", "converted-closed"])
async def test_officers_of_ceased_companies_are_inactive_not_current(conn, status) -> None:
    shares = {"dissolved": "dissolved_share", "closed": "closed_share", "converted-closed": "converted_closed_share"}
    knobs = {"liquidation_share": 0.0, "dissolved_share": 0.0, "closed_share": 0.0, "converted_closed_share": 0.0,
             shares[status]: 1.0}
    config = SimulatorConfig(strike_off_share=0.0, **knobs, zero_officer_share=0.0, no_officers_link_share=0.0,
                             company_count=50)
    async with running_simulator(config) as sim:
        universe = sim.simulator.universe
        numbers = list(universe.numbers[:3])
        await drive(conn, sim, numbers, interest=Interest(field="company_status", values=(status,)))
        expected = sum(len(universe.officers(n)) for n in numbers)
    rows = dict(conn.execute("SELECT status, count(*) FROM officers GROUP BY status").fetchall())
    assert sum(rows.values()) == expected > 0
    assert rows.get("active", 0) == 0 and rows.get("inactive", 0) > 0
    # the naive reading would call them current
    naive = conn.execute("SELECT count(*) FROM officers WHERE resigned_on IS NULL").fetchone()[0]
    assert naive == rows["inactive"]
    assert conn.execute(f"SELECT count(*) FROM officers WHERE {officers.current_condition()}").fetchone()[0] == 0


async def test_an_active_companys_officers_without_resigned_on_are_current(conn) -> None:
    config = SimulatorConfig(zero_officer_share=0.0, no_officers_link_share=0.0, company_count=100)
    async with running_simulator(config) as sim:
        numbers = pick(sim, lambda u, c: True)
        await drive(conn, sim, numbers)
    counts = dict(conn.execute("SELECT status, count(*) FROM officers GROUP BY status").fetchall())
    naive = conn.execute("SELECT count(*) FROM officers WHERE resigned_on IS NULL").fetchone()[0]
    assert counts.get("active", 0) == naive > 0 and "inactive" not in counts
    assert counts.get("resigned", 0) == conn.execute(
        "SELECT count(*) FROM officers WHERE resigned_on IS NOT NULL").fetchone()[0]


async def test_paging_survives_lagging_total_results_and_never_loops(conn, monkeypatch) -> None:
    # Pages of 20 (the simulator's companies have up to 60 appointments): a total lagging low
    # must not stop the paging after page 1, a total lagging high must not loop.
    monkeypatch.setattr(sender_module, "OFFICERS_PAGE_SIZE", 20)
    config = SimulatorConfig(lagging_counts_share=1.0, zero_officer_share=0.0, no_officers_link_share=0.0,
                             company_count=3000)
    async with running_simulator(config) as sim:
        numbers = pick(sim, lambda u, c: len(u.officers(c)) in (20, 40) and u.quirks(c).count_lag < 0, 2)
        numbers += pick(sim, lambda u, c: len(u.officers(c)) > 20 and u.quirks(c).count_lag > 0, 2)
        await drive(conn, sim, numbers)
        for number in numbers:
            listed = len(sim.simulator.universe.officers(number))
            got = conn.execute("SELECT count(*) FROM officers WHERE company_number = ?", (number,)).fetchone()[0]
            assert got == listed, number
            assert state_of(conn, number) == "completed"
            # at most one page past the list (an empty answer ends it)
            assert len(officer_requests(sim, number)) <= listed // 20 + 2


def test_the_page_rule_stops_on_items_and_at_the_guard() -> None:
    assert next_page_start(0, 0, 10, 100, 100) is None  # an empty page ends it, whatever the total
    assert next_page_start(0, 100, 90, 100, 100) == 100  # full page, total lagging low: go on
    assert next_page_start(0, 35, 40, 100, 100) == 35  # short page, total says more: one more call
    assert next_page_start(35, 0, 40, 100, 100) is None  # ... which answers empty: the end
    assert next_page_start(0, 35, 35, 100, 100) is None
    assert next_page_start(MAX_OFFICERS_LISTED - 100, 100, None, 100, 100) is None  # the guard


async def test_the_ip_limits_403_is_paced_not_a_crash(conn) -> None:
    config = SimulatorConfig(ip_limit_requests=2, zero_officer_share=0.0, no_officers_link_share=0.0,
                             company_count=100)
    async with running_simulator(config) as sim:
        numbers = pick(sim, lambda u, c: True, 3)
        await drive(conn, sim, numbers)
        assert sim.state.served(403) == 1  # one refusal, then the limiter held every lane back
    limited = conn.execute("SELECT json_extract(event_data, '$.status'), json_extract(event_data, '$.cooldown_until') "
                           "FROM event_log WHERE event_type = 'request.rate_limited'").fetchall()
    assert [s for s, _ in limited] == [403] and limited[0][1]
    # the refused request is queued again, to wait out the cooldown
    assert conn.execute("SELECT count(*) FROM request_queue").fetchone()[0] >= 1


LONG_LISTS = SimulatorConfig(lagging_counts_share=0.0, zero_officer_share=0.0, no_officers_link_share=0.0,
                             company_count=3000)


def one_long_list_queued(conn, sim):
    """One officers request queued for a company with over 40 appointments (3+ pages of 20), on a
    projected ledger: (number, clock, ledger, settings, limiter)."""
    [number] = pick(sim, lambda u, c: len(u.officers(c)) > 40, 1)
    clock = SystemClock()
    ledger = Ledger(conn, clock)
    projections.attach(ledger)
    ledger.append(WorkerStarted(version="t", pid=1, rate_limit_requests=600, rate_limit_window=300))
    ledger.append(RequestQueued(request_id="o-1", kind="officers", company_number=number))
    settings = Settings(api_url=sim.base_url, api_key="sim-key")
    return number, clock, ledger, settings, SlidingWindowLimiter(conn, clock, limit=600, window=300, slack=2)


async def test_a_fetch_killed_between_pages_resumes_at_the_first_page_not_recorded(conn, monkeypatch) -> None:
    """Page 0 answered and recorded, page 20 sent and the worker killed before its
    answer was recorded: the retry asks for page 20, not page 0 again."""
    monkeypatch.setattr(sender_module, "OFFICERS_PAGE_SIZE", 20)
    async with running_simulator(LONG_LISTS) as sim:
        number, clock, ledger, settings, limiter = one_long_list_queued(conn, sim)
        async with rest_session() as session:
            sender = Sender(settings, ledger, limiter, session, clock=clock, stop=asyncio.Event(),
                            wake=asyncio.Event())
            grant = sender._grant(None, 0)
            assert grant.page_start == 0
            assert await sender._call(grant.item, 0) == 20  # page 0 recorded
            assert sender._grant(grant.item, 20).item is not None  # page 20 sent ... and the worker killed
        # the next worker's start-up: the request left in flight is recorded as interrupted, requeued
        ledger.append_many(recover_in_flight(conn, clock.now()))
        await drive(conn, sim, [])
        starts = [int(p.rsplit("start_index=", 1)[1]) for p in officer_requests(sim, number)]
        listed = len(sim.simulator.universe.officers(number))
    # page 0 once: the retry began at page 20 (the killed attempt never reached the server here)
    assert starts[:2] == [0, 20] and starts == sorted(set(starts)) and starts.count(0) == 1
    got = conn.execute("SELECT count(*) FROM officers WHERE company_number = ?", (number,)).fetchone()[0]
    assert got == listed and state_of(conn, number) == "completed"


async def test_rest_gateway_html_pages_are_retried_never_parsed(conn) -> None:
    config = SimulatorConfig(rest_gateway_error_share=0.4, zero_officer_share=0.0, no_officers_link_share=0.0,
                             company_count=200, seed=4)
    async with running_simulator(config) as sim:
        numbers = pick(sim, lambda u, c: True, 6)
        await drive(conn, sim, numbers)
        statuses = sim.state.statuses()
    assert {502, 503, 504} & set(statuses)
    codes = [c for (c,) in conn.execute("SELECT json_extract(event_data, '$.cause') FROM event_log "
                                        "WHERE event_type = 'request.queued'")]
    assert any(c and "SERVER_ERROR" in c for c in codes)  # retried with backoff
    bad = conn.execute("SELECT count(*) FROM event_log WHERE event_data LIKE '%BAD_RESPONSE%'").fetchone()[0]
    assert bad == 0  # an HTML page is never read as JSON
    assert all(state_of(conn, n) == "completed" for n in numbers)


async def test_business_hours_closing_mid_list_holds_the_next_page_until_opening(conn, monkeypatch) -> None:
    """REST calls paused while a company's list is being paged: the page under way finishes and
    is recorded, the next one waits for the opening, then the list completes from where it was."""
    monkeypatch.setattr(sender_module, "OFFICERS_PAGE_SIZE", 20)
    async with running_simulator(LONG_LISTS) as sim:
        number, clock, ledger, settings, limiter = one_long_list_queued(conn, sim)
        calls_open = asyncio.Event()
        calls_open.set()
        async with rest_session() as session:
            sender = Sender(settings, ledger, limiter, session, clock=clock, stop=asyncio.Event(),
                            wake=asyncio.Event(), calls_open=calls_open)
            grant = sender._grant(None, 0)
            real_call = sender._call

            async def call_then_close(item, page_start):
                more = await real_call(item, page_start)
                calls_open.clear()  # closing time, while this page was under way
                return more

            sender._call = call_then_close  # type: ignore[method-assign]
            fetch = asyncio.create_task(sender._perform(grant.item, 0))
            await asyncio.sleep(0.3)
            assert not fetch.done()
            assert len(officer_requests(sim, number)) == 1  # page 0 only: the rest waits for the opening
            sender._call = real_call  # type: ignore[method-assign]
            calls_open.set()
            await asyncio.wait_for(fetch, 10)
        listed = len(sim.simulator.universe.officers(number))
    starts = [int(p.rsplit("start_index=", 1)[1]) for p in officer_requests(sim, number)]
    assert starts[:3] == [0, 20, 40] and starts == sorted(set(starts))
    assert conn.execute("SELECT count(*) FROM officers WHERE company_number = ?", (number,)).fetchone()[0] == listed
