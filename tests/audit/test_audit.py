"""`audit` on hand-built ledgers: each violation is found and named, and a clean ledger passes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eventlog.audit import audit, report as report_module, summary, to_json
from eventlog.errors import AuditError
from support.audit_ledger import AuditLedger
from support import REPO


def window_of(n: int, start: float = 100.0, gap: float = 0.5) -> list[float]:
    return [start + i * gap for i in range(n)]


@pytest.fixture
def book(tmp_path):
    b = AuditLedger(tmp_path / "audit.db")
    b.at(0).worker_started(limit=600, window=300)
    yield b
    b.close()


def codes(report) -> dict[str, int]:
    return {k: v for k, v in report.violation_counts.items() if v}


# --- windows -------------------------------------------------------------------------


def test_exactly_at_the_limit_passes(book):
    book.sends(window_of(600))
    r = audit(book.path)
    assert r.verdict == "compliant" and r.exit_code == 0
    assert r.windows.max.count == 600 and r.windows.headroom == 0
    assert r.windows.max.start == book.iso(100)
    assert r.limit.source == "worker.started" and r.requests.sent == 600


def test_one_over_fails_and_names_the_window(book):
    book.sends(window_of(600) + [399.999999])  # 1 µs inside the window that opened at t=100
    r = audit(book.path)
    assert r.exit_code == 1
    out = summary(r)
    assert "verdict: VIOLATION" in out
    assert f"601 requests in the window [{book.iso(100)}, {book.iso(400)})" in out
    assert codes(r) == {"window": 1}
    [run] = r.windows.over_limit
    assert (run.peak.start, run.peak.count, run.excess) == (book.iso(100), 601, 1)


def test_a_send_exactly_one_window_later_is_in_the_next_window(book):
    book.sends(window_of(600) + [400.0])  # t=100 + 300 s: half-open, so not in the first window
    r = audit(book.path)
    assert r.exit_code == 0 and r.windows.max.count == 600


def test_limit_and_window_options_override_the_ledger(book):
    book.sends(window_of(10, gap=1))
    assert audit(book.path, limit=5, window=10).exit_code == 1
    r = audit(book.path, limit=10, window=10)
    assert r.exit_code == 0 and r.limit.source == "option" and r.windows.max.count == 10


def test_default_limit_without_a_worker_started(tmp_path):
    b = AuditLedger(tmp_path / "bare.db")
    b.sends([1, 2, 3])
    r = audit(b.path)
    assert (r.limit.requests, r.limit.window_seconds, r.limit.source) == (600, 300.0, "default")
    assert r.exit_code == 0


def test_a_tampered_worker_start_sets_no_limit_and_crashes_nothing(book):
    """A worker.started whose body lost its limit: the one before it counts, the chain says why."""
    book.sends(window_of(10, gap=1))
    started = book.worker_started(limit=5, window=10)
    book.drop_triggers()
    book.execute("UPDATE event_log SET event_data = '{\"type\":\"worker.started\"}' WHERE id = ?", (started,))
    r = audit(book.path)
    assert (r.limit.requests, r.limit.window_seconds, r.limit.source) == (600, 300.0, "worker.started")
    assert "chain" in codes(r) and r.exit_code == 1


# --- 429s and cooldowns ------------------------------------------------------------


def test_a_request_inside_a_cooldown_fails(book):
    book.sends([10, 11])
    book.at(20).queue("hot")
    book.at(20).send("hot")
    book.at(20.1).rate_limited("hot", cooldown=60)  # no sends until t=80.1
    breach = book.sends([50], prefix="early")[0]
    r = audit(book.path)
    assert codes(r) == {"cooldown": 1, "rate_limited": 1}
    [rl] = r.rate_limited
    assert (rl.status, rl.honoured, rl.sends_in_cooldown) == (429, False, 1)
    assert rl.breaches[0].position == breach and rl.breaches[0].at == book.iso(50)
    assert rl.sends_in_window_before == 3 and rl.last_send_before.at == book.iso(20)
    [v] = [v for v in r.violations if v.kind == "cooldown"]
    assert v.position == breach and "inside the cooldown" in v.message


def test_a_cooldown_honoured_to_the_microsecond_is_no_breach(book):
    book.at(20).queue("hot")
    book.at(20).send("hot")
    book.at(20.1).rate_limited("hot", cooldown=60, status=403)
    book.sends([80.1])  # exactly at cooldown_until: allowed
    r = audit(book.path)
    # the 403 itself is a violation (the server refused a request), the send after it is not
    assert codes(r) == {"rate_limited": 1}
    [rl] = r.rate_limited
    assert rl.status == 403 and rl.honoured and rl.first_send_after.at == book.iso(80.1)


# --- tracing sends to the queue ------------------------------------------------------


def test_an_orphan_request_fails(book):
    book.sends([10])
    book.at(20).send("direct")  # never queued
    book.answer("direct")
    r = audit(book.path)
    assert codes(r) == {"orphan": 1}
    assert r.orphans[0].request_id == "direct" and r.orphans[0].at == book.iso(20)


def test_queued_after_sending_is_still_an_orphan(book):
    book.at(10).send("late")
    book.answer("late")
    book.at(11).queue("late")
    assert codes(audit(book.path)) == {"orphan": 1}


def test_queued_under_another_event_id_is_traced(book):
    from eventlog.ledger.entries import RequestQueued

    book.at(5).ledger.append(RequestQueued(request_id="custom", kind="profile",
                                           company_number="00000001"), "my-own-id")
    book.at(10).send("custom")
    book.answer("custom")
    assert audit(book.path).exit_code == 0


def test_re_sends_and_pages_of_one_request_are_traced_and_paired(book):
    book.at(1).queue("off", kind="officers")
    book.at(2).send("off", kind="officers")
    book.at(2.1).answer("off", kind="officers")
    book.at(3).send("off", kind="officers", page_start=35)
    book.at(3.1).answer("off", kind="officers", page_start=35, status=404)
    book.at(4).send("off", kind="officers", page_start=70)
    book.at(4.1).transport_error("off", kind="officers")  # page 0 key: no pending match
    r = audit(book.path)
    assert r.exit_code == 0, r.violations
    assert r.requests.sent == 3 and r.table.checked == 3


# --- the hash chain ------------------------------------------------------------------


def test_a_deleted_ledger_row_is_detected(book):
    positions = book.sends([10, 11, 12])
    book.drop_triggers()
    book.execute("DELETE FROM event_log WHERE id = ?", (positions[1] + 1,))  # an answer
    r = audit(book.path)
    assert not r.chain.ok and r.chain.bad_position == positions[1] + 1
    assert "missing" in r.chain.reason and r.exit_code == 1


def test_an_edited_ledger_row_is_detected(book):
    positions = book.sends([10, 11, 12])
    book.drop_triggers()
    book.execute("UPDATE event_log SET received_at = ? WHERE id = ?", (book.iso(500), positions[2]))
    r = audit(book.path)
    assert r.chain.bad_position == positions[2] and "does not match its hash" in r.chain.reason
    assert "chain" in codes(r)


def test_an_unreadable_entry_is_reported_not_a_crash(book):
    positions = book.sends([10])
    book.drop_triggers()
    book.execute("UPDATE event_log SET event_data = 'not json' WHERE id = ?", (positions[0],))
    r = audit(book.path)
    assert {"chain", "malformed"} <= set(codes(r))


# --- api_rate_limit_log --------------------------------------------------------------


@pytest.mark.parametrize("sql, kind", [
    ("UPDATE api_rate_limit_log SET response_status = 200 WHERE id = {p}", "mismatch"),
    ("UPDATE api_rate_limit_log SET timestamp = '2026-01-01T00:00:00.000000Z' WHERE id = {p}", "mismatch"),
    ("UPDATE api_rate_limit_log SET request_id = 'other' WHERE id = {p}", "mismatch"),
    ("DELETE FROM api_rate_limit_log WHERE id = {p}", "missing"),
    ("INSERT INTO api_rate_limit_log(id, timestamp, request_type, response_status) "
     "VALUES ({p} + 1, '2026-01-01T00:00:00.000000Z', 'profile', 200)", "extra"),
])
def test_a_tampered_rate_limit_table_is_detected(book, sql, kind):
    book.sends([10])
    book.at(20).queue("limited")
    p = book.at(20).send("limited")
    book.at(20.1).rate_limited("limited", cooldown=10)
    book.sends([40], prefix="after")
    assert codes(audit(book.path)) == {"rate_limited": 1}
    book.execute(sql.format(p=p))
    r = audit(book.path)
    assert codes(r) == {"table": 1, "rate_limited": 1}
    [issue] = r.table.issues
    assert (issue.kind, issue.id) == (kind, p + (kind == "extra"))
    [v] = [v for v in r.violations if v.kind == "table"]
    assert v.message.startswith("api_rate_limit_log ")
    assert str(p + (kind == "extra")) in v.message


def test_a_send_never_answered_keeps_status_zero(book):
    book.at(10).queue("lost")
    book.at(10).send("lost")  # the worker died before the answer
    assert audit(book.path).exit_code == 0
    book.execute("UPDATE api_rate_limit_log SET response_status = 200 WHERE request_id = 'lost'")
    assert codes(audit(book.path)) == {"table": 1}


# --- --since / --until ---------------------------------------------------------------


def test_since_and_until_restrict_what_is_counted(book):
    book.sends(window_of(10, start=100, gap=1), prefix="a")
    book.at(300).send("direct")  # an orphan outside the span asked about
    book.answer("direct")
    book.sends(window_of(5, start=1000, gap=1), prefix="b")
    r = audit(book.path, since=book.iso(900), until=book.iso(1003))
    assert r.requests.sent == 3 and r.requests.sent_total == 16
    assert r.exit_code == 0 and r.windows.max.count == 3
    assert r.since == book.iso(900) and r.until == book.iso(1003)
    assert audit(book.path, until=book.iso(301)).orphan_count == 1
    assert audit(book.path, since="2026-01-01").requests.sent == 16  # a bare date is midnight UTC


# --- stops, gaps, the JSON --------------------------------------------------------------


def test_stops_and_gaps_are_reported_with_times(book):
    book.at(30).emergency_stop()
    book.at(40).gap()
    r = audit(book.path)
    assert r.exit_code == 0
    doc = json.loads(to_json(r))
    assert doc["emergency_stops"][0]["at"] == book.iso(30)
    assert doc["emergency_stops"][0]["reason"] == "3 consecutive 429s"
    assert doc["gaps"][0]["at"] == book.iso(40) and doc["gaps"][0]["stream"] == "companies"


def test_json_keys_are_the_documented_ones(book):
    book.sends([10, 11])
    doc = json.loads(to_json(audit(book.path)))
    assert list(doc) == ["version", "database", "verdict", "exit_code", "since", "until", "limit",
                         "requests", "windows", "rate_limited", "rate_limited_count", "orphans",
                         "orphan_count", "chain", "chain_engine", "chain_engine_reason", "table",
                         "emergency_stops", "gaps", "violations", "violation_counts", "snov"]
    assert list(doc["windows"]) == ["max", "headroom", "busiest", "over_limit"]
    assert list(doc["chain"]) == ["ok", "checked", "head", "bad_position", "reason"]
    listed = report_module.__doc__
    explained = (Path(report_module.__file__).parent / "report.md").read_text()
    for key in doc:
        assert key in listed and f"`{key}`" in explained, key


# --- could not check: AuditError, exit 2 ---------------------------------------------


def test_a_missing_file_cannot_be_checked(tmp_path):
    with pytest.raises(AuditError) as caught:
        audit(str(tmp_path / "nope.db"))
    assert str(caught.value) == f"could not check: no database at {tmp_path / 'nope.db'}"
    assert caught.value.exit_code == 2


def test_a_file_that_is_not_sqlite_cannot_be_checked(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not a database, just some bytes\n" * 200)
    with pytest.raises(AuditError, match="^could not check: not a SQLite database"):
        audit(str(path))


def test_a_database_without_the_ledger_cannot_be_checked(tmp_path):
    import apsw

    path = tmp_path / "other.db"
    apsw.Connection(str(path)).execute("CREATE TABLE t(x)")
    with pytest.raises(AuditError, match="^could not check: .* has no event_log table"):
        audit(str(path))


@pytest.mark.parametrize("since, until, message", [
    ("yesterday", None, "--since 'yesterday' is not an ISO 8601 time"),
    (None, "soon", "--until 'soon' is not an ISO 8601 time"),
    ("2026-01-02", "2026-01-01T12:00:00Z", "--since 2026-01-02 is not before --until 2026-01-01T12:00:00Z"),
    ("2026-01-02", "2026-01-02T00:00:00Z", "--since 2026-01-02 is not before --until 2026-01-02T00:00:00Z"),
])
def test_a_bad_span_is_refused_naming_the_option(book, since, until, message):
    with pytest.raises(AuditError) as caught:
        audit(book.path, since=since, until=until)
    assert str(caught.value).startswith(message) and caught.value.exit_code == 2


def test_a_limit_below_one_cannot_be_checked(book):
    """The CLI's options can't ask for it; a caller in code can, and gets exit 2, not a verdict."""
    book.sends([10])
    with pytest.raises(AuditError, match="^could not check: the limit must be at least 1"):
        audit(book.path, limit=0)


# --- the command line: renders the report, maps errors, same bytes as ever --------------


def test_the_command_prints_the_rendered_report_and_exits_with_its_code(book, run_cli):
    book.sends(window_of(5))
    clean = run_cli("audit", "--db", book.path)
    assert (clean.returncode, clean.stderr) == (0, "")
    assert clean.stdout == summary(audit(book.path)) + "\n"
    assert "verdict: COMPLIANT" in clean.stdout
    over = run_cli("audit", "--db", book.path, "--limit", "4", "--json")
    assert (over.returncode, over.stderr) == (1, "")
    assert over.stdout == to_json(audit(book.path, limit=4)) + "\n"
    assert json.loads(over.stdout)["violation_counts"]["window"] == 1


def test_the_command_takes_the_database_from_the_environment(book, run_cli):
    book.sends(window_of(5))
    result = run_cli("audit", env={"DATABASE_PATH": book.path})
    assert (result.returncode, result.stdout) == (0, summary(audit(book.path)) + "\n")


def test_could_not_check_is_one_line_on_stderr_and_exit_2(tmp_path, run_cli):
    missing = run_cli("audit", "--db", tmp_path / "gone.db", "--json")
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr == f"chledger: could not check: no database at {tmp_path / 'gone.db'}\n"


def test_a_config_error_is_exit_2(book, tmp_path, run_cli):
    absent = run_cli("--config", tmp_path / "absent.yaml", "audit", "--db", book.path)
    assert (absent.returncode, absent.stdout) == (2, "")
    assert absent.stderr == f"chledger: config file {tmp_path / 'absent.yaml'}: not found\n"
    bad = run_cli("audit", "--db", book.path, env={"LOG_LEVEL": "LOUD"})
    assert bad.returncode == 2 and bad.stderr.startswith("chledger: invalid setting LOG_LEVEL='LOUD'")


def test_the_audit_package_imports_neither_click_nor_what_it_audits_against(book):
    """The audit reads the ledger alone: a projector, the worker or the settings must not shape
    its verdict (a projector bug must not hide a violation), and only cli.py talks to the
    terminal. Checked in a fresh interpreter, after a whole audit has run."""
    book.sends([10])
    code = (f"import sys; from eventlog.audit import audit; audit({book.path!r}); "
            "print(sorted(m for m in sys.modules if m == 'click' or m.startswith(('click.', "
            "'projections', 'eventlog.worker', 'eventlog.config', 'eventlog.ops'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO).stdout
    assert out.strip() == "[]"


def test_a_send_with_a_garbled_time_or_body_is_malformed_not_a_crash(book):
    positions = book.sends([10, 11])
    book.drop_triggers()
    book.execute("UPDATE event_log SET received_at = 'yesterday' WHERE id = ?", (positions[0],))
    book.execute("UPDATE event_log SET event_data = '{\"type\": \"request.sent\"}' WHERE id = ?",
                 (positions[1],))
    r = audit(book.path)
    assert r.violation_counts["malformed"] == 2 and not r.chain.ok
    assert r.requests.sent == 1  # the one whose time could be read still counts


# --- the rule the table follows ----------------------------------------------------------


def tangled(b: AuditLedger) -> None:
    """Re-sends before an answer, a second answer, a transport error, a 429, officer pages."""
    b.at(0).worker_started(limit=600, window=300)
    b.at(1).queue("a")
    b.at(2).send("a")            # lost: the worker died before its answer
    b.at(3).send("a")            # re-sent
    b.at(3.1).answer("a", 200)   # fills the newest waiting row: the re-send
    b.at(3.2).answer("a", 404)   # a second answer fills the older one still waiting
    b.at(4).queue("b")
    b.at(5).send("b")
    b.at(5.1).transport_error("b")
    b.at(6).send("b")
    b.at(6.1).rate_limited("b", cooldown=10)
    b.at(20).queue("o", kind="officers")
    b.at(21).send("o", kind="officers")
    b.at(21.1).answer("o", kind="officers")
    b.at(22).send("o", kind="officers", page_start=35)
    b.at(22.1).answer("o", kind="officers", page_start=35)
    b.at(23).queue("c")
    b.at(24).send("c")           # still waiting when the audit runs


def test_the_table_rule_newest_waiting_row_takes_the_answer(tmp_path):
    b = AuditLedger(tmp_path / "t.db")
    tangled(b)
    r = audit(b.path)
    assert codes(r) == {"rate_limited": 1}, r.violations  # the 429 in the tangle, and nothing else
    rows = {row[0]: row[2] for row in b.conn.execute(
        "SELECT id, request_id, response_status FROM api_rate_limit_log").fetchall()}
    assert sorted(rows.values()) == [0, 0, 200, 200, 200, 404, 429]


def test_the_audit_agrees_with_the_real_projection(tmp_path):
    b = AuditLedger(tmp_path / "p.db", projections=True)
    tangled(b)
    r = audit(b.path)
    assert codes(r) == {"rate_limited": 1}, r.violations  # the 429 in the tangle, and nothing else
    assert r.table.checked == 7
    b.drop_triggers()
    b.execute("UPDATE api_rate_limit_log SET response_status = 200 WHERE request_id = 'c'")
    assert audit(b.path).violation_counts["table"] == 1


def test_bad_or_inverted_since_until_are_one_line_naming_the_option(tmp_path):
    from eventlog.ledger.db import connect
    from eventlog.ledger.migrate import migrate

    db = tmp_path / "a.db"
    migrate(connect(db))
    cli = str(REPO / "cli.py")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, cli, "audit", "--db", str(db), *args], capture_output=True,
                              text=True, timeout=60)

    bad = run("--since", "garbage")
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "chledger: --since 'garbage' is not an ISO 8601 time (e.g. 2026-11-23T08:30:00Z; UTC when no offset is given)")
    bad_until = run("--until", "tomorrow")
    assert (bad_until.returncode, bad_until.stdout) == (2, "") and bad_until.stderr == (
        "chledger: --until 'tomorrow' is not an ISO 8601 time (e.g. 2026-11-23T08:30:00Z; UTC when no offset is given)\n")
    inverted = run("--since", "2026-11-23T10:00:00Z", "--until", "2026-11-23T09:00:00Z")
    assert inverted.returncode == 2 and inverted.stderr.strip().startswith(
        "chledger: --since 2026-11-23T10:00:00Z is not before --until 2026-11-23T09:00:00Z")
    fine = run("--since", "2026-11-23", "--until", "2026-11-24T00:00:00+01:00")
    assert fine.returncode == 0, fine.stderr
