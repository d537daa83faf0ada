"""E-mail addresses and the names looked up are personal: sealed in the ledger under the
officer's subject, erased from `emails` when the officer is forgotten, live and in replay alike
(serial or split over processes)."""

from __future__ import annotations

from eventlog.clock import from_epoch
from eventlog.ledger.entries import PersonForgotten
from eventlog.privacy import ERASED, forget_in_transaction, officer_subject
from projections.projectors import emails
from projections.replay.rebuild import replay
from tests.support.snov_stage import (RealClock, SnovSimulatorConfig, company, open_db, run_stage,
                                      running_snov_simulator, seed, stage_settings)


async def test_forgetting_an_officer_erases_their_addresses_live_and_in_every_replay(db_path):
    clock = RealClock()
    conn, ledger = open_db(db_path, clock)
    people = [company(i, officers=3) for i in range(1, 12)]
    seed(ledger, people)
    async with running_snov_simulator(SnovSimulatorConfig(no_domain_share=0.0, no_email_share=0.0),
                                      clock=clock) as sim:
        await run_stage(ledger, stage_settings(sim.base_url), clock, seconds=12,
                        until=lambda e: len([r for r in emails.email_rows(conn) if r[3] == "found"]) >= 10)
    found = [r for r in emails.email_rows(conn) if r[3] == "found"]
    assert len(found) >= 10
    officer, address = found[0][0], found[0][4]
    names = {oid: name for c in people for oid, name, _ in c[2]}
    first_name = names[officer].split(", ")[1]
    in_clear = conn.execute("SELECT count(*) FROM event_log WHERE instr(event_data, ?) > 0 OR instr(event_data, ?) > 0",
                            (address, f'"{first_name}"')).fetchone()[0]
    assert in_clear == 0  # the address and the name looked up went in sealed

    with ledger.transaction() as tx:
        forget_in_transaction(tx.conn, officer_subject(officer), from_epoch(clock.now()))
        tx.append(PersonForgotten(subject=officer_subject(officer)))
    after = emails.email_rows(conn)
    theirs = [r for r in after if r[0] == officer and r[3] == "found"]
    others = [r for r in after if r[0] != officer and r[3] == "found"]
    assert theirs and all(r[4] == ERASED for r in theirs)
    assert others and all("@" in r[4] for r in others)  # nobody else was touched

    replay(conn, jobs=1)
    assert emails.email_rows(conn) == after
    replay(conn, jobs=2)  # each group in its own process and scratch file, the vault attached
    assert emails.email_rows(conn) == after
    conn.close()
