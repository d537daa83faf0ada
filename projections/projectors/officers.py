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

`status` is Companies House's reading of an appointment: `resigned` when it has a
`resigned_on`; else `inactive` when the company is dissolved, closed or converted-closed
(their formerly active officers carry no `resigned_on`, and CH counts them inactive), else
`active`. Read naively (`resigned_on IS NULL`), a dissolved company's directors would look
current: readers use `current_condition()`. The company's status is the `companies` row's
(that projector runs first); every company a batch touches (an officer page, or a profile
that may change its status) has its officers' status recomputed at the end of the batch, so
the result is the same however the ledger is batched.
"""

from __future__ import annotations

import apsw
import msgspec

from eventlog.privacy import ERASED_OFFICER_COLUMNS, Opener
from projections.records import Batch
from projections.payloads import decode_officer_page, officer_id, raw_text
from projections.rows import Statements

NAME = "officers"
VERSION = 3  # 2: sealed pages opened; person.forgotten rewrites the rows. 3: status column
TABLES = ("officers",)
LOOKUP_INDEXES = ("idx_officers_company",)

ACTIVE, RESIGNED, INACTIVE = "active", "resigned", "inactive"
CEASED_STATUSES = ("dissolved", "closed", "converted-closed")
_PROFILE_TYPES = frozenset(("stream.event", "bulk.company"))

_REPLACE = "DELETE FROM officers WHERE company_number = ?"
_STATUS = (
    "UPDATE officers SET status = CASE "
    "WHEN resigned_on IS NOT NULL AND resigned_on != '' THEN 'resigned' "
    "WHEN (SELECT c.company_status FROM companies c WHERE c.company_number = officers.company_number) "
    "IN ('dissolved', 'closed', 'converted-closed') THEN 'inactive' ELSE 'active' END "
    "WHERE company_number IN (SELECT value FROM json_each(?))")
_ADD = ("INSERT INTO officers(company_number, officer_id, name, officer_role, appointed_on, resigned_on, "
        "nationality, occupation, country_of_residence, date_of_birth_month, date_of_birth_year, address, "
        "fetched_at, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


_ERASE = (f"UPDATE officers SET {', '.join(c + ' = ?' for c in ERASED_OFFICER_COLUMNS)} "
          "WHERE officer_id = ?")


def apply(conn: apsw.Connection, batch: Batch) -> None:
    sql = Statements()
    opener: Opener | None = None
    touched: dict[str, None] = {}
    for r in batch.records:
        if r.event_type == "person.forgotten":
            kind, _, rest = r.entry.subject.partition(":")  # type: ignore[attr-defined]
            if kind == "officer":
                sql.add(_ERASE, (*ERASED_OFFICER_COLUMNS.values(), rest))
            continue
        if r.event_type in _PROFILE_TYPES:
            number = batch.company(r)
            if number:
                touched[number] = None
            continue
        if r.event_type != "response.received":
            continue
        e = r.entry
        if e.status == 200 and e.kind == "profile":  # type: ignore[attr-defined]
            number = batch.company(r)
            if number:
                touched[number] = None
            continue
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
        touched[number] = None
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
    if touched:  # one statement for the batch: SQLite probes the index per company, no Python per company
        sql.add(_STATUS, (msgspec.json.encode(list(touched)).decode(),))
    sql.run(conn)


# --- reads ---------------------------------------------------------------------------------------


def current_condition(alias: str = "") -> str:
    """The SQL condition for a current officer, e.g. `WHERE {current_condition('o')}`.

    Not `resigned_on IS NULL`: a dissolved company's formerly active officers have no
    `resigned_on` either, and are not current."""
    prefix = f"{alias}." if alias else ""
    return f"{prefix}status = '{ACTIVE}'"


def status_counts(conn: apsw.Connection, company_number: str) -> dict[str, int]:
    """A company's appointments by status (active / resigned / inactive)."""
    return dict(conn.execute("SELECT status, count(*) FROM officers WHERE company_number = ? GROUP BY status",
                             (company_number,)).fetchall())


def recorded_since(conn: apsw.Connection, company_number: str, completed_at: str | None) -> int:
    """Appointments of the company recorded after its last completed fetch (`completed_at`, None
    when none completed): the pages of an unfinished fetch, page 0 first. Their count is where
    that fetch resumes (each page starts where the items before it ended)."""
    if completed_at is None:
        sql, args = "SELECT count(*) FROM officers WHERE company_number = ?", (company_number,)
    else:
        sql = "SELECT count(*) FROM officers WHERE company_number = ? AND fetched_at > ?"
        args = (company_number, completed_at)
    return int(conn.execute(sql, args).fetchone()[0])


def companies_with_officers(conn: apsw.Connection) -> int:
    """Companies with at least one officer row (what the customer's target counts)."""
    return conn.execute("SELECT count(DISTINCT company_number) FROM officers").fetchone()[0]
