"""Replay on several processes (`projections.parallel`) builds exactly what the serial replay builds.

Real worker processes, real scratch files, real signals: a worker killed with
SIGKILL, and a replay whose parent is killed, leave the old tables and positions
as they were, and the next replay removes what they left behind.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import psutil
import pytest
from hypothesis import HealthCheck, given, settings

import projections
from eventlog.db import connect
from eventlog.errors import ProjectionError
from eventlog.ledger import Ledger
from projections import parallel
from projections.registry import NAMES, select
from projections.testing import snapshot
from test_projections_determinism import _build, ledgers
from test_replay import REPO, fill, live, positions, read_line  # noqa: F401 (live is a fixture)


def everything(conn) -> tuple:
    """Every row of every projection, the hidden rowids of `companies` and the AUTOINCREMENT counters."""
    return (snapshot(conn),
            conn.execute("SELECT rowid, company_number FROM companies ORDER BY rowid").fetchall(),
            conn.execute("SELECT name, seq FROM sqlite_sequence ORDER BY name").fetchall(),
            conn.execute("SELECT name, version, position FROM projection_state ORDER BY name").fetchall())


def replay_workers(parent: psutil.Process | None = None) -> list[psutil.Process]:
    """The replay worker processes among `parent`'s children (other tests may have left others)."""
    found = []
    for child in (parent or psutil.Process()).children():
        try:
            if "projections.parallel" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass
    return found


def scratch_left(db_path) -> list[str]:
    return glob.glob(glob.escape(parallel._scratch_prefix(str(db_path))) + "*")


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ledgers())
def test_parallel_replay_builds_byte_for_byte_what_the_serial_replay_builds(cuts):
    with tempfile.TemporaryDirectory() as d:
        live = _build(os.path.join(d, "live.db"), cuts, hook=True)
        expected = snapshot(live)
        live.close()
        shutil.copy(os.path.join(d, "live.db"), os.path.join(d, "copy.db"))
        serial, split = connect(os.path.join(d, "live.db")), connect(os.path.join(d, "copy.db"))
        assert projections.replay(serial, jobs=1).processes == 1
        report = projections.replay(split, jobs=3, batch_size=7)
        assert report.processes == 3
        assert snapshot(split) == expected
        assert everything(split) == everything(serial)
        assert projections.verify(split) == []
        assert scratch_left(os.path.join(d, "copy.db")) == []
        serial.close()
        split.close()


def test_plan_keeps_the_two_heavy_projections_apart():
    groups = parallel.plan(select(None), 2)
    names = [[p.NAME for p in g] for g in groups]
    assert len(names) == 2
    assert {"companies", "company_processing_state"} == {g[0] for g in names}
    assert sorted(n for g in names for n in g) == sorted(NAMES)
    assert [[p.NAME for p in g] for g in parallel.plan(select("officers"), 3)] == [["officers"]]


def test_a_small_ledger_replays_in_one_process(conn, live):
    assert projections.replay(conn).processes == 1


def test_progress_reaches_the_head(conn, live):
    seen: list[tuple[int, int]] = []
    report = projections.replay(conn, jobs=2, batch_size=5, progress=lambda d, t: seen.append((d, t)))
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

    monkeypatch.setattr("projections.rebuild.build_in_parallel", build_then_append)
    before = conn.execute("SELECT max(id) FROM event_log").fetchone()[0]
    report = projections.replay(conn, jobs=2)
    assert report.head > before
    assert set(p for _, p in positions(conn).values()) == {report.head}
    assert conn.execute("SELECT count(*) FROM companies WHERE company_number = '00000500'").fetchone()[0] == 1
    assert projections.verify(conn) == []


def test_a_worker_killed_midway_fails_the_replay_and_changes_nothing(conn, live, db_path):
    conn.execute("UPDATE companies SET company_name = 'OLD'")
    before, before_positions = snapshot(conn), positions(conn)
    killed: list[int] = []

    def kill_a_worker(done, total):
        if not killed:
            worker = replay_workers()[0]
            worker.send_signal(signal.SIGKILL)
            killed.append(worker.pid)

    with pytest.raises(ProjectionError, match=r"died \(signal 9\); nothing was changed"):
        projections.replay(conn, jobs=2, progress=kill_a_worker)
    assert killed
    assert snapshot(conn) == before
    assert positions(conn) == before_positions
    assert scratch_left(db_path) == []
    assert replay_workers() == []  # the other worker was stopped too


def test_a_failing_projector_is_named_in_one_line(conn, live, db_path):
    """A worker's exception comes back as the replay's error, naming its group."""
    conn.execute("DROP TABLE officers")  # the worker copies the DDL of a table that is gone
    with pytest.raises(ProjectionError) as failed:
        projections.replay(conn, jobs=3)
    assert "table officers does not exist" in str(failed.value)
    assert "\n" not in str(failed.value)
    assert scratch_left(db_path) == []


CRASHING_PARENT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {repo!r})
    import projections
    from eventlog.db import connect

    def progress(done, total):
        if done:
            print("midway", done, total, flush=True)
            sys.stdin.readline()  # hold here until killed

    projections.replay(connect(sys.argv[1]), jobs=2, batch_size=5, progress=progress)
    print("finished", flush=True)
""")


def test_a_replay_whose_parent_is_killed_leaves_the_old_tables_and_its_workers_stop(conn, live, db_path):
    conn.execute("UPDATE companies SET company_name = 'OLD'")
    before, before_positions = snapshot(conn), positions(conn)
    conn.close()
    parent = subprocess.Popen([sys.executable, "-c", CRASHING_PARENT.format(repo=str(REPO)), str(db_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert read_line(parent).split()[0] == "midway"
        workers = replay_workers(psutil.Process(parent.pid))
        assert workers and scratch_left(db_path)
        parent.send_signal(signal.SIGKILL)
        assert parent.wait(timeout=10) == -signal.SIGKILL
        gone, alive = psutil.wait_procs(workers, timeout=30)
        assert alive == []  # orphaned workers notice their parent is gone and stop
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()

    after = connect(db_path)
    assert snapshot(after) == before
    assert positions(after) == before_positions
    assert scratch_left(db_path)  # what the killed replay left behind…
    projections.replay(after, jobs=2)
    assert scratch_left(db_path) == []  # …is removed by the next one
    assert after.execute("SELECT count(*) FROM companies WHERE company_name = 'OLD'").fetchone()[0] == 0
    assert projections.verify(after) == []
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
