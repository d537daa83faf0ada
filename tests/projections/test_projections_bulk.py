"""Bulk snapshot rows and the batches they become, through the live hook, replay and catch-up.

`companies` orders a snapshot's row against stream events by the snapshot's date (against
`published_at`) and against REST profiles by `received_at`; what the file lacks never blanks a
column. `company_processing_state` takes a backfill made from a snapshot straight to its
officers. A cancelled batch keeps its status while its work under way finishes; an expired one
leaves the tables. Every test runs three times (`world`): the three paths must agree.
"""

from __future__ import annotations

import msgspec
import pytest

from eventlog.bulk import BulkCompany
from eventlog.bulk.company import Address
from eventlog.ledger.entries import (
    BackfillCreated,
    BatchCancelled,
    BatchesExpired,
    BulkCompanyRecorded,
    BulkFile,
    BulkSnapshotImported,
    CompanyCompleted,
    RequestAbandoned,
    RequestQueued,
    RequestSent,
)
from projections.projectors import batch_jobs, bulk_snapshots
from projections.testing import STRIKE_OFF, World, officer, officers_page, response, stream_event

N = "00000123"
SNAPSHOT = "2023-11-01"


@pytest.fixture(params=["live", "replay", "catch_up"])
def world(request, conn, clock) -> World:
    return World(conn, clock, request.param)


def bulk_row(number: str = N, date: str = SNAPSHOT, *, name: str = "BULK NAME LTD", status: str | None = "active",
             detail: str | None = None, kind: str | None = "ltd", **extra) -> BulkCompanyRecorded:
    company = BulkCompany(company_number=number, company_name=name, company_status=status,
                          company_status_detail=detail, type=kind, status_word="Active", **extra)
    return BulkCompanyRecorded(company_number=number, snapshot_date=date, data=msgspec.Raw(msgspec.json.encode(company)))


def test_a_bulk_row_creates_the_company_as_bulk(world):
    world.add(bulk_row(detail=STRIKE_OFF, registered_office_address=Address(locality="NORWICH"),
                       sic_codes=("62012",)))
    c = world.company(N)
    assert (c["company_name"], c["company_status"], c["company_status_detail"], c["company_type"]) == \
        ("BULK NAME LTD", "active", STRIKE_OFF, "ltd")
    assert (c["data_source"], c["bulk_snapshot_date"], c["etag"]) == ("bulk", SNAPSHOT, None)
    assert msgspec.json.decode(c["registered_office_address"]) == {"locality": "NORWICH"}
    assert msgspec.json.decode(c["sic_codes"]) == ["62012"]
    assert c["stream_timepoint"] is None
    assert world.state(N) is None  # being in a snapshot alone puts nothing in the pipeline


def test_an_older_snapshot_never_overwrites_newer_stream_data(world):
    world.add(stream_event(N, 50, name="STREAM NAME LTD", detail=STRIKE_OFF, published_at="2023-11-04T14:33:29"))
    world.add(bulk_row(name="OLD NAME LTD", status="active", detail=None))  # the register on 1 November
    c = world.company(N)
    assert (c["company_name"], c["company_status_detail"]) == ("STREAM NAME LTD", STRIKE_OFF)
    assert c["bulk_snapshot_date"] is None  # not applied
    assert c["data_source"] == "both"  # but the company was seen in both


def test_an_event_published_on_the_snapshot_day_is_newer_than_the_snapshot(world):
    world.add(stream_event(N, 50, name="STREAM NAME LTD", published_at=f"{SNAPSHOT}T00:00:01"))
    world.add(bulk_row(name="OLD NAME LTD"))
    assert world.company(N)["company_name"] == "STREAM NAME LTD"


def test_a_newer_snapshot_updates_older_stream_data_but_blanks_nothing(world):
    world.add(stream_event(N, 50, name="STREAM NAME LTD", detail=STRIKE_OFF, published_at="2023-10-20T09:00:00"))
    etag = world.company(N)["etag"]
    assert etag is not None
    # the proposal was withdrawn before 1 November; the file has no etag, and this row no type
    world.add(bulk_row(name="NEW NAME LTD", status="active", detail=None, kind=None))
    c = world.company(N)
    assert (c["company_name"], c["company_status"], c["company_status_detail"]) == ("NEW NAME LTD", "active", None)
    assert c["etag"] == etag and c["company_type"] == "ltd"  # absent in the file: kept
    assert c["stream_timepoint"] == 50  # the stream columns are the stream's
    assert c["bulk_snapshot_date"] == SNAPSHOT and c["data_source"] == "both"


def test_an_unknown_status_word_keeps_the_status_held(world):
    world.add(stream_event(N, 50, detail=STRIKE_OFF, published_at="2023-10-20T09:00:00"))
    world.add(bulk_row(status=None, detail=None))  # a word the vocabulary doesn't know
    c = world.company(N)
    assert (c["company_status"], c["company_status_detail"]) == ("active", STRIKE_OFF)


def test_a_stream_event_published_before_the_snapshot_does_not_overwrite_it(world):
    world.add(bulk_row(name="BULK NAME LTD", detail=STRIKE_OFF))
    world.add(stream_event(N, 70, name="STALE NAME LTD", status="active", published_at="2023-10-30T10:00:00"))
    c = world.company(N)
    assert (c["company_name"], c["company_status_detail"]) == ("BULK NAME LTD", STRIKE_OFF)
    world.add(stream_event(N, 71, name="FRESH NAME LTD", status="dissolved", published_at="2023-11-02T10:00:00"))
    c = world.company(N)
    assert (c["company_name"], c["company_status"], c["stream_timepoint"]) == ("FRESH NAME LTD", "dissolved", 71)


def test_an_older_snapshot_after_a_newer_one_or_a_newer_rest_profile_changes_nothing(world):
    world.add(bulk_row(name="DECEMBER LTD", date="2023-12-01"))
    world.add(bulk_row(name="NOVEMBER LTD", date="2023-11-01"))
    assert world.company(N)["company_name"] == "DECEMBER LTD"
    other = "00000456"
    # a REST profile received on 14 November is newer than the November snapshot read later
    from projections.testing import profile
    world.add(response("p1", "profile", other, body=profile(other, name="REST NAME LTD")))
    world.add(bulk_row(other, name="BULK NAME LTD"))
    assert world.company(other)["company_name"] == "REST NAME LTD"


def test_a_snapshot_entry_records_its_files_by_hash(world):
    files = [BulkFile(name=f"BasicCompanyData-{SNAPSHOT}-part{n}_2.zip", sha256=f"{n}" * 64, size=10, rows_read=5,
                      rows_kept=1, part=n, parts=2) for n in (1, 2)]
    [pos] = world.add(BulkSnapshotImported(snapshot_date=SNAPSHOT, files=files, rows_read=10, rows_kept=2,
                                           rejected=0, companies_recorded=2, whole=True))
    world.settle()
    found = bulk_snapshots.imported(world.conn, ["1" * 64, "3" * 64])
    assert list(found) == ["1" * 64] and found["1" * 64].position == pos
    assert bulk_snapshots.latest_snapshot_date(world.conn) == SNAPSHOT


# --- a batch made from a snapshot ------------------------------------------------------------------


def backfill(numbers: list[str], batch_id: str = "b1", **kw) -> BackfillCreated:
    return BackfillCreated(batch_id=batch_id, name="bulk", company_numbers=numbers,
                           expires_at="2023-12-14T22:13:20.000000Z", **kw)


def test_a_batch_from_a_snapshot_goes_straight_to_the_officers(world):
    done, settled, busy = "00000001", "00000002", "00000003"
    world.add(stream_event(settled, 1, status="active"))  # completed: not of interest, then
    world.add(stream_event(busy, 2, status=None), RequestQueued(request_id="p-busy", kind="profile",
                                                               company_number=busy))
    world.add(backfill([N, settled, busy], of_interest_as_of=SNAPSHOT))
    for number in (N, settled):
        s = world.state(number)
        assert s["processing_state"] == "strike_off_confirmed" and s["status_fetched_at"] is not None
        assert s["status_request_id"] is None  # no status call
    assert world.state(busy)["processing_state"] == "status_queued"  # waits for its own request
    jobs = {j["company_number"]: j for j in world.rows("batch_jobs")}
    assert (jobs[N]["status"], jobs[N]["stage"]) == ("processing", "officers")
    assert done not in jobs
    # a plain list still asks each company's status first
    world.add(backfill(["00000009"], batch_id="b2"))
    assert world.state("00000009")["processing_state"] == "detected"


def test_cancel_drops_the_queued_and_lets_the_work_under_way_finish(world):
    a, b, c = "00000001", "00000002", "00000003"
    world.add(backfill([a, b, c], of_interest_as_of=SNAPSHOT))
    world.add(*[RequestQueued(request_id=f"o-{n}", kind="officers", company_number=n, priority=1, batch_id="b1")
                for n in (a, b, c)])
    world.add(RequestSent(request_id=f"o-{a}", kind="officers", company_number=a, path="/x"))  # in flight
    world.add(BatchCancelled(batch_id="b1", reason="test"),
              *[RequestAbandoned(request_id=f"o-{n}", kind="officers", company_number=n, error_code="CANCELLED",
                                 reason="batch b1 cancelled") for n in (b, c)])
    batch = world.row("processing_batches", "")
    assert (batch["status"], batch["cancelled_jobs"], batch["completed_at"]) == ("cancelled", 2, None)
    assert batch_jobs.cancelled_open(world.conn) == ["b1"]
    assert {r["request_id"]: r["status"] for r in world.rows("request_queue")} == {f"o-{a}": "in_flight"}
    assert world.row("batch_jobs", "WHERE company_number = ?", (b,))["status"] == "cancelled"
    world.add(response(f"o-{a}", "officers", a, body=officers_page([officer("p1")])))
    batch = world.row("processing_batches", "")
    assert (batch["status"], batch["completed_jobs"], batch["cancelled_jobs"]) == ("cancelled", 1, 2)
    assert batch["completed_at"] is not None  # nothing is open any more
    assert world.row("batch_jobs", "WHERE company_number = ?", (a,))["status"] == "completed"
    world.settle()
    row = batch_jobs.batch(world.conn, "b1")
    assert row.finished and row.open_jobs == 0
    assert batch_jobs.cancelled_open(world.conn) == []  # over: the policy has nothing left to drop


def test_an_expired_batch_leaves_the_tables_and_the_ledger_keeps_it(world):
    world.add(backfill([N], of_interest_as_of=SNAPSHOT))
    world.add(CompanyCompleted(company_number=N, reason="test"))
    world.settle()
    assert batch_jobs.expired_batches(world.conn, "2023-12-14T22:13:20.000000Z") == ["b1"]
    assert batch_jobs.expired_batches(world.conn, "2023-12-14T22:13:19.000000Z") == []
    world.add(BatchesExpired(batch_ids=["b1"]))
    assert world.rows("processing_batches") == [] and world.rows("batch_jobs") == []
    assert world.state(N)["processing_state"] == "completed"  # the company's own row stays


def test_a_company_leaving_the_pipeline_takes_its_queued_requests_with_it(world):
    world.add(stream_event(N, 1, detail=STRIKE_OFF))
    other = "00000777"
    world.add(stream_event(other, 2, detail=STRIKE_OFF))
    world.add(RequestQueued(request_id="o1", kind="officers", company_number=N),
              RequestQueued(request_id="o2", kind="officers", company_number=other))
    world.add(RequestSent(request_id="o2", kind="officers", company_number=other, path="/x"))
    world.add(CompanyCompleted(company_number=N, reason="no longer of interest"),
              CompanyCompleted(company_number=other, reason="no longer of interest"))
    assert [(r["request_id"], r["status"]) for r in world.rows("request_queue")] == [("o2", "in_flight")]
    assert world.state(N)["processing_state"] == "completed"
