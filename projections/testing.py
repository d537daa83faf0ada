"""Realistic ledger entries and whole-table snapshots, for tests and the replay benchmark.

Payloads follow the captured Companies House event of `tests/data/captured-events.ndjson`
(a company profile of about 1.3 kB) and the officer-list shape of the REST API.
"""

from __future__ import annotations

from typing import Any

import apsw
import msgspec

from eventlog.ledger.entries import ResponseReceived, StreamEvent

from projections.replay.compare import table_checksum
from projections.registry import PROJECTORS

__all__ = ["SAMPLE_PROFILE", "STRIKE_OFF", "profile", "stream_event", "officer", "officers_page",
           "response", "snapshot", "PROJECTION_TABLES"]

STRIKE_OFF = "active-proposal-to-strike-off"
SAMPLE_PROFILE: dict[str, Any] = {
    "accounts": {"accounting_reference_date": {"day": "30", "month": "09"},
                 "last_accounts": {"made_up_to": "2022-09-30", "period_end_on": "2022-09-30",
                                   "period_start_on": "2021-10-01", "type": "micro-entity"},
                 "next_accounts": {"due_on": "2024-06-30", "period_end_on": "2023-09-30",
                                   "period_start_on": "2022-10-01"},
                 "next_due": "2024-06-30", "next_made_up_to": "2023-09-30"},
    "can_file": True, "company_name": "GLENCOYNE ENGINEERING LTD", "company_number": "05954546",
    "company_status": "active",
    "confirmation_statement": {"last_made_up_to": "2023-10-03", "next_due": "2024-10-17",
                               "next_made_up_to": "2024-10-03"},
    "date_of_creation": "2006-10-03", "etag": "055ef4b361baa737e96bdaf5e7c0cb9b1ba31b3b",
    "jurisdiction": "england-wales", "last_full_members_list_date": "2015-10-03",
    "links": {"filing_history": "/company/05954546/filing-history", "officers": "/company/05954546/officers",
              "persons_with_significant_control": "/company/05954546/persons-with-significant-control",
              "self": "/company/05954546"},
    "registered_office_address": {"address_line_1": "Unit10 Heath Road Industrial Estate",
                                  "address_line_2": "Banham", "locality": "Norwich", "postal_code": "NR16 2HS"},
    "sic_codes": ["45200"], "type": "ltd",
}
_SAMPLE_LINKS = SAMPLE_PROFILE["links"]

PROJECTION_TABLES = tuple(t for p in PROJECTORS for t in p.TABLES) + ("projection_vars",)


def profile(number: str, *, status: str | None = "active", detail: str | None = None,
            name: str | None = None, **extra: Any) -> bytes:
    """A company profile as Companies House sends it; `status=None` leaves `company_status` out."""
    d = dict(SAMPLE_PROFILE)
    d["company_number"] = number
    d["company_name"] = name or f"COMPANY {number} LTD"
    d["links"] = {k: v.replace("05954546", number) for k, v in _SAMPLE_LINKS.items()}
    if status is None:
        del d["company_status"]
    else:
        d["company_status"] = status
    if detail is not None:
        d["company_status_detail"] = detail
    d.update(extra)
    return msgspec.json.encode(d)


def stream_event(number: str, timepoint: int, *, change: str = "changed", data: bytes | None = None,
                 stream: str = "companies", published_at: str = "2023-11-04T14:33:29",
                 fields_changed: list[str] | None = None, **profile_args: Any) -> StreamEvent:
    """A company-profile stream event; `data` defaults to `profile(number, **profile_args)`."""
    raw = data if data is not None else profile(number, **profile_args)
    return StreamEvent(stream=stream, timepoint=timepoint, published_at=published_at, change=change,
                       resource_kind="company-profile", resource_id=number,
                       resource_uri=f"/company/{number}", company_number=number,
                       fields_changed=fields_changed, data=msgspec.Raw(raw))


def officer(person: str, name: str = "SMITH, Jane", role: str = "director") -> dict[str, Any]:
    return {"name": name, "officer_role": role, "appointed_on": "2015-03-01", "nationality": "British",
            "occupation": "Director", "country_of_residence": "England",
            "date_of_birth": {"month": 4, "year": 1971},
            "address": {"address_line_1": "1 High Street", "locality": "Norwich", "postal_code": "NR1 1AA"},
            "links": {"officer": {"appointments": f"/officers/{person}/appointments"}}}


def officers_page(items: list[dict[str, Any]], total: int | None = None, start: int = 0) -> bytes:
    return msgspec.json.encode({"items": items, "start_index": start, "items_per_page": 100,
                                "total_results": len(items) if total is None else total})


def response(request_id: str, kind: str, number: str, status: int = 200, body: bytes | None = None,
             page_start: int = 0, elapsed_ms: int = 120) -> ResponseReceived:
    return ResponseReceived(request_id=request_id, kind=kind, company_number=number, status=status,
                            elapsed_ms=elapsed_ms, page_start=page_start,
                            body=msgspec.Raw(body if body is not None else b"null"))


def snapshot(conn: apsw.Connection, schema: str = "main") -> dict[str, tuple[int, str]]:
    """(row count, checksum of every row) of every projection table: equal means identical."""
    return {t: table_checksum(conn, t, schema) for t in PROJECTION_TABLES}


class World:
    """A migrated database fed with entries, read back through one of three paths.

    `mode` is how the projections get built: `live` (the append hook, the worker's
    path), `replay` (no hook; `replay()` before every read) or `catch_up` (no hook;
    `catch_up()` before every read). A test written against a World passes in all
    three modes only if the paths agree: the contract suite of the projections.
    """

    def __init__(self, conn: apsw.Connection, clock: Any, mode: str = "live", step: float = 1.0):
        from eventlog.ledger.store import Ledger

        from projections.replay.rebuild import replay
        from projections.runner import attach, catch_up, check_versions

        self.conn, self.clock, self.mode, self.step = conn, clock, mode, step
        self.ledger = Ledger(conn, clock)
        check_versions(conn)
        if mode == "live":
            attach(self.ledger)
        self.settle = {"live": lambda: None, "replay": lambda: replay(conn, lock=False),
                        "catch_up": lambda: catch_up(conn)}[mode]

    def add(self, *entries: Any) -> list[int]:
        """Append `entries` in one transaction (one hook call), then move the clock on."""
        appended = self.ledger.append_many(entries)
        self.clock.advance(self.step)
        return [a.position for a in appended]

    def rows(self, table: str, where: str = "", params: tuple = ()) -> list[dict[str, Any]]:
        self.settle()
        names = [c[1] for c in self.conn.execute(f"PRAGMA table_info({table})")]
        return [dict(zip(names, r)) for r in self.conn.execute(f"SELECT * FROM {table} {where}", params)]

    def row(self, table: str, where: str, params: tuple = ()) -> dict[str, Any] | None:
        found = self.rows(table, where, params)
        assert len(found) <= 1, found
        return found[0] if found else None

    def state(self, number: str) -> dict[str, Any] | None:
        return self.row("company_processing_state", "WHERE company_number = ?", (number,))

    def company(self, number: str) -> dict[str, Any] | None:
        return self.row("companies", "WHERE company_number = ?", (number,))
