"""Replay, verify, catch-up, version checks and the worker lock, on real SQLite files.

The crash test kills a real replay subprocess with SIGKILL in the middle of its
rebuild; the lock tests hold the lock from a real second process.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import projections
from projections.replay import replay, verify
from eventlog.clock import FixedClock
from eventlog.ledger.db import connect
from eventlog.ledger.entries import RequestQueued, RequestSent, WorkerStarted
from eventlog.errors import DatabaseBusy, ProjectionError, ProjectionsOutdated
from eventlog.ledger.store import Ledger
from eventlog.ledger.migrate import migrate
from projections.projectors import companies as companies_projector
from eventlog.ledger.lock import worker_lock
from eventlog.commands.replay import run_replay
from cli import known_errors, replay_and_show
from projections.testing import STRIKE_OFF, officer, officers_page, response, snapshot, stream_event
from support import REPO



def read_line(proc: subprocess.Popen, timeout: float = 60.0) -> str:
    """The child's next line, or a failure (not a hang) if it says nothing in time."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"the child printed nothing in {timeout} s"
    return proc.stdout.readline()


def fill(ledger: Ledger, clock: FixedClock, companies: int = 40, start: int = 0) -> None:
    """A small realistic ledger: stream events (some strike-offs) and a few REST round trips."""
    ledger.append(WorkerStarted(version="t", pid=1, rate_limit_requests=600, rate_limit_window=300.0))
    for i in range(start, start + companies):
        number = f"{i:08d}"
        ledger.append_many([stream_event(number, 1000 + i, detail=STRIKE_OFF if i % 5 == 0 else None,
                                         status=None if i % 7 == 0 else "active")])
        clock.advance(1)
        if i % 5 == 0:
            rid = f"o-{number}"
            ledger.append_many([RequestQueued(request_id=rid, kind="officers", company_number=number)])
            ledger.append_many([RequestSent(request_id=rid, kind="officers", company_number=number, path="/o")])
            ledger.append_many([response(rid, "officers", number, body=officers_page([officer(f"{i}a"), officer(f"{i}b")]))])
            clock.advance(1)


def positions(conn) -> dict[str, tuple[int, int]]:
    return {n: (v, p) for n, v, p in conn.execute("SELECT name, version, position FROM projection_state")}


@pytest.fixture
def live(conn, clock) -> Ledger:
    ledger = Ledger(conn, clock)
    projections.check_versions(conn)
    projections.attach(ledger)
    fill(ledger, clock)
    return ledger


# --- replay and verify ----------------------------------------------------------------


def test_replay_rebuilds_exactly_what_the_live_run_built(conn, live):
    before = snapshot(conn)
    seen: list[tuple[int, int]] = []
    report = replay(conn, progress=lambda done, total: seen.append((done, total)), batch_size=25)
    head = live.head()
    assert snapshot(conn) == before
    assert (report.entries, report.head) == (head, head) and report.rate > 0
    assert report.projections == projections.NAMES
    assert seen[0] == (0, head) and seen[-1] == (head, head)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert set(positions(conn).values()) == {(p.VERSION, head) for p in projections.PROJECTORS}


def test_verify_lists_damage_without_repairing_it_and_replay_repairs_it(conn, live):
    good = snapshot(conn)
    conn.execute("UPDATE companies SET company_name = 'TAMPERED' WHERE company_number = '00000003'")
    conn.execute("DELETE FROM officers WHERE id = 1")
    conn.execute("UPDATE projection_vars SET value = '{\"field\":\"x\"}'")
    damaged = snapshot(conn)
    found = verify(conn)
    assert snapshot(conn) == damaged  # verify changed nothing
    by_table = {d.table: d for d in found}
    assert set(by_table) == {"companies", "officers", "projection_vars"}
    c = by_table["companies"]
    assert c.key == "company_number='00000003'" and "TAMPERED" in c.live and "TAMPERED" not in c.rebuilt
    assert by_table["officers"].live is None and by_table["officers"].rebuilt[0] == 1
    assert "TAMPERED" in str(c)
    replay(conn)
    assert snapshot(conn) == good and verify(conn) == []


def test_verify_reports_a_projection_that_is_behind_or_outdated(conn, live, clock):
    Ledger(conn, clock).append(stream_event("77", 5000))  # no hook: projections fall behind
    conn.execute("UPDATE projection_state SET version = 0 WHERE name = 'officers'")
    notes = {d.key: d.note for d in verify(conn) if d.table == "projection_state"}
    assert "at position" in notes["name='companies'"]
    assert "version 0" in notes["name='officers'"]


def test_replay_only_rebuilds_one_projection(conn, live, clock):
    conn.execute("UPDATE companies SET company_name = 'TAMPERED'")
    conn.execute("DELETE FROM officers")
    Ledger(conn, clock).append(stream_event("99", 9000))  # not yet applied anywhere
    before = positions(conn)
    report = replay(conn, only="officers")
    assert report.projections == ("officers",)
    after = positions(conn)
    assert after["officers"][1] == report.head
    assert {k: v for k, v in after.items() if k != "officers"} == {k: v for k, v in before.items() if k != "officers"}
    assert conn.execute("SELECT count(*) FROM officers").fetchone()[0] == 16
    assert conn.execute("SELECT count(*) FROM companies WHERE company_name = 'TAMPERED'").fetchone()[0] == 40


def test_only_accepts_a_table_name_and_refuses_unknown_names(conn, live):
    assert replay(conn, only="batch_jobs").projections == ("company_processing_state",)
    with pytest.raises(ProjectionError, match="no projection named 'nope'.*companies"):
        replay(conn, only="nope")


def test_replaying_companies_alone_keeps_the_rows_that_refer_to_it(conn, live):
    before = snapshot(conn)
    replay(conn, only="companies")
    assert snapshot(conn) == before
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1  # restored afterwards


def test_replay_flat_memory(tmp_path):
    """Python's peak allocation during a replay depends on the batch, not on the ledger length."""

    def peak(n: int) -> int:
        c = connect(tmp_path / f"m{n}.db")
        migrate(c)
        clk = FixedClock()
        fill(Ledger(c, clk), clk, companies=n)
        tracemalloc.start()
        replay(c, batch_size=100, lock=False)
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        c.close()
        return top

    small, large = peak(150), peak(600)
    assert large < small * 1.5, (small, large)


# --- the crash --------------------------------------------------------------------------

CRASHING_REPLAY = textwrap.dedent("""
    import sys
    sys.path.insert(0, {repo!r})
    from eventlog.ledger.db import connect
    from projections.replay import replay
    conn = connect(sys.argv[1])
    def progress(done, total):
        if done >= total // 2:
            # `companies` (a range fold, first) is rebuilt by now; the others are built after it
            old = conn.execute("SELECT count(*) FROM companies WHERE company_name = 'OLD'").fetchone()[0]
            states = conn.execute("SELECT count(*) FROM company_processing_state").fetchone()[0]
            print("midway", done, states, old, flush=True)
            sys.stdin.readline()  # hold the transaction open until killed
    replay(conn, progress=progress, batch_size=20)
    print("finished", flush=True)
""")


def test_a_replay_killed_midway_leaves_the_old_tables_and_positions(conn, live, clock, db_path):
    Ledger(conn, clock).append_many([stream_event("4242", 7000)])  # positions now behind the head
    conn.execute("UPDATE companies SET company_name = 'OLD'")       # old tables differ from a rebuild
    before, before_positions = snapshot(conn), positions(conn)
    total = conn.execute("SELECT count(*) FROM companies").fetchone()[0]
    states = conn.execute("SELECT count(*) FROM company_processing_state").fetchone()[0]
    conn.close()

    child = subprocess.Popen([sys.executable, "-c", CRASHING_REPLAY.format(repo=str(REPO)), str(db_path)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = read_line(child).split()
        assert line and line[0] == "midway", line
        # the child's transaction really had rebuilt one table and not yet the others
        assert int(line[3]) == 0 and int(line[2]) < states, line
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    after = connect(db_path)
    assert snapshot(after) == before
    assert positions(after) == before_positions
    assert after.execute("SELECT count(*) FROM companies WHERE company_name = 'OLD'").fetchone()[0] == total
    replay(after)  # the lock died with the child; a full replay now completes
    assert after.execute("SELECT count(*) FROM companies WHERE company_name = 'OLD'").fetchone()[0] == 0
    assert verify(after) == []


# --- the lock ---------------------------------------------------------------------------

HOLDING_WORKER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {repo!r})
    from eventlog.ledger.lock import worker_lock
    with worker_lock(sys.argv[1]):
        print("locked", flush=True)
        sys.stdin.readline()
""")


def test_replay_refuses_while_a_worker_holds_the_database(conn, live, db_path):
    before = snapshot(conn)
    worker = subprocess.Popen([sys.executable, "-c", HOLDING_WORKER.format(repo=str(REPO)), str(db_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert read_line(worker).strip() == "locked"
        with pytest.raises(DatabaseBusy, match=rf"a worker is running \(pid {worker.pid}\)"):
            replay(conn)
        assert snapshot(conn) == before
        with pytest.raises(DatabaseBusy, match=rf"a worker is running \(pid {worker.pid}\)"):
            run_replay(str(db_path))
    finally:
        worker.stdin.close()
        worker.wait(timeout=10)
    replay(conn)  # released when the worker ended


def test_no_worker_can_start_during_a_replay(conn, live, db_path):
    refused: list[str] = []

    def progress(done, total):
        if not refused:
            with pytest.raises(DatabaseBusy) as exc:
                with worker_lock(db_path):
                    pass
            refused.append(str(exc.value))

    replay(conn, progress=progress)
    assert refused and f"a replay is running (pid {os.getpid()})" in refused[0]
    with worker_lock(db_path):  # and free again afterwards
        pass


def test_verify_runs_next_to_a_writer_and_writes_nothing(conn, live, db_path):
    other = connect(db_path)
    other.execute("BEGIN IMMEDIATE")  # a worker mid-append holds the write lock
    try:
        assert verify(conn) == []
    finally:
        other.execute("ROLLBACK")
        other.close()


# --- versions and catching up ------------------------------------------------------------


def test_a_fresh_database_records_the_versions(conn):
    projections.check_versions(conn)
    assert positions(conn) == {p.NAME: (p.VERSION, 0) for p in projections.PROJECTORS}
    projections.check_versions(conn)  # and is fine the second time


def test_projections_older_than_the_code_are_refused_until_replayed(conn, live, monkeypatch):
    built = companies_projector.VERSION
    monkeypatch.setattr(companies_projector, "VERSION", built + 1)
    with pytest.raises(ProjectionsOutdated, match=rf"companies was built by version {built}.*python cli.py replay"):
        projections.check_versions(conn)
    with pytest.raises(ProjectionsOutdated):
        projections.catch_up(conn)
    replay(conn)
    projections.check_versions(conn)
    assert positions(conn)["companies"][0] == built + 1


def test_projections_never_built_or_built_by_a_newer_chledger_are_refused(conn, live):
    conn.execute("UPDATE projection_state SET version = 99 WHERE name = 'officers'")
    conn.execute("DELETE FROM projection_state WHERE name = 'request_queue'")
    with pytest.raises(ProjectionsOutdated) as exc:
        projections.check_versions(conn)
    assert "officers was built by a newer chledger" in str(exc.value)
    assert "request_queue has never been built" in str(exc.value)


def test_appends_through_outdated_projections_are_refused_until_replay(conn, live, monkeypatch):
    monkeypatch.setattr(companies_projector, "VERSION", companies_projector.VERSION + 1)
    head, before = live.head(), positions(conn)
    with pytest.raises(ProjectionsOutdated, match="python cli.py replay"):
        live.append(stream_event("555", 8000))
    assert (live.head(), positions(conn)) == (head, before)  # nothing appended, nothing applied
    replay(conn)
    live.append(stream_event("555", 8000))
    assert conn.execute("SELECT count(*) FROM companies WHERE company_number = '00000555'").fetchone()[0] == 1


def test_catch_up_applies_what_was_appended_without_the_hook(conn, live, clock, tmp_path):
    plain = Ledger(conn, clock)
    fill(plain, clock, companies=10, start=100)
    behind = positions(conn)["companies"][1]
    assert projections.catch_up(conn) == live.head() - behind
    assert projections.catch_up(conn) == 0
    assert verify(conn) == []


def test_the_hook_first_applies_entries_appended_without_it(conn, live, clock):
    Ledger(conn, clock).append(stream_event("321", 6000))  # no hook
    live.append(stream_event("322", 6001))                # the hook catches up first
    assert {p for _, p in positions(conn).values()} == {live.head()}
    assert conn.execute("SELECT count(*) FROM companies WHERE company_number IN ('00000321', '00000322')"
                        ).fetchone()[0] == 2
    assert verify(conn) == []


# --- the command ---------------------------------------------------------------------------


@click.command()
@click.option("--db", "path", required=True)
@click.option("--only", default=None)
@click.option("--verify", "check", is_flag=True)
@known_errors
def replay_cli(path: str, only: str | None, check: bool) -> None:
    """What cli.py's `replay` does once its settings are read: run, print, exit with its code."""
    sys.exit(replay_and_show(path, only, check))


def test_the_command_replays_and_verifies(conn, live, db_path):
    runner = CliRunner()
    done = runner.invoke(replay_cli, ["--db", str(db_path)])
    assert done.exit_code == 0, done.output
    assert f"replayed {live.head():,} entries into companies" in done.output and "entries/s" in done.output
    ok = runner.invoke(replay_cli, ["--db", str(db_path), "--verify"])
    assert ok.exit_code == 0 and "match the ledger" in ok.output

    conn.execute("UPDATE companies SET company_name = 'TAMPERED' WHERE company_number = '00000001'")
    bad = runner.invoke(replay_cli, ["--db", str(db_path), "--verify"])
    assert bad.exit_code == 1 and "company_number='00000001'" in bad.output and "TAMPERED" in bad.output
    fixed = runner.invoke(replay_cli, ["--db", str(db_path), "--only", "companies"])
    assert fixed.exit_code == 0 and "into companies in" in fixed.output
    assert runner.invoke(replay_cli, ["--db", str(db_path), "--verify"]).exit_code == 0


def test_the_command_explains_known_failures_in_one_line(conn, live, db_path, tmp_path):
    runner = CliRunner()
    unknown = runner.invoke(replay_cli, ["--db", str(db_path), "--only", "nope"])
    assert unknown.exit_code == 2 and "no projection named 'nope'" in unknown.output
    missing = runner.invoke(replay_cli, ["--db", str(tmp_path / "absent.db")])
    assert missing.exit_code == 2 and "no database at" in missing.output
    assert not (tmp_path / "absent.db").exists()


def test_every_name_of_the_database_file_names_the_same_lock(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    db = tmp_path / "data" / "companies.db"
    db.touch()
    (tmp_path / "link.db").symlink_to(db)
    monkeypatch.chdir(tmp_path / "data")
    with worker_lock("companies.db"):
        for other in (db, tmp_path / "link.db"):
            with pytest.raises(DatabaseBusy, match=rf"a worker is running \(pid {os.getpid()}\)"):
                with worker_lock(other):
                    pass
