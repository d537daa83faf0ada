"""The database under attack: locked, full, corrupt, read-only, its -wal deleted under the worker.

Each fault gets a clear one-line `chledger:` message and a non-zero exit (or, where the worker can
go on, a clean stop), and the ledger is intact and verifiable afterwards. Real files, real
processes; the busy timeout and the health-check interval are shrunk so nothing waits long.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import apsw
import pytest

import projections
from eventlog.clock import FixedClock
from eventlog.errors import DatabaseFull
from eventlog.ledger.chain import walk
from eventlog.ledger.db import connect
from projections.testing import stream_event
from support import REPO
from support.filled_ledger import filled, projected

PAGE = 4096
START = 1_700_000_000.0


def cli(*args: str, env: dict[str, str] | None = None, prefix: list[str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    child = {k: v for k, v in os.environ.items() if not k.startswith(("COMPANIES_HOUSE", "DATABASE", "CHLEDGER_"))}
    child.update({"DISK_RESERVE_MB": "0", "LOG_LEVEL": "WARNING"}, **(env or {}))
    return subprocess.run([*(prefix or []), sys.executable, str(REPO / "cli.py"), *args], env=child,
                          capture_output=True, text=True, timeout=timeout, cwd=str(REPO))


def one_line(ran: subprocess.CompletedProcess) -> str:
    """The single `chledger:` line of a failed command; no traceback, nothing else on stderr."""
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert "Traceback" not in ran.stderr, ran.stderr[-2000:]
    mine = [line for line in lines if line.startswith("chledger: ")]
    assert len(mine) == 1, ran.stderr[-2000:]
    return mine[0]


@pytest.fixture(scope="module")
def ledger_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ledger") / "whole.db"
    filled(path, FixedClock(START))
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("at", [0.25, 0.5, 0.8])
def test_a_corrupt_page_is_refused_by_ingest_replay_and_audit_in_one_line_and_changes_nothing(
        ledger_file, tmp_path, at, faults):
    db = tmp_path / "corrupt.db"
    shutil.copy(ledger_file, db)
    pages = db.stat().st_size // PAGE
    page = max(2, int(pages * at))
    with open(db, "r+b") as f:
        f.seek((page - 1) * PAGE)
        f.write(random.Random(page).randbytes(PAGE))
    before = digest(db)
    injected = 0
    for command, code, says in (("ingest", 2, "damaged"), ("replay", 2, "damaged"), ("audit", 2, "damaged")):
        args = [command, "--db", str(db)] + (["--simulate", "--duration", "1"] if command == "ingest" else [])
        ran = cli(*args)
        injected += 1
        assert ran.returncode == code, f"{command}: exit {ran.returncode}\n{ran.stdout[-1500:]}{ran.stderr[-1500:]}"
        assert says in one_line(ran), ran.stderr
        assert digest(db) == before, f"{command} changed the damaged file"
    faults.record(f"a corrupt page at {at:.0%} of the file (ingest, replay, audit)", injected=injected)


def test_locked_past_the_busy_timeout_is_said_in_one_line_then_the_worker_runs(tmp_path, faults):
    db = tmp_path / "locked.db"
    assert cli("migrate", "--db", str(db)).returncode == 0
    holder = apsw.Connection(str(db))
    holder.execute("BEGIN IMMEDIATE")  # another process's write lock, held past the timeout
    try:
        ran = cli("ingest", "--simulate", "--duration", "1", "--db", str(db), env={"DATABASE_BUSY_TIMEOUT": "0.2"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert ran.returncode == 2, ran.stderr[-2000:]
    assert "locked by another process" in one_line(ran)
    again = cli("ingest", "--simulate", "--duration", "1", "--db", str(db), env={"DATABASE_BUSY_TIMEOUT": "0.2"})
    assert again.returncode == 0, again.stderr[-2000:]
    conn = connect(db)
    assert walk(conn).ok
    conn.close()
    faults.record("database locked by another process past DATABASE_BUSY_TIMEOUT", injected=1)


def test_a_full_disk_refuses_the_append_whole_and_keeps_every_acknowledged_entry(tmp_path, faults):
    db = tmp_path / "full.db"
    conn, ledger = projected(db, FixedClock(START))
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 40}")  # SQLite's own "disk full", a few pages away
    acknowledged, refused, i = 0, 0, 0
    while refused < 3:
        batch = [stream_event(f"{(i + k) % 500:08d}", 1000 + i + k) for k in range(50)]
        try:
            ledger.append_many(batch)
            acknowledged += len(batch)
            i += len(batch)
        except DatabaseFull as exc:
            assert "\n" not in str(exc) and "disk is full" in str(exc)
            refused += 1
    head = conn.execute("SELECT max(id) FROM event_log").fetchone()[0]
    assert head == acknowledged  # nothing of a refused batch, nothing acknowledged lost
    conn.execute(f"PRAGMA max_page_count = {pages * 1000}")  # room again: appends resume
    ledger.append_many([stream_event("00000001", 999_999)])
    assert walk(conn).ok and walk(conn).head == acknowledged + 1
    conn.close()
    faults.record("disk full (SQLite max_page_count) during appends", injected=refused)


def _can_mount() -> list[str] | None:
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    probe = subprocess.run([unshare, "--mount", "--propagation", "private", "sh", "-c",
                            "d=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs $d && umount $d; "
                            "s=$?; rmdir $d; exit $s"],
                           capture_output=True)
    return [unshare, "--mount", "--propagation", "private"] if probe.returncode == 0 else None


def test_a_read_only_file_and_a_read_only_file_system_are_each_named(tmp_path, faults):
    """A file this user can't write is "permission denied"; a read-only mount is said as such."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="chledger-ro-"))  # pytest's own tmp is closed to other users
    faults_dir = folder
    db = folder / "ro.db"
    assert cli("migrate", "--db", str(db)).returncode == 0
    before = digest(db)
    if os.geteuid() == 0:  # root writes through any mode bits: run the command as nobody instead
        folder.chmod(0o755)
        db.chmod(0o444)
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    else:
        db.chmod(0o444)
        prefix = []
    ran = cli("ingest", "--simulate", "--duration", "1", "--db", str(db), prefix=prefix)
    assert ran.returncode == 2, ran.stderr[-2000:]
    line = one_line(ran)
    assert "cannot open the database for writing" in line and "permission denied" in line, line
    assert digest(db) == before
    shutil.rmtree(faults_dir)
    injected = 1
    prefix = _can_mount()
    if prefix is not None:  # CAP_SYS_ADMIN: a real read-only mount (else the row counts the file only)
        mnt = tmp_path / "mnt"
        mnt.mkdir()
        script = ('mount -t tmpfs -o size=8m tmpfs "$1" || exit 97; "$2" "$3" migrate --db "$1/c.db" >/dev/null '
                  '|| exit 98; mount -o remount,ro "$1" || exit 97; "$2" "$3" ingest --simulate --duration 1 '
                  '--db "$1/c.db"; echo "exit:$?"')
        ran = subprocess.run([*prefix, "sh", "-c", script, "sh", str(mnt), sys.executable, str(REPO / "cli.py")],
                             capture_output=True, text=True, timeout=60, env={**os.environ, "DISK_RESERVE_MB": "0"})
        assert "exit:2" in ran.stdout, ran.stdout + ran.stderr[-2000:]
        line = one_line(ran)
        assert "mounted read-only" in line and "permission denied" not in line, line
        injected += 1
    faults.record("read-only database file / read-only file system", injected=injected)


async def test_the_wal_deleted_under_a_running_worker_is_noticed_and_its_commits_saved(tmp_path, faults):
    db = tmp_path / "wal.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPANIES_HOUSE", "DATABASE", "CHLEDGER_"))}
    env.update(DISK_RESERVE_MB="0", HEALTH_CHECK_INTERVAL="0.2", LOG_LEVEL="WARNING")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(REPO / "cli.py"), "ingest", "--simulate", "--duration", "30", "--db", str(db),
        env=env, cwd=str(REPO), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    wal = Path(f"{db}-wal")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline:  # until the worker has started and appended a few entries
        try:
            reader = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
            try:
                if reader.execute("SELECT count(*) FROM event_log WHERE id > (SELECT max(id) FROM event_log "
                                  "WHERE event_type = 'worker.started')").fetchone()[0] >= 20:
                    break
            finally:
                reader.close()
        except apsw.Error:
            pass
        await asyncio.sleep(0.05)
    wal.unlink()  # a careless clean-up, while the worker writes
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    ran = subprocess.CompletedProcess([], proc.returncode, "", err.decode())
    assert ran.returncode == 2, ran.stderr[-2000:]
    assert "write-ahead log" in one_line(ran) and "deleted" in one_line(ran)
    conn = connect(db)
    try:
        chain = walk(conn)
        assert chain.ok, chain
        stopped = conn.execute("SELECT count(*) FROM event_log WHERE event_type = 'worker.stopped'").fetchone()[0]
        assert stopped == 1  # the worker's own last entry reached the file: nothing after the delete was lost
        projections.catch_up(conn)
    finally:
        conn.close()
    faults.record("the -wal deleted under a running worker", injected=1, entries_kept=chain.head)


@pytest.mark.parametrize("damage", ["a missing position", "text that is not UTF-8"])
def test_replay_of_damaged_rows_is_one_line_and_keeps_the_old_tables(ledger_file, tmp_path, damage, faults):
    """Rows only tampering or a bad disk store, on pages SQLite finds sound: replay refuses, in one line."""
    db = tmp_path / "rows.db"
    shutil.copy(ledger_file, db)
    conn = apsw.Connection(str(db))
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'event_log'")\
            .fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')
    if damage == "a missing position":
        conn.execute("DELETE FROM event_log WHERE id = 700")
    else:
        conn.execute("UPDATE event_log SET event_data = CAST(X'7B22FF' AS TEXT) WHERE id = 700")
    companies = conn.execute("SELECT count(*), total(length(company_name)) FROM companies").fetchone()
    conn.close()
    ran = cli("replay", "--db", str(db))
    assert ran.returncode == 2, ran.stdout + ran.stderr
    line = one_line(ran)
    assert "700" in line and "damaged" in line and "UnicodeDecodeError" not in ran.stderr, line
    conn = apsw.Connection(str(db))
    assert conn.execute("SELECT count(*), total(length(company_name)) FROM companies").fetchone() == companies
    conn.close()
    faults.record(f"replay of a ledger with {damage}", injected=1)
