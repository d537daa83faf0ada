"""Replay on several processes (`projections.parallel`) builds exactly what the serial replay builds.

Real worker processes, real scratch files, real signals: a worker killed with
SIGKILL, and a replay whose parent is killed, leave the old tables and positions
as they were, and the next replay removes what they left behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Iterator

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import projections
from projections.replay import replay, verify
from eventlog.ledger.db import connect
from eventlog.errors import ProjectionError
from eventlog.ledger.store import Ledger
from projections.replay import parallel
from projections.registry import NAMES, select
from projections.testing import PROJECTION_TABLES, snapshot, stream_event
from support.generated_ledgers import _build, ledgers
from test_replay import REPO, fill, live, positions, read_line  # noqa: F401 (live is a fixture)


def everything(conn) -> tuple:
    """Every row of every projection table with its hidden rowid, the AUTOINCREMENT counters, the positions."""
    tables = {}
    for table in PROJECTION_TABLES:
        without_rowid = conn.execute(f"PRAGMA main.table_list({table})").fetchone()[4]
        rows = conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2" if without_rowid
                            else f"SELECT rowid, * FROM {table} ORDER BY rowid").fetchall()
        tables[table] = rows
    return (tables,
            dict(conn.execute("SELECT name, seq FROM sqlite_sequence").fetchall()),
            conn.execute("SELECT name, version, position FROM projection_state ORDER BY name").fetchall())


def replay_workers(parent: psutil.Process | None = None) -> list[psutil.Process]:
    """The replay worker processes among `parent`'s children (other tests may have left others)."""
    found = []
    for child in (parent or psutil.Process()).children():
        try:
            if "projections.replay.worker" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass
    return found


def scratch_left(db_path) -> bool:
    return os.path.exists(parallel.scratch_dir(str(db_path)))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ledgers(), st.sampled_from([2, 3]), st.sampled_from([3, 7, 5000]))
def test_parallel_replay_builds_byte_for_byte_what_the_serial_replay_builds(cuts, jobs, batch_size):
    with tempfile.TemporaryDirectory() as d:
        live = _build(os.path.join(d, "live.db"), cuts, hook=True)
        expected = snapshot(live)
        live.close()
        shutil.copy(os.path.join(d, "live.db"), os.path.join(d, "copy.db"))
        serial, split = connect(os.path.join(d, "live.db")), connect(os.path.join(d, "copy.db"))
        assert replay(serial, jobs=1).processes == 1
        report = replay(split, jobs=jobs, batch_size=batch_size)
        assert report.processes == jobs
        assert snapshot(split) == expected
        assert everything(split) == everything(serial)
        assert verify(split) == []
        assert not scratch_left(os.path.join(d, "copy.db"))
        serial.close()
        split.close()


@pytest.fixture
def big(conn, clock, db_path) -> int:
    """5,000 stream events, projections built: enough that workers with one-entry batches are
    still running (and blocked writing progress to a parent that stopped reading) when killed."""
    Ledger(conn, clock).append_many([stream_event(f"{i:08d}", 10_000 + i) for i in range(5000)])
    replay(conn, jobs=1)
    conn.execute("UPDATE companies SET company_name = 'OLD'")  # old tables differ from any rebuild
    return conn.execute("SELECT max(id) FROM event_log").fetchone()[0]


def test_plan_keeps_the_two_heavy_projections_apart_officers_with_companies_and_views_never_cost_a_process():
    groups = [[p.NAME for p in g] for g in parallel.plan(select(None), 2)]
    assert len(groups) == 2
    assert {"companies", "company_processing_state"} == {g[0] for g in groups}
    assert sorted(n for g in groups for n in g) == sorted(NAMES)
    with_tables = [p for p in select(None) if p.TABLES]
    many = [[p.NAME for p in g] for g in parallel.plan(select(None), len(with_tables) + 1)]
    # one process each, but officers with companies (it reads companies' table as it applies)
    assert len(many) == len(with_tables) - 1 and ["stream_events_log"] not in many  # a view costs no process
    assert all(("officers" in g) == ("companies" in g) for plan in (groups, many) for g in plan)
    assert [[p.NAME for p in g] for g in parallel.plan(select("officers"), 3)] == [["officers"]]


def test_a_small_ledger_replays_in_one_process(conn, live):
    assert replay(conn).processes == 1


def test_progress_reaches_the_head(conn, live):
    seen: list[tuple[int, int]] = []
    report = replay(conn, jobs=2, batch_size=5, progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, report.head)
    assert seen[-1] == (report.head, report.head)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_entries_appended_while_the_workers_run_are_applied_too(conn, live, clock, db_path, monkeypatch):
    """The workers stop at the head they were given; what came after is applied in the swap."""
    real_build = parallel.build_in_parallel

    def build_then_append(*args, **kwargs):
        files = real_build(*args, **kwargs)
        writer = connect(db_path)
        fill(Ledger(writer, clock), clock, companies=3, start=500)  # no hook: like a process without one
        writer.close()
        return files

    monkeypatch.setattr("projections.replay.rebuild.build_in_parallel", build_then_append)
    before = conn.execute("SELECT max(id) FROM event_log").fetchone()[0]
    report = replay(conn, jobs=2)
    assert report.head > before
    assert set(p for _, p in positions(conn).values()) == {report.head}
    assert conn.execute("SELECT count(*) FROM companies WHERE company_number = '00000500'").fetchone()[0] == 1
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the copy must hold what the WAL holds
    shutil.copy(db_path, f"{db_path}.serial")
    serial = connect(f"{db_path}.serial")
    replay(serial, jobs=1)
    assert everything(conn) == everything(serial)
    serial.close()


def test_a_worker_killed_midway_fails_the_replay_and_changes_nothing(conn, big, db_path):
    before, before_positions = everything(conn), positions(conn)
    killed: list[tuple[int, int]] = []

    def kill_a_worker(done, total):
        workers = replay_workers()
        if not killed and done > 0 and len(workers) == 2:  # both past start-up, one batch done
            workers[0].send_signal(signal.SIGKILL)
            killed.append((workers[0].pid, done))

    with pytest.raises(ProjectionError, match=r"died \(signal 9\); nothing was changed"):
        replay(conn, jobs=2, batch_size=1, progress=kill_a_worker)
    assert killed and killed[0][1] < big  # midway, not after the work was done
    assert everything(conn) == before
    assert positions(conn) == before_positions
    assert not scratch_left(db_path)
    assert replay_workers() == []  # the other worker was stopped too


def test_an_error_in_a_worker_comes_back_in_one_line_naming_its_group(conn, live, db_path):
    """A worker's exception while applying the ledger is the replay's error; nothing changes."""
    before = everything(conn)
    conn.execute("INSERT INTO event_log(id, event_id, event_type, company_number, event_data, received_at, hash) "
                 "SELECT max(id) + 1, 'broken', 'stream.event', NULL, '{\"type\": \"stream.event\"', "
                 "'2026-11-23T00:00:00.000000Z', x'00' FROM event_log")  # tampered: not JSON
    with pytest.raises(ProjectionError) as failed:
        replay(conn, jobs=2)
    message = str(failed.value)
    assert message.startswith("replay of ") and "failed: " in message and "nothing was changed" in message
    assert "\n" not in message
    assert everything(conn) == before
    assert not scratch_left(db_path)


def test_a_failing_worker_start_is_named_in_one_line(conn, live, db_path):
    conn.execute("DROP TABLE officers")  # the worker copies the DDL of a table that is gone
    with pytest.raises(ProjectionError) as failed:
        replay(conn, jobs=3)
    assert "table officers does not exist" in str(failed.value)
    assert "\n" not in str(failed.value)
    assert not scratch_left(db_path)


def test_no_scratch_directory_falls_back_to_one_process_unless_jobs_were_asked_for(conn, live, db_path,
                                                                                   monkeypatch):
    Path(parallel.scratch_dir(str(db_path))).write_text("not a directory: mkdir fails")
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 0)
    monkeypatch.setattr(parallel, "available_cpus", lambda: 2)
    assert replay(conn).processes == 1  # chosen for the user: still done
    with pytest.raises(parallel.ScratchUnavailable, match="cannot create the replay's scratch directory"):
        replay(conn, jobs=2)
    assert verify(conn) == []


def test_any_replay_removes_what_a_killed_parallel_one_left(conn, live, db_path):
    leftover = Path(parallel.scratch_dir(str(db_path)))
    leftover.mkdir()
    (leftover / "group-0.db").write_bytes(b"half a rebuild")
    replay(conn, only="officers")  # one process
    assert not leftover.exists()


CRASHING_PARENT = textwrap.dedent("""
    import signal, sys
    # As in a terminal: a test run started in the background inherits SIGINT ignored, and Python
    # then installs no KeyboardInterrupt handler of its own.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path.insert(0, {repo!r})
    from projections.replay import replay
    from eventlog.ledger.db import connect

    def progress(done, total):
        if done:
            print("midway", done, total, flush=True)
            sys.stdin.readline()  # hold here: no more reading from the workers

    try:
        replay(connect(sys.argv[1]), jobs=2, batch_size=1, progress=progress)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        raise SystemExit(130)
    print("finished", flush=True)
""")


@contextlib.contextmanager
def parent_at_midway(db_path) -> Iterator[tuple[subprocess.Popen, list[psutil.Process]]]:
    """A replay in a child process (a session of its own, like a terminal's job), held midway with
    both of its workers alive; killed at the end if the test didn't end it."""
    parent = subprocess.Popen([sys.executable, "-c", CRASHING_PARENT.format(repo=str(REPO)), str(db_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        assert read_line(parent).split()[0] == "midway"
        workers = replay_workers(psutil.Process(parent.pid))
        assert len(workers) == 2 and all(w.status() != psutil.STATUS_ZOMBIE for w in workers)
        assert scratch_left(db_path)
        yield parent, workers
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_a_replay_whose_parent_is_killed_leaves_the_old_tables_and_its_workers_stop(conn, big, db_path):
    """Killed while both workers are alive: they end (on the closed pipe, or by seeing their parent
    gone), print nothing (they share the parent's stderr), and the old tables stand."""
    before, before_positions = everything(conn), positions(conn)
    conn.close()
    with parent_at_midway(db_path) as (parent, workers):
        parent.send_signal(signal.SIGKILL)
        assert parent.wait(timeout=10) == -signal.SIGKILL
        assert psutil.wait_procs(workers, timeout=30)[1] == []  # orphaned workers stop
        assert parent.stderr.read() == ""  # …quietly

    after = connect(db_path)
    assert everything(after) == before
    assert positions(after) == before_positions
    assert scratch_left(db_path)  # what the killed replay left behind…
    replay(after, jobs=2)
    assert not scratch_left(db_path)  # …is removed by the next one
    assert after.execute("SELECT count(*) FROM companies WHERE company_name = 'OLD'").fetchone()[0] == 0
    assert verify(after) == []
    after.close()


def test_ctrl_c_stops_the_replay_and_its_workers_quietly(conn, big, db_path):
    """The terminal sends SIGINT to its foreground process group; the workers are not in it."""
    before = everything(conn)
    conn.close()
    with parent_at_midway(db_path) as (parent, workers):
        os.killpg(parent.pid, signal.SIGINT)  # what Ctrl-C does
        assert read_line(parent).strip() == "interrupted"
        assert parent.wait(timeout=30) == 130
        assert psutil.wait_procs(workers, timeout=10)[1] == []
        assert parent.stderr.read() == ""  # no worker printed a traceback
    after = connect(db_path)
    assert everything(after) == before
    assert not scratch_left(db_path)
    after.close()


def test_the_command_takes_jobs(conn, live, db_path, run_cli):
    conn.close()
    started = time.perf_counter()
    result = run_cli("replay", "--db", str(db_path), "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert "2 processes" in result.stdout
    assert time.perf_counter() - started < 60
    bad = run_cli("replay", "--db", str(db_path), "--jobs", "0")
    assert bad.returncode == 2 and "--jobs" in bad.stderr
