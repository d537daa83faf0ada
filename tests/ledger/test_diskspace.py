"""Room on the disk: the forecast, the reserve, and the worker on a real filesystem that fills up.

The end-to-end tests mount a small tmpfs in a private mount namespace
(`unshare --mount`), so the mount vanishes with the process whatever happens;
they need root (CAP_SYS_ADMIN) and skip, saying so, where that isn't allowed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import apsw
import pytest

from eventlog.clock import from_epoch
from eventlog.ledger.disk import (
    MIN_SPAN, RATE_SPAN, WARN_DAYS, DiskReport, Usage, check_reserve, database_bytes, entries_since, measure,
)
from eventlog.ledger.entries import StreamConnected
from eventlog.errors import DatabaseFull, DiskLow
from eventlog.ledger.store import Ledger
from eventlog.config.settings import load_settings
from support import REPO

REPO_ROOT = REPO

MB = 1024 * 1024


def _fill(ledger: Ledger, clock, hours: float, per_hour: int) -> None:
    """Append `per_hour` entries an hour, evenly spaced, for `hours` hours of the fixed clock."""
    step = 3600.0 / per_hour
    for _ in range(int(hours * per_hour)):
        ledger.append(StreamConnected(stream="companies", from_timepoint=None))
        clock.advance(step)


def _usage(free: int, total: int = 10_000 * MB):
    return lambda directory: Usage(total, total - free, free)


def test_entries_since_finds_the_first_entry_of_the_span_by_bisection(ledger, conn, clock):
    start = clock.now()
    _fill(ledger, clock, hours=3, per_hour=40)
    for offset in (-10.0, 0.0, 1.0, 89.9, 90.0, 3600.0, 5000.5, 3 * 3600.0 - 1, 3 * 3600.0, 1e6):
        since = from_epoch(start + offset)
        (expected,) = conn.execute("SELECT count(*) FROM event_log WHERE received_at >= ?", (since,)).fetchone()
        recent, total, first_at = entries_since(conn, since)
        assert (recent, total) == (expected, 120), offset
        assert first_at == from_epoch(start)


def test_an_empty_ledger_has_no_entries_and_no_forecast(conn, db_path):
    assert entries_since(conn, from_epoch(0)) == (0, 0, None)
    report = measure(conn, str(db_path), 1_700_000_000.0, 256 * MB, usage=_usage(5_000 * MB))
    assert report.entries == 0 and report.days_left is None and report.entries_per_day is None
    assert not report.low and report.warning is None


def test_the_forecast_is_the_last_days_entries_times_bytes_per_entry(ledger, conn, clock, db_path):
    _fill(ledger, clock, hours=24, per_hour=10)  # a quiet day, then
    _fill(ledger, clock, hours=24, per_hour=30)  # a busy one: the rate is the last day's
    now = clock.now()
    free, reserve = 2_000 * MB, 256 * MB
    report = measure(conn, str(db_path), now, reserve, usage=_usage(free))
    size = database_bytes(str(db_path))
    assert report.entries == 960 and report.database_bytes == size > 0
    assert report.entries_per_day == 720  # 24 h x 30: the quiet day is past
    assert report.bytes_per_day == pytest.approx(720 * size / 960)
    assert report.days_left == pytest.approx((free - reserve) / (720 * size / 960))
    assert report.directory == str(db_path.parent)
    assert f"{report.entries_per_day:,.0f} entries/day" in report.describe()


def test_a_ledger_younger_than_an_hour_gives_no_forecast_and_a_younger_day_is_scaled(ledger, conn, clock, db_path):
    _fill(ledger, clock, hours=0.5, per_hour=100)
    young = measure(conn, str(db_path), clock.now(), 0, usage=_usage(1_000 * MB))
    assert young.entries == 50 and young.days_left is None and "entries/day" not in young.describe()
    _fill(ledger, clock, hours=1.5, per_hour=100)  # 2 hours old: 200 entries in 2 h = 2,400 a day
    grown = measure(conn, str(db_path), clock.now(), 0, usage=_usage(1_000 * MB))
    assert MIN_SPAN <= 2 * 3600 < RATE_SPAN
    assert grown.entries_per_day == pytest.approx(2400)


def _report(free: int, reserve: int, days: float | None) -> DiskReport:
    return DiskReport(directory="/d", database_bytes=MB, free_bytes=free, total_bytes=10_000 * MB,
                      reserve_bytes=reserve, entries=1, entries_per_day=None, bytes_per_day=None, days_left=days)


def test_low_and_warning_thresholds():
    assert _report(300 * MB, 100 * MB, 30.0).warning is None
    assert "under twice the reserve" in _report(199 * MB, 100 * MB, 30.0).warning
    assert not _report(199 * MB, 100 * MB, 30.0).low
    assert _report(99 * MB, 100 * MB, 30.0).low
    assert "days of room left" in _report(300 * MB, 100 * MB, WARN_DAYS - 0.1).warning
    assert _report(300 * MB, 100 * MB, WARN_DAYS).warning is None


def test_check_reserve_names_the_directory_the_setting_and_what_to_do(tmp_path):
    db = str(tmp_path / "c.db")
    assert check_reserve(db, 100 * MB, usage=_usage(101 * MB)) == 101 * MB
    with pytest.raises(DiskLow) as caught:
        check_reserve(db, 100 * MB, usage=_usage(int(2.5 * MB)))
    text = str(caught.value)
    assert "2.5 MB free" in text and str(tmp_path) in text and "DISK_RESERVE_MB keeps 100 MB" in text
    assert isinstance(caught.value, DatabaseFull) and caught.value.exit_code == 2


def test_the_reserve_setting_is_validated():
    assert load_settings(env={"DISK_RESERVE_MB": "1.5"}).disk_reserve_bytes == int(1.5 * MB)
    with pytest.raises(Exception, match="DISK_RESERVE_MB='-1'"):
        load_settings(env={"DISK_RESERVE_MB": "-1"})


async def test_the_worker_disk_loop_raises_once_free_space_drops_below_the_reserve(db_path):
    from eventlog.ledger.db import connect
    from eventlog.ledger.migrate import migrate
    from eventlog.ledger.store import Ledger
    from eventlog.worker.runtime import Worker

    free = [500 * MB]
    checks = []

    def usage(directory: str) -> Usage:
        checks.append(directory)
        return Usage(10_000 * MB, 0, free[0])

    conn = connect(db_path)
    migrate(conn)
    settings = load_settings(env={"DATABASE_PATH": str(db_path), "DISK_RESERVE_MB": "100",
                                  "HEALTH_CHECK_INTERVAL": "0.01", "COMPANIES_HOUSE_API_KEY": "k"})
    worker = Worker(settings, Ledger(conn), [], disk_usage=usage)
    loop = asyncio.create_task(worker._disk_loop())
    while len(checks) < 3:
        await asyncio.sleep(0.01)
    assert not loop.done()
    free[0] = 99 * MB
    with pytest.raises(DiskLow, match="99 MB free"):
        await asyncio.wait_for(loop, 5)
    conn.close()


def test_ingest_refuses_to_start_below_the_reserve_and_appends_nothing(tmp_path, run_cli):
    db = tmp_path / "c.db"
    ran = run_cli("ingest", "--simulate", "--duration", "5", "--db", db, env={"DISK_RESERVE_MB": "1e12"})
    assert ran.returncode == 2, ran.stderr
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chledger: only ") and "DISK_RESERVE_MB" in lines[0]
    tables = apsw.Connection(str(db)).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == []  # not even migrated


# --- a real filesystem that fills up ----------------------------------------------------


def _small_disk_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs unshare (util-linux) to mount a small tmpfs in a private mount namespace")
    probe = subprocess.run([unshare, "--mount", "--propagation", "private", "sh", "-c",
                            "d=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs $d && umount $d; s=$?; "
                            "rmdir $d; exit $s"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("mounting a tmpfs needs root with CAP_SYS_ADMIN, which this machine does not allow: "
                    + probe.stderr.decode(errors="replace").strip()[:200])
    return [unshare, "--mount", "--propagation", "private"]


def _ingest_on_a_small_disk(tmp_path: Path, size_mb: int, reserve_mb: float) -> tuple[subprocess.CompletedProcess, Path]:
    """`ingest --simulate` with its database on a `size_mb` tmpfs; the files are copied out after it exits."""
    prefix = _small_disk_prefix()
    mnt, out = tmp_path / "disk", tmp_path / "copy"
    mnt.mkdir()
    out.mkdir()
    script = ('mount -t tmpfs -o size="$1"m tmpfs "$2" || exit 97; shift 3; "$@"; code=$?; '
              f'cp "{mnt}"/c.db* "{out}"/; exit $code')
    cmd = [*prefix, "sh", "-c", script, "sh", str(size_mb), str(mnt), "--", sys.executable,
           str(REPO_ROOT / "cli.py"), "ingest", "--simulate", "--duration", "40", "--progress-interval", "1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPANIES_HOUSE", "DATABASE"))}
    env.update(DATABASE_PATH=str(mnt / "c.db"), DISK_RESERVE_MB=str(reserve_mb), HEALTH_CHECK_INTERVAL="0.5",
               LOG_FORMAT="text")
    ran = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90)
    if ran.returncode == 97:
        pytest.skip(f"could not mount the tmpfs: {ran.stderr.strip()[:200]}")
    return ran, out / "c.db"


def _audit_and_verify(db: Path, run_cli) -> None:
    from eventlog.ledger.db import connect

    conn = connect(db)
    try:
        report = Ledger(conn).verify()
        assert report.ok and report.checked == report.head > 100, report
    finally:
        conn.close()
    audited = run_cli("audit", "--db", db)
    assert audited.returncode == 0 and "COMPLIANT" in audited.stdout, audited.stdout + audited.stderr


def test_a_filling_disk_stops_the_worker_cleanly_at_the_reserve(tmp_path, run_cli):
    ran, db = _ingest_on_a_small_disk(tmp_path, size_mb=8, reserve_mb=3)
    assert ran.returncode == 2, ran.stderr
    last = ran.stderr.strip().splitlines()[-1]
    assert last.startswith("chledger: only ") and "DISK_RESERVE_MB keeps 3.0 MB" in last, ran.stderr
    assert "Traceback" not in ran.stderr and "Unclosed" not in ran.stderr
    conn = apsw.Connection(str(db))
    (event_type, data), = conn.execute("SELECT event_type, event_data FROM event_log ORDER BY id DESC LIMIT 1")
    conn.close()
    assert event_type == "worker.stopped" and '"exit_code":2' in data and "DiskLow" in data
    _audit_and_verify(db, run_cli)


def test_a_disk_that_fills_without_a_reserve_loses_nothing(tmp_path, run_cli):
    """SQLITE_FULL mid-append: the transaction rolls back, one line, exit 2, the chain and the audit hold."""
    ran, db = _ingest_on_a_small_disk(tmp_path, size_mb=6, reserve_mb=0)
    assert ran.returncode == 2, ran.stderr
    assert "chledger: the disk is full" in ran.stderr, ran.stderr
    assert "Traceback" not in ran.stderr and "Unclosed" not in ran.stderr, ran.stderr
    _audit_and_verify(db, run_cli)


def test_a_backup_onto_a_full_disk_blames_the_destination_and_leaves_nothing(tmp_path, conn, ledger, db_path):
    for _ in range(20):
        ledger.append_many([StreamConnected(stream="companies", from_timepoint=None) for _ in range(500)])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert db_path.stat().st_size > 2 * MB
    prefix = _small_disk_prefix()
    mnt = tmp_path / "small"
    mnt.mkdir()
    script = ('mount -t tmpfs -o size=1m tmpfs "$1" || exit 97; shift; "$@"; code=$?; '
              f'ls -A "{mnt}"; exit $code')
    ran = subprocess.run([*prefix, "sh", "-c", script, "sh", str(mnt), sys.executable, str(REPO_ROOT / "cli.py"),
                          "backup", "--db", str(db_path), str(mnt / "out.db")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    if ran.returncode == 97:
        pytest.skip(f"could not mount the tmpfs: {ran.stderr.strip()[:200]}")
    assert ran.returncode == 2, ran.stderr
    assert ran.stderr.strip() == (f"chledger: cannot write the export beside {mnt / 'out.db'} (in {mnt}): "
                                  "the disk is full")
    assert ran.stdout.strip() == ""  # `ls -A` of the small disk: no copy, no partial, no journal
