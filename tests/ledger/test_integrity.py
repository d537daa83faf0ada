"""A damaged file is refused, never half-read: ingest, replay and audit on real damaged pages.

The damage is written into a real SQLite file the way a bad disk or a torn copy leaves it: one
child pointer of an interior b-tree page of `event_log` redirected to another subtree. SQLite
reads such a file without an error, and a range scan then silently skips a run of positions (a
replay once "replayed" the whole ledger having read part of it, and exited 0); the
`UNIQUE(event_id)` index no longer matches its table. Plus rows that only tampering can store:
a missing position, text that is not UTF-8, an entry that does not decode.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import apsw
import pytest

from eventlog.errors import LedgerDamaged
from eventlog.ledger.db import connect
from eventlog.ledger.integrity import FULL, QUICK, check_integrity
from projections.replay import replay
from projections.testing import snapshot
from support.filled_ledger import filled
from test_diskspace import _small_disk_prefix

PAGE = 4096


def _redirect_a_child_pointer(path: Path) -> None:
    """Point one child of event_log's widest interior page at another child's subtree."""
    conn = apsw.Connection(str(path))
    page, ncell = conn.execute("SELECT pageno, ncell FROM dbstat WHERE name = 'event_log' "
                               "AND pagetype = 'internal' ORDER BY ncell DESC LIMIT 1").fetchone()
    conn.close()
    assert ncell >= 4, "the ledger must be deep enough to have an interior page"
    with open(path, "r+b") as f:
        base = (page - 1) * PAGE
        f.seek(base + 12)
        cells = [struct.unpack(">H", f.read(2))[0] for _ in range(ncell)]
        f.seek(base + cells[-1])
        other = f.read(4)
        f.seek(base + cells[1])
        f.write(other)


@pytest.fixture
def damaged(tmp_path, clock) -> Path:
    good = tmp_path / "good.db"
    filled(good, clock)
    bad = tmp_path / "damaged.db"
    shutil.copy(good, bad)
    _redirect_a_child_pointer(bad)
    return bad


def test_the_damage_hides_rows_from_sqlite_without_an_error(damaged):
    """The premise: SQLite reads the damaged file and answers, wrongly."""
    conn = apsw.Connection(str(damaged))
    ids = [r[0] for r in conn.execute("SELECT id FROM event_log WHERE id > 0 ORDER BY id")]
    assert ids != list(range(1, len(ids) + 1)) or len(ids) < 1500


def test_quick_and_full_checks_name_the_damage(damaged):
    conn = apsw.Connection(str(damaged))
    for kind in (QUICK, FULL):
        with pytest.raises(LedgerDamaged) as caught:
            check_integrity(conn, kind)
        text = str(caught.value)
        assert "\n" not in text and f"PRAGMA {kind}" in text and "damaged" in text


def test_an_undamaged_file_passes_both_checks(tmp_path, clock):
    filled(tmp_path / "ok.db", clock, n=300)
    conn = apsw.Connection(str(tmp_path / "ok.db"))
    check_integrity(conn, QUICK)
    check_integrity(conn, FULL)


def test_replay_refuses_a_damaged_file_and_changes_nothing(damaged, run_cli):
    before = damaged.read_bytes()
    ran = run_cli("replay", "--db", damaged)
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert ran.stderr.count("\n") == 1 and ran.stderr.startswith("chledger: ") and "damaged" in ran.stderr
    assert "replayed" not in ran.stdout
    assert damaged.read_bytes() == before


def test_ingest_refuses_a_damaged_file(damaged, run_cli):
    ran = run_cli("ingest", "--simulate", "--duration", "2", "--db", damaged)
    assert ran.returncode == 2, ran.stderr
    assert ran.stderr.strip().splitlines()[-1].startswith("chledger: the database") and "damaged" in ran.stderr


def test_audit_of_a_damaged_file_could_not_check(damaged, run_cli):
    """Exit 2 (could not check), not 1: the missing positions are damage, not a violation."""
    ran = run_cli("audit", "--db", damaged)
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert ran.stderr.startswith("chledger: could not check: ") and "damaged" in ran.stderr


# --- rows only tampering stores: the reader itself refuses part of a ledger -------------------


def _tamper(conn: apsw.Connection, sql: str, *args) -> None:
    conn.execute("DROP TRIGGER IF EXISTS event_log_no_update")
    conn.execute("DROP TRIGGER IF EXISTS event_log_no_delete")
    conn.execute(sql, args)


def _triggers(conn) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                       "AND tbl_name = 'event_log'")]


@pytest.mark.parametrize("damage", ["missing position", "not UTF-8", "does not decode"])
def test_replay_never_passes_part_of_the_ledger_for_the_whole(tmp_path, clock, damage):
    path = tmp_path / "t.db"
    filled(path, clock, n=300)
    conn = connect(path)
    tables = snapshot(conn)
    for name in _triggers(conn):
        conn.execute(f"DROP TRIGGER {name}")
    if damage == "missing position":
        conn.execute("DELETE FROM event_log WHERE id = 150")
    elif damage == "not UTF-8":
        conn.execute("UPDATE event_log SET event_data = CAST(X'7B22FF' AS TEXT) WHERE id = 150")
    else:
        conn.execute("UPDATE event_log SET event_data = '{\"type\": \"no.such.entry\"}' WHERE id = 150")
    with pytest.raises(LedgerDamaged) as caught:
        replay(conn)
    assert "150" in str(caught.value) and "\n" not in str(caught.value)
    assert snapshot(conn) == tables  # the old tables stay, whole


def test_a_read_only_file_system_is_named_as_such(tmp_path, run_cli):
    """Not "permission denied": the fix (remount, move the file) is not a chmod."""
    prefix = _small_disk_prefix()
    mnt = tmp_path / "ro"
    mnt.mkdir()
    script = ('mount -t tmpfs -o size=8m tmpfs "$1" || exit 97; '
              '"$2" "$3" migrate --db "$1/c.db" >/dev/null || exit 98; '
              'mount -o remount,ro "$1" || exit 97; '
              '"$2" "$3" migrate --db "$1/c.db"; echo "existing:$?"; '
              '"$2" "$3" migrate --db "$1/new.db"; echo "new:$?"')
    import sys

    from support import REPO

    ran = subprocess.run([*prefix, "sh", "-c", script, "sh", str(mnt), sys.executable, str(REPO / "cli.py")],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    if ran.returncode == 97:
        pytest.skip(f"could not mount or remount the tmpfs: {ran.stderr.strip()[:200]}")
    assert "existing:2" in ran.stdout and "new:2" in ran.stdout, ran.stdout + ran.stderr
    lines = [l for l in ran.stderr.splitlines() if l.startswith("chledger:")]
    assert len(lines) == 2 and all("mounted read-only" in l for l in lines), ran.stderr
    assert "permission denied" not in ran.stderr
