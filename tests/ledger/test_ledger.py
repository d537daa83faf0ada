"""The ledger on real SQLite files: append, read, idempotency, append-only, the chain.

Each test opens a fresh migrated file (`conn`/`ledger` fixtures) and checks what
is actually stored, through apsw, not only what the API returns.
"""

from __future__ import annotations

import inspect
import tracemalloc

import apsw
import msgspec
import pytest

from eventlog.clock import from_epoch
from eventlog.ledger.db import transaction
from eventlog.ledger.entries import (
    RequestQueued,
    RequestSent,
    ResponseReceived,
    StreamEvent,
    StreamLineRejected,
    WorkerStopped,
    encode,
)
from eventlog.errors import AppendOnlyViolation
from eventlog.ledger.chain import GENESIS, chain_hash
from eventlog.ledger.store import Appended, Ledger, Record, natural_event_id

PROFILE = msgspec.Raw(b'{"company_number":"05954546","company_name":"GLENCOYNE ENGINEERING LTD",'
                      b'"company_status":"active"}')


def stream_event(timepoint: int, number: str = "05954546") -> StreamEvent:
    return StreamEvent(
        stream="companies", timepoint=timepoint, published_at="2023-11-04T14:33:29", change="changed",
        resource_kind="company-profile", resource_id=number, resource_uri=f"/company/{number}",
        company_number=number, data=PROFILE,
    )


def sent(n: int) -> RequestSent:
    return RequestSent(request_id=f"req-{n}", kind="profile", company_number=f"{n:08d}", path=f"/company/{n:08d}")


def count_rows(conn: apsw.Connection) -> int:
    return conn.execute("SELECT count(*) FROM event_log").fetchone()[0]


def stored(conn: apsw.Connection) -> list[tuple]:
    return conn.execute("SELECT id, event_id, event_type, company_number, event_data, received_at, hash "
                        "FROM event_log ORDER BY id").fetchall()


def drop_triggers(conn: apsw.Connection) -> None:
    """What an attacker with the file would do first."""
    conn.execute("DROP TRIGGER event_log_no_update")
    conn.execute("DROP TRIGGER event_log_no_delete")


# --- append and read back -----------------------------------------------------------


def test_append_then_read_back_positions_envelope_and_entry(ledger, conn, clock):
    entries = [stream_event(68805561), sent(1), WorkerStopped(reason="done")]
    first = ledger.append(entries[0])
    clock.advance(1.5)
    rest = ledger.append_many([("sent:req-1", entries[1]), entries[2]])

    assert first == Appended(1, "companies:68805561", True)
    assert [a.position for a in rest] == [2, 3] and all(a.new for a in rest)
    assert rest[0].event_id == "sent:req-1"
    assert rest[1].event_id.startswith("worker.stopped:")

    records = list(ledger.read())
    assert [r.position for r in records] == [1, 2, 3]
    assert [r.entry for r in records] == entries
    assert [r.event_type for r in records] == ["stream.event", "request.sent", "worker.stopped"]
    assert [r.company_number for r in records] == ["05954546", "00000001", None]
    # One timestamp per batch, from the injected clock, in the canonical form.
    assert [r.received_at for r in records] == [
        "2023-11-14T22:13:20.000000Z", "2023-11-14T22:13:21.500000Z", "2023-11-14T22:13:21.500000Z"]
    assert records[1].received_at == from_epoch(clock.now())
    assert ledger.head() == 3
    assert ledger.get("sent:req-1") == records[1]
    assert ledger.get("no-such-id") is None

    # What is on disk: the entry as msgspec JSON, tagged, and a chain from genesis.
    rows = stored(conn)
    assert [r[4] for r in rows] == [encode(e).decode() for e in entries]
    assert msgspec.json.decode(rows[0][4])["type"] == "stream.event"
    prev = GENESIS
    for pos, eid, etype, company, data, received_at, digest in rows:
        prev = chain_hash(prev, pos, eid, etype, company, received_at, data)
        assert digest == prev
    assert ledger.verify() == (True, 3, 3, None, "")


def test_raw_payload_bytes_survive_exactly(ledger):
    odd = msgspec.Raw(b'{"b":1,  "a":[1.50,"\\u00e9"]}')  # spacing, key order, escapes kept
    entry = ResponseReceived(request_id="r", kind="profile", company_number="05954546",
                             status=200, elapsed_ms=12, body=odd)
    ledger.append(entry, "resp:r")
    (record,) = ledger.read()
    assert bytes(record.entry.body) == bytes(odd)


def test_natural_event_ids():
    assert natural_event_id(stream_event(68805561)) == "companies:68805561"
    queued = RequestQueued(request_id="q1", kind="profile", company_number="05954546")
    assert natural_event_id(queued) == "queued:q1"
    a, b = natural_event_id(sent(1)), natural_event_id(sent(1))
    assert a.startswith("request.sent:") and a != b  # no natural key: unique each time


def test_empty_batch_appends_nothing(ledger, conn):
    assert ledger.append_many([]) == []
    assert count_rows(conn) == 0 and ledger.head() == 0


# --- idempotency by event_id ---------------------------------------------------------


def test_same_event_id_twice_is_a_noop_reporting_the_existing_position(ledger, conn, clock):
    ledger.append(sent(0), "sent:0")
    first = ledger.append(stream_event(68805561))
    clock.advance(60)
    again = ledger.append(stream_event(68805561))
    assert first == Appended(2, "companies:68805561", True)
    assert again == Appended(2, "companies:68805561", False)
    assert count_rows(conn) == 2
    assert ledger.get("companies:68805561").received_at == from_epoch(1_700_000_000.0)  # the original


def test_duplicate_within_one_batch(ledger, conn):
    result = ledger.append_many([stream_event(1), stream_event(1), stream_event(2), stream_event(1)])
    assert [(a.position, a.new) for a in result] == [(1, True), (1, False), (2, True), (1, False)]
    assert count_rows(conn) == 2
    assert ledger.verify().ok


def test_duplicates_across_batches_keep_the_first_and_the_chain(ledger, conn):
    ledger.append_many([stream_event(1), stream_event(2)])
    result = ledger.append_many([stream_event(2), stream_event(3), stream_event(1), stream_event(3)])
    assert [(a.position, a.event_id, a.new) for a in result] == [
        (2, "companies:2", False), (3, "companies:3", True), (1, "companies:1", False), (3, "companies:3", False)]
    assert [r[1] for r in stored(conn)] == ["companies:1", "companies:2", "companies:3"]
    report = ledger.verify()
    assert report.ok and report.checked == 3
    assert ledger.append(stream_event(4)).position == 4  # the head moved on correctly


def test_a_duplicate_id_with_different_content_keeps_the_stored_entry(ledger):
    ledger.append(sent(1), "same-id")
    result = ledger.append(WorkerStopped(reason="other"), "same-id")
    assert result == Appended(1, "same-id", False)
    assert ledger.get("same-id").entry == sent(1)


def test_hooks_see_only_new_records_inside_the_transaction(conn, clock):
    seen: list[list[Record]] = []

    def hook(c, records):
        assert not c.getautocommit()  # runs inside the append transaction
        seen.append(list(records))

    ledger = Ledger(conn, clock, on_append=[hook])
    ledger.append_many([stream_event(1), stream_event(2)])
    ledger.append_many([stream_event(2), stream_event(3)])
    ledger.append_many([stream_event(1)])  # all duplicates: nothing new, no call
    assert [[r.event_id for r in batch] for batch in seen] == [
        ["companies:1", "companies:2"], ["companies:3"]]
    assert seen[1][0].position == 3 and seen[1][0].entry == stream_event(3)


# --- append-only ---------------------------------------------------------------------


@pytest.mark.parametrize("sql, verb", [
    ("UPDATE event_log SET event_data = '{}' WHERE id = 1", "UPDATE"),
    ("UPDATE event_log SET received_at = '2000-01-01T00:00:00.000000Z'", "UPDATE"),
    ("DELETE FROM event_log WHERE id = 1", "DELETE"),
    ("DELETE FROM event_log", "DELETE"),
])
def test_update_and_delete_are_rejected_by_the_triggers(ledger, conn, sql, verb):
    ledger.append_many([stream_event(1), stream_event(2)])
    before = stored(conn)
    with pytest.raises(apsw.ConstraintError, match=f"event_log is append-only: {verb} rejected"):
        conn.execute(sql)
    # Through our transaction helper the same refusal arrives as our own error.
    with pytest.raises(AppendOnlyViolation, match=f"append-only: {verb} rejected"):
        with transaction(conn):
            conn.execute(sql)
    assert stored(conn) == before
    assert ledger.verify().ok


# --- tampering -----------------------------------------------------------------------


@pytest.fixture
def five(ledger, conn, clock):
    for n in range(1, 6):
        ledger.append(stream_event(n, f"{n:08d}"))
        clock.advance(1)
    drop_triggers(conn)
    return ledger


def test_an_edited_event_data_is_detected_at_its_position(five, conn):
    conn.execute("UPDATE event_log SET event_data = replace(event_data, 'active', 'dissolved') WHERE id = 3")
    report = five.verify()
    assert not report.ok
    assert report.bad_position == 3 and report.checked == 2
    assert "entry 3" in report.reason and "companies:3" in report.reason


@pytest.mark.parametrize("column, value", [
    ("received_at", "'2023-11-14T22:13:20.000001Z'"),
    ("company_number", "'99999999'"),
    ("event_type", "'request.sent'"),
    ("event_id", "'companies:33'"),
])
def test_an_edited_envelope_is_detected(five, conn, column, value):
    conn.execute(f"UPDATE event_log SET {column} = {value} WHERE id = 4")
    report = five.verify()
    assert (report.ok, report.bad_position) == (False, 4)


def test_a_deleted_middle_row_is_detected(five, conn):
    conn.execute("DELETE FROM event_log WHERE id = 3")
    report = five.verify()
    assert not report.ok and report.bad_position == 3
    assert "position 3 is missing" in report.reason


def test_a_renumbered_row_is_detected(five, conn):
    conn.execute("DELETE FROM event_log WHERE id = 3")
    conn.execute("UPDATE event_log SET id = 3 WHERE id = 4")  # close the gap
    report = five.verify()
    assert (report.ok, report.bad_position) == (False, 3)


def test_verify_of_an_intact_and_an_empty_ledger(ledger):
    assert ledger.verify() == (True, 0, 0, None, "")
    ledger.append_many([stream_event(n) for n in range(1, 8)])
    assert ledger.verify(batch_size=3) == (True, 7, 7, None, "")


# --- a batch that fails midway -------------------------------------------------------


def unencodable() -> StreamLineRejected:
    """A lone surrogate (e.g. from a `surrogateescape` decode) can't be UTF-8 encoded."""
    return StreamLineRejected(stream="companies", reason="bad utf-8", excerpt="abc\udcff", length=4)


def test_an_entry_that_cannot_be_encoded_leaves_nothing_behind(ledger, conn):
    ledger.append_many([stream_event(1), stream_event(2)])
    before = stored(conn)
    with pytest.raises(UnicodeEncodeError):
        ledger.append_many([stream_event(3), stream_event(4), unencodable(), stream_event(5)])
    assert stored(conn) == before and ledger.head() == 2
    assert conn.getautocommit()  # no transaction left open
    # The ledger carries on where it was.
    assert ledger.append(stream_event(3)) == Appended(3, "companies:3", True)
    assert ledger.verify().ok


def test_a_failing_hook_rolls_the_whole_batch_back(conn, clock):
    calls = []

    def projection(c, records):
        calls.append(len(records))
        raise RuntimeError("projection bug")

    ledger = Ledger(conn, clock, on_append=[projection])
    with pytest.raises(RuntimeError, match="projection bug"):
        ledger.append_many([stream_event(1), stream_event(2), stream_event(3)])
    assert calls == [3]
    assert count_rows(conn) == 0 and ledger.head() == 0
    ledger.on_append.clear()
    assert [a.position for a in ledger.append_many([stream_event(1)])] == [1]


def test_a_failing_hook_after_a_duplicate_fallback_also_rolls_back(conn, clock):
    ledger = Ledger(conn, clock)
    ledger.append(stream_event(1))

    def boom(c, records):
        raise RuntimeError("boom")

    ledger.on_append.append(boom)
    with pytest.raises(RuntimeError):
        ledger.append_many([stream_event(2), stream_event(1), stream_event(3)])
    assert [r[1] for r in stored(conn)] == ["companies:1"]


def test_an_error_after_appending_inside_a_transaction_leaves_nothing(ledger, conn):
    with pytest.raises(ZeroDivisionError):
        with ledger.transaction() as tx:
            tx.append(stream_event(1))
            tx.append_many([stream_event(2), stream_event(3)])
            1 / 0
    assert count_rows(conn) == 0
    with ledger.transaction() as tx:  # the read-decide-append path works on the same connection
        assert tx.append(stream_event(1)).position == 1
        assert tx.append(stream_event(2)).position == 2
    assert ledger.verify() == (True, 2, 2, None, "")


# --- reading -------------------------------------------------------------------------


class SelectCounter:
    """Counts the SELECTs the ledger sends to SQLite (apsw's exec trace)."""

    def __init__(self, conn: apsw.Connection):
        self.selects: list[tuple] = []
        conn.exec_trace = self

    def __call__(self, cursor, sql, bindings):
        if sql.lstrip().upper().startswith("SELECT") and "event_log" in sql:
            self.selects.append(tuple(bindings or ()))
        return True


def test_read_is_a_lazy_generator_fetching_in_batches(ledger, conn):
    ledger.append_many([stream_event(n) for n in range(1, 11)])
    trace = SelectCounter(conn)
    reader = ledger.read(batch_size=3)
    assert inspect.isgenerator(reader)
    assert trace.selects == []  # nothing read until asked
    assert next(reader).position == 1
    assert trace.selects == [(0, 1 << 62, 3)]  # one batch of at most 3 rows
    rest = [r.position for r in reader]
    assert rest == list(range(2, 11))
    # 3 + 3 + 3 + 1, then one empty batch ends it; each batch starts after the last seen.
    assert [b[0] for b in trace.selects] == [0, 3, 6, 9, 10]
    assert all(b[2] == 3 for b in trace.selects)


def test_read_from_a_position_and_until(ledger):
    ledger.append_many([stream_event(n) for n in range(1, 11)])
    assert [r.position for r in ledger.read(4)] == [5, 6, 7, 8, 9, 10]
    assert [r.position for r in ledger.read(2, until=5, batch_size=2)] == [3, 4, 5]
    assert [r.entry.timepoint for r in ledger.read(8, until=100)] == [9, 10]
    assert list(ledger.read(10)) == []
    assert list(ledger.read(5, until=5)) == []


def test_read_sees_entries_appended_while_reading(ledger):
    ledger.append_many([stream_event(n) for n in range(1, 4)])
    reader = ledger.read(batch_size=2)
    got = [next(reader).position, next(reader).position]
    ledger.append(stream_event(4))  # not a snapshot: a follower keeps up with the head
    got += [r.position for r in reader]
    assert got == [1, 2, 3, 4]


def _peak_bytes_reading(ledger: Ledger, batch_size: int) -> tuple[int, int]:
    tracemalloc.start()
    try:
        n = 0
        for _ in ledger.read(batch_size=batch_size):
            n += 1
        return n, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_read_memory_does_not_grow_with_the_ledger(ledger):
    big = msgspec.Raw(b'{"filler":"' + b"x" * 400 + b'"}')
    entry = lambda n: StreamEvent(  # noqa: E731
        stream="companies", timepoint=n, published_at="2023-11-04T14:33:29", change="changed",
        resource_kind="company-profile", resource_id="1", resource_uri="/company/1", data=big)
    ledger.append_many([entry(n) for n in range(2_000)])
    n_small, peak_small = _peak_bytes_reading(ledger, batch_size=200)
    ledger.append_many([entry(n) for n in range(2_000, 20_000)])
    n_big, peak_big = _peak_bytes_reading(ledger, batch_size=200)
    assert (n_small, n_big) == (2_000, 20_000)
    # ~9 MB of entries are read; the reader holds one batch (~100 KB) at a time.
    assert peak_big < 1.5 * peak_small + 64 * 1024, (peak_small, peak_big)
    assert peak_big < 2 * 1024 * 1024


def test_an_after_commit_hook_that_raises_does_not_fail_the_append(ledger):
    """Committed is committed: the caller must not think the append failed, and later hooks still run."""
    from eventlog.ledger.entries import StreamConnected

    seen = []

    def broken(conn, records):
        raise RuntimeError("observer bug")

    ledger.after_commit.extend([broken, lambda conn, records: seen.extend(r.position for r in records)])
    appended = ledger.append(StreamConnected(stream="companies", from_timepoint=None))
    assert appended.new and ledger.head() == appended.position and seen == [appended.position]
