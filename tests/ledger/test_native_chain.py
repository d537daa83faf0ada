"""The compiled chain extension (eventlog/ledger/chainext) against the Python it replaces.

Every check here compares the C path with the Python one on the same file: `Ledger.verify` in C
and in Python, `scan_range_native` and `audit_scan.scan_range` (the whole `RangeScan`, field by
field), on awkward rows (NULL company, non-ASCII, empty data, blobs where text belongs), tampered
rows and tables, missing positions, range edges, and JSON that the C reader must either read
exactly as msgspec does or decline.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import apsw
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlog.audit import run as audit_module
from eventlog.ledger import native as native_chain
from eventlog.audit.run import audit
from eventlog.audit.native_scan import HEADER, _AUDIT_SQL, scan_range_native
from eventlog.audit.scan import scan_range
from eventlog.ledger.db import connect
from eventlog.ledger.entries import RequestQueued
from eventlog.ledger.chain import GENESIS, chain_hash
from eventlog.ledger.store import Ledger
from eventlog.ledger.migrate import migrate
from test_audit_chain import awkward, many
from support.audit_ledger import AuditLedger

REQUIRED = os.environ.get("CHLEDGER_REQUIRE_NATIVE_CHAIN") == "1"
native = pytest.mark.skipif(native_chain.engine() != "c" and not REQUIRED,
                            reason=f"the chain extension can't be used here: "
                                   f"{native_chain.unavailable_reason()}")
LOW = -(1 << 62)


def test_the_extension_is_built_and_loads_where_it_is_required():
    """CI sets CHLEDGER_REQUIRE_NATIVE_CHAIN=1: there, a missing or broken build fails here."""
    reason = native_chain.unavailable_reason()
    if REQUIRED:
        assert reason is None, reason
        conn = apsw.Connection(":memory:")
        assert native_chain.load(conn) and native_chain.usable(conn)
        assert native_chain.engine() == "c"
    else:  # not required: whichever engine this is, it says which, and why when not C
        assert (native_chain.engine() == "c") == (reason is None)


def test_turned_off_it_says_so(monkeypatch):
    monkeypatch.setenv("CHLEDGER_NATIVE_CHAIN", "0")
    assert native_chain.engine() == "python"
    assert "CHLEDGER_NATIVE_CHAIN=0" in native_chain.unavailable_reason()
    assert not native_chain.load(apsw.Connection(":memory:"))


# --- the chain ----------------------------------------------------------------------


class RawLedger:
    """Rows written straight into event_log, hashed by `chain_hash`, whatever their contents."""

    def __init__(self, path: Path | str):
        self.path = str(path)
        self.conn = connect(self.path)
        self.conn.execute("PRAGMA synchronous=OFF")
        migrate(self.conn)
        self.pos, self.prev = 0, GENESIS

    def add(self, event_type: str, data, *, at="2026-01-01T00:00:00.000000Z", company=None,
            event_id=None) -> int:
        self.pos += 1
        event_id = event_id if event_id is not None else f"{event_type}:{self.pos}"
        self.prev = chain_hash(self.prev, self.pos, event_id, event_type, company, at, data)
        self.conn.execute("INSERT INTO event_log(id, event_id, event_type, company_number, "
                          "event_data, received_at, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (self.pos, event_id, event_type, company, data, at, self.prev))
        return self.pos

    def row(self, id, at, kind, status, company, rid) -> None:
        self.conn.execute("INSERT INTO api_rate_limit_log(id, timestamp, request_type, "
                          "response_status, company_number, request_id) VALUES (?, ?, ?, ?, ?, ?)",
                          (id, at, kind, status, company, rid))


def both_verifies(conn, monkeypatch):
    c = Ledger(conn).verify()
    monkeypatch.setenv("CHLEDGER_NATIVE_CHAIN", "0")
    py = Ledger(conn).verify()
    monkeypatch.delenv("CHLEDGER_NATIVE_CHAIN")
    return c, py


@native
def test_verify_in_c_is_verify_in_python_on_awkward_rows(tmp_path, monkeypatch):
    b = awkward(tmp_path / "a.db")
    b.at(4).ledger.append(RequestQueued(request_id="q-2", kind="profile", company_number="X"),
                          "not-the-natural-id")
    c, py = both_verifies(b.conn, monkeypatch)
    assert c == py and c.ok and c.checked == b.ledger.head()
    b.drop_triggers()
    b.execute("UPDATE event_log SET event_data = replace(event_data, 'na\u00efve', 'naive') WHERE id = 2")
    c, py = both_verifies(b.conn, monkeypatch)
    assert c == py and (c.ok, c.bad_position, c.checked) == (False, 2, 1)
    b.execute("DELETE FROM event_log WHERE id = 1")
    c, py = both_verifies(b.conn, monkeypatch)
    assert c == py and c.reason == "position 1 is missing (next is 2)"


@native
def test_empty_data_null_company_and_blobs_hash_as_python_hashes_them(tmp_path, monkeypatch):
    r = RawLedger(tmp_path / "r.db")
    r.add("stream.connected", "")                       # empty data
    r.add("stream.connected", "{}", company=None)        # NULL company
    r.add("stream.connected", "{}", company="")          # '' company: hashes like NULL
    r.add("stream.connected", "{}", event_id=b"blob-id")  # a blob: Python hashes "b'blob-id'"
    r.add("stream.connected", b'{"x":1}')                 # a blob body
    r.add("stream.connected", "Caf\u00e9 \u2603 \U0001f600")
    c, py = both_verifies(r.conn, monkeypatch)
    assert c == py and c.ok and c.checked == 6
    r.conn.execute("DROP TRIGGER event_log_no_update")
    r.conn.execute("UPDATE event_log SET hash = X'00' WHERE id = 5")  # a hash of the wrong length
    c, py = both_verifies(r.conn, monkeypatch)
    assert c == py and (c.ok, c.bad_position) == (False, 5)


@native
def test_values_that_are_not_text_after_a_range_start_hash_alike_everywhere(tmp_path, monkeypatch):
    """The Python scan's SQL message checks only the range's first row against chain_hash; a
    later blob (or NULL) must still be hashed as chain_hash hashes it, not by SQL's ||."""
    r = RawLedger(tmp_path / "r.db")
    r.add("stream.connected", "{}")
    r.add("stream.connected", "{}", event_id=b"blob-id")
    r.add("stream.connected", b'{"x":1}')
    r.add("stream.connected", "{}", company=b"co")
    r.add("stream.connected", "{}", at=b"2026-01-01T00:00:00.000000Z")
    r.add("stream.connected", "{}")
    c, py = both_verifies(r.conn, monkeypatch)
    assert c == py and c.ok and c.checked == 6
    every_split(r.path)
    assert scan_range(r.path, 1, 6).chain_bad is None
    r.conn.execute("DROP TRIGGER event_log_no_update")
    r.conn.execute("UPDATE event_log SET company_number = CAST('cp' AS BLOB) WHERE id = 4")
    c, py = both_verifies(r.conn, monkeypatch)
    assert c == py and (c.ok, c.bad_position) == (False, 4)
    r.conn.close()
    every_split(r.path)
    assert scan_range(r.path, 1, 6).chain_bad == 4


@native
@pytest.mark.parametrize("bad", [1, 2, 3, 4, 5, 6, 7, 8])
def test_check_chain_over_any_split_stops_where_python_stops(tmp_path, monkeypatch, bad):
    r = RawLedger(tmp_path / "r.db")
    for i in range(8):
        r.add("stream.connected", f'{{"i":{i}}}', event_id=b"x" if i == 3 else None)
    r.conn.execute("DROP TRIGGER event_log_no_update")
    r.conn.execute("UPDATE event_log SET received_at = 'edited' WHERE id = ?", (bad,))
    _, py = both_verifies(r.conn, monkeypatch)
    assert native_chain.usable(r.conn)
    for first in range(1, 9):
        prev = GENESIS if first == 1 else r.conn.execute(
            "SELECT hash FROM event_log WHERE id = ?", (first - 1,)).fetchone()[0]
        out = native_chain.check_chain(r.conn, first, 8, prev)
        if first <= bad:
            assert (out.ok, out.expected, out.reason, out.checked) == (
                False, py.bad_position, py.reason, py.checked - (first - 1))
        else:
            assert out.ok and out.expected == 9 and out.checked == 9 - first


# --- the facts --------------------------------------------------------------------------


def scans_agree(path: str, first: int, last: int, table_from: int | None = None, **kw) -> None:
    py = msgspec.structs.asdict(scan_range(path, first, last, table_from=table_from, **kw))
    c = msgspec.structs.asdict(scan_range_native(path, first, last, table_from=table_from, **kw))
    for scan in (py, c):
        scan.pop("cpu_seconds")
        scan["table_issues"].sort(key=lambda i: (i.id, i.kind))  # the report sorts them so too
    assert c == py


def declined(path: str, first: int, last: int) -> bool:
    conn = connect(path, readonly=True)
    assert native_chain.usable(conn)
    blob = conn.execute(_AUDIT_SQL, (None, first, "", "\uffff", 100_000, LOW, last)).fetchone()[0]
    conn.close()
    return bool(int.from_bytes(blob[6 * 8:7 * 8], "little", signed=True))


def every_split(path: str, **kw) -> None:
    head = apsw.Connection(path).execute("SELECT max(id) FROM event_log").fetchone()[0] or 0
    scans_agree(path, 1, head, LOW, **kw)
    for k in range(1, head):
        scans_agree(path, 1, k, LOW, **kw)
        scans_agree(path, k + 1, head, **kw)


@native
def test_facts_in_c_are_the_python_scan_on_every_split(tmp_path):
    from test_audit import tangled

    b = AuditLedger(tmp_path / "t.db")
    tangled(b)
    every_split(b.path)
    every_split(b.path, since=b.iso(3), until=b.iso(22))
    every_split(b.path, queued_memory=1)  # every queued id forgotten at once: all candidates
    assert not declined(b.path, 1, b.ledger.head())


@native
def test_facts_in_c_find_the_table_and_order_faults_python_finds(tmp_path):
    b = many(tmp_path / "m.db", n=30)
    b.at(100).send("direct")  # an orphan
    b.drop_triggers()
    b.execute("UPDATE api_rate_limit_log SET response_status = 500 WHERE id = "
              "(SELECT min(id) FROM api_rate_limit_log)")
    b.execute("UPDATE api_rate_limit_log SET company_number = NULL WHERE id = "
              "(SELECT max(id) FROM api_rate_limit_log WHERE response_status = 404)")
    b.execute("INSERT INTO api_rate_limit_log(id, timestamp, request_type, response_status) "
              "VALUES (-5, 'x', 'profile', 0), (3, 'x', 'profile', 0), (100000, 'x', 'p', 0)")
    b.execute("DELETE FROM api_rate_limit_log WHERE id = (SELECT max(id) FROM api_rate_limit_log "
              "WHERE id < 100000)")
    victim = b.conn.execute("SELECT min(id) FROM event_log WHERE event_type = 'response.received' "
                            "AND id > 40").fetchone()[0]
    b.execute("DELETE FROM event_log WHERE id = ?", (victim,))
    every_split(b.path)
    assert not declined(b.path, 1, b.ledger.head())


@native
def test_unusual_rows_are_declined_and_left_to_python(tmp_path):
    r = RawLedger(tmp_path / "r.db")
    at = "2026-01-01T00:00:01.000000Z"
    r.add("request.queued", '{"request_id":"a"}')
    r.add("request.sent", '{"request_id":"a","kind":"profile","company_number":"1"}', at=at)
    r.row(2, at, "profile", 200, "1", "a")
    r.add("response.received", '{"request_id":"a","status":200.0}')  # a float status: Python decides
    assert declined(r.path, 1, 3)
    every_split(r.path)
    r.add("request.sent", '{"request_id":"b","kind":"profile"', at=at)  # malformed
    r.add("request.sent", '{"request_id":"c","kind":"profile"}', at="2026-01-01 00:00:01")  # not canonical
    every_split(r.path)
    report = audit(r.path)
    assert report.chain_engine == "c" and report.violation_counts["malformed"] == 2


@native
@pytest.mark.parametrize("tamper", ["substr(hash, 1, 31)", "hex(hash)", "42", "CAST(hash || X'00' AS BLOB)"])
def test_a_bad_stored_hash_before_a_range_is_a_mismatch_never_a_crash(tmp_path, monkeypatch, tamper):
    """The row before a range holds no 32-byte hash: the range before reports that row, as
    Ledger.verify does; the range itself leaves the chain to it (in C and in Python)."""
    b = many(tmp_path / "m.db", n=10)
    b.drop_triggers()
    head, victim = b.ledger.head(), b.ledger.head() // 2
    b.execute(f"UPDATE event_log SET hash = {tamper} WHERE id = ?", (victim,))
    every_split(b.path)  # the range starting at victim + 1 among them
    assert scan_range(b.path, victim + 1, head).chain_bad is None
    assert scan_range_native(b.path, 1, victim).chain_bad == victim
    monkeypatch.setattr(audit_module, "NATIVE_PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(audit_module, "PARALLEL_MIN_ROWS", 0)
    reports = []
    for env in ("1", "0"):
        monkeypatch.setenv("CHLEDGER_NATIVE_CHAIN", env)
        reports += [audit(b.path, jobs=jobs).chain for jobs in (1, 2, 3)]
    verified = Ledger(b.conn).verify()
    assert (reports[0].bad_position, reports[0].reason) == (victim, verified.reason)
    assert "does not match its hash" in verified.reason
    assert all(r == reports[0] for r in reports)


@native
def test_empty_values_are_read_as_python_reads_them(tmp_path):
    """Empty text reaches C as a NULL pointer: it is compared and hashed without memcmp/memcpy
    seeing it (undefined behaviour, caught by a -fsanitize=undefined build)."""
    r = RawLedger(tmp_path / "e.db")
    r.add("request.queued", '{"request_id":""}', at="")
    r.add("request.sent", '{"request_id":"","kind":"","company_number":""}', at="")
    r.row(2, "", "", 0, "", "")
    r.add("response.received", '{"request_id":"","status":0}', at="")
    r.add("request.sent", '{"request_id":"a"}', at="")
    r.add("", "", at="")
    r.conn.close()
    every_split(r.path)
    every_split(r.path, since="", until="")


def _not_utf8(path, column: str, position: int) -> RawLedger:
    """A small ledger of every kind of entry the audit reads, then `column` of the row at
    `position` made text that is not UTF-8."""
    r = RawLedger(path)
    at = "2026-01-01T00:00:01.000000Z"
    r.add("request.queued", '{"request_id":"a"}', company="C\u00e9")
    r.add("request.sent", '{"request_id":"a","kind":"profile","company_number":"1"}', at=at,
          company="1")
    r.row(2, at, "profile", 200, "1", "a")
    r.add("response.received", '{"request_id":"a","status":200}', company="1")
    r.add("worker.started", '{"rate_limit_requests":600,"rate_limit_window":300.0}', company="1")
    r.add("stream.event", '{"s":"caf\u00e9"}', company="1")
    r.add("stream.connected", "{}")
    r.conn.execute("DROP TRIGGER event_log_no_update")
    r.conn.execute(f"UPDATE event_log SET {column} = CAST(CAST({column} AS BLOB) || X'ff' AS TEXT) "
                   "WHERE id = ?", (position,))
    return r


@native
@pytest.mark.parametrize("position", [2, 4, 5])
@pytest.mark.parametrize("column", ["event_id", "event_type", "company_number", "received_at",
                                    "event_data", "hash"])
def test_text_that_is_not_utf8_is_a_mismatch_never_a_crash(tmp_path, monkeypatch, column, position):
    """Only tampering stores it, and Python can't read it: C hashed the raw bytes (and could call
    the chain intact) and Python raised; now the row is a mismatch for C, for Ledger.verify, for
    the audit in C and in Python (on every split), and a request entry whose time or body is
    the bad text is malformed."""
    r = _not_utf8(tmp_path / "u.db", column, position)
    c, py = both_verifies(r.conn, monkeypatch)
    assert c == py and (c.ok, c.bad_position, c.checked) == (False, position, position - 1)
    assert c.reason.startswith(f"entry {position} (")
    r.conn.close()
    every_split(r.path)
    assert scan_range_native(r.path, position + 1, 6).chain_bad is None  # the range before says
    monkeypatch.setattr(audit_module, "NATIVE_PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(audit_module, "PARALLEL_MIN_ROWS", 0)
    reports = []
    for env in ("1", "0"):
        monkeypatch.setenv("CHLEDGER_NATIVE_CHAIN", env)
        reports += [msgspec.structs.asdict(audit(r.path, jobs=jobs)) for jobs in (1, 2)]
    for report in reports:
        report.pop("chain_engine"), report.pop("chain_engine_reason")
    assert all(report == reports[0] for report in reports)
    assert (reports[0]["chain"].bad_position, reports[0]["chain"].reason) == (position, c.reason)


@native
def test_utf8_is_checked_as_python_decodes_it(tmp_path, monkeypatch):
    """Overlong forms, surrogates, code points above U+10FFFF, truncated and stray bytes: C's
    check says what Python's decoder says, over the 32-byte ASCII skip and its edges."""
    cases = [b"\xc0\x80", b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",
             b"\x80", b"\xe2\x98", b"\xf0\x9f\x98", b"\xc3\xa9", b"\xe2\x98\x83", b"\xf0\x9f\x98\x80",
             b"\xef\xbf\xbf", b"\xf4\x8f\xbf\xbf", b"\xed\x9f\xbf", b"\xee\x80\x80"]
    r = RawLedger(tmp_path / "v.db")
    assert native_chain.usable(r.conn)
    at = "2026-01-01T00:00:00.000000Z"
    pos = 0
    for pad in (0, 1, 31, 32, 33, 64):
        for tail in cases:
            pos += 1
            raw = b"a" * pad + tail + b"z"
            # hashed over the raw bytes, as a writer that isn't Python could: only UTF-8 decides
            message = f"{pos}\x1fe{pos}\x1fstream.event\x1f\x1f{at}\x1f".encode() + raw
            r.conn.execute("INSERT INTO event_log VALUES (?, ?, 'stream.event', NULL, CAST(? AS TEXT), "
                           "?, ?)", (pos, f"e{pos}", raw, at, hashlib.sha256(GENESIS + message).digest()))
            try:
                valid = raw.decode() is not None
            except UnicodeDecodeError:
                valid = False
            out = native_chain.check_chain(r.conn, pos, pos, GENESIS)
            assert out.ok == valid, (pad, tail)


@native
def test_a_stale_build_falls_back_to_python_and_only_entry_points_are_exported(tmp_path, monkeypatch):
    import ctypes

    from eventlog.audit import native_scan as audit_native

    b = many(tmp_path / "m.db", n=5)
    monkeypatch.setattr(audit_native, "VERSION", 2)  # as if the .so were older than this module
    with pytest.raises(audit_native.NativeUnavailable, match="rebuild the extension"):
        scan_range_native(b.path, 1, b.ledger.head())
    report = audit(b.path)
    assert report.chain_engine == "python" and report.chain.ok
    lib = ctypes.CDLL(str(native_chain.extension_path()))
    assert lib.sqlite3_chledger_init and lib.chledger_window_counts
    for hidden in ("chain_row", "facts_row", "str_hash", "json_fields", "chledger_register_audit"):
        with pytest.raises(AttributeError):
            getattr(lib, hidden)


@native
def test_an_sql_error_inside_the_audit_says_what_it_is(tmp_path):
    b = many(tmp_path / "m.db", n=3)
    b.conn.execute("DROP TABLE api_rate_limit_log")
    assert native_chain.usable(b.conn)
    with pytest.raises(apsw.SQLError, match="no such table: api_rate_limit_log"):
        b.conn.execute(_AUDIT_SQL, (GENESIS, 1, "", "\uffff", 100, LOW, 5)).fetchall()


def loose(path) -> RawLedger:
    """A RawLedger whose event_log has no constraints, as a tamperer may leave it."""
    r = RawLedger(path)
    r.conn.execute("DROP TABLE event_log")
    r.conn.execute("CREATE TABLE event_log (id INTEGER PRIMARY KEY, event_id, event_type, "
                   "company_number, event_data, received_at, hash)")
    return r


@native
def test_a_noted_entry_with_no_data_is_skipped_as_python_skips_it(tmp_path):
    r = loose(tmp_path / "n.db")
    r.add("worker.started", '{"x":1}')
    for event_type in ("worker.started", "worker.emergency_stop", "stream.gap", "request.queued"):
        r.add(event_type, None)
    r.conn.close()
    every_split(r.path)


_SENT = '{"type":"request.sent","request_id":"r1","kind":"profile","company_number":"0001","path":"/c"}'
_ANSWER = ('{"type":"response.received","request_id":"r1","kind":"profile","company_number":"0001",'
           '"status":200,"elapsed_ms":5,"body":{"a":[1,-2.5,true,false,null,"x\\u00e9\\n"],"b":{}}}')
_QUEUED = '{"type":"request.queued","request_id":"r1","kind":"profile","company_number":"0001"}'
_NASTY = list('{}[]",:\\ \t\n0123456789.-+eEtrufalsn\u00e9\u0000\x1f') + [
    '\\u0041', '\\ud800', '"request_id":', '"status":', '"kind":', '"company_number":', 'null',
    '1e5', '\u2603', '\\"', '"r1"', '"r2"', '{"a":', ']]]]', '[[[[']


@st.composite
def mutated(draw, base: str):
    """A valid entry, mangled in a few places by JSON's own characters."""
    text = base
    for _ in range(draw(st.integers(1, 2))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + draw(st.integers(0, 4)))))
        text = text[:i] + draw(st.sampled_from(_NASTY)) + text[j:]
    return text


@native
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, 2), data=st.data(),
       at=st.sampled_from(["2026-01-01T00:00:01.000000Z", "2026-02-29T00:00:01.000000Z",
                           "2024-02-29T23:59:59.999999Z", "2026-01-01T00:00:60.000000Z",
                           "2026-01-01T00:00:01Z", "0001-01-01T00:00:00.000000Z",
                           "2026-01-01T00:00:01.00000\u0661Z"]),
       blob=st.booleans())
def test_json_and_times_c_reads_are_read_as_python_reads_them(which, data, at, blob):
    """Whatever C accepts it must read as msgspec does; what it isn't sure of, it declines."""
    docs = [_QUEUED, _SENT, _ANSWER]
    docs[which] = data.draw(mutated(docs[which]))
    enc = (lambda s: s.encode("utf-8", "surrogatepass")) if blob else (lambda s: s)
    with tempfile.TemporaryDirectory() as tmp:
        r = RawLedger(Path(tmp) / "j.db")
        r.add("request.queued", enc(docs[0]))
        r.add("request.sent", enc(docs[1]), at=at)
        r.row(2, at, "profile", 200, "0001", "r1")
        r.add("response.received", enc(docs[2]))
        r.add("request.sent", enc(docs[1]), at=at)
        r.add("request.rate_limited", enc(docs[2]))
        r.conn.close()
        every_split(r.path)


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8)
_FIELD = st.one_of(st.text(max_size=6), st.sampled_from(["r1", "profile", "0001", "é☃"]),
                   st.integers(-300, 300), st.none(), _VALUES)


@st.composite
def entries(draw):
    """Valid JSON objects of any shape, wanted fields mostly right but of any type at times,
    written in any style."""
    import json

    obj = draw(st.dictionaries(st.sampled_from(["type", "x", "body", "path", "é"]), _VALUES, max_size=3))
    usual = {"request_id": "r1", "kind": "profile", "company_number": "0001", "status": 200}
    for key, value in usual.items():
        pick = draw(st.integers(0, 9))
        if pick < 6:
            obj[key] = value
        elif pick < 9:
            obj[key] = draw(_FIELD)
    items = draw(st.permutations(list(obj.items())))
    return json.dumps(dict(items), ensure_ascii=draw(st.booleans()),
                      separators=draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,", " :\n")])))


@native
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, 2), entry=entries())
def test_valid_json_of_any_shape_is_read_as_msgspec_reads_it(which, entry):
    """One of the three entries is drawn, the other two are the usual ones."""
    docs = [_QUEUED, _SENT, _ANSWER]
    docs[which] = entry
    with tempfile.TemporaryDirectory() as tmp:
        r = RawLedger(Path(tmp) / "j.db")
        at = "2026-01-01T00:00:01.000000Z"
        r.add("request.queued", docs[0])
        r.add("request.sent", docs[1], at=at)
        r.row(2, at, "profile", 200, "0001", "r1")
        r.add("response.received", docs[2])
        r.add("request.transport_error", docs[2])
        r.conn.close()
        every_split(r.path)


@native
def test_the_whole_audit_in_c_is_the_whole_audit_in_python(tmp_path, monkeypatch):
    from test_audit import tangled

    b = many(tmp_path / "m.db", n=60)
    tangled(b)
    monkeypatch.setattr(audit_module, "NATIVE_PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(audit_module, "PARALLEL_MIN_ROWS", 0)
    for jobs in (1, 2, 3):
        c = audit(b.path, jobs=jobs)
        monkeypatch.setenv("CHLEDGER_NATIVE_CHAIN", "0")
        py = audit(b.path, jobs=jobs)
        monkeypatch.delenv("CHLEDGER_NATIVE_CHAIN")
        assert (c.chain_engine, py.chain_engine) == ("c", "python")
        assert "CHLEDGER_NATIVE_CHAIN=0" in py.chain_engine_reason and c.chain_engine_reason is None
        a, p = msgspec.structs.asdict(c), msgspec.structs.asdict(py)
        for key in ("chain_engine", "chain_engine_reason"):
            a.pop(key), p.pop(key)
        assert a == p


# --- the window counts ------------------------------------------------------------------


@native
@settings(max_examples=200, deadline=None)
@given(gaps=st.lists(st.integers(0, 30), max_size=200), start=st.integers(-10**12, 10**15),
       span=st.integers(1, 100))
def test_window_counts_in_c_are_the_python_counts(gaps, start, span):
    from array import array
    from itertools import accumulate

    from eventlog.audit.windows import window_counts

    times = array("q", accumulate(gaps, initial=start))  # ascending, with ties when a gap is 0
    assert list(native_chain.window_counts(times, span)) == list(window_counts(times, span))


@native
def test_window_counts_in_c_leave_unsorted_or_huge_to_python():
    from array import array

    assert native_chain.window_counts(array("q", [5, 3]), 10) is None
    assert native_chain.window_counts(array("q", [(1 << 63) - 5]), 10) is None
    assert native_chain.window_counts(array("l", [1, 2]), 10) is None  # not int64 by name
    assert list(native_chain.window_counts(array("q"), 10)) == []
