"""`ingest --simulate` with enrichment, end to end: real processes, both simulators on loopback.

A newcomer's first command must show domains and e-mails; `audit` must then pass for both
limits, and `replay` must rebuild `domains` and `emails` exactly as the live run wrote them.
"""

from __future__ import annotations

import json

import apsw

from tests.commands.test_ingest_e2e import query


def rows(db, table: str) -> list[tuple]:
    return query(db, f"SELECT * FROM {table} ORDER BY rowid")


def test_ingest_simulate_enriches_then_audit_passes_both_limits_and_replay_rebuilds_the_same_tables(tmp_path, run_cli):
    db = tmp_path / "companies.db"
    ran = run_cli("ingest", "--simulate", "--duration", "8", "--progress-interval", "2", "--db", db, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert "snov domains" in ran.stderr  # the progress line shows the stage
    found_domains = query(db, "SELECT count(*) FROM domains WHERE state = 'found'")[0][0]
    found_emails = query(db, "SELECT count(*) FROM emails WHERE state = 'found' AND email LIKE '%@%'")[0][0]
    assert found_domains > 0 and found_emails > 0
    # Never an e-mail lookup on a company without a found domain.
    assert query(db, "SELECT count(*) FROM emails e LEFT JOIN domains d ON d.company_number = e.company_number "
                     "AND d.domain = e.domain WHERE d.state IS NOT 'found'")[0][0] == 0

    audited = run_cli("audit", "--json", "--db", db)
    assert audited.returncode == 0, audited.stdout[-3000:]
    report = json.loads(audited.stdout)
    assert report["verdict"] == "compliant" and report["requests"]["sent"] > 0
    snov = report["snov"]
    assert snov["sent"] > 5 and snov["windows"]["max"]["count"] <= snov["limit"]["requests"] == 60
    assert snov["limit"]["source"] == "snov.started" and snov["repeated_start_count"] == 0
    assert query(db, "SELECT count(*) FROM event_log WHERE event_type = 'snov.sent'")[0][0] == snov["sent"]

    status = run_cli("status", "--json", "--db", db)
    assert status.returncode == 0, status.stderr
    enrichment = json.loads(status.stdout)["enrichment"]
    assert enrichment["domains"]["found"] == found_domains and enrichment["credits_spent"] > 0

    live = {t: rows(db, t) for t in ("domains", "emails", "snov_tasks", "snov_request_log")}
    assert run_cli("replay", "--verify", "--db", db).returncode == 0
    replayed = run_cli("replay", "--db", db)
    assert replayed.returncode == 0, replayed.stderr
    for table, before in live.items():
        assert rows(db, table) == before, table
    # The people's names and addresses went into the ledger sealed, never in clear.
    address = query(db, "SELECT email FROM emails WHERE state = 'found' LIMIT 1")[0][0]
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        assert conn.execute("SELECT count(*) FROM event_log WHERE instr(event_data, ?) > 0", (address,)).fetchone()[0] == 0
    finally:
        conn.close()


def test_credits_running_out_mid_run_stop_enrichment_while_the_stream_and_companies_house_go_on(tmp_path, run_cli):
    db = tmp_path / "companies.db"
    ran = run_cli("ingest", "--simulate", "--duration", "8", "--progress-interval", "1", "--db", db,
                  env={"SNOV_MAX_CREDITS": "2"}, timeout=60)
    assert ran.returncode == 0, ran.stderr
    stops = query(db, "SELECT id, json_extract(event_data, '$.code') FROM event_log WHERE event_type = 'snov.stopped'")
    assert [code for _, code in stops] == ["budget_exhausted"]
    stopped_at = stops[0][0]
    after = {t: n for t, n in query(db, "SELECT event_type, count(*) FROM event_log WHERE id > ? GROUP BY 1", stopped_at)}
    assert after.get("stream.event", 0) > 10 and after.get("request.sent", 0) > 5  # the rest went on
    assert after.get("snov.sent", 0) == query(db, "SELECT count(*) FROM event_log WHERE id > ? AND event_type = "
                                                  "'snov.sent' AND event_data LIKE '%_poll%'", stopped_at)[0][0]
    spent = query(db, "SELECT coalesce(sum(credits), 0) FROM snov_tasks")[0][0]
    assert 0 < spent <= 2
    status = run_cli("status", "--db", db)
    assert "STOPPED (budget_exhausted)" in status.stdout, status.stdout
    assert run_cli("audit", "--db", db).returncode == 0
