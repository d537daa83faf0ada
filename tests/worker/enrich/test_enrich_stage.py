"""The enrichment stage against the Snov.io simulator on loopback, judged from the server's side.

Windows are shrunk (10 requests per second instead of 60 per minute) so the limit binds within a
second or two of real time; the simulator and the stage share one clock, which a test can push
forward to expire tokens on the server. Each test runs the real stage (`Enricher`) on a real
SQLite file whose companies and officers were appended through the real projectors.
"""

from __future__ import annotations

import asyncio
import sys

import pytest

from eventlog.ledger.entries import SnovSent
from eventlog.simulator.snov import domain_lookup_key
from eventlog.worker.enrich.snov_record import DomainLookup, domain_items, lookup_key
from eventlog.worker.enrich.officer_names import split_officer_name
from projections.projectors import domains, emails, snov_request_log, snov_tasks
from tests.conftest import REPO_ROOT
from tests.support.snov_stage import (RealClock, SnovSimulatorConfig, company, open_db, run_stage, running_snov_simulator,
                                      seed, stage_settings)

LIMIT, WINDOW = 10, 1.0


def sim_config(**knobs) -> SnovSimulatorConfig:
    return SnovSimulatorConfig(**{"rate_limit_requests": LIMIT, "rate_limit_window": WINDOW, **knobs})


def settings_for(sim, **overrides):
    return stage_settings(sim.base_url, snov_rate_limit=LIMIT, snov_rate_window=WINDOW, **overrides)


def all_done(conn):
    def check(_enricher) -> bool:
        # A start sent but not yet answered is neither polling nor needing a lookup: wait for it too.
        in_flight = snov_tasks.state_counts(conn).get("starting", 0)
        return (in_flight == 0 and snov_tasks.polling_count(conn) == 0 and not domains.needing_lookup(conn)
                and snov_tasks.state_counts(conn).get("completed", 0) > 0
                and not emails.needing_lookup(conn, ("director",)))
    return check


@pytest.fixture
def world(db_path):
    clock = RealClock()
    conn, ledger = open_db(db_path, clock)
    yield clock, conn, ledger
    conn.close()


async def test_no_domain_means_no_email_lookup_and_results_land_on_the_right_officer_when_shuffled(world):
    clock, conn, ledger = world
    seed(ledger, [company(i, officers=3) for i in range(1, 25)])
    config = sim_config(no_domain_share=0.5, shuffle_results=True, extra_email_share=0.5)
    async with running_snov_simulator(config, clock=clock) as sim:
        await run_stage(ledger, settings_for(sim), clock, seconds=20, until=all_done(conn))
        directory = sim.simulator.directory
        state = sim.state
    rows = domains.domain_rows(conn)
    found = {number: domain for number, _, st, domain, _ in rows if st == "found"}
    nothing = {number for number, _, st, _, _ in rows if st == "none"}
    assert found and nothing and len(rows) == 24  # both kinds happened; every company was asked once
    for number, name, st, domain, _ in rows:
        assert domain == directory.domain_of(name) if st == "found" else directory.domain_of(name) is None
    # No e-mail lookup on a company without a domain: not in our table, not on the server.
    looked_up = {r[1] for r in emails.email_rows(conn)}
    assert looked_up and looked_up <= set(found) and not looked_up & nothing
    email_starts = [r for r in state.requests if r.endpoint == "emails_start"]
    assert email_starts
    asked_domains = {key.rsplit("|", 1)[1] for key in state.starts_per_lookup if key.startswith("email:")}
    assert asked_domains <= {d.lower() for d in found.values()}
    # Shuffled answers: every address sits on the officer the directory gives it to.
    names = {oid: name for c in [company(i, officers=3) for i in range(1, 25)] for oid, name, _ in c[2]}
    checked = 0
    for officer_id, number, domain, st, address, smtp in emails.email_rows(conn):
        person = split_officer_name(names[officer_id])
        expected = {f.email: f.smtp_status for f in directory.emails_of(person.first_name, person.last_name, domain)}
        if st == "found":
            assert expected.get(address) == smtp, (officer_id, address)
            checked += 1
        else:
            assert st == "none" and not expected
    assert checked >= 10
    assert state.repeated_lookups() == {}
    assert snov_tasks.credits(conn).spent == state.credits_spent  # our count of credits is the service's


async def test_the_limit_holds_by_the_servers_count_with_more_work_than_it_allows(world):
    clock, conn, ledger = world
    seed(ledger, [company(i, officers=2) for i in range(1, 80)])
    async with running_snov_simulator(sim_config(), clock=clock) as sim:
        enricher = await run_stage(ledger, settings_for(sim), clock, seconds=2.5)
        state = sim.state
    assert enricher.sent >= 2 * LIMIT  # it used the allowance of more than two windows ...
    assert state.max_in_any_window(WINDOW) <= LIMIT  # ... and never more than the limit in any of them
    assert state.outcomes()["rate_limited"] == 0
    assert snov_request_log.total_sends(conn) == len(state.requests)  # every request on the wire was recorded


async def test_a_token_that_expires_mid_run_is_renewed_once_and_the_work_goes_on(world):
    clock, conn, ledger = world
    seed(ledger, [company(i) for i in range(1, 30)])
    async with running_snov_simulator(sim_config(token_lifetime=3600), clock=clock) as sim:
        settings = settings_for(sim)
        first = await run_stage(ledger, settings, clock, seconds=0.7)
        # The server's clock jumps past the token's hour; ours goes with it, but the holder's token
        # was issued before: the next call gets a 401, one renewal, and carries on.
        clock.offset += 3700
        second = await run_stage(ledger, settings, clock, seconds=1.5)
        state = sim.state
    assert len(state.tokens) >= 2
    assert state.outcomes()["unauthorized"] <= 1  # never a loop of 401s
    assert second.stopped is None and first.sent > 0 and second.sent > 3
    assert snov_tasks.state_counts(conn).get("completed", 0) > 0


async def test_a_token_that_expires_while_held_is_renewed_before_any_401(world):
    clock, conn, ledger = world
    seed(ledger, [company(i) for i in range(1, 30)])
    async with running_snov_simulator(sim_config(token_lifetime=1), clock=clock) as sim:
        enricher = await run_stage(ledger, settings_for(sim), clock, seconds=2.5)
        state = sim.state
    assert len(state.tokens) >= 2 and enricher.holder.issued == len(state.tokens)
    assert state.outcomes()["unauthorized"] == 0


async def test_a_restart_between_start_and_result_polls_the_same_task_and_never_starts_it_again(world):
    clock, conn, ledger = world
    seed(ledger, [company(i) for i in range(1, 6)])
    config = sim_config(polls_before_completion=3)
    async with running_snov_simulator(config, clock=clock) as sim:
        settings = settings_for(sim)
        await run_stage(ledger, settings, clock, seconds=5,
                        until=lambda e: snov_tasks.polling_count(conn) > 0)
        started = snov_tasks.due_for_poll(conn, "9999")
        assert started is not None and started.task_hash  # the hash was recorded before any poll
        await run_stage(ledger, settings, clock, seconds=10, until=all_done(conn))  # a new process, in effect
        state = sim.state
    assert state.repeated_lookups() == {}
    polled = [r for r in state.requests if r.task == started.task_hash and r.endpoint == "domains_result"]
    assert polled and polled[-1].outcome == "completed"
    answered = [row for row in domains.domain_rows(conn) if row[2] != "looking_up"]
    assert len(answered) == 5  # every company of the first task got its answer from the resumed polls


async def test_a_start_whose_answer_was_lost_is_spent_and_never_started_again(world):
    clock, conn, ledger = world
    seed(ledger, [company(i) for i in range(1, 4)])
    async with running_snov_simulator(sim_config(), clock=clock) as sim:
        settings = settings_for(sim)
        # A process recorded a start and died before its answer (or never sent it: no one can know).
        lookup = DomainLookup("00000001", company(1)[1])
        lost = SnovSent(request_id="snov-start-dead", call="domains_start", task_id="deadtask",
                        items=domain_items([lookup]), lookups=(lookup_key(lookup),), worst_credits=1)
        ledger.append(lost)
        clock.offset += settings.request_timeout + 10  # long enough for its answer to be lost for good
        await run_stage(ledger, settings, clock, seconds=6, until=all_done(conn))
        state = sim.state
    assert snov_tasks.state_counts(conn).get("lost") == 1
    assert dict((n, s) for n, _, s, _, _ in domains.domain_rows(conn))["00000001"] == "lost"
    assert domain_lookup_key(company(1)[1]) not in state.starts_per_lookup  # never started again
    assert state.starts_per_lookup[domain_lookup_key(company(2)[1])] == 1  # the others were
    assert snov_tasks.credits(conn).spent == state.credits_spent + 1  # the lost start counted at its worst


async def test_credits_running_out_stop_enrichment_cleanly(world):
    clock, conn, ledger = world
    seed(ledger, [company(i, officers=3) for i in range(1, 40)])
    async with running_snov_simulator(sim_config(starting_balance=25), clock=clock) as sim:
        enricher = await run_stage(ledger, settings_for(sim), clock, seconds=8)
        state = sim.state
    assert enricher.stopped in ("not_enough_credits", "balance_low")
    account = snov_tasks.account(conn)
    assert account.stopped_code == enricher.stopped and account.stopped_reason
    assert state.credits_spent <= 25 and state.balance >= 0
    assert snov_tasks.polling_count(conn) == 0  # what was started was polled to its end


async def test_the_budget_bounds_what_is_spent_whatever_the_balance(world):
    clock, conn, ledger = world
    seed(ledger, [company(i, officers=3) for i in range(1, 40)])
    async with running_snov_simulator(sim_config(), clock=clock) as sim:
        enricher = await run_stage(ledger, settings_for(sim, snov_max_credits=12), clock, seconds=8)
        state = sim.state
    assert enricher.stopped == "budget_exhausted"
    c = snov_tasks.credits(conn)
    assert state.credits_spent <= 12 and c.spent + c.reserved <= 12 and c.reserved == 0


async def test_two_processes_on_one_database_keep_to_one_limit_and_never_start_a_lookup_twice(world, db_path):
    clock, conn, ledger = world
    seed(ledger, [company(i, officers=2) for i in range(1, 80)])
    async with running_snov_simulator(sim_config(), clock=clock) as sim:
        args = [str(db_path), sim.base_url, "3", str(LIMIT), str(WINDOW)]
        procs = [await asyncio.create_subprocess_exec(sys.executable, "-m", "tests.support.snov_stage_process", *args,
                                                      cwd=REPO_ROOT, stderr=asyncio.subprocess.PIPE)
                 for _ in range(2)]
        results = [await asyncio.wait_for(p.communicate(), 30) for p in procs]
        state = sim.state
    assert [p.returncode for p in procs] == [0, 0], [err.decode()[-2000:] for _, err in results]
    assert len(state.tokens) == 2 and len(state.requests) > 2 * LIMIT  # both worked, over several windows
    assert state.max_in_any_window(WINDOW) == LIMIT  # the two filled one limit, never more (server's count)
    assert state.outcomes()["rate_limited"] == 0
    assert state.repeated_lookups() == {}
    assert snov_request_log.total_sends(conn) == len(state.requests)
