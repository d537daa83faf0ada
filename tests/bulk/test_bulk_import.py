"""A snapshot into a real ledger: its entries, idempotency, and the reconciliation both ways.

Real ZIPs in the published format, a real migrated SQLite file with the projections attached,
as `python cli.py bulk` runs it; a few tests run the command itself as a subprocess.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

import projections
from eventlog.bulk import import_snapshot
from eventlog.bulk.importer import company_event_id
from eventlog.errors import BulkFileError
from eventlog.ledger.entries import Interest, RequestQueued, StreamGap
from eventlog.ledger.store import Ledger
from projections.projectors import batch_jobs
from projections.testing import STRIKE_OFF, stream_event
from support.bulk_files import body, fields, line, write_csv, write_zip

DAY = "2024-05-01"
PROPOSAL = "Active - Proposal to Strike off"


@pytest.fixture
def live(conn, clock) -> Ledger:
    ledger = Ledger(conn, clock)
    projections.attach(ledger)
    return ledger


def row(number: str, status: str = PROPOSAL, name: str | None = None) -> str:
    return line(fields(CompanyNumber=number, CompanyStatus=status, CompanyName=name or f"COMPANY {number} LTD"))


def snapshot(folder: Path, rows: list[str], name: str = f"BasicCompanyDataAsOneFile-{DAY}") -> Path:
    return write_zip(folder, body(rows), name=name)


def entries(conn, event_type: str) -> list[dict]:
    return [msgspec.json.decode(d) for (d,) in conn.execute(
        "SELECT event_data FROM event_log WHERE event_type = ? ORDER BY id", (event_type,))]


def run(path_or_paths, live: Ledger, **kw):
    paths = path_or_paths if isinstance(path_or_paths, list) else [path_or_paths]
    return import_snapshot(paths, live.conn, ledger=live, interest=Interest(), **kw)


def test_companies_of_interest_and_the_snapshot_are_recorded_then_become_one_low_batch(tmp_path, live, conn):
    path = snapshot(tmp_path, [row("00000001"), row("00000002", "Active"), row("SC000003"), row("00000004", "Liquidation")])
    report = run(path, live)
    assert report.of_interest == report.companies_recorded == 2 and report.read.rows_read == 4
    recorded = entries(conn, "bulk.company")
    assert [e["company_number"] for e in recorded] == ["00000001", "SC000003"]
    assert recorded[0]["snapshot_date"] == DAY and recorded[0]["data"]["company_status_detail"] == STRIKE_OFF
    assert conn.execute("SELECT event_id FROM event_log WHERE event_type = 'bulk.company' ORDER BY id").fetchall() == [
        (company_event_id(DAY, "00000001"),), (company_event_id(DAY, "SC000003"),)]
    [snap] = entries(conn, "bulk.snapshot")
    assert snap["snapshot_date"] == DAY and snap["rows_read"] == 4 and snap["rows_kept"] == 2 and snap["whole"]
    assert snap["files"][0]["name"] == path.name and len(snap["files"][0]["sha256"]) == 64
    [batch] = entries(conn, "backfill.created")
    assert batch["company_numbers"] == ["00000001", "SC000003"] and batch["of_interest_as_of"] == DAY
    assert report.batch_id == batch["batch_id"] and report.batch_companies == 2
    # no status call: the companies wait for their officers, and the worker's sweep queues them LOW
    from eventlog.config.settings import Settings
    from eventlog.worker.policy import sweep
    queued = sweep(conn, Settings(), 0.0)
    assert {(q.company_number, q.kind, q.priority, q.batch_id) for q in queued} == {
        ("00000001", "officers", 1, batch["batch_id"]), ("SC000003", "officers", 1, batch["batch_id"])}
    assert conn.execute("SELECT data_source FROM companies WHERE company_number = 'SC000003'").fetchone() == ("bulk",)


def test_the_same_file_twice_imports_nothing_new(tmp_path, live, conn):
    path = snapshot(tmp_path, [row("00000001"), row("00000002")])
    first = run(path, live)
    head = live.head()
    again = run(path, live)
    assert again.nothing_new and [f.file_name for f in again.already_imported] == [path.name]
    assert again.already_imported[0].position == first.snapshot_position
    assert live.head() == head  # not one entry
    # the same snapshot re-zipped under another hash: read, but no company recorded twice, no second batch
    other = tmp_path / "copy"
    other.mkdir()
    rezipped = snapshot(other, [row("00000002"), row("00000001")])
    third = run(rezipped, live)
    assert third.companies_recorded == 0 and third.companies_known == 2
    assert third.batch_companies == 0 and third.in_hand == 2
    assert len(entries(conn, "backfill.created")) == 1 and len(entries(conn, "bulk.snapshot")) == 2


def test_a_dry_run_appends_nothing(tmp_path, live, conn):
    path = snapshot(tmp_path, [row("00000001"), row("00000002", "Active")])
    head = live.head()
    report = import_snapshot([path], conn, interest=Interest())
    assert report.dry_run and report.of_interest == 1 and report.companies_recorded == 1
    assert report.batch_companies == 1 and report.batch_id is not None
    assert live.head() == head and report.snapshot_position is None
    assert not run(path, live).nothing_new  # a dry run records no hash either


def test_a_read_cut_short_records_no_snapshot_and_can_be_read_again(tmp_path, live, conn):
    rows = [row(f"{n:08d}", name=f"COMPANY {n * 7919 % 100003} LTD") for n in range(1, 20001)]
    path = snapshot(tmp_path, rows)
    good = path.read_bytes()
    data = bytearray(good)
    data[len(data) // 2:len(data) // 2 + 64] = bytes(64)
    path.write_bytes(bytes(data))
    with pytest.raises(BulkFileError, match="damaged after line"):
        run(path, live, chunk=1000)
    partial = len(entries(conn, "bulk.company"))
    assert 0 < partial < 20000
    assert entries(conn, "bulk.snapshot") == [] and entries(conn, "backfill.created") == []
    path.write_bytes(good)  # downloaded again
    report = run(path, live, chunk=1000)
    assert report.companies_known == partial and report.companies_recorded == 20000 - partial
    assert len(entries(conn, "bulk.company")) == 20000 and len(entries(conn, "bulk.snapshot")) == 1


def test_a_file_without_a_date_in_its_name_needs_one(tmp_path, live):
    path = write_zip(tmp_path, body([row("00000001")]), name="companies")
    with pytest.raises(BulkFileError, match="--snapshot-date"):
        run(path, live)
    assert run(path, live, snapshot_date=DAY).snapshot_date == DAY


def test_all_records_every_company_and_batches_only_those_of_interest(tmp_path, live, conn):
    path = snapshot(tmp_path, [row("00000001"), row("00000002", "Active"), row("00000003", "Liquidation")])
    report = import_snapshot([path], conn, ledger=live, interest=Interest(), keep_all=True)
    assert report.companies_recorded == 3 and report.of_interest == 1
    assert [e["company_numbers"] for e in entries(conn, "backfill.created")] == [["00000001"]]
    [snap] = entries(conn, "bulk.snapshot")
    assert "interest" not in snap and snap["rows_kept"] == 1


# --- reconciliation -----------------------------------------------------------------------------


def held(live: Ledger, number: str, timepoint: int, published_at: str = "2024-04-20T10:00:00") -> None:
    """A company the stream showed of interest before the snapshot, its officers request queued."""
    live.append(stream_event(number, timepoint, detail=STRIKE_OFF, published_at=published_at))
    live.append(RequestQueued(request_id=f"o-{number}", kind="officers", company_number=number))


def state(conn, number: str) -> tuple | None:
    return conn.execute("SELECT processing_state, officers_fetched_at FROM company_processing_state "
                        "WHERE company_number = ?", (number,)).fetchone()


def test_companies_in_hand_or_with_newer_news_are_left_out_of_the_batch(tmp_path, live, conn):
    held(live, "00000001", 10)  # under way
    live.append(stream_event("00000002", 11, status="active", published_at="2024-05-03T09:00:00"))  # newer: not
    live.append(stream_event("00000003", 12, status="active", published_at="2024-04-03T09:00:00"))  # older: missed
    path = snapshot(tmp_path, [row(f"0000000{n}") for n in (1, 2, 3, 4)])
    report = run(path, live)
    [batch] = entries(conn, "backfill.created")
    assert batch["company_numbers"] == ["00000003", "00000004"]
    assert (report.in_hand, report.newer) == (1, 1)
    # the company the stream had completed as not of interest, on older news, is re-opened
    assert state(conn, "00000003")[0] == "strike_off_confirmed"
    assert conn.execute("SELECT company_status_detail FROM companies WHERE company_number = '00000002'"
                        ).fetchone() == (None,)  # the newer stream data stands


def test_a_company_no_longer_of_interest_is_updated_and_leaves_the_pipeline(tmp_path, live, conn):
    held(live, "00000001", 10)  # the snapshot shows the proposal withdrawn: we missed the event
    held(live, "00000002", 11, published_at="2024-05-02T10:00:00")  # but newer stream news stands
    held(live, "00000003", 12)  # still proposed
    path = snapshot(tmp_path, [row("00000001", "Active"), row("00000002", "Active"), row("00000003")])
    report = run(path, live)
    assert report.left == 1 and report.left_examples[0][0] == "00000001"
    [left] = entries(conn, "company.completed")
    assert left["company_number"] == "00000001"
    assert left["reason"] == (f"no longer of interest: the bulk snapshot of {DAY} shows company_status_detail "
                              "(none) ('Active')")
    assert state(conn, "00000001")[0] == "completed" and state(conn, "00000002")[0] == "officers_queued"
    assert [r[0] for r in conn.execute("SELECT company_number FROM request_queue ORDER BY 1")] == [
        "00000002", "00000003"]  # its queued request went with it; no API call
    assert conn.execute("SELECT company_status_detail, bulk_snapshot_date FROM companies "
                        "WHERE company_number = '00000001'").fetchone() == (None, DAY)  # updated
    # the watched rows are recorded too, whatever their status: that is how the table learns it
    assert [e["company_number"] for e in entries(conn, "bulk.company")] == ["00000001", "00000002", "00000003"]


def test_a_company_missing_from_a_whole_snapshot_leaves_and_from_a_partial_one_stays(tmp_path, live, conn):
    held(live, "00000001", 10)
    held(live, "00000009", 11)
    part1 = write_zip(tmp_path, body([row("00000001")]), name=f"BasicCompanyData-{DAY}-part1_2")
    report = run(part1, live)
    assert report.read.parts_missing == [2] and report.left == 0  # part 2 may list 00000009
    assert state(conn, "00000009")[0] == "officers_queued"
    part2 = write_zip(tmp_path, body([row("00000002")]), name=f"BasicCompanyData-{DAY}-part2_2")
    assert run(part2, live).left == 0  # read alone, part 2 is partial too
    (tmp_path / "whole").mkdir()
    whole = snapshot(tmp_path / "whole", [row("00000001"), row("00000002")])
    report = run(whole, live)
    assert report.left == 1 and report.left_examples == [
        ("00000009", f"no longer of interest: the bulk snapshot of {DAY} shows no row for it (no longer a live company)")]
    assert state(conn, "00000009")[0] == "completed" and state(conn, "00000001")[0] == "officers_queued"


def test_a_whole_snapshot_marks_the_stream_gaps_reconciled_on_its_date(tmp_path, live, conn):
    path = snapshot(tmp_path, [row("00000001")])
    run(path, live)
    assert entries(conn, "stream.gaps_reconciled") == []  # no gap recorded: nothing to reconcile
    live.append(StreamGap(stream="companies", requested_timepoint=1000, reason="416: timepoint too old"))
    part = write_zip(tmp_path, body([row("00000002")]), name="BasicCompanyData-2024-06-01-part1_2")
    run(part, live)
    assert entries(conn, "stream.gaps_reconciled") == []  # a partial snapshot repairs only its part
    newer = snapshot(tmp_path, [row("00000002")], name="BasicCompanyDataAsOneFile-2024-06-01")
    report = run(newer, live)
    assert report.gaps_reconciled
    [gaps] = entries(conn, "stream.gaps_reconciled")
    assert gaps == {"type": "stream.gaps_reconciled", "snapshot_date": "2024-06-01", "snapshot": newer.name}
    position = conn.execute("SELECT id FROM event_log WHERE event_type = 'stream.gaps_reconciled'").fetchone()[0]
    assert position == report.snapshot_position + 2  # after the snapshot and its batch, in one transaction


def test_the_batch_is_a_real_batch_the_tables_show(tmp_path, live, conn):
    run(snapshot(tmp_path, [row(f"{n:08d}") for n in range(1, 6)]), live)
    [b] = batch_jobs.batches(conn)
    assert (b.name, b.total_jobs, b.status) == (f"bulk snapshot {DAY}", 5, "processing")
    assert [(c.status, c.stage, c.jobs) for c in batch_jobs.job_counts(conn, b.id)] == [("processing", "officers", 5)]


# --- the command ------------------------------------------------------------------------------------


def test_the_command_reports_bad_rows_with_file_and_line_and_is_idempotent(tmp_path, run_cli):
    db = tmp_path / "c.db"
    good = [row(f"{n:08d}") for n in range(1, 4)]
    bad = '"BROKEN LTD","00000009","only three fields"'
    path = write_csv(tmp_path, body(good[:2] + [bad] + good[2:]), name=f"BasicCompanyDataAsOneFile-{DAY}")
    dry = run_cli("bulk", path, "--db", db, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run: nothing was appended" in dry.stdout and "3 companies would be recorded" in dry.stdout
    assert not db.exists()
    done = run_cli("bulk", path, "--db", db)
    assert done.returncode == 0, done.stderr
    assert f"{path.name} line 4: 3 columns, expected 55" in done.stdout
    assert "bad rows skipped: 1" in done.stdout and "3 companies recorded" in done.stdout
    assert "3 companies of interest not yet done queued at LOW priority" in done.stdout
    again = run_cli("bulk", path, "--db", db)
    assert again.returncode == 0 and "imported already" in again.stdout and "nothing new to import" in again.stdout
    missing = run_cli("bulk", tmp_path / "BasicCompanyDataAsOneFile-2024-06-01.zip", "--db", db)
    assert missing.returncode == 2 and missing.stderr.startswith("chledger: BasicCompanyDataAsOneFile-2024-06-01.zip: ")
    assert len(missing.stderr.strip().splitlines()) == 1
