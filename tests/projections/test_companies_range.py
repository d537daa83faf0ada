"""The set-based `companies` fold (`apply_range`) against the entry-by-entry fold (`apply_entries`).

The same ledger is folded into `companies` several ways: entry by entry in one go (the reference),
as one range, as ranges cut at arbitrary positions (a boundary in the middle of a company's
events, with rows already there to merge with), and one position at a time (the live hook's
smallest appends). Every way must give the same table, hidden rowids (first-appearance order)
included. The ledgers mix what makes the fold hard: out-of-order and equal timepoints, deletes,
events without a profile, REST profiles, bulk snapshot rows dated before and after the events'
`published_at`, stubs from queued requests and backfills (whose lists set the order of the rows
they create), and unnormalised numbers.
"""

from __future__ import annotations

import itertools

import apsw
import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlog.bulk import BulkCompany
from eventlog.clock import FixedClock
from eventlog.ledger.db import connect
from eventlog.ledger.entries import BackfillCreated, BulkCompanyRecorded, RequestQueued
from eventlog.ledger.migrate import migrate
from eventlog.ledger.store import Ledger
from projections.projectors import companies
from projections.records import Batch
from projections.runner import read_batches
from projections.testing import profile, response, stream_event
from support.generated_ledgers import NUMBERS, entries

DAYS = ["2023-11-01", "2023-11-04", "2023-11-05"]
PUBLISHED = ["2023-10-31T23:59:59", "2023-11-01T00:00:00", "2023-11-04T14:33:29", "2023-11-05T08:00:00"]


def bulk_row(number: str, date: str, name: str) -> BulkCompanyRecorded:
    company = BulkCompany(company_number=number, company_name=name, company_status="active", type="ltd",
                          status_word="Active")
    return BulkCompanyRecorded(company_number=number, snapshot_date=date,
                               data=msgspec.Raw(msgspec.json.encode(company)))


@st.composite
def dated_events(draw):
    number = draw(st.sampled_from(NUMBERS))
    return stream_event(number, draw(st.integers(1, 8)), published_at=draw(st.sampled_from(PUBLISHED)),
                        change=draw(st.sampled_from(["changed", "deleted"])),
                        name=f"STREAM {draw(st.integers(0, 99))}",
                        data=draw(st.sampled_from([None, None, b"null"])))


@st.composite
def bulk_rows(draw):
    return bulk_row(draw(st.sampled_from(NUMBERS)), draw(st.sampled_from(DAYS)), f"BULK {draw(st.integers(0, 99))}")


mixed_entries = st.one_of(entries(), dated_events(), dated_events(), bulk_rows())


def ledger_of(path, items) -> apsw.Connection:
    """A ledger (no projection hook) holding `items`, each appended alone, with ids of their own (so
    that events with equal timepoints are all kept)."""
    conn = connect(path)
    migrate(conn)
    clock = FixedClock(1_700_000_000.0)
    ledger = Ledger(conn, clock)
    for i, e in enumerate(items):
        clock.advance(0.5)
        ledger.append_many([(f"e{i}", e)])
    return conn


def rows(conn: apsw.Connection) -> list[tuple]:
    return conn.execute("SELECT rowid, * FROM companies ORDER BY rowid").fetchall()


def folded(conn: apsw.Connection, fold) -> list[tuple]:
    """`companies` as `fold(conn, head)` builds it from empty (then emptied again)."""
    conn.execute("BEGIN")
    try:
        conn.execute("DELETE FROM companies")
        fold(conn, conn.execute("SELECT max(id) FROM event_log").fetchone()[0] or 0)
        return rows(conn)
    finally:
        conn.execute("ROLLBACK")


def by_entries(conn, head):
    records = [r for batch in read_batches(conn, 0, head) for r in batch]
    companies.apply_entries(conn, Batch(records))


def in_ranges(cuts):
    def fold(conn, head):
        bounds = sorted({0, head, *(c for c in cuts if 0 < c < head)})
        for lo, hi in itertools.pairwise(bounds):
            companies.apply_range(conn, lo, hi, chunk=3)  # small chunks: many plan chunks too
    return fold


def one_at_a_time(conn, head):
    for p in range(head):
        companies.apply_range(conn, p, p + 1)


def check_all_ways(conn, cuts) -> list[tuple]:
    expected = folded(conn, by_entries)
    assert folded(conn, in_ranges([])) == expected
    assert folded(conn, in_ranges(cuts)) == expected
    assert folded(conn, one_at_a_time) == expected
    return expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(items=st.lists(mixed_entries, min_size=5, max_size=60), cuts=st.lists(st.integers(1, 59), max_size=6))
def test_range_folds_equal_the_entry_by_entry_fold(tmp_path_factory, items, cuts):
    conn = ledger_of(tmp_path_factory.mktemp("r") / "l.db", items)
    try:
        check_all_ways(conn, cuts)
    finally:
        conn.close()


def test_a_boundary_inside_a_company_merges_with_the_row_already_there(tmp_path):
    items = [
        stream_event("00000001", 5, name="FIVE"),
        stream_event("00000002", 1, name="TWO"),
        stream_event("00000001", 3, name="THREE (older news)"),  # below the row's 5: changes no column
        stream_event("00000001", 5, name="FIVE AGAIN"),           # equal: the later entry wins
        stream_event("00000001", 4, data=b"null"),                # older, no profile
        stream_event("00000001", 7, change="deleted", data=b"null"),  # newer, no profile: stream columns only
    ]
    conn = ledger_of(tmp_path / "l.db", items)
    for cut in range(1, len(items)):
        expected = check_all_ways(conn, [cut])
    names = {r[1]: r[2] for r in expected}
    assert names == {"00000001": "FIVE AGAIN", "00000002": "TWO"}
    one = next(r for r in expected if r[1] == "00000001")
    columns = [c[1] for c in conn.execute("PRAGMA table_info(companies)")]
    one = dict(zip(["rowid"] + columns, one))
    assert (one["stream_timepoint"], one["deleted"], one["last_stream_event_id"]) == (7, 1, "e5")
    conn.close()


def test_rows_are_created_in_first_appearance_order_across_kinds(tmp_path):
    items = [
        stream_event("00000009", 1),
        BackfillCreated(batch_id="b1", name="n", company_numbers=["3", "00000009", "sc000002", "1"],
                        expires_at="2030-01-01T00:00:00.000000Z"),
        RequestQueued(request_id="r1", kind="profile", company_number="00000004"),
        stream_event("00000005", 2),
        response("r1", "profile", "00000004", body=profile("00000004", name="REST")),
        bulk_row("00000006", "2023-11-01", "BULK"),
        stream_event("00000003", 9),
        stream_event("00000007", 1),
    ]
    conn = ledger_of(tmp_path / "l.db", items)
    expected = check_all_ways(conn, [2, 3, 6])
    assert [r[1] for r in expected] == ["00000009", "00000003", "SC000002", "00000001", "00000004", "00000005",
                                        "00000006", "00000007"]
    conn.close()


def test_a_snapshot_holds_off_older_stream_events_across_ranges(tmp_path):
    items = [
        bulk_row("00000001", "2023-11-04", "BULK"),
        stream_event("00000001", 9, published_at="2023-11-01T10:00:00", name="OLDER THAN THE SNAPSHOT"),
        stream_event("00000001", 2, published_at="2023-11-05T10:00:00", name="NEWER"),
        stream_event("00000001", 1, published_at="2023-11-05T11:00:00", name="NEWER, LOWER TIMEPOINT"),
    ]
    conn = ledger_of(tmp_path / "l.db", items)
    expected = check_all_ways(conn, [1, 2])
    assert [r[2] for r in expected] == ["NEWER"]
    conn.close()
