"""`status` against a real migrated database whose projections hold a known state.

The CLI side goes through click's CliRunner and a wrapper command that does what
`python cli.py status` does once its settings are read (`known_errors`,
`read_status`, `show_status`), so exit codes and the exact lines printed are
checked without a subprocess.
"""

from __future__ import annotations

from pathlib import Path

import click
import msgspec
import pytest
from click.testing import CliRunner

from cli import known_errors, show_status
from eventlog.clock import FixedClock, from_epoch
from eventlog.ledger.db import connect
from eventlog.ledger.entries import RateLimited, RequestSent
from eventlog.ledger.store import Ledger
from eventlog.config.settings import Settings
from eventlog.ops.status_report import READY_LINE, collect_status, read_status, render_status
from support.obs import add_company, add_officers, add_queued, add_request, add_stream_metadata

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
SETTINGS = Settings(rate_limit_requests=600, rate_limit_window=300.0, rate_limit_slack=2.0)


@pytest.fixture
def populated(conn):
    """A pipeline part-way through: every number below is counted by hand."""
    add_company(conn, "00000001", "completed", published="2023-11-14T22:10:00",
                status_fetched_at="2023-11-14T22:10:01Z")  # status from the stream
    add_company(conn, "00000002", "completed", published="2023-11-14T22:13:10",  # newest event
                status_fetched_at="2023-11-14T22:11:00Z", status_request_id="r-2")
    add_company(conn, "00000003", "completed", published="2023-11-14T22:00:00",
                status_fetched_at="2023-11-14T22:00:01Z")  # from the stream, not of interest
    add_company(conn, "00000004", "failed", published="2023-11-14T22:01:00")
    add_company(conn, "00000005", "status_queued")
    add_company(conn, "00000006", "officers_queued", status_fetched_at="2023-11-14T22:12:00Z",
                status_request_id="r-6")
    add_company(conn, "00000007", "detected")
    add_officers(conn, "00000001", 3)
    add_officers(conn, "00000002", 2)
    # the window is (NOW - 302 s, NOW]: 5 inside (one a 429), 3 before it (one a 403)
    for i, status in enumerate([200, 200, 404, 429, 200]):
        add_request(conn, NOW - 10 - i, status, request_id=f"in-{i}")
    for i, status in enumerate([200, 403, 200]):
        add_request(conn, NOW - 400 - i, status, request_id=f"old-{i}")
    add_queued(conn, "q-1", 0, at=NOW - 5, position=1)
    add_queued(conn, "q-2", 0, at=NOW - 4, position=2, status="in_flight")
    for i in range(3):
        add_queued(conn, f"q-l{i}", 1, at=NOW - 3, position=10 + i)
    add_stream_metadata(conn, "companies", status="connected", timepoint=68805561,
                        processed="2023-11-14T22:13:11.500000Z", reconnects=2, gaps=1)
    return conn


def test_collect_status_counts_from_the_projections(populated):
    r = collect_status(populated, SETTINGS, NOW, target=2)
    assert (r.companies_detected, r.companies_completed, r.companies_failed,
            r.companies_in_progress) == (7, 3, 1, 3)
    assert r.states == {"completed": 3, "failed": 1, "status_queued": 1, "officers_queued": 1,
                        "detected": 1}
    assert r.companies_with_officers == 2 and r.ready
    assert (r.window_used, r.window_limit, r.window_seconds) == (5, 600, 300.0)
    assert r.queue == {"HIGH": 2, "LOW": 3}
    assert r.last_event_published_at == "2023-11-14T22:13:10.000000Z"
    assert r.last_event_received_at == "2023-11-14T22:13:11.500000Z"
    assert r.stream_lag_seconds == 10.0
    assert r.streams[0].stream == "companies" and r.streams[0].reconnects == 2
    assert (r.responses_429, r.responses_403) == (1, 1)
    assert r.requests_sent == 8
    assert r.calls_per_completed == pytest.approx(8 / 3, abs=1e-3)
    assert r.status_calls_saved == 2  # 00000001 and 00000003: fetched, no request
    assert r.cooldown_until is None


def test_target_not_met_is_not_ready_and_light_mode_skips_history(populated):
    r = collect_status(populated, SETTINGS, NOW, target=10_000, detail=False)
    assert not r.ready
    assert r.requests_sent is None and r.calls_per_completed is None and r.status_calls_saved is None
    text = render_status(r)
    assert READY_LINE not in text
    assert "2 / 10000 companies with officers (0.0%)" in text
    assert "9998 more to reach the target" in text
    assert "calls" not in text  # no history-long counts in light mode


def test_render_status_lines(populated):
    text = render_status(collect_status(populated, SETTINGS, NOW, target=2))
    lines = text.splitlines()
    assert "detected 7 | completed 3 | failed 1 | in progress 3" in lines[1]
    assert READY_LINE in lines
    assert any(l.startswith("window       5 / 600 requests in the last 300 s") for l in lines)
    assert any(l == "queue        HIGH 2 | LOW 3" for l in lines)
    assert any("10.0 s behind" in l for l in lines)
    assert any("8 sent | 2.67 per completed company | 2 status calls saved" in l for l in lines)
    assert "429s         1 (403s 1)" in lines
    assert lines[-1].startswith("disk         database ") and "(reserve 256 MB)" in lines[-1]


def test_a_recorded_429_shows_its_cooldown(conn, clock):
    ledger = Ledger(conn, clock)
    sent = ledger.append(RequestSent(request_id="r-9", kind="profile", company_number="00000009",
                                     path="/company/00000009"))
    add_request(conn, NOW, 429, company="00000009", request_id="r-9", row_id=sent.position)
    ledger.append(RateLimited(request_id="r-9", kind="profile", company_number="00000009",
                              status=429, elapsed_ms=40, cooldown_until=from_epoch(NOW + 120)))
    r = collect_status(conn, SETTINGS, NOW + 20)
    assert r.cooldown_until == from_epoch(NOW + 120)
    assert "cooling down until 2023-11-14T22:15:20.000000Z" in render_status(r)
    assert collect_status(conn, SETTINGS, NOW + 121).cooldown_until is None


# --- through click ---------------------------------------------------------------------


@click.command()
@click.option("--db", "db_path", default=None)
@click.option("--target", type=int, default=10_000)
@click.option("--json", "as_json", is_flag=True)
@known_errors
def status_cmd(db_path, target, as_json):
    """`python cli.py status` after reading its settings, with the clock and settings held still."""
    show_status(read_status(db_path, target, settings=SETTINGS, clock=FixedClock(NOW)), as_json)


def test_cli_text_and_ready(populated, db_path):
    result = CliRunner().invoke(status_cmd, ["--db", str(db_path), "--target", "2"])
    assert result.exit_code == 0, result.output
    assert READY_LINE in result.stdout.splitlines()
    not_yet = CliRunner().invoke(status_cmd, ["--db", str(db_path), "--target", "3"])
    assert not_yet.exit_code == 0 and READY_LINE not in not_yet.stdout


def test_cli_json_is_the_report(populated, db_path):
    result = CliRunner().invoke(status_cmd, ["--db", str(db_path), "--json", "--target", "5"])
    assert result.exit_code == 0, result.output
    data = msgspec.json.decode(result.stdout)
    assert data["companies_with_officers"] == 2 and data["target"] == 5 and data["ready"] is False
    assert data["queue"] == {"HIGH": 2, "LOW": 3}
    assert data["window_used"] == 5 and data["responses_429"] == 1
    assert data["generated_at"] == from_epoch(NOW)


def test_cli_reads_while_a_writer_holds_the_lock(populated, db_path):
    """WAL: status reads a consistent snapshot while the worker sits in BEGIN IMMEDIATE."""
    populated.execute("BEGIN IMMEDIATE")
    try:
        add_company(populated, "00000099", "detected")
        result = CliRunner().invoke(status_cmd, ["--db", str(db_path), "--json"])
    finally:
        populated.execute("ROLLBACK")
    assert result.exit_code == 0, result.output
    assert msgspec.json.decode(result.stdout)["companies_detected"] == 7


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "no database at"),
    (lambda p: p.write_bytes(b"this is not sqlite" * 300), "not a SQLite database, or it is corrupt"),
    (lambda p: connect(p).close(), "has no chledger schema: run `python cli.py migrate"),
], ids=["missing", "corrupt", "not-migrated"])
def test_cli_exit_2_with_one_line(tmp_path: Path, make, message):
    path = tmp_path / "x.db"
    make(path)
    result = CliRunner().invoke(status_cmd, ["--db", str(path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("chledger: ") and message in result.stderr


def test_the_target_counts_companies_with_officers_from_the_stream_and_from_batches(conn, clock):
    """One company of interest from the stream, one from a bulk snapshot's batch: both count."""
    import projections
    from eventlog.ledger.entries import BackfillCreated, RequestQueued
    from projections.testing import STRIKE_OFF, officer, officers_page, response, stream_event

    ledger = Ledger(conn, clock)
    projections.attach(ledger)
    stream, batch = "00000001", "00000002"
    ledger.append(stream_event(stream, 1, detail=STRIKE_OFF))
    ledger.append(BackfillCreated(batch_id="b1", name="bulk snapshot 2023-11-01", company_numbers=[batch],
                                  expires_at="2023-12-14T22:13:20.000000Z", of_interest_as_of="2023-11-01"))

    def fetch(number: str, priority: int) -> None:
        ledger.append(RequestQueued(request_id=f"o-{number}", kind="officers", company_number=number,
                                    priority=priority))
        ledger.append(RequestSent(request_id=f"o-{number}", kind="officers", company_number=number, path="/x"))
        ledger.append(response(f"o-{number}", "officers", number, body=officers_page([officer(number)])))

    fetch(stream, 0)
    half = collect_status(conn, SETTINGS, NOW, target=2)
    assert (half.companies_with_officers, half.ready) == (1, False)
    assert (half.batches_unfinished, half.batch_jobs, half.batch_jobs_open) == (1, 1, 1)
    assert "batches      1 under way: 0 of 1 jobs finished" in render_status(half)
    fetch(batch, 1)
    done = collect_status(conn, SETTINGS, NOW, target=2)
    assert (done.companies_with_officers, done.ready, done.batches_unfinished) == (2, True, 0)
    text = render_status(done)
    assert READY_LINE in text and "batches " not in text
