"""What the privacy tests share: officer pages with distinctive people, sealed appends, byte search.

The people's names and e-mail addresses are strings that occur nowhere else, so a raw byte
search of the database files can only find them where this test put them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import apsw
import msgspec

from eventlog.clock import from_epoch
from eventlog.entries import ResponseReceived
from eventlog.ledger import Ledger
from eventlog.privacy import READABLE_EMAIL_LOOKUP_FIELDS, Sealer, officer_subject

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


def plaintext_size(path: Path) -> int:
    return os.path.getsize(path) if path.exists() else 0
