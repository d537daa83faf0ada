"""What the privacy tests share: officer pages with distinctive people, sealed appends, byte search.

The people's names and e-mail addresses are strings that occur nowhere else, so a raw byte
search of the database files can only find them where this test put them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import apsw
import msgspec

from eventlog.clock import from_epoch
from eventlog.ledger.entries import ResponseReceived
from eventlog.ledger.store import Ledger, Record
from eventlog.privacy import READABLE_EMAIL_LOOKUP_FIELDS, Opener, Sealer, erase_officer_rows, officer_subject
from projections.projectors import officers
from projections.records import Batch

NAME = "QUIXOTRIX-ZAMBELLI, Philomena Oriel"
SURNAME = "QUIXOTRIX-ZAMBELLI"
EMAIL = "philomena.quixotrix@zambelli-widgets.example"
OFFICER_ID = "pQxZ7mXw3kLrT9bYc2VnD8sHfJ1"
OTHER_NAME = "MOLESWORTH-FINCH, Barnaby"
OTHER_ID = "oThErOfFiCeR0000000000000000"


def officer_item(name: str, officer_id: str | None, *, company: str = "01234567", appointment: str = "ap1",
                 role: str = "director", street: str = "1 Tulip Lane") -> dict:
    item: dict = {
        "name": name,
        "officer_role": role,
        "appointed_on": "2019-04-01",
        "date_of_birth": {"month": 7, "year": 1971},
        "nationality": "British",
        "occupation": "Cartographer",
        "country_of_residence": "England",
        "address": {"premises": "1", "address_line_1": street, "locality": "Harrogate", "postal_code": "HG1 1AA"},
        "links": {"self": f"/company/{company}/appointments/{appointment}"},
        "etag": "e" + appointment,
    }
    if officer_id:
        item["links"]["officer"] = {"appointments": f"/officers/{officer_id}/appointments"}
    return item


def officer_page(*items: dict) -> bytes:
    return msgspec.json.encode({"active_count": len(items), "etag": "pg", "items": list(items),
                                "items_per_page": 35, "kind": "officer-list", "start_index": 0,
                                "total_results": len(items)})


def append_sealed_page(ledger: Ledger, company: str, body: bytes, request_id: str) -> bytes:
    """Seal and append in one transaction, as the sender will; the sealed body."""
    with ledger.transaction() as tx:
        sealed = Sealer(tx.conn, from_epoch(ledger.clock.now())).seal_officer_page(body, company)
        tx.append(ResponseReceived(request_id=request_id, kind="officers", company_number=company, status=200,
                                   elapsed_ms=5, body=msgspec.Raw(sealed.body)))
    return sealed.body


def append_sealed_email_lookup(ledger: Ledger, company: str, officer_id: str, name: str, email: str) -> None:
    """An e-mail lookup's result row, sealed under the officer's subject (the shape is illustrative:
    the enrichment stage decides its entries)."""
    first, _, last = name.partition(" ")
    row = {"first_name": msgspec.Raw(msgspec.json.encode(first)), "last_name": msgspec.Raw(msgspec.json.encode(last)),
           "domain": msgspec.Raw(b'"zambelli-widgets.example"'), "email": msgspec.Raw(msgspec.json.encode(email)),
           "smtp_status": msgspec.Raw(b'"valid"')}
    with ledger.transaction() as tx:
        sealed, _ = Sealer(tx.conn, from_epoch(ledger.clock.now())).seal_object(
            row, officer_subject(officer_id), READABLE_EMAIL_LOOKUP_FIELDS)
        tx.append(ResponseReceived(request_id=f"em-{company}", kind="emails", company_number=company, status=200,
                                   elapsed_ms=5, body=msgspec.Raw(msgspec.json.encode(sealed))))


def files_of(db: Path) -> list[Path]:
    return [p for p in (db, Path(f"{db}-wal")) if p.exists()]


def occurrences(paths: Iterable[Path], *needles: str) -> dict[str, int]:
    """How many times each needle's UTF-8 bytes occur in the files, raw (free pages included)."""
    found = {n: 0 for n in needles}
    for path in paths:
        data = path.read_bytes()
        for n in needles:
            found[n] += data.count(n.encode())
    return found


def backup_to(conn: apsw.Connection, out: Path) -> Path:
    """A copy through SQLite's online backup API, page by page (free pages included)."""
    dest = apsw.Connection(str(out))
    with dest.backup("main", conn, "main") as step:
        step.step(-1)
    dest.close()
    return out


# --- the projections as the worker will run them: opened bodies into the real officers projector ---

# A stand-in for an e-mail projection with plaintext rows (the real `emails` table is tested with
# the enrichment stage: tests/worker/enrich/test_snov_privacy.py).
EMAILS_TABLE = "CREATE TABLE IF NOT EXISTS emails_standin (officer_id TEXT, email TEXT, smtp_status TEXT)"


def opened_records(conn: apsw.Connection, records: Sequence[Record]) -> list[Record]:
    """The records with each officer page opened (restored, or erased), as the projector will see them."""
    opener = Opener(conn)
    out = []
    for r in records:
        e = r.entry
        if isinstance(e, ResponseReceived) and e.kind == "officers" and e.status == 200:
            body = opener.open_officer_page(bytes(e.body), r.company_number).body
            r = msgspec.structs.replace(r, entry=msgspec.structs.replace(e, body=msgspec.Raw(body)))
        out.append(r)
    return out


def project(conn: apsw.Connection, records: Sequence[Record]) -> None:
    """The officers projector on opened pages, and a stand-in e-mail projection (plaintext rows)."""
    _project(conn, records)


def project_without_secure_delete(conn: apsw.Connection, records: Sequence[Record]) -> None:
    """The same, writing its rows with secure_delete off: the worst case, as a connection that never
    turned it on (a replay process, an older chledger) leaves its deleted rows in the file."""
    conn.execute("PRAGMA secure_delete = OFF")
    _project(conn, records)


def _project(conn: apsw.Connection, records: Sequence[Record]) -> None:
    officers.apply(conn, Batch(opened_records(conn, records)))
    opener = Opener(conn)
    for r in records:
        e = r.entry
        if isinstance(e, ResponseReceived) and e.kind == "emails":
            row = msgspec.json.decode(bytes(e.body), type=dict[str, msgspec.Raw])
            opened = opener.open_object(row)
            officer = opened.subject.partition(":")[2]
            conn.execute("DELETE FROM emails_standin WHERE officer_id = ?", (officer,))
            if not opened.erased:
                email = msgspec.json.decode(opened.fields["email"])  # type: ignore[index]
                conn.execute("INSERT INTO emails_standin VALUES (?, ?, ?)", (officer, email, "valid"))


def projecting_ledger(conn: apsw.Connection, clock, *, secure_delete: bool = True) -> Ledger:
    """A ledger whose appends project inline, in the append transaction, as the worker's do."""
    conn.execute(EMAILS_TABLE)
    return Ledger(conn, clock, on_append=[project if secure_delete else project_without_secure_delete])


def rewrite_forgotten(conn: apsw.Connection, subject: str) -> None:
    """What the projectors will do on a `person.forgotten` entry."""
    erase_officer_rows(conn, subject)
    if subject.startswith("officer:"):
        conn.execute("DELETE FROM emails_standin WHERE officer_id = ?", (subject.partition(":")[2],))


def replayed_officers(conn: apsw.Connection, ledger: Ledger, batch: int) -> list[tuple]:
    """Empty `officers` and rebuild it from the ledger in batches of `batch` records, as replay does."""
    conn.execute("DELETE FROM officers")
    records = list(ledger.read())
    for i in range(0, len(records), batch):
        officers.apply(conn, Batch(opened_records(conn, records[i:i + batch])))
    return table_rows(conn, "officers")


def table_rows(conn: apsw.Connection, table: str) -> list[tuple]:
    return conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
