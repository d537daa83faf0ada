"""`batches`, `batch show [--follow]`, `batch cancel` and the batch policies, on a real ledger.

Batches are made the way `bulk` makes them (a real snapshot ZIP imported), the worker's work is
appended as the worker would append it (the policy's sweep, the sender's entries), and the
commands run as real subprocesses where their output is the point.
"""

from __future__ import annotations

import msgspec
import pytest

import projections
from eventlog.bulk import import_snapshot
from eventlog.clock import from_epoch
from eventlog.config.settings import Settings
from eventlog.ledger.entries import BackfillCreated, Interest, RequestSent, WorkerStarted
from eventlog.ledger.store import Ledger
from eventlog.ops.batch_report import batch_report, follow, render_batch
from eventlog.worker.policy import sweep
from projections.projectors import batch_jobs
from projections.testing import STRIKE_OFF, officer, officers_page, profile, response, stream_event
from support.bulk_files import body, fields, line, write_zip

SETTINGS = Settings(rate_limit_requests=600, rate_limit_window=300.0)
PAGE = officers_page([officer("p1")])


@pytest.fixture
def live(conn, clock) -> Ledger:
    ledger = Ledger(conn, clock)
    projections.attach(ledger)
    ledger.append(WorkerStarted(version="t", pid=1, rate_limit_requests=600, rate_limit_window=300))
    return ledger


def bulk_batch(tmp_path, live: Ledger, count: int) -> str:
    rows = [line(fields(CompanyNumber=f"{n:08d}", CompanyStatus="Active - Proposal to Strike off"))
            for n in range(1, count + 1)]
    path = write_zip(tmp_path, body(rows), name="BasicCompanyDataAsOneFile-2023-11-01")
    return import_snapshot([path], live.conn, ledger=live, interest=Interest(), clock=live.clock).batch_id


def work(live: Ledger) -> list:
    """What the worker's policy loop would append now."""
    entries = sweep(live.conn, SETTINGS, live.clock.now())
    if entries:
        live.append_many(entries)
    return entries


def send(live: Ledger, number: str, kind: str = "officers") -> str:
    rid = live.conn.execute("SELECT request_id FROM request_queue WHERE company_number = ? AND kind = ?",
                            (number, kind)).fetchone()[0]
    live.append(RequestSent(request_id=rid, kind=kind, company_number=number, path="/x"))
    return rid


def answer(live: Ledger, number: str, rid: str, kind: str = "officers", body: bytes = PAGE) -> None:
    live.append(response(rid, kind, number, body=body))


def test_show_counts_by_status_and_stage_errors_and_an_eta_from_the_windows_pace(tmp_path, live, conn, clock):
    batch_id = bulk_batch(tmp_path, live, 10)
    work(live)
    assert batch_report(conn, SETTINGS, batch_id, clock.now()).eta_seconds is None  # nothing done yet
    for n in (1, 2, 3, 4):
        answer(live, f"{n:08d}", send(live, f"{n:08d}"))
        clock.advance(10)
    live.append(response(send(live, "00000005"), "officers", "00000005", status=503))  # retried later
    report = batch_report(conn, SETTINGS, batch_id, clock.now())
    assert report.done == 4 and report.batch.open_jobs == 6
    assert report.eta_seconds == pytest.approx(6 * 300 / 4)  # 4 jobs in the last 300 s, 6 left
    assert {(j.status, j.stage): j.jobs for j in report.jobs} == {("completed", "done"): 4,
                                                                   ("processing", "officers"): 6}
    assert report.errors == {"SERVER_ERROR": 1}
    text = render_batch(report)
    assert "ETA 8 min at the last window's pace (4 jobs in 300 s)" in text and "SERVER_ERROR 1" in text
    clock.advance(400)  # a window later, nothing finished in it: no pace, no ETA
    assert batch_report(conn, SETTINGS, batch_id, clock.now()).eta_seconds is None
    # a start of the id will do, and a wrong one is one line
    assert batch_report(conn, SETTINGS, batch_id[:6], clock.now()).batch.id == batch_id


def test_the_commands_list_show_and_follow_a_finished_batch(tmp_path, live, run_cli, db_path):
    batch_id = bulk_batch(tmp_path, live, 2)
    listed = run_cli("batches", "--db", db_path)
    assert listed.returncode == 0, listed.stderr
    assert batch_id in listed.stdout and "bulk snapshot 2023-11-01" in listed.stdout and "0/2" in listed.stdout
    work(live)
    for n in ("00000001", "00000002"):
        answer(live, n, send(live, n))
    shown = run_cli("batch", "show", batch_id[:8], "--db", db_path, "--follow", "--json")
    assert shown.returncode == 0, shown.stderr
    report = msgspec.json.decode(shown.stdout)
    assert report["batch"]["status"] == "completed" and report["batch"]["completed_jobs"] == 2
    missing = run_cli("batch", "show", "0000dead", "--db", db_path)
    assert missing.returncode == 2 and missing.stderr.startswith("chledger: no batch '0000dead'")


def test_follow_yields_until_the_batch_finishes(tmp_path, live, db_path):
    batch_id = bulk_batch(tmp_path, live, 3)
    work(live)
    numbers = iter(["00000001", "00000002", "00000003"])

    def sleep(_: float) -> None:  # the worker finishes one job between two looks
        n = next(numbers)
        answer(live, n, send(live, n))

    seen = [(r.done, r.batch.status) for r in follow(str(db_path), SETTINGS, batch_id, interval=0, sleep=sleep)]
    assert seen == [(0, "processing"), (1, "processing"), (2, "processing"), (3, "completed")]


def test_cancel_drops_queued_work_and_lets_work_in_flight_finish(tmp_path, live, conn, run_cli, db_path):
    batch_id = bulk_batch(tmp_path, live, 4)
    live.append(stream_event("00000004", 1, detail=STRIKE_OFF, published_at="2023-11-05T10:00:00"))  # stream too
    work(live)
    in_flight = send(live, "00000001")
    done = run_cli("batch", "cancel", batch_id, "--db", db_path, "--reason", "wrong list")
    assert done.returncode == 0, done.stderr
    assert "the work of 2 jobs dropped" in done.stdout and "2 jobs still open" in done.stdout
    queue = {r[0]: r[1] for r in conn.execute("SELECT company_number, status FROM request_queue")}
    assert queue == {"00000001": "in_flight", "00000004": "queued"}  # stream work goes on
    [cancel] = [msgspec.json.decode(d) for (d,) in conn.execute(
        "SELECT event_data FROM event_log WHERE event_type = 'batch.cancelled'")]
    assert cancel == {"type": "batch.cancelled", "batch_id": batch_id, "reason": "wrong list"}
    b = batch_jobs.batch(conn, batch_id)
    assert (b.status, b.cancelled_jobs, b.completed_at) == ("cancelled", 2, None)
    answer(live, "00000001", in_flight)  # finishes, and is recorded
    answer(live, "00000004", send(live, "00000004"))
    b = batch_jobs.batch(conn, batch_id)
    assert (b.completed_jobs, b.cancelled_jobs) == (2, 2) and b.finished
    again = run_cli("batch", "cancel", batch_id, "--db", db_path)
    assert again.returncode == 0 and "is cancelled already: nothing to cancel" in again.stdout


def test_after_a_cancel_the_policy_drops_the_next_step_of_work_that_was_in_flight(live, conn):
    """A plain list asks the status first: the status request in flight finishes, the officers
    call that would follow is abandoned, never queued."""
    live.append(BackfillCreated(batch_id="b1", name="list", company_numbers=["00000001", "00000002"],
                                expires_at="2023-12-14T22:13:20.000000Z"))
    work(live)
    rid = send(live, "00000001", "profile")
    from eventlog.commands.batches import cancel_batch
    from eventlog.config.settings import load_settings
    report = cancel_batch(load_settings({"database_path": conn.filename}, {}), "b1")
    assert report.dropped == 1 and report.still_open == 1
    answer(live, "00000001", rid, "profile", profile("00000001", detail=STRIKE_OFF))
    assert conn.execute("SELECT processing_state FROM company_processing_state WHERE company_number = '00000001'"
                        ).fetchone() == ("strike_off_confirmed",)
    dropped = work(live)
    assert [(e.company_number, e.kind, e.error_code) for e in dropped] == [("00000001", "officers", "CANCELLED")]
    assert conn.execute("SELECT count(*) FROM request_queue").fetchone() == (0,)
    b = batch_jobs.batch(conn, "b1")
    assert (b.cancelled_jobs, b.finished) == (2, True)
    assert work(live) == []  # and nothing more, ever


def test_finished_batches_expire_by_a_recorded_entry(tmp_path, live, conn, clock, run_cli, db_path):
    batch_id = bulk_batch(tmp_path, live, 1)
    work(live)
    answer(live, "00000001", send(live, "00000001"))
    expires = batch_jobs.batch(conn, batch_id).expires_at
    assert not any(e.__struct_config__.tag == "batch.expired" for e in work(live))
    clock.set(live.clock.now() + 31 * 86400)
    assert from_epoch(clock.now()) > expires
    [expired] = work(live)
    assert expired.batch_ids == [batch_id]
    assert batch_jobs.batches(conn) == [] and conn.execute("SELECT count(*) FROM batch_jobs").fetchone() == (0,)
    assert work(live) == []
    shown = run_cli("batch", "show", batch_id, "--db", db_path)
    assert shown.returncode == 2 and "a finished batch's rows go once it expires" in shown.stderr
    # the ledger keeps it all, and replay agrees with the live tables
    from projections.replay.rebuild import verify
    assert verify(conn) == []
    assert conn.execute("SELECT count(*) FROM event_log WHERE event_type = 'backfill.created'").fetchone() == (1,)
