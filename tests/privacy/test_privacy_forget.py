"""`forget` on a real WAL database: afterwards no byte of the person's name or e-mail anywhere in
the file, its WAL or a backup (free pages included), while the ledger's hash chain still verifies."""

from __future__ import annotations

from pathlib import Path

import apsw
import msgspec
import pytest

from eventlog.ledger.db import connect, transaction
from eventlog.ledger.chain import GENESIS, chain_hash
from eventlog.ledger.store import Ledger
from eventlog.privacy import (
    ERASED,
    BadSubject,
    KeyVault,
    Opener,
    TransactionNeeded,
    erasure_status,
    forget,
    forget_in_transaction,
    officer_subject,
    scrub,
    strip_keys,
)
from support.privacy_pages import (
    EMAIL,
    NAME,
    OFFICER_ID,
    OTHER_ID,
    OTHER_NAME,
    SURNAME,
    append_sealed_email_lookup,
    append_sealed_page,
    backup_to,
    files_of,
    occurrences,
    officer_item,
    officer_page,
    projecting_ledger,
    rewrite_forgotten,
)

SUBJECT = officer_subject(OFFICER_ID)
NEEDLES = (NAME, SURNAME, EMAIL, EMAIL.split("@")[0], "Philomena")
FILLERS = 120


def filler_items(company: int) -> list[dict]:
    return [officer_item(f"FILLER{company:04d}, Person {i}", f"filler{company:04d}x{i}", company=f"F{company:07d}",
                         appointment=f"f{company}x{i}", street=f"{i} Filler Road") for i in range(4)]


def build_history(conn: apsw.Connection, ledger: Ledger) -> None:
    """The person at three companies, fetched again and again, an e-mail found, and enough other
    officers coming and going that, written without secure_delete, the person's old rows end in
    freed cells, on free pages, and in pages the ledger reuses."""
    companies = ("01234567", "02345678", "03456789")
    for n in range(FILLERS // 2):
        append_sealed_page(ledger, f"F{n:07d}", officer_page(*filler_items(n)), f"f-{n}")
    for round_ in range(3):
        for i, company in enumerate(companies):
            me = officer_item(NAME, OFFICER_ID, company=company, appointment=f"me{i}")
            other = officer_item(OTHER_NAME, OTHER_ID, company=company, appointment=f"ot{i}")
            append_sealed_page(ledger, company, officer_page(me, other), f"r{round_}-{i}")
        append_sealed_email_lookup(ledger, companies[0], OFFICER_ID, "Philomena QUIXOTRIX-ZAMBELLI", EMAIL)
        for n in range(FILLERS // 2, FILLERS):
            append_sealed_page(ledger, f"F{n:07d}", officer_page(*filler_items(n)), f"f-{n}-{round_}")
    for n in range(FILLERS):  # the fillers lose their officers: whole pages go to the freelist
        append_sealed_page(ledger, f"F{n:07d}", officer_page(), f"f-{n}-gone")


def chain_verifies(conn: apsw.Connection) -> int:
    """Recompute every row's hash from the stored text with `chain_hash`; the rows checked."""
    prev, count = GENESIS, 0
    rows = conn.execute("SELECT id, event_id, event_type, company_number, event_data, received_at, hash "
                        "FROM event_log ORDER BY id")
    for pos, event_id, event_type, company, data, received_at, stored in rows:
        prev = chain_hash(prev, pos, event_id, event_type, company, received_at, data)
        assert prev == stored, f"entry {pos} no longer matches its hash"
        count += 1
    return count


@pytest.fixture
def history(conn, clock):
    """The worst case: projection rows written without secure_delete (keys always with it)."""
    ledger = projecting_ledger(conn, clock, secure_delete=False)
    build_history(conn, ledger)
    return ledger


def test_after_forget_no_byte_of_the_name_or_email_is_left_and_the_chain_verifies(conn, db_path, history, tmp_path):
    ledger_before = conn.execute("SELECT id, event_data, hash FROM event_log ORDER BY id").fetchall()
    key = KeyVault(conn).key(SUBJECT)
    assert key is not None
    # the positive control: the plaintext is there before (tables and freed space), so the search can find it
    before = occurrences(files_of(db_path), *NEEDLES)
    assert before[NAME] > 0 and before[EMAIL] > 0, before
    assert conn.execute("SELECT count(*) FROM officers WHERE name = ?", (NAME,)).fetchone()[0] == 3
    assert all(NAME.encode() not in bytes(row[1], "utf-8") for row in ledger_before)  # the ledger only seals

    report = forget(conn, SUBJECT, rewrite=rewrite_forgotten)

    assert report.key_deleted and report.newly_listed and report.complete and report.scrub.vacuumed
    assert Path(f"{db_path}-wal").stat().st_size == 0
    backup = backup_to(conn, tmp_path / "after-forget.db")
    for where in (files_of(db_path), [backup]):
        assert occurrences(where, *NEEDLES) == dict.fromkeys(NEEDLES, 0), where
        assert all(key not in p.read_bytes() for p in where)  # nor the key that could open the envelopes
    # the ledger is exactly as it was, and its hash chain still verifies
    assert conn.execute("SELECT id, event_data, hash FROM event_log ORDER BY id").fetchall() == ledger_before
    assert chain_verifies(conn) == len(ledger_before) == history.head()
    assert history.verify().ok
    # the person is erased where they were; everyone else is as before
    rows = conn.execute("SELECT name, nationality, date_of_birth_year, address FROM officers WHERE officer_id = ?",
                        (OFFICER_ID,)).fetchall()
    assert rows == [(ERASED, None, None, None)] * 3
    assert conn.execute("SELECT count(*) FROM officers WHERE name = ?", (OTHER_NAME,)).fetchone()[0] == 3
    assert conn.execute("SELECT count(*) FROM emails_standin").fetchone()[0] == 0
    status = erasure_status(conn, SUBJECT)
    assert status.erased and not erasure_status(conn, officer_subject(OTHER_ID)).erased


def test_without_vacuum_the_old_bytes_stay_when_rows_were_written_without_secure_delete(conn, db_path, history):
    """Deleting the key and rewriting the rows is not enough when earlier writes ran without
    secure_delete: their plaintext stays in freed cells, free pages and reused pages, and a
    checkpoint keeps it. (What the VACUUM is for.)"""
    report = forget(conn, SUBJECT, rewrite=rewrite_forgotten, vacuum=False)
    assert report.complete and not report.scrub.vacuumed
    assert conn.execute("SELECT count(*) FROM officers WHERE name = ?", (NAME,)).fetchone()[0] == 0
    left = occurrences(files_of(db_path), NAME, EMAIL)
    assert left[NAME] > 0, left
    assert scrub(conn).complete and occurrences(files_of(db_path), NAME, EMAIL) == {NAME: 0, EMAIL: 0}


def test_with_secure_delete_on_every_write_no_vacuum_is_needed(conn, clock, db_path, tmp_path):
    ledger = projecting_ledger(conn, clock, secure_delete=True)
    build_history(conn, ledger)
    assert occurrences(files_of(db_path), NAME)[NAME] > 0
    report = forget(conn, SUBJECT, rewrite=rewrite_forgotten, vacuum=False)
    assert report.complete and not report.scrub.vacuumed
    backup = backup_to(conn, tmp_path / "after-forget.db")
    assert occurrences([*files_of(db_path), backup], *NEEDLES) == dict.fromkeys(NEEDLES, 0)
    assert chain_verifies(conn) == ledger.head()


def test_a_reader_on_an_old_snapshot_keeps_the_wal_until_it_is_done(conn, db_path, history):
    conn.setbusytimeout(50)  # the TRUNCATE checkpoint waits for readers this long
    reader = connect(db_path, readonly=True)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM person_keys WHERE subject = ?", (SUBJECT,)).fetchone()[0] == 1

    report = forget(conn, SUBJECT, rewrite=rewrite_forgotten)
    assert report.key_deleted and not report.complete and report.scrub.wal_bytes > 0
    # why it is not complete: that reader still sees the key in its snapshot
    assert reader.execute("SELECT count(*) FROM person_keys WHERE subject = ?", (SUBJECT,)).fetchone()[0] == 1
    reader.execute("COMMIT")
    reader.close()

    again = forget(conn, SUBJECT, rewrite=rewrite_forgotten)  # idempotent: nothing left to delete
    assert not again.key_deleted and not again.newly_listed and again.complete
    assert occurrences(files_of(db_path), *NEEDLES) == dict.fromkeys(NEEDLES, 0)


def test_forgetting_one_person_leaves_the_others_readable(conn, history):
    forget(conn, SUBJECT, rewrite=rewrite_forgotten)
    opener = Opener(conn)
    seen = {}
    for record in history.read():
        entry = record.entry
        if getattr(entry, "kind", None) == "officers" and record.company_number == "01234567":
            page = msgspec.json.decode(opener.open_officer_page(bytes(entry.body)).body)
            for item in page["items"]:
                seen[item["links"]["officer"]["appointments"]] = item["name"]
    assert seen == {f"/officers/{OFFICER_ID}/appointments": ERASED, f"/officers/{OTHER_ID}/appointments": OTHER_NAME}


def test_what_forget_and_scrub_refuse(conn, history):
    with pytest.raises(BadSubject):
        forget(conn, OFFICER_ID)  # a bare id is for parse_subject; forget takes subjects
    with pytest.raises(TransactionNeeded):
        forget_in_transaction(conn, SUBJECT, "2023-11-14T22:13:20.000000Z")
    with transaction(conn):
        with pytest.raises(TransactionNeeded):
            scrub(conn)
    assert KeyVault(conn).key(SUBJECT) is not None  # nothing was forgotten by the refusals


def test_a_copy_for_someone_else_can_be_stripped_of_every_key(conn, history, tmp_path):
    copy = apsw.Connection(str(backup_to(conn, tmp_path / "export.db")))
    keys = [bytes(k) for (k,) in copy.execute("SELECT key FROM person_keys")]
    assert len(keys) == FILLERS * 4 + 2
    assert strip_keys(copy) == len(keys)
    assert copy.execute("SELECT count(*) FROM person_keys").fetchone()[0] == 0
    data = (tmp_path / "export.db").read_bytes()
    assert not any(k in data for k in keys)
    body = copy.execute("SELECT json_extract(event_data, '$.body') FROM event_log "
                        "WHERE company_number = '01234567' AND event_type = 'response.received' "
                        "AND json_extract(event_data, '$.kind') = 'officers' LIMIT 1").fetchone()[0]
    opened = Opener(copy).open_officer_page(body.encode() if isinstance(body, str) else body)
    assert opened.erased == 2 and opened.opened == 0
    copy.close()
    assert KeyVault(conn).count() == len(keys)  # the live database keeps its keys


def test_a_writer_holding_the_lock_blocks_the_vacuum_and_the_report_says_so(conn, db_path, history):
    with transaction(conn):
        forget_in_transaction(conn, SUBJECT, "2023-11-14T22:13:20.000000Z")
        rewrite_forgotten(conn, SUBJECT)
    writer = connect(db_path)
    writer.execute("BEGIN IMMEDIATE")
    conn.setbusytimeout(50)
    report = scrub(conn)
    assert report.vacuum_blocked and not report.vacuumed and not report.complete
    writer.execute("ROLLBACK")
    writer.close()
    assert scrub(conn).complete
    assert occurrences(files_of(db_path), *NEEDLES) == dict.fromkeys(NEEDLES, 0)
