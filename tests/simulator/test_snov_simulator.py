"""The Snov.io simulator, over real loopback HTTP with a plain aiohttp client.

Time is a FixedClock injected into the simulator: tokens expire and windows slide when a test
says so, and nothing sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import msgspec
import pytest

from eventlog.clock import FixedClock
from eventlog.simulator import SimulatorConfig, Universe
from eventlog.simulator.snov import (
    SIM_CLIENT_ID,
    SIM_CLIENT_SECRET,
    RunningSnovSimulator,
    SnovSimulatorConfig,
    domain_lookup_key,
    running_snov_simulator,
)

START = 1_700_000_000.0
DOMAINS_START = "/v2/company-domain-by-name/start"
DOMAINS_RESULT = "/v2/company-domain-by-name/result"
EMAILS_START = "/v2/emails-by-domain-by-name/start"
EMAILS_RESULT = "/v2/emails-by-domain-by-name/result"
CREDENTIALS = {"grant_type": "client_credentials", "client_id": SIM_CLIENT_ID,
               "client_secret": SIM_CLIENT_SECRET}


@asynccontextmanager
async def snov(clock: FixedClock | None = None, **knobs: object
               ) -> AsyncIterator[tuple[RunningSnovSimulator, aiohttp.ClientSession]]:
    config = SnovSimulatorConfig(**knobs)  # type: ignore[arg-type]
    async with running_snov_simulator(config, clock=(clock or FixedClock(START)).now) as sim:
        async with aiohttp.ClientSession(sim.base_url) as session:
            yield sim, session


async def bearer(session: aiohttp.ClientSession) -> dict[str, str]:
    async with session.post("/v1/oauth/access_token", data=CREDENTIALS) as resp:
        assert resp.status == 200
        return {"Authorization": f"Bearer {(await resp.json())['access_token']}"}


async def start_domains(session, auth, names: list[str]) -> str:  # type: ignore[no-untyped-def]
    async with session.post(DOMAINS_START, data=[("names[]", n) for n in names], headers=auth) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert body["meta"] == {"names": names}
        return body["data"]["task_hash"]


async def start_emails(session, auth, rows: list[dict]) -> str:  # type: ignore[no-untyped-def]
    async with session.post(EMAILS_START, json={"rows": rows}, headers=auth) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert body["meta"] == {"rows": rows}
        return body["data"]["task_hash"]


async def poll(session, auth, path: str, task_hash: str) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    async with session.get(path, params={"task_hash": task_hash}, headers=auth) as resp:
        return resp.status, await resp.json()


def rows_for(names: list[tuple[str, str]], domain: str) -> list[dict]:
    return [{"first_name": f, "last_name": l, "domain": domain} for f, l in names]


PEOPLE = [("John", "Smith"), ("Sarah", "Jones"), ("Piotr", "Nowak"), ("Aisha", "Khan"),
          ("Sean", "O'Neill"), ("Emma", "Taylor"), ("Ian", "Brown"), ("Laura", "Evans"),
          ("Mark", "Walker"), ("Fiona", "Scott")]


# --- token ----------------------------------------------------------------------------------------


async def test_token_has_the_documented_shape_and_wrong_credentials_are_401() -> None:
    async with snov() as (sim, session):
        async with session.post("/v1/oauth/access_token", data=CREDENTIALS) as resp:
            body = await resp.json()
        assert resp.status == 200
        assert set(body) == {"access_token", "token_type", "expires_in"}
        assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
        wrong_secret = dict(CREDENTIALS, client_secret="nope")
        async with session.post("/v1/oauth/access_token", data=wrong_secret) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"] == "invalid_client"
        unknown = dict(CREDENTIALS, client_id="someone-else")
        async with session.post("/v1/oauth/access_token", data=unknown) as resp:
            assert resp.status == 401
        async with session.post("/v1/oauth/access_token", json=CREDENTIALS) as resp:
            assert resp.status == 401  # form fields only, as documented
        async with session.post("/v1/oauth/access_token", data=dict(CREDENTIALS, grant_type="password")) as resp:
            assert resp.status == 400
    accounts = [(r.account, r.status) for r in sim.state.requests]
    # A wrong secret still names the account (and counts against it); an unknown id names none.
    assert accounts == [(SIM_CLIENT_ID, 200), (SIM_CLIENT_ID, 401), ("", 401), ("", 401),
                        (SIM_CLIENT_ID, 400)]
    assert len(sim.state.tokens) == 1


async def test_a_token_expires_after_its_lifetime_on_the_simulator_clock() -> None:
    clock = FixedClock(START)
    async with snov(clock, token_lifetime=100) as (sim, session):
        old = await bearer(session)
        clock.advance(99.9)
        async with session.get("/v1/get-balance", headers=old) as resp:
            assert resp.status == 200
        clock.advance(0.1)  # exactly the lifetime: expired
        async with session.get("/v1/get-balance", headers=old) as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        new = await bearer(session)
        async with session.get("/v1/get-balance", headers=new) as resp:
            assert resp.status == 200
        async with session.get("/v1/get-balance", headers={"Authorization": "Bearer forged"}) as resp:
            assert resp.status == 401
    expired = sim.state.requests[2]
    assert (expired.status, expired.account) == (401, SIM_CLIENT_ID)  # counted against the account
    assert sim.state.requests[-1].account == ""
    assert [t.expires_at for t in sim.state.tokens] == [START + 100, START + 100.0 + 100]


# --- domains --------------------------------------------------------------------------------------


async def test_domain_task_is_in_progress_for_the_configured_polls_then_completes_once_charged() -> None:
    clock = FixedClock(START)
    names = ["ACORN ENGINEERING LTD", "Bramble Holdings Limited", "CEDAR LLP"]
    async with snov(clock, polls_before_completion=2, seconds_before_completion=5,
                    no_domain_share=0.0) as (sim, session):
        auth = await bearer(session)
        task = await start_domains(session, auth, names)
        answers = [await poll(session, auth, DOMAINS_RESULT, task) for _ in range(3)]
        assert [a[1] for a in answers] == [{"status": "in_progress"}] * 3  # 3 polls, 5 s not passed
        clock.advance(5)
        status, done = await poll(session, auth, DOMAINS_RESULT, task)
        again = await poll(session, auth, DOMAINS_RESULT, task)
    assert status == 200 and done["status"] == "completed"
    assert [d["name"] for d in done["data"]] == names
    assert [d["result"]["domain"] for d in done["data"]] == [
        sim.simulator.directory.domain_of(n) for n in names
    ]
    assert done["meta"] == {"names": names, "task_hash": task}
    assert again == (200, done)
    charged = [(r.outcome, r.credits) for r in sim.state.requests if r.endpoint == "domains_result"]
    assert charged == [("in_progress", 0)] * 3 + [("completed", 3), ("completed", 0)]
    assert sim.state.balance == 25_000 - 3 and sim.state.credits_spent == 3


async def test_names_without_a_domain_come_back_empty_in_every_plausible_shape_and_cost_nothing() -> None:
    names = [f"NOWHERE {i} LTD" for i in range(10)]
    async with snov(no_domain_share=1.0, polls_before_completion=0) as (sim, session):
        auth = await bearer(session)
        _, done = await poll(session, auth, DOMAINS_RESULT, await start_domains(session, auth, names))
    shapes = {msgspec.json.encode(d["result"]) for d in done["data"]}
    assert shapes <= {b"{}", b"[]", b'{"domain":null}', b'{"domain":""}'}
    assert len(shapes) >= 2  # a client must accept them all
    assert sim.state.credits_spent == 0


async def test_no_domain_share_is_deterministic_by_seed_and_name() -> None:
    names = [f"{w} TRADING LTD" for w in ("ACORN", "BIRCH", "CEDAR", "DOVE", "ELM", "FERN",
                                           "HERON", "IVY", "LARCH", "MAPLE")]

    async def found(seed: int) -> list[str | None]:
        async with snov(seed=seed, no_domain_share=0.5, polls_before_completion=0) as (_, session):
            auth = await bearer(session)
            _, done = await poll(session, auth, DOMAINS_RESULT, await start_domains(session, auth, names))
            return [d["result"].get("domain") if isinstance(d["result"], dict) else None
                    for d in done["data"]]

    first, again, other = await found(1), await found(1), await found(2)
    assert first == again
    assert first != other
    assert 0 < sum(1 for d in first if d) < len(names)


# --- e-mails --------------------------------------------------------------------------------------


async def test_emails_result_shape_people_without_email_and_credits_per_valid_or_unknown() -> None:
    rows = rows_for(PEOPLE, "acorn-engineering.co.uk")
    async with snov(seed=4, no_email_share=0.3, extra_email_share=0.5, unknown_email_share=0.3,
                    polls_before_completion=1) as (sim, session):
        auth = await bearer(session)
        task = await start_emails(session, auth, rows)
        assert await poll(session, auth, EMAILS_RESULT, task) == (200, {"status": "in_progress"})
        _, done = await poll(session, auth, EMAILS_RESULT, task)
    assert done["status"] == "completed" and done["meta"] == {"rows": rows, "task_hash": task}
    assert [d["people"] for d in done["data"]] == [f"{f} {l}" for f, l in PEOPLE]
    findings = [e for d in done["data"] for e in d["result"]]
    statuses = {e["smtp_status"] for e in findings}
    assert statuses <= {"valid", "unknown", "not_valid"}
    for e in findings:
        assert e["email"].endswith("@acorn-engineering.co.uk")
        assert {"is_valid_format", "is_disposable", "is_webmail", "is_gibberish"} <= set(e)
        assert ("unknown_status_reason" in e) == (e["smtp_status"] == "unknown")
    without = [d for d in done["data"] if not d["result"]]
    assert without, "seed 4 should give some people no e-mail"
    charged = sum(1 for e in findings if e["smtp_status"] in ("valid", "unknown"))
    assert any(e["smtp_status"] == "not_valid" for e in findings), "seed 4 has a not_valid address"
    assert sim.state.credits_spent == charged


async def test_people_without_email_can_be_left_out_and_results_shuffled() -> None:
    rows = rows_for(PEOPLE, "bramble.com")
    async with snov(seed=4, no_email_share=0.3, omit_people_without_email=True,
                    shuffle_results=True, polls_before_completion=0) as (sim, session):
        auth = await bearer(session)
        _, done = await poll(session, auth, EMAILS_RESULT, await start_emails(session, auth, rows))
    people = [d["people"] for d in done["data"]]
    asked = [f"{f} {l}" for f, l in PEOPLE]
    assert all(d["result"] for d in done["data"])
    assert len(people) < len(asked) and set(people) < set(asked)
    in_request_order = [p for p in asked if p in people]
    assert people != in_request_order  # shuffled, deterministically by seed and task


async def test_company_and_officer_names_of_the_companies_house_universe_get_consistent_answers() -> None:
    universe = Universe(SimulatorConfig(seed=3, company_count=50))
    number = universe.numbers[0]
    company = universe.profile(number).company_name
    officer = universe.officers(number)[0]
    surname, _, forenames = officer.name.partition(", ")
    first, last = forenames.split()[0], surname.title()
    async with snov(seed=3, no_domain_share=0.0, no_email_share=0.0, polls_before_completion=0) as (sim, session):
        auth = await bearer(session)
        _, domains = await poll(session, auth, DOMAINS_RESULT, await start_domains(session, auth, [company]))
        domain = domains["data"][0]["result"]["domain"]
        row = {"first_name": first, "last_name": last, "domain": domain}
        _, emails = await poll(session, auth, EMAILS_RESULT, await start_emails(session, auth, [row]))
    address = emails["data"][0]["result"][0]["email"]
    local, _, host = address.partition("@")
    assert host == domain
    folded_last = last.lower().replace("'", "")
    assert folded_last in local or local == first.lower()
    # The same inputs, another simulator with the same seed: the same answers.
    assert sim.simulator.directory.domain_of(company.lower()) == domain


# --- the limit ------------------------------------------------------------------------------------


async def test_sixty_a_minute_sliding_counts_every_request_and_refusals_prolong_the_lockout() -> None:
    clock = FixedClock(START)
    async with snov(clock) as (sim, session):
        auth = await bearer(session)  # the token request counts: 1
        for _ in range(29):
            async with session.get("/v1/get-balance", headers=auth) as resp:
                assert resp.status == 200
        clock.advance(30)
        for _ in range(30):
            async with session.get("/v1/get-balance", headers=auth) as resp:
                assert resp.status == 200
        clock.advance(29)
        async with session.get("/v1/get-balance", headers=auth) as resp:
            assert resp.status == 429  # 60 in the last minute
            assert await resp.json() == {"message": "Too Many Attempts."}
            assert resp.headers["Retry-After"] == "1"
            assert not any(h.lower().startswith("x-ratelimit") for h in resp.headers)
        clock.advance(1)  # the first 30 left the window; 30 + the refusal remain: 29 more fit
        for _ in range(29):
            async with session.get("/v1/get-balance", headers=auth) as resp:
                assert resp.status == 200
        async with session.get("/v1/get-balance", headers=auth) as resp:
            assert resp.status == 429
    assert len(sim.state.with_outcome("rate_limited")) == 2
    assert sim.state.max_in_any_window(60.0, SIM_CLIENT_ID) == 61  # the record shows the breach
    assert sim.state.max_in_any_window(60.0) == 61


async def test_requests_nobody_can_be_charged_for_are_recorded_but_count_against_no_account() -> None:
    clock = FixedClock(START)
    async with snov(clock, rate_limit_requests=2, rate_limit_window=10) as (sim, session):
        for _ in range(5):
            async with session.get("/v1/get-balance", headers={"Authorization": "Bearer forged"}) as resp:
                assert resp.status == 401
        auth = await bearer(session)
        async with session.get("/v1/get-balance", headers=auth) as resp:
            assert resp.status == 200
        async with session.get("/v1/get-balance", headers=auth) as resp:
            assert resp.status == 429
    assert sim.state.max_in_any_window(10, SIM_CLIENT_ID) == 3
    assert sim.state.max_in_any_window(10) == 8


# --- credits --------------------------------------------------------------------------------------


async def test_a_balance_that_cant_cover_the_task_answers_not_enough_credits_for_good() -> None:
    names = ["A ONE LTD", "B TWO LTD", "C THREE LTD", "D FOUR LTD", "E FIVE LTD"]
    async with snov(starting_balance=7, no_domain_share=0.0, polls_before_completion=0) as (sim, session):
        auth = await bearer(session)
        _, done = await poll(session, auth, DOMAINS_RESULT, await start_domains(session, auth, names))
        assert done["status"] == "completed" and sim.state.balance == 2
        task = await start_domains(session, auth, names[:3])  # 3 names, 2 credits left
        assert await poll(session, auth, DOMAINS_RESULT, task) == (200, {"status": "not_enough_credits"})
        assert await poll(session, auth, DOMAINS_RESULT, task) == (200, {"status": "not_enough_credits"})
        rows = rows_for(PEOPLE[:3], "x.com")
        task = await start_emails(session, auth, rows)
        assert await poll(session, auth, EMAILS_RESULT, task) == (200, {"status": "not_enough_credits"})
        async with session.get("/v1/get-balance", headers=auth) as resp:
            balance = await resp.json()
    assert balance["success"] is True and balance["data"]["balance"] == "2.00"
    assert sim.state.balance == 2 and sim.state.credits_spent == 5
    assert len(sim.state.with_outcome("not_enough_credits")) == 3


# --- the record -----------------------------------------------------------------------------------


async def test_the_record_counts_starts_per_lookup_so_a_repeated_start_shows() -> None:
    async with snov() as (sim, session):
        auth = await bearer(session)
        await start_domains(session, auth, ["ACORN LTD", "BIRCH LTD"])
        assert sim.state.repeated_lookups() == {}
        await start_domains(session, auth, ["acorn  ltd"])  # the same company, spelt otherwise
        await start_emails(session, auth, rows_for(PEOPLE[:1], "acorn.com"))
    assert sim.state.repeated_lookups() == {domain_lookup_key("ACORN LTD"): 2}


async def test_the_record_holds_neither_the_secret_nor_a_token() -> None:
    async with snov() as (sim, session):
        auth = await bearer(session)
        await start_domains(session, auth, ["ACORN LTD"])
    token = auth["Authorization"].split()[1]
    recorded = msgspec.json.encode([sim.state.requests, sim.state.tokens])
    assert SIM_CLIENT_SECRET.encode() not in recorded
    assert token.encode() not in recorded


async def test_injected_server_errors_create_no_task_and_are_recorded() -> None:
    async with snov(error_5xx_share=1.0) as (sim, session):
        async with session.post("/v1/oauth/access_token", data=CREDENTIALS) as resp:
            assert resp.status in (500, 502, 503)
    async with snov(seed=5, error_5xx_share=0.5) as (sim, session):
        statuses = []
        for _ in range(20):
            async with session.post("/v1/oauth/access_token", data=CREDENTIALS) as resp:
                statuses.append(resp.status)
    assert 0 < statuses.count(200) < 20
    assert {s for s in statuses if s != 200} <= {500, 502, 503}
    assert len(sim.state.with_outcome("server_error")) == 20 - statuses.count(200)
    assert len(sim.state.tokens) == statuses.count(200)


async def test_requests_of_the_wrong_shape_are_422_and_unknown_tasks_404() -> None:
    async with snov() as (sim, session):
        auth = await bearer(session)
        too_many = [("names[]", f"N{i} LTD") for i in range(11)]
        async with session.post(DOMAINS_START, data=too_many, headers=auth) as resp:
            assert resp.status == 422
        async with session.post(DOMAINS_START, json={"names": ["A LTD"]}, headers=auth) as resp:
            assert resp.status == 422  # the domain start takes a form
        async with session.post(EMAILS_START, data={"rows": "x"}, headers=auth) as resp:
            assert resp.status == 422  # the e-mail start takes JSON
        bad_row = {"rows": [{"first_name": "John", "last_name": "", "domain": "x.com"}]}
        async with session.post(EMAILS_START, json=bad_row, headers=auth) as resp:
            assert resp.status == 422
        async with session.post(EMAILS_START, json={"rows": rows_for(PEOPLE, "x.com") * 2}, headers=auth) as resp:
            assert resp.status == 422
        task = await start_domains(session, auth, ["A LTD"])
        assert (await poll(session, auth, EMAILS_RESULT, task))[0] == 404  # a domain task
        assert (await poll(session, auth, DOMAINS_RESULT, "nope"))[0] == 404
        async with session.get(DOMAINS_RESULT, headers=auth) as resp:
            assert resp.status == 422
    assert sim.state.starts_per_lookup == {domain_lookup_key("A LTD"): 1}


def test_config_refuses_shares_out_of_range_and_empty_credentials() -> None:
    with pytest.raises(ValueError, match="no_domain_share"):
        SnovSimulatorConfig(no_domain_share=1.5)
    with pytest.raises(ValueError, match="rate_limit_window"):
        SnovSimulatorConfig(rate_limit_window=0)
    with pytest.raises(ValueError, match="client_secret"):
        SnovSimulatorConfig(client_secret="")
