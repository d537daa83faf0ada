"""`officers`: one row per appointment, from 200 officer-list responses.

The first page of a fetch (`page_start` 0) replaces the company's appointments,
later pages add theirs, so a new fetch never leaves a stale appointment behind
and all pages of one fetch end up together. `officer_id` is the person's id from
`links.officer.appointments` (`/officers/<id>/appointments`). Rows get their ids
in ledger order (SQLite's max(rowid) + 1); the same statements run in the same
order however the ledger is batched, so replay reproduces them.

Pages are stored with each officer's personal fields sealed (`eventlog.privacy`): they are
opened here, and an officer whose key is gone (or who is on the forgotten list, which also
covers plaintext pages from before sealing) comes out with the constant erased values. A
`person.forgotten` entry rewrites the officer's earlier rows with the same values, so the live
table and a replay (where every page of that person opens erased) end the same.
"""

from __future__ import annotations

import apsw
import msgspec

from eventlog.privacy import ERASED_OFFICER_COLUMNS, Opener
from projections.records import Batch
from projections.payloads import decode_officer_page, officer_id, raw_text
from projections.rows import Statements

NAME = "officers"
VERSION = 2  # 2: sealed pages opened; person.forgotten rewrites the rows
TABLES = ("officers",)
LOOKUP_INDEXES = ("idx_officers_company",)

_REPLACE = "DELETE FROM officers WHERE company_number = ?"
_ADD = ("INSERT INTO officers(company_number, officer_id, name, officer_role, appointed_on, resigned_on, "
        "nationality, occupation, country_of_residence, date_of_birth_month, date_of_birth_year, address, "
        "fetched_at, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


_ERASE = (f"UPDATE officers SET {', '.join(c + ' = ?' for c in ERASED_OFFICER_COLUMNS)} "
          "WHERE officer_id = ?")


def current_condition() -> str:
    """The SQL condition (on `officers`' own columns, unqualified) of a current appointment: the
    one place that says what "current officer" means; exports and counts use only this."""
    return "resigned_on IS NULL"


def apply(conn: apsw.Connection, batch: Batch) -> None:
    sql = Statements()
    opener: Opener | None = None
    for r in batch.records:
        if r.event_type == "person.forgotten":
            kind, _, rest = r.entry.subject.partition(":")  # type: ignore[attr-defined]
            if kind == "officer":
                sql.add(_ERASE, (*ERASED_OFFICER_COLUMNS.values(), rest))
            continue
        if r.event_type != "response.received":
            continue
        e = r.entry
        if e.kind != "officers" or e.status != 200:  # type: ignore[attr-defined]
            continue
        number = batch.company(r)
        if opener is None:
            opener = Opener(conn)  # one per batch: it reads the forgotten list once
        body = bytes(e.body) if e.body is not None else b""  # type: ignore[attr-defined]
        opened = opener.open_officer_page(body, number)
        if opened.body is body:
            page = batch.officer_page(r)  # nothing sealed or forgotten in it: the shared decode
        else:
            page = decode_officer_page(msgspec.Raw(opened.body))
        if not number or page is None:
            continue
        if e.page_start == 0:  # type: ignore[attr-defined]
            sql.add(_REPLACE, (number,))
        for item in page.items:
            dob = item.date_of_birth
            sql.add(_ADD, (
                number, officer_id(item), item.name, item.officer_role, item.appointed_on,
                item.resigned_on, item.nationality, item.occupation, item.country_of_residence,
                dob.month if dob else None, dob.year if dob else None, raw_text(item.address),
                r.received_at, e.request_id,  # type: ignore[attr-defined]
            ))
    sql.run(conn)


# --- reads ---------------------------------------------------------------------------------------


def companies_with_officers(conn: apsw.Connection) -> int:
    """Companies with at least one officer row (what the customer's target counts)."""
    return conn.execute("SELECT count(DISTINCT company_number) FROM officers").fetchone()[0]
