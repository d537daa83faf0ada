"""Migrations on real files: applied once, atomic, and a file we can't use is left untouched.

The refusals go through `python cli.py migrate --db ...` as a real subprocess:
one line on stderr, exit 2, and the file's bytes (and folder) as they were.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import apsw
import pytest

from eventlog.ledger import migrate as migrate_module
from eventlog.ledger.db import connect
from eventlog.errors import DatabaseError, SchemaTooNew
from eventlog.ledger.migrate import migrate
from eventlog.ledger.schema import Migration, available, current_version, latest_version

# The tables the migrations must create.
EXPECTED_TABLES = {
    "event_log", "projection_state", "companies", "officers", "company_processing_state",
    "api_rate_limit_log", "stream_metadata", "processing_batches", "batch_jobs", "schema_migrations",
}
SEED_000_STATE_INDEXES = {
    "idx_company_processing_state_status", "idx_company_processing_state_updated",
    "idx_company_processing_state_company", "idx_company_processing_state_requests",
    "idx_company_processing_state_violations",
}


def schema(conn: apsw.Connection) -> list[tuple]:
    return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def folder(path: Path) -> dict[str, str]:
    """Every file of a folder with its content hash: 'nothing changed' made checkable."""
    return {p.name: digest(p) for p in sorted(path.iterdir()) if p.is_file()}


def one_line_exit_2(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chledger: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# --- applying ------------------------------------------------------------------------


def test_a_fresh_file_gets_every_migration_recorded(db_path, clock):
    conn = connect(db_path)
    applied = migrate(conn, clock)
    assert [m.version for m in applied] == list(range(1, latest_version() + 1))
    assert current_version(conn) == latest_version() >= 2
    recorded = conn.execute("SELECT version, name, applied_at FROM schema_migrations ORDER BY version").fetchall()
    assert [(v, n) for v, n, _ in recorded] == [(m.version, m.name) for m in available()]
    assert {a for _, _, a in recorded} == {"2023-11-14T22:13:20.000000Z"}
    names = {r[1] for r in schema(conn)}
    assert EXPECTED_TABLES <= names
    assert SEED_000_STATE_INDEXES <= names
    assert {"event_log_no_update", "event_log_no_delete"} <= names


def test_migrations_applied_twice_change_nothing(db_path, clock):
    conn = connect(db_path)
    migrate(conn, clock)
    before = (schema(conn), current_version(conn),
              conn.execute("SELECT * FROM schema_migrations").fetchall())
    clock.advance(3600)
    assert migrate(conn, clock) == []
    conn.close()
    again = connect(db_path)
    assert migrate(again, clock) == []
    after = (schema(again), current_version(again),
             again.execute("SELECT * FROM schema_migrations").fetchall())
    assert after == before
    assert after[1] == latest_version()


def test_the_cli_migrates_then_reports_up_to_date(run_cli, tmp_path):
    db = tmp_path / "cli.db"
    first = run_cli("migrate", "--db", db)
    assert first.returncode == 0, first.stderr
    assert f"applied {latest_version()} migration(s)" in first.stdout and "0001_event_log" in first.stdout
    conn = connect(db)
    before = schema(conn)
    conn.close()
    second = run_cli("migrate", "--db", db)
    assert second.returncode == 0, second.stderr
    assert f"up to date (schema version {latest_version()})" in second.stdout
    conn = connect(db)
    assert schema(conn) == before
    conn.close()


def test_a_failing_migration_leaves_the_file_as_it_was(db_path, clock, monkeypatch):
    real = available()
    broken = Migration(2, "broken", "CREATE TABLE half_done (x INTEGER);\nTHIS IS NOT SQL;")
    monkeypatch.setattr(migrate_module, "available", lambda: [real[0], broken])
    conn = connect(db_path)
    with pytest.raises(DatabaseError):
        migrate(conn, clock)
    assert conn.getautocommit()
    assert current_version(conn) == 0
    assert schema(conn) == []  # not even 0001, nor schema_migrations


def test_connections_carry_the_pragmas_the_invariants_need(conn):
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0


# --- refusals ------------------------------------------------------------------------


def _newer_db(path: Path, *, wal: bool) -> int:
    newer = latest_version() + 1
    conn = apsw.Connection(str(path))
    if wal:
        conn.execute("PRAGMA journal_mode=WAL").fetchall()
    conn.execute("CREATE TABLE from_the_future (x)")
    conn.execute(f"PRAGMA user_version = {newer}")
    conn.close()
    return newer


def test_a_newer_database_is_refused_untouched(db_path, clock):
    newer = _newer_db(db_path, wal=True)
    before = folder(db_path.parent)
    with pytest.raises(SchemaTooNew, match=f"schema version {newer}, newer than this chledger knows "
                                           f"\\({latest_version()}\\)"):
        conn = connect(db_path)  # may refuse here already: that is fine too
        try:
            migrate(conn, clock)
        finally:
            conn.close()
    assert folder(db_path.parent) == before


def test_the_cli_refuses_a_newer_database_with_one_line(run_cli, db_path):
    newer = _newer_db(db_path, wal=True)
    before = folder(db_path.parent)
    one_line_exit_2(run_cli("migrate", "--db", db_path), f"schema version {newer}", "newer")
    assert folder(db_path.parent) == before


def test_a_newer_database_in_rollback_journal_mode_is_refused_untouched(run_cli, db_path):
    _newer_db(db_path, wal=False)
    before = folder(db_path.parent)
    one_line_exit_2(run_cli("migrate", "--db", db_path), "newer")
    assert folder(db_path.parent) == before


@pytest.mark.parametrize("content", [
    b"company_number,name\n05954546,GLENCOYNE ENGINEERING LTD\n" * 200,
    b"SQLite format 3\x00" + b"\xff" * 4000,  # right magic, garbage after it
])
def test_a_file_that_is_not_sqlite_is_refused_untouched(run_cli, tmp_path, content):
    path = tmp_path / "companies.csv"
    path.write_bytes(content)
    before = folder(tmp_path)
    one_line_exit_2(run_cli("migrate", "--db", path), "not a SQLite database", str(path))
    assert folder(tmp_path) == before


# Root ignores file modes, so as root the CLI runs in a user namespace where it is
# an ordinary user that owns the files: modes apply again.
def _unprivileged_prefix() -> list[str]:
    if os.geteuid() != 0:
        return []
    unshare = shutil.which("unshare")
    if unshare:
        probe = subprocess.run([unshare, "--user", "--map-user=1000", "--map-group=1000", "true"],
                               capture_output=True)
        if probe.returncode == 0:
            return [unshare, "--user", "--map-user=1000", "--map-group=1000"]
    pytest.skip("running as root without user namespaces: file modes can't make a path read-only")


def _read_only_file(tmp_path: Path) -> Path:
    path = tmp_path / "ro" / "old.db"
    path.parent.mkdir()
    conn = apsw.Connection(str(path))
    # A real database file at version 0 with nothing in it: migrate would want to write. (With a table
    # of its own it would be somebody else's database, refused before the path is even considered.)
    conn.execute("CREATE TABLE legacy (x); DROP TABLE legacy")
    conn.close()
    path.chmod(0o444)
    return path


def _file_in_read_only_folder(tmp_path: Path) -> Path:
    path = _read_only_file(tmp_path)
    path.chmod(0o644)  # the file is writable, but WAL needs its -wal/-shm beside it
    path.parent.chmod(0o555)
    return path


def _new_file_in_read_only_folder(tmp_path: Path) -> Path:
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    return tmp_path / "ro" / "new.db"


def _missing_folder(tmp_path: Path) -> Path:
    (tmp_path / "ro").mkdir()
    return tmp_path / "ro" / "no-such-folder" / "new.db"


@pytest.mark.parametrize("make, needle", [
    (_read_only_file, "cannot open the database for writing"),
    (_file_in_read_only_folder, "cannot open the database for writing"),
    (_new_file_in_read_only_folder, "cannot create the database"),
    (_missing_folder, "does not exist"),
])
def test_a_read_only_path_is_refused_untouched(run_cli, tmp_path, make, needle):
    prefix = _unprivileged_prefix()
    path = make(tmp_path)
    ro = tmp_path / "ro"
    before = folder(ro)
    try:
        one_line_exit_2(run_cli("migrate", "--db", path, prefix=prefix), needle)
        assert folder(ro) == before
        assert not path.parent.exists() or sorted(p.name for p in path.parent.iterdir()) == sorted(before)
    finally:
        ro.chmod(0o755)


# --- two processes starting at once ----------------------------------------------------


def test_two_connections_migrating_at_once_both_succeed(db_path, clock):

    connect(db_path).close()  # the file exists, at version 0
    holder = connect(db_path)
    holder.execute("BEGIN IMMEDIATE")  # both migrators will have to wait for this lock
    waiting = [threading.Event(), threading.Event()]
    results: list[object] = [None, None]

    def run(i: int) -> None:
        conn = connect(db_path)

        def busy(attempts: int) -> bool:  # called while blocked on the lock: we are past the version read
            waiting[i].set()
            time.sleep(0.001)  # without a pause, 10,000 attempts pass in a blink on a loaded machine
            return attempts < 10_000

        conn.set_busy_handler(busy)
        try:
            results[i] = migrate(conn, clock)
        except Exception as exc:  # noqa: BLE001 - the assertion below shows what it was
            results[i] = exc
        finally:
            conn.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    assert all(w.wait(5) for w in waiting)
    holder.execute("ROLLBACK")
    for t in threads:
        t.join(10)
    holder.close()
    assert not any(isinstance(r, Exception) for r in results), results
    assert sorted(len(r) for r in results) == [0, latest_version()]  # type: ignore[arg-type]
    check = connect(db_path)
    assert current_version(check) == latest_version()
    check.close()


@pytest.mark.parametrize("command", [["migrate"], ["replay"], ["replay", "--verify"],
                                     ["ingest", "--simulate", "--duration", "2"]])
def test_a_sqlite_database_of_something_else_is_refused_untouched(run_cli, tmp_path, command):
    """Version 0 with tables of its own: chledger's 46 objects must not be mixed into it."""
    db = tmp_path / "theirs.db"
    other = apsw.Connection(str(db))
    other.execute("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
    other.close()
    before = db.read_bytes()
    ran = run_cli(*command, "--db", db)
    assert ran.returncode == 2, ran.stderr
    line = ran.stderr.strip()
    assert len(line.splitlines()) == 1 and line.startswith("chledger: ")
    assert ("is a SQLite database of something else (it has t and no chledger schema)" in line
            or "has no chledger schema: nothing to verify" in line), line
    assert db.read_bytes() == before


def test_read_only_commands_read_a_wal_database_in_a_folder_they_cannot_write(run_cli, tmp_path):
    """SQLite can't make the -shm there: without a -wal the file is complete, so it is read immutable."""
    prefix = _unprivileged_prefix()
    ro = tmp_path / "ro"
    ro.mkdir()
    db = ro / "c.db"
    conn = connect(db)
    migrate(conn)
    conn.close()  # the last connection checkpoints and removes -wal and -shm: a WAL file alone
    assert db.read_bytes()[18:20] == b"\x02\x02" and not Path(f"{db}-wal").exists()
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)
    ro.chmod(0o555)
    before = folder(ro)
    try:
        for args in (["status"], ["audit"], ["export", out / "c.csv"]):
            ran = run_cli(*args, "--db", db, prefix=prefix)
            assert ran.returncode == 0, (args, ran.stderr)
        assert folder(ro) == before
        if os.geteuid() == 0:  # a folder somebody else owns and may write: a worker could start mid-read
            os.chown(ro, 12345, 12345)
            ro.chmod(0o755)
            one_line_exit_2(run_cli("status", "--db", db, prefix=prefix),
                            "in a folder this user can't write but its owner can")
            os.chown(ro, 0, 0)
        ro.chmod(0o755)
        Path(f"{db}-wal").write_bytes(b"")  # a -wal may hold the newest commits: refuse, saying why
        ro.chmod(0o555)
        one_line_exit_2(run_cli("status", "--db", db, prefix=prefix), "it is in WAL mode with a -wal file")
    finally:
        ro.chmod(0o755)
