"""Exports and backups taken while another process keeps writing, checked against a model.

The writer (this file run as a script, in a real subprocess) appends one
ledger entry per transaction and, in the same transaction, writes the
projection tables as a pure function of the entry's position: it inserts a
company with `position % 4` officers and amends the company five positions
back (new status, one officer removed). So the state after position H is
known exactly, and an export that claims snapshot position H must equal the
model replayed to H: no torn company, no officer from a later commit.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # when run as the writer script
    sys.path.insert(0, str(REPO))

from eventlog.clock import FixedClock, from_epoch  # noqa: E402
from eventlog.ledger.db import connect  # noqa: E402
from eventlog.ledger.entries import StreamEvent  # noqa: E402
from eventlog.errors import DatabaseError  # noqa: E402
from eventlog.dataset.export import backup, export  # noqa: E402
from eventlog.ledger.store import Ledger  # noqa: E402
from eventlog.ledger.migrate import migrate  # noqa: E402

BASE = 1_700_000_000


# --- the model: what position p writes ---------------------------------------------------


def writes_at(p: int) -> list[tuple[str, tuple]]:
    number = f"{p:08d}"
    out: list[tuple[str, tuple]] = [(
        "INSERT INTO companies(company_number, company_name, company_status_detail, stream_event_id,"
        " stream_timepoint, registered_office_address, sic_codes, data_source, updated_at)"
        " VALUES (?, ?, 'active', ?, ?, ?, ?, 'stream', ?)",
        (number, f"Company {p}", f"companies:{p}", p,
         json.dumps({"postal_code": f"AB{p % 90} 1CD", "locality": "London"}),
         json.dumps([str(62000 + p % 7)]), from_epoch(BASE + p)),
    )]
    for j in range(p % 4):
        out.append((
            "INSERT INTO officers(company_number, officer_id, name, officer_role, appointed_on, address, status)"
            " VALUES (?, ?, ?, 'director', '2020-01-01', ?, 'active')",
            (number, f"o{p}-{j}", f"Officer {j} of {p}", json.dumps({"premises": str(j)})),
        ))
    if p > 5:
        older = f"{p - 5:08d}"
        out.append((
            "UPDATE companies SET company_status_detail = 'active-proposal-to-strike-off', updated_at = ?"
            " WHERE company_number = ?", (from_epoch(BASE + p), older)))
        out.append(("DELETE FROM officers WHERE officer_id = ?", (f"o{p - 5}-0",)))
    return out


def project(conn, records) -> None:
    """The writer's projection: runs inside the append transaction."""
    for record in records:
        for sql, params in writes_at(record.position):
            conn.execute(sql, params)


def entry(p: int) -> StreamEvent:
    number = f"{p:08d}"
    return StreamEvent(stream="companies", timepoint=p, published_at="2025-01-15T10:30:45",
                       change="changed", resource_kind="company-profile", resource_id=number,
                       resource_uri=f"/company/{number}", company_number=number)


def make_db(path: Path, upto: int) -> None:
    conn = connect(path)
    migrate(conn, FixedClock(BASE))
    Ledger(conn, FixedClock(BASE), on_append=[project]).append_many([entry(p) for p in range(1, upto + 1)])
    conn.close()


def snapshot(conn) -> tuple[list[tuple], list[tuple]]:
    companies = conn.execute(
        "SELECT company_number, company_name, company_status_detail, stream_event_id, updated_at"
        " FROM companies ORDER BY company_number").fetchall()
    officers = conn.execute(
        "SELECT company_number, officer_id, name FROM officers ORDER BY company_number, officer_id").fetchall()
    return companies, officers


def expected(tmp_path: Path, upto: int) -> tuple[list[tuple], list[tuple]]:
    path = tmp_path / f"model-{upto}.db"
    make_db(path, upto)
    conn = connect(path, readonly=True)
    try:
        return snapshot(conn)
    finally:
        conn.close()


def head(path: Path) -> int:
    conn = connect(path, readonly=True)
    try:
        return int(conn.execute("SELECT coalesce(max(id), 0) FROM event_log").fetchone()[0])
    finally:
        conn.close()


def run_writer(db: str, stop: str) -> None:
    """Append one entry (and its projection rows) per transaction until `stop` exists."""
    conn = connect(db)
    ledger = Ledger(conn, FixedClock(BASE), on_append=[project])
    while not os.path.exists(stop):
        ledger.append(entry(ledger.head() + 1))
    conn.close()


# --- the running writer -------------------------------------------------------------------


class Writer:
    """The subprocess that keeps appending, and how to stop it and wait."""

    def __init__(self, db: Path, stop: Path):
        self.db, self.stop_file = db, stop
        self.proc = subprocess.Popen([sys.executable, __file__, "writer", str(db), str(stop)], cwd=REPO)

    def stop(self) -> None:
        self.stop_file.touch()
        try:
            assert self.proc.wait(timeout=30) == 0
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture
def writer(tmp_path):
    """A database of 3000 positions, and a subprocess that keeps appending to it."""
    db = tmp_path / "companies.db"
    make_db(db, 3000)
    w = Writer(db, tmp_path / "stop")
    deadline = time.monotonic() + 30
    while head(db) <= 3000:
        assert w.proc.poll() is None, "the writer died"
        assert time.monotonic() < deadline, "the writer never wrote"
        time.sleep(0.01)
    yield w
    w.stop()


def interleave(db: Path, seen: list[int]):
    """A progress callback that, on its first call, waits for the writer to commit more:
    so the export provably spans commits it must not see."""

    def progress(done: int, total: int) -> None:
        if not seen:
            before = head(db)
            deadline = time.monotonic() + 10
            while head(db) < before + 5:
                assert time.monotonic() < deadline, "the writer stalled during the export"
                time.sleep(0.005)
            seen.append(head(db))
        assert 0 <= done <= total

    return progress


def finish(writer: Writer, tmp_path: Path, position: int, seen: list[int]) -> None:
    """After the copy: the writer went on past the snapshot, and the source still fits the model."""
    assert seen and seen[0] > position, "the writer committed during the export"
    writer.stop()
    final = head(writer.db)
    assert final > position
    conn = connect(writer.db, readonly=True)
    try:
        assert snapshot(conn) == expected(tmp_path, final)
    finally:
        conn.close()


def test_backup_while_the_worker_writes(writer, tmp_path):
    out = tmp_path / "copy.db"
    seen: list[int] = []
    report = backup(writer.db, out, progress=interleave(writer.db, seen), pages_per_step=50)
    assert report.rows > 50, "the copy took several steps"

    conn = connect(out, readonly=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
        chain = Ledger(conn).verify()
        assert chain.ok and chain.head == report.position
        assert snapshot(conn) == expected(tmp_path, report.position)
        assert (report.companies, report.officers) == (len(snapshot(conn)[0]), len(snapshot(conn)[1]))
    finally:
        conn.close()
    assert not Path(f"{out}-wal").exists()
    finish(writer, tmp_path, report.position, seen)


def read_csv(path: Path) -> tuple[list[tuple], list[tuple], list[dict]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    companies = sorted({(r["company_number"], r["company_name"], r["company_status_detail"],
                         r["stream_event_id"], r["updated_at"]) for r in rows})
    officers = sorted((r["company_number"], r["officer_id"], r["officer_name"]) for r in rows if r["officer_id"])
    return companies, officers, rows


def read_jsonl(path: Path) -> tuple[list[tuple], list[tuple], list[dict]]:
    objs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    companies = [(o["company_number"], o["company_name"], o["company_status_detail"],
                  o["stream_event_id"], o["updated_at"]) for o in objs]
    officers = sorted((o["company_number"], off["officer_id"], off["name"]) for o in objs for off in o["officers"])
    return companies, officers, objs


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_while_the_worker_writes(writer, tmp_path, fmt):
    out = tmp_path / f"companies.{fmt}"
    seen: list[int] = []
    report = export(writer.db, out, fmt, progress=interleave(writer.db, seen))
    companies, officers, raw = (read_csv if fmt == "csv" else read_jsonl)(out)
    assert (companies, officers) == expected(tmp_path, report.position)
    assert (report.companies, report.officers, report.rows) == (
        len(companies), len(officers), len(raw))
    assert report.bytes == out.stat().st_size
    finish(writer, tmp_path, report.position, seen)


# --- shapes and refusals, on a still database ----------------------------------------------


@pytest.fixture
def small_db(tmp_path):
    db = tmp_path / "small.db"
    make_db(db, 6)  # positions 1..6: officers 1,2,3,0,1,2; position 6 amends company 1
    conn = connect(db)
    conn.execute("INSERT INTO officers(company_number, officer_id, name) VALUES ('99999999', 'ghost', 'Orphan')")
    conn.close()
    return db


def test_csv_shape(small_db, tmp_path):
    out = tmp_path / "out.csv"
    calls: list[tuple[int, int]] = []
    report = export(small_db, out, "csv", progress=lambda d, t: calls.append((d, t)))
    _, _, rows = read_csv(out)
    header = list(rows[0])
    assert header[0] == "company_number" and "officer_id" in header and "officer_name" in header
    assert "officer_company_number" not in header and "officer_id_1" not in header
    by_company = {}
    for r in rows:
        by_company.setdefault(r["company_number"], []).append(r["officer_id"])
    # company 1 lost o1-0 at position 6; company 4 has none: one row with empty officer columns
    assert by_company == {
        "00000001": [""], "00000002": ["o2-0", "o2-1"], "00000003": ["o3-0", "o3-1", "o3-2"],
        "00000004": [""], "00000005": ["o5-0"], "00000006": ["o6-0", "o6-1"],
    }
    assert rows[0]["company_status_detail"] == "active-proposal-to-strike-off"
    assert json.loads(rows[0]["registered_office_address"])["locality"] == "London"
    assert report.rows == 10 and report.companies == 6 and report.officers == 8
    assert report.orphan_officers == 1 and report.position == 6
    assert calls == [(0, 6), (6, 6)]


def test_jsonl_shape(small_db, tmp_path):
    out = tmp_path / "out.jsonl"
    report = export(small_db, out, "jsonl")
    objs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [o["company_number"] for o in objs] == [f"{p:08d}" for p in range(1, 7)]
    third = objs[2]
    assert third["registered_office_address"] == {"postal_code": "AB3 1CD", "locality": "London"}
    assert third["sic_codes"] == ["62003"]
    assert [o["officer_id"] for o in third["officers"]] == ["o3-0", "o3-1", "o3-2"]
    assert third["officers"][1]["address"] == {"premises": "1"}
    assert "company_number" not in third["officers"][0]
    assert objs[3]["officers"] == []
    assert report.rows == 6 and report.officers == 8 and report.orphan_officers == 1


def test_sqlite_format_is_a_backup_and_replaces_an_older_copy(small_db, tmp_path):
    out = tmp_path / "copy.db"
    old = connect(out)  # an older WAL copy, with a -wal file lying beside it
    old.execute("CREATE TABLE stale(x); INSERT INTO stale VALUES (1)")
    assert Path(f"{out}-wal").exists()
    report = export(small_db, out, "sqlite")
    old.close()
    conn = connect(out, readonly=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'stale'").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM companies").fetchone()[0] == 6
    finally:
        conn.close()
    assert (report.format, report.companies, report.officers, report.position) == ("sqlite", 6, 9, 6)


def test_the_sqlite_export_leaves_the_key_vault_behind_and_backup_keeps_it(small_db, tmp_path):
    """A copy handed out carries no person's key (its sealed entries open as erased there); the
    operator's backup keeps them all, or it could not restore."""
    key = bytes(range(100, 132))
    conn = connect(small_db)
    conn.execute("INSERT INTO person_keys(subject, key, created_at) VALUES ('officer:k1', ?, '2025-01-01T00:00:00Z')",
                 (key,))
    conn.close()
    report = export(small_db, tmp_path / "copy.db", "sqlite")
    kept = backup(small_db, tmp_path / "backup.db")
    for path, keys in ((report.path, 0), (kept.path, 1)):
        conn = connect(path, readonly=True)
        try:
            assert conn.execute("SELECT count(*) FROM person_keys").fetchone()[0] == keys
            assert conn.execute("SELECT count(*) FROM companies").fetchone()[0] == 6
        finally:
            conn.close()
    assert key not in Path(report.path).read_bytes() and key in Path(kept.path).read_bytes()
    assert report.bytes == Path(report.path).stat().st_size


def test_refusals_leave_nothing_behind(small_db, tmp_path):
    with pytest.raises(DatabaseError, match="unknown export format 'xml'"):
        export(small_db, tmp_path / "x.xml", "xml")  # type: ignore[arg-type]
    with pytest.raises(DatabaseError, match="no database at"):
        export(tmp_path / "missing.db", tmp_path / "x.csv")
    with pytest.raises(DatabaseError, match="over the database itself"):
        backup(small_db, small_db)
    with pytest.raises(DatabaseError, match="folder .* does not exist"):
        export(small_db, tmp_path / "nope" / "x.csv")
    empty = tmp_path / "empty.db"
    connect(empty).execute("CREATE TABLE event_log(id INTEGER PRIMARY KEY)")
    with pytest.raises(DatabaseError, match="no companies table: run `python cli.py migrate` first"):
        export(empty, tmp_path / "x.csv")
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(("small.db", "empty.db"))) == []


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "sqlite"])
def test_a_link_a_fifo_or_a_device_is_refused_not_replaced(small_db, tmp_path, fmt):
    """The export is renamed into place: over a link, a FIFO or /dev/… that would destroy them."""
    target = tmp_path / "target.out"
    target.write_text("keep me")
    link = tmp_path / "link.out"
    link.symlink_to(target)
    fifo = tmp_path / "fifo.out"
    os.mkfifo(fifo)
    for out, kind in ((link, "a symbolic link"), (fifo, "not a regular file"), (Path("/dev/null"), "not a regular file")):
        with pytest.raises(DatabaseError, match=f"refusing to replace {out}: it is {kind}"):
            export(small_db, out, fmt)
    assert link.is_symlink() and target.read_text() == "keep me"
    assert fifo.is_fifo() and Path("/dev/null").is_char_device()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "sqlite"])
def test_an_unwritable_destination_is_one_error_naming_it_not_the_database(small_db, tmp_path, fmt):
    # A name the filesystem takes but whose partial file it can't (".<name>.partial-<pid>" is over
    # 255 bytes): a real write failure, for root too, which file modes would not give.
    out = tmp_path / ("x" * 250)
    with pytest.raises(DatabaseError) as caught:
        export(small_db, out, fmt)
    text = str(caught.value)
    assert text.startswith(f"cannot write the export beside {out} (in {tmp_path})"), text
    assert str(small_db) not in text and not out.exists()
    blocker = tmp_path / "a-file"  # a file where the folder should be
    blocker.write_text("")
    with pytest.raises(DatabaseError, match="folder .*a-file does not exist"):
        export(small_db, blocker / "x.out", fmt)


def test_damage_only_the_integrity_check_sees_is_one_line_that_blames_the_source(small_db, tmp_path):
    conn = connect(small_db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with open(small_db, "r+b") as f:  # the header's free-page count: reads never look at it
        f.seek(36)
        f.write((7).to_bytes(4, "big"))
    out = tmp_path / "copy.db"
    with pytest.raises(DatabaseError) as caught:
        backup(small_db, out)
    text = str(caught.value)
    assert "\n" not in text and text.startswith(f"the copy of {small_db} failed its integrity check (1 problem(s), "), text
    assert text.endswith(f"{small_db} itself is most likely damaged; nothing was written to {out}")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []




def test_a_damaged_source_is_one_line_that_blames_the_source_and_writes_nothing(small_db, tmp_path):
    conn = connect(small_db)
    for i in range(200):  # enough officers for a page of their own, away from everything else
        conn.execute("INSERT INTO officers(company_number, officer_id, name) VALUES ('00000001', ?, ?)",
                     (f"o{i}", "X" * 200))
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'officers'").fetchone()
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with open(small_db, "r+b") as f:  # scribble over the officers table's root page
        f.seek((root - 1) * page_size)
        f.write(b"\x0d\xff\xff\xff\xff" * 20)
    out = tmp_path / "copy.db"
    with pytest.raises(DatabaseError) as caught:
        backup(small_db, out)
    text = str(caught.value)  # caught by a read of the source, or by the copy's integrity check
    assert "\n" not in text and str(small_db) in text and str(tmp_path / ".copy.db") not in text, text
    assert (text.startswith(f"the database ({small_db}) is damaged")
            or text.endswith(f"{small_db} itself is most likely damaged; nothing was written to {out}")), text
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_lead_export_while_the_worker_writes(writer, tmp_path):
    """The lead export reads one snapshot too: its rows are the model's at the position it claims."""
    from eventlog.dataset.leads import LeadFilters, export_leads

    out = tmp_path / "leads.csv"
    seen: list[int] = []
    report = export_leads(writer.db, out, "csv", filters=LeadFilters(all_companies=True),
                          progress=interleave(writer.db, seen))
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    companies, officers = expected(tmp_path, report.position)
    assert report.rows == len(rows) == len(officers) > 1000
    assert sorted((r["company_number"], r["officer_id"], r["officer_name"]) for r in rows) == officers
    detail = {c[0]: c[2] for c in companies}
    assert all(r["company_status_detail"] == detail[r["company_number"]] for r in rows)
    finish(writer, tmp_path, report.position, seen)


if __name__ == "__main__" and sys.argv[1:2] == ["writer"]:
    run_writer(sys.argv[2], sys.argv[3])
