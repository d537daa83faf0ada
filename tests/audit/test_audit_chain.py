"""The audit's lean chain check agrees with `Ledger.verify`, one range or several in parallel."""

from __future__ import annotations

import hashlib

import apsw
import pytest

from eventlog.audit import run as audit_module
from eventlog.audit import scan as audit_scan
from eventlog.audit.run import audit
from eventlog.errors import AuditError
from eventlog.ledger.chain import MESSAGE_SQL, formula_agrees
import msgspec

from eventlog.ledger.entries import RequestQueued, StreamEvent, StreamLineRejected
from eventlog.ledger.chain import GENESIS, chain_hash
from eventlog.ledger.store import Ledger
from support.audit_ledger import AuditLedger


@pytest.fixture
def parallel(monkeypatch):
    """Let even a tiny ledger be split across forked workers (or threads, in C)."""
    monkeypatch.setattr(audit_module, "PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(audit_module, "NATIVE_PARALLEL_MIN_ROWS", 0)


@pytest.fixture
def python_engine(monkeypatch):
    """The Python scan, whether or not the chain extension is built (its own tests are here)."""
    monkeypatch.setenv("CHLEDGER_NATIVE_CHAIN", "0")


def awkward(path) -> AuditLedger:
    b = AuditLedger(path)
    b.at(0).worker_started()  # no company: NULL in the hashed message
    b.at(1).ledger.append(StreamLineRejected(stream="companies", reason="bad json",
                                             excerpt="Café ☕ \u2028 naïve", length=17))
    b.at(1.5).ledger.append(StreamEvent(
        stream="companies", timepoint=7, published_at="2026-01-01T00:00:01", change="changed",
        resource_kind="company-profile", resource_id="01234567", resource_uri="/company/01234567",
        company_number="01234567", data=msgspec.Raw('{"company_name":"Ünïcödé Ltd ☕"}'.encode())))
    b.at(2).ledger.append(RequestQueued(request_id="q-ü", kind="profile", company_number="ÉCOLE01"))
    b.at(3).send("q-ü", company="ÉCOLE01")
    b.answer("q-ü", company="ÉCOLE01")
    return b


def test_sqlite_builds_exactly_the_bytes_chain_hash_hashes(tmp_path, python_engine):
    b = awkward(tmp_path / "a.db")
    rows = b.conn.execute("SELECT id, event_id, event_type, company_number, received_at, event_data, "
                          f"hash, {MESSAGE_SQL} FROM event_log ORDER BY id").fetchall()
    prev = GENESIS
    for pos, eid, et, company, at, data, stored, message in rows:
        assert hashlib.sha256(prev + message).digest() == chain_hash(prev, pos, eid, et, company, at, data)
        assert formula_agrees(b.conn, pos, prev)
        prev = stored
    assert audit(b.path).chain.ok


def test_a_diverging_formula_falls_back_to_chain_hash(tmp_path, monkeypatch, python_engine):
    b = awkward(tmp_path / "a.db")
    monkeypatch.setattr(audit_scan, "formula_agrees", lambda *a: False)
    assert audit(b.path).chain.ok
    b.drop_triggers()
    b.execute("UPDATE event_log SET event_data = replace(event_data, 'naïve', 'naive') WHERE id = 2")
    chain = audit(b.path).chain
    assert (chain.ok, chain.bad_position) == (False, 2)


@pytest.mark.parametrize("engine", ["c", "python"])
def test_stream_events_are_hashed_though_their_bodies_are_not_read(tmp_path, monkeypatch, engine):
    if engine == "python":
        monkeypatch.setenv("CHLEDGER_NATIVE_CHAIN", "0")
    b = awkward(tmp_path / "a.db")
    assert audit(b.path).exit_code == 0
    b.drop_triggers()
    b.execute("UPDATE event_log SET event_data = replace(event_data, 'Ltd', 'PLC') "
              "WHERE event_type = 'stream.event'")
    chain = audit(b.path).chain
    assert (chain.ok, chain.bad_position) == (False, 3)


def many(path, n: int = 40) -> AuditLedger:
    """Requests queued well before they are sent, answered after later sends went out, so any
    split of the positions cuts through queued-but-unsent and sent-but-unanswered requests."""
    b = AuditLedger(path)
    b.at(0).worker_started(limit=10, window=10)  # sends 1 s apart: exactly at the limit
    t = 1.0
    for i in range(n):
        b.at(t).queue(f"r{i}")
        if i >= 3:
            b.at(t + 0.1).send(f"r{i - 3}")
        if i >= 5:
            b.at(t + 0.2).answer(f"r{i - 5}", status=200 if i % 7 else 404)
        t += 1.0
    return b


def same_report(a, b) -> None:
    for field in ("verdict", "requests", "windows", "rate_limited", "orphans", "chain", "table",
                  "violation_counts"):
        assert getattr(a, field) == getattr(b, field), field


@pytest.mark.parametrize("jobs", [2, 3, 4])
def test_parallel_ranges_give_the_same_report(tmp_path, parallel, jobs):
    b = many(tmp_path / "m.db")
    one = audit(b.path, jobs=1)
    assert one.exit_code == 0 and one.requests.sent == 37 and one.table.checked == 37
    same_report(one, audit(b.path, jobs=jobs))


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_parallel_ranges_find_what_one_range_finds(tmp_path, parallel, jobs):
    b = many(tmp_path / "m.db")
    b.at(100).send("direct")  # orphan
    b.drop_triggers()
    head = b.ledger.head()
    b.execute("UPDATE api_rate_limit_log SET response_status = 500 WHERE id = "
              "(SELECT min(id) FROM api_rate_limit_log)")
    victim = b.conn.execute("SELECT min(id) FROM event_log WHERE event_type = 'response.received' "
                            "AND id >= ?", (head // 2,)).fetchone()[0]
    b.execute("DELETE FROM event_log WHERE id = ?", (victim,))  # near the end of the first of 2 ranges
    reference = Ledger(b.conn).verify()
    r = audit(b.path, jobs=jobs)
    assert (r.chain.ok, r.chain.bad_position, r.chain.reason) == (
        False, reference.bad_position, reference.reason)
    assert r.orphan_count == 1 and r.table.mismatch_count == 2  # the edited row, the lost answer


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_an_edit_anywhere_is_reported_as_ledger_verify_reports_it(tmp_path, parallel, where):
    b = many(tmp_path / "m.db", n=30)
    head = b.ledger.head()
    pos = {"first": 1, "middle": head // 2 + 1, "last": head}[where]
    b.drop_triggers()
    b.execute("UPDATE event_log SET received_at = '2030-01-01T00:00:00.000000Z' WHERE id = ?", (pos,))
    reference = Ledger(b.conn).verify()
    for jobs in (1, 2):
        chain = audit(b.path, jobs=jobs).chain
        assert (chain.bad_position, chain.reason, chain.checked) == (
            reference.bad_position, reference.reason, reference.checked)


def test_a_corrupt_page_is_could_not_check(tmp_path):
    b = many(tmp_path / "m.db", n=200)
    b.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    b.close()
    path = tmp_path / "m.db"
    raw = bytearray(path.read_bytes())
    page = 4096
    for offset in range(3 * page, len(raw) - page, page):  # scribble over every page after the schema
        raw[offset:offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))
    with pytest.raises(AuditError, match="^could not check: ") as caught:
        audit(str(path))
    assert caught.value.exit_code == 2


def test_chain_hash_is_what_the_ledger_stores(tmp_path):
    """Guards the premise of the lean check: a fresh ledger verifies under both verifiers."""
    b = many(tmp_path / "m.db", n=10)
    assert Ledger(b.conn).verify().ok and audit(b.path).chain.ok
    conn = apsw.Connection(b.path)
    assert conn.execute("SELECT count(*) FROM event_log").fetchone()[0] == b.ledger.head()


@pytest.mark.parametrize("jobs", [2, 3, 4])
def test_answers_that_cross_a_range_edge_pair_as_in_one_range(tmp_path, parallel, jobs):
    from test_audit import tangled

    b = AuditLedger(tmp_path / "t.db")
    tangled(b)
    one = audit(b.path, jobs=1)
    assert {k: v for k, v in one.violation_counts.items() if v} == {"rate_limited": 1}
    same_report(one, audit(b.path, jobs=jobs))
    b.execute("UPDATE api_rate_limit_log SET response_status = 200 WHERE response_status = 404")
    assert audit(b.path, jobs=jobs).violation_counts["table"] == 1
