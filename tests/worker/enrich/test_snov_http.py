"""The Snov.io transport and token holder against real servers on loopback: the Snov.io simulator,
and for the answers it never gives (wrong shapes, redirects, hangs) a tiny aiohttp app.

The simulator and the holder each get a FixedClock, sometimes the same one, sometimes two, so a
token can expire on the server while the client still believes in it. Nothing sleeps for more
than a fraction of a second.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from eventlog.clock import FixedClock
from eventlog.worker.enrich.officer_names import split_officer_name
from eventlog.worker.enrich.snov_api import (
    DomainsCompleted,
    EmailBatch,
    EmailRow,
    EmailsCompleted,
    IssuedToken,
    domain_batches,
    email_batches,
    email_credits,
)
from eventlog.worker.enrich.snov_http import SnovCredentials, SnovOutcome, SnovTransport, TokenHolder
from eventlog.worker.enrich.snov_match import match_domains, match_emails
from eventlog.worker.sender import rest_session
from eventlog.simulator import SimulatorConfig, Universe
from eventlog.simulator.snov import (
    SIM_CLIENT_ID,
    SIM_CLIENT_SECRET,
    RunningSnovSimulator,
    SnovSimulatorConfig,
    running_snov_simulator,
)

START = 1_700_000_000.0
GOOD = SnovCredentials(SIM_CLIENT_ID, SIM_CLIENT_SECRET)


@asynccontextmanager
async def snov(clock: FixedClock | None = None, **knobs: object
               ) -> AsyncIterator[tuple[RunningSnovSimulator, SnovTransport]]:
    config = SnovSimulatorConfig(**knobs)  # type: ignore[arg-type]
    async with running_snov_simulator(config, clock=(clock or FixedClock(START)).now) as sim:
        async with rest_session() as session:
            yield sim, SnovTransport(session, sim.base_url, request_timeout=5)


@asynccontextmanager
async def loopback(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                   ) -> AsyncIterator[tuple[str, list[str]]]:
    """A one-handler app on loopback; yields its base URL and the paths it was asked for."""
    seen: list[str] = []

    async def record(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}", seen
    finally:
        await runner.cleanup()


async def token_of(transport: SnovTransport) -> IssuedToken:
    outcome = await transport.token(GOOD)
    assert outcome.ok and outcome.value is not None
    return outcome.value


# --- one call, one request, typed outcomes --------------------------------------------------------


async def test_token_outcome_carries_the_token_but_never_shows_it_or_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with snov() as (sim, transport):
        good = await transport.token(GOOD)
        bad = await transport.token(SnovCredentials(SIM_CLIENT_ID, "wrong-secret"))
    assert good.kind == "ok" and good.status == 200 and good.body is None
    assert isinstance(good.value, IssuedToken) and good.value.expires_in == 3600
    assert bad.kind == "unauthorized" and bad.status == 401 and bad.value is None
    shown = " ".join([repr(good), str(good), repr(bad), repr(GOOD), str(GOOD), caplog.text])
    assert good.value.value not in shown
    assert SIM_CLIENT_SECRET not in shown and "wrong-secret" not in shown
    assert [r.status for r in sim.state.requests] == [200, 401]


async def test_domains_start_then_in_progress_then_completed_and_matched() -> None:
    names = ["ACORN ENGINEERING LTD", "BIRCH HOLDINGS LIMITED", "CEDAR LLP"]
    async with snov(polls_before_completion=2, no_domain_share=0.0, shuffle_results=True) as (sim, transport):
        token = await token_of(transport)
        (batch,) = domain_batches(names)
        started = await transport.start_domains(token, batch)
        assert started.ok and started.value is not None and started.body is not None
        polls = [await transport.poll_domains(token, started.value.task_hash) for _ in range(3)]
    assert [p.kind for p in polls] == ["in_progress", "in_progress", "ok"]
    done = polls[-1].value
    assert isinstance(done, DomainsCompleted)
    match = match_domains(batch, done)
    directory = sim.simulator.directory
    assert [(o.name, o.state, o.domain) for o in match.outcomes] == [
        (n, "found", directory.domain_of(n)) for n in names]
    assert len(sim.state.requests) == 5  # one request per call, nothing repeated


async def test_shuffled_email_results_reach_the_right_officers_of_a_simulated_company() -> None:
    universe = Universe(SimulatorConfig(seed=8, company_count=40))
    number = max(universe.numbers, key=lambda n: len(universe.officers(n)))
    company = universe.profile(number).company_name
    people = {p for p in (split_officer_name(o.name) for o in universe.officers(number)) if p}
    async with snov(seed=8, no_domain_share=0.0, no_email_share=0.3, shuffle_results=True,
                    polls_before_completion=0) as (sim, transport):
        token = await token_of(transport)
        (dbatch,) = domain_batches([company])
        started = await transport.start_domains(token, dbatch)
        assert started.value is not None
        found = (await transport.poll_domains(token, started.value.task_hash)).value
        assert isinstance(found, DomainsCompleted)
        domain = match_domains(dbatch, found).outcomes[0].domain
        assert domain is not None
        ordered = sorted(people, key=lambda p: (p.last_name, p.first_name))
        rows = [EmailRow(p.first_name, p.last_name, domain) for p in ordered]
        outcomes = []
        for batch in email_batches(rows):
            started = await transport.start_emails(token, batch)
            assert started.ok and started.value is not None
            polled = await transport.poll_emails(token, started.value.task_hash)
            assert polled.ok and isinstance(polled.value, EmailsCompleted)
            outcomes += match_emails(batch, polled.value).outcomes
    directory = sim.simulator.directory
    assert len(outcomes) == len(rows) > 3
    for outcome in outcomes:
        expected = directory.emails_of(outcome.row.first_name, outcome.row.last_name, domain)
        assert [e.email for e in outcome.emails] == [e.email for e in expected]
        assert outcome.state == ("found" if expected else "none")
    assert {o.state for o in outcomes} == {"found", "none"}


async def test_credits_that_run_out_give_not_enough_credits() -> None:
    async with snov(starting_balance=2, polls_before_completion=0) as (sim, transport):
        token = await token_of(transport)
        batch = EmailBatch((EmailRow("John", "Smith", "a.com"), EmailRow("Ann", "Lee", "a.com"),
                            EmailRow("Ian", "Ward", "a.com")))
        started = await transport.start_emails(token, batch)
        assert started.value is not None
        polled = await transport.poll_emails(token, started.value.task_hash)
        balance = await transport.balance(token)
    assert polled.kind == "not_enough_credits" and polled.value is None
    assert balance.ok and balance.value is not None and balance.value.credits == 2
    assert sim.state.credits_spent == 0


async def test_past_the_limit_the_answer_is_rate_limited_with_its_hint_and_the_record_shows_it() -> None:
    clock = FixedClock(START)
    async with snov(clock, rate_limit_requests=60, rate_limit_window=60) as (sim, transport):
        token = await token_of(transport)
        answers = [await transport.balance(token) for _ in range(60)]
    assert [a.kind for a in answers[:59]] == ["ok"] * 59
    last = answers[-1]
    assert (last.kind, last.status, last.retry_after) == ("rate_limited", 429, 60.0)
    assert sim.state.max_in_any_window(60) == 61 > 60
    assert len(sim.state.with_outcome("rate_limited")) == 1


async def test_server_errors_are_server_error() -> None:
    async with snov(error_5xx_share=1.0) as (sim, transport):
        outcome = await transport.token(GOOD)
    assert outcome.kind == "server_error" and outcome.status in (500, 502, 503)


@pytest.mark.parametrize("status, body, kind", [
    (200, b'{"status": "completed", "data": [{"name": 5}]}', "malformed"),
    (200, b"<html>hello</html>", "malformed"),
    (200, b'{"status": "queued"}', "malformed"),
    (402, b'{"message": "Payment required"}', "not_enough_credits"),
    (400, b'{"status": "not_enough_credits"}', "not_enough_credits"),
    (403, b'{"message": "Forbidden"}', "rejected"),
    (302, b"", "rejected"),
])
async def test_answers_the_simulator_never_gives_become_typed_outcomes(status: int, body: bytes, kind: str) -> None:
    async def answer(request: web.Request) -> web.Response:
        headers = {"Location": "/v2/company-domain-by-name/result"} if status == 302 else None
        return web.Response(status=status, body=body, headers=headers, content_type="application/json")

    async with loopback(answer) as (url, seen):
        async with rest_session() as session:
            outcome = await SnovTransport(session, url).poll_domains(IssuedToken("t", 60), "h")
    assert (outcome.kind, outcome.status) == (kind, status)
    assert outcome.body == body
    assert seen == ["/v2/company-domain-by-name/result"]  # one request: no redirect followed
    if kind == "malformed":
        assert "company-domain-by-name result" in outcome.error


async def test_a_hang_is_a_timeout_and_a_closed_port_a_network_error() -> None:
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(0.4)
        return web.Response(text="late")

    async with loopback(hang) as (url, _):
        async with rest_session() as session:
            slow = await SnovTransport(session, url, request_timeout=0.1).balance(IssuedToken("t", 60))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with rest_session() as session:
        closed = await SnovTransport(session, f"http://127.0.0.1:{port}").token(GOOD)
    assert (slow.kind, slow.error) == ("transport_error", "TIMEOUT: request timed out")
    assert 90 <= slow.elapsed_ms < 400
    assert closed.kind == "transport_error" and closed.error.startswith("NETWORK_ERROR: ")
    assert SIM_CLIENT_SECRET not in closed.error


async def test_a_session_that_may_resend_is_refused() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="rest_session"):
            SnovTransport(session)


# --- the token holder -----------------------------------------------------------------------------


async def test_the_holder_renews_a_margin_before_expiry_on_its_clock() -> None:
    clock = FixedClock(START)
    async with snov(clock) as (sim, transport):
        holder = TokenHolder.for_transport(transport, GOOD, clock=clock, margin=120)
        assert (await holder.call(transport.balance)).ok
        clock.advance(3479.9)
        assert (await holder.call(transport.balance)).ok
        assert len(sim.state.tokens) == 1
        clock.advance(0.1)  # 120 s before expiry: renewed before the call
        assert (await holder.call(transport.balance)).ok
    assert len(sim.state.tokens) == 2 and holder.issued == 2
    assert sim.state.with_outcome("unauthorized") == []


async def test_a_token_the_server_expired_early_is_renewed_once_and_the_call_repeated_once() -> None:
    server_clock, our_clock = FixedClock(START), FixedClock(START)
    async with snov(server_clock) as (sim, transport):
        holder = TokenHolder.for_transport(transport, GOOD, clock=our_clock)
        assert (await holder.call(transport.balance)).ok
        server_clock.advance(3600)  # expired there, not here
        outcome = await holder.call(transport.balance)
    assert outcome.ok
    assert [(r.endpoint, r.status) for r in sim.state.requests] == [
        ("token", 200), ("balance", 200), ("balance", 401), ("token", 200), ("balance", 200)]


async def test_a_401_with_a_fresh_token_stops_the_holder_instead_of_looping() -> None:
    server_clock, our_clock = FixedClock(START), FixedClock(START)
    async with snov(server_clock, token_lifetime=1) as (sim, transport):

        async def stale_on_arrival() -> SnovOutcome[IssuedToken]:
            outcome = await transport.token(GOOD)
            server_clock.advance(5)  # every token has expired on the server before it is used
            return outcome

        holder = TokenHolder(stale_on_arrival, clock=our_clock)
        first = await holder.call(transport.balance)
        requests_then = len(sim.state.requests)
        second = await holder.call(transport.balance)
    assert first.kind == "unauthorized" and first.call == "balance"
    assert [(r.endpoint, r.status) for r in sim.state.requests] == [
        ("token", 200), ("balance", 401), ("token", 200), ("balance", 401)]
    assert holder.refused is not None
    assert second.kind == "unauthorized" and len(sim.state.requests) == requests_then  # no request


async def test_refused_credentials_are_asked_for_once() -> None:
    clock = FixedClock(START)
    async with snov(clock) as (sim, transport):
        holder = TokenHolder.for_transport(transport, SnovCredentials(SIM_CLIENT_ID, "wrong"), clock=clock)
        first = await holder.call(transport.balance)
        second = await holder.call(transport.balance)
        holder.reset()
        third = await holder.call(transport.balance)
    assert (first.call, first.kind) == ("token", "unauthorized")
    assert second is first
    assert third.kind == "unauthorized"
    assert [r.endpoint for r in sim.state.requests] == ["token", "token"]  # one before, one after reset


async def test_concurrent_callers_share_one_token_and_one_renewal() -> None:
    server_clock, our_clock = FixedClock(START), FixedClock(START)
    async with snov(server_clock, latency_ms=20) as (sim, transport):
        holder = TokenHolder.for_transport(transport, GOOD, clock=our_clock)
        first = await asyncio.gather(*(holder.call(transport.balance) for _ in range(5)))
        assert len(sim.state.tokens) == 1
        server_clock.advance(3600)
        second = await asyncio.gather(*(holder.call(transport.balance) for _ in range(5)))
    assert all(o.ok for o in first + second)
    assert len(sim.state.tokens) == 2  # five 401s, one renewal
    assert len(sim.state.with_outcome("unauthorized")) == 5


async def test_a_token_request_that_fails_otherwise_is_returned_and_tried_again_next_time() -> None:
    async with snov(error_5xx_share=1.0) as (sim, transport):
        holder = TokenHolder.for_transport(transport, GOOD, clock=FixedClock(START))
        first = await holder.call(transport.balance)
        second = await holder.call(transport.balance)
    assert (first.call, first.kind) == ("token", "server_error")
    assert second.kind == "server_error" and holder.refused is None
    assert len(sim.state.requests) == 2


async def test_credit_cost_of_a_completed_result_agrees_with_the_simulator() -> None:
    rows = [EmailRow(f, l, "acorn.co.uk") for f, l in [("John", "Smith"), ("Sarah", "Jones"),
            ("Piotr", "Nowak"), ("Aisha", "Khan"), ("Ian", "Brown"), ("Laura", "Evans")]]
    async with snov(seed=4, extra_email_share=0.5, unknown_email_share=0.4,
                    polls_before_completion=0) as (sim, transport):
        token = await token_of(transport)
        (batch,) = email_batches(rows)
        started = await transport.start_emails(token, batch)
        assert started.value is not None
        polled = await transport.poll_emails(token, started.value.task_hash)
    assert polled.ok and isinstance(polled.value, EmailsCompleted)
    assert email_credits(polled.value) == sim.state.credits_spent > 0

