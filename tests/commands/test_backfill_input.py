"""`backfill FILE`: bad input is one line and exit 2, and a list with nothing to queue appends nothing."""

from __future__ import annotations

import os

import apsw


def _entries(db) -> int:
    if not os.path.exists(db):
        return 0
    conn = apsw.Connection(str(db))
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return conn.execute("SELECT count(*) FROM event_log").fetchone()[0] if "event_log" in tables else 0
    finally:
        conn.close()


def test_bytes_that_are_not_utf8_are_one_line_naming_the_file_and_line(tmp_path, run_cli):
    src = tmp_path / "bin.txt"
    src.write_bytes(b"12345678\n\xa6\xff\x00garbage\n")
    ran = run_cli("backfill", src, "--db", tmp_path / "c.db")
    assert ran.returncode == 2, ran.stderr
    assert ran.stderr.strip() == f"chledger: {src}: line 2 is not UTF-8 text (a backfill is company numbers, one per line)"
    assert _entries(tmp_path / "c.db") == 0


def test_a_list_without_a_single_company_number_appends_nothing(tmp_path, run_cli):
    src = tmp_path / "co.csv"
    src.write_text("company_number,name\n12345678,ACME LTD\n\n")
    ran = run_cli("backfill", src, "--db", tmp_path / "c.db")
    assert ran.returncode == 2, ran.stderr
    assert "no company numbers found (2 lines rejected: line 1: 'company_number,name'" in ran.stderr
    assert ran.stderr.strip().endswith("nothing was queued") and len(ran.stderr.strip().splitlines()) == 1
    assert _entries(tmp_path / "c.db") == 0
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    ran = run_cli("backfill", empty, "--db", tmp_path / "c.db")
    assert ran.returncode == 2 and ran.stderr.strip() == f"chledger: {empty}: no company numbers found; nothing was queued"


def test_a_good_list_still_queues_and_reports_its_rejects(tmp_path, run_cli):
    src = tmp_path / "ok.txt"
    src.write_text("12345678\nSC123456 # a comment\nnot-a-number\n12345678\n")
    ran = run_cli("backfill", src, "--db", tmp_path / "c.db")
    assert ran.returncode == 0, ran.stderr
    assert "2 companies queued at LOW priority, 1 lines rejected: line 3: 'not-a-number'" in ran.stdout
    assert _entries(tmp_path / "c.db") == 1


def test_every_newline_convention_and_a_bom_are_lines(tmp_path, run_cli):
    from eventlog.commands.backfill import parse_numbers

    for name, data in (("mac.csv", b"00000001\r00000002\rjunk\r00000003\r"),
                       ("dos.csv", b"\xef\xbb\xbf00000001\r\n00000002\r\njunk\r\n00000003"),
                       ("unix.csv", b"00000001\n00000002\njunk\n00000003\n")):
        src = tmp_path / name
        src.write_bytes(data)
        with open(src, "rb") as f:
            assert parse_numbers(f) == (["00000001", "00000002", "00000003"], ["line 3: 'junk'"]), name
    ran = run_cli("backfill", tmp_path / "mac.csv", "--db", tmp_path / "c.db")
    assert ran.returncode == 0 and "3 companies queued" in ran.stdout, ran.stderr
