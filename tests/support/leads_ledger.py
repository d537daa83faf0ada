"""A ledger of companies of interest, sealed officer pages and enrichment answers, built from real
entries through the real projectors (the sender's sealing, Snov.io's recorded answers), for the
lead export's tests and its benchmark.
"""

from __future__ import annotations

import itertools
from typing import Iterable, Sequence

import msgspec

from eventlog.clock import from_epoch
from eventlog.ledger.entries import RequestQueued, ResponseReceived, SnovAnswered, SnovSent, StreamEvent
from eventlog.ledger.store import Ledger
from eventlog.privacy import READABLE_EMAIL_LOOKUP_FIELDS, Sealer, officer_subject

__all__ = ["Person", "add_company", "add_domain", "add_email", "officer_item"]

_seq = itertools.count(1)
_raw = lambda v: msgspec.Raw(msgspec.json.encode(v))  # noqa: E731

Person = tuple  # (officer id, "SURNAME, Forenames", role[, resigned_on])


def officer_item(number: str, person: Sequence, *, occupation: str = "Director") -> dict:
    oid, name, role = person[0], person[1], person[2]
    item = {"name": name, "officer_role": role, "appointed_on": "2019-04-01",
            "date_of_birth": {"month": 7, "year": 1971}, "nationality": "British", "occupation": occupation,
            "country_of_residence": "England",
            "address": {"premises": "1", "address_line_1": "Tulip Lane", "locality": "Harrogate",
                        "postal_code": "HG1 1AA"},
            "links": {"officer": {"appointments": f"/officers/{oid}/appointments"},
                      "self": f"/company/{number}/appointments/{oid}a"}}
    if len(person) > 3 and person[3]:
        item["resigned_on"] = person[3]
    return item


def add_company(ledger: Ledger, number: str, people: Iterable[Sequence], *, name: str | None = None,
                status: str = "active", detail: str = "active-proposal-to-strike-off",
                sic: Sequence[str] = ("62020",), postcode: str = "HG1 1AA", region: str | None = "North Yorkshire",
                locality: str = "Harrogate", created: str = "2015-03-01", occupation: str = "Director") -> None:
    """The company on the stream (its profile), then its officers fetched: the page sealed and
    appended in one transaction, as the sender does."""
    address = {"address_line_1": "2 Station Road", "locality": locality, "postal_code": postcode}
    if region:
        address["region"] = region
    data = {"company_number": number, "company_name": name or f"COMPANY {number} LIMITED",
            "company_status": status, "company_status_detail": detail, "type": "ltd",
            "date_of_creation": created, "sic_codes": list(sic), "registered_office_address": address}
    ledger.append(StreamEvent(stream="companies", timepoint=next(_seq), published_at="2023-11-14T22:00:00",
                              change="changed", resource_kind="company-profile", resource_id=number,
                              resource_uri=f"/company/{number}", company_number=number, data=_raw(data)))
    rid = f"officers-{number}-{next(_seq)}"
    ledger.append(RequestQueued(request_id=rid, kind="officers", company_number=number))
    items = [officer_item(number, p, occupation=occupation) for p in people]
    body = msgspec.json.encode({"items": items, "total_results": len(items), "kind": "officer-list"})
    with ledger.transaction() as tx:
        sealed = Sealer(tx.conn, from_epoch(ledger.clock.now())).seal_officer_page(body, number)
        tx.append(ResponseReceived(request_id=rid, kind="officers", company_number=number, status=200,
                                   elapsed_ms=5, body=msgspec.Raw(sealed.body)))


def add_domain(ledger: Ledger, number: str, company_name: str, domain: str) -> None:
    task = f"dt{next(_seq)}"
    ledger.append(SnovSent(request_id=f"snov-{task}-s", call="domains_start", task_id=task,
                           items=_raw([{"company_number": number, "name": company_name,
                                        "key": company_name.lower()}]),
                           lookups=(f"domain:{company_name.lower()}",), worst_credits=1))
    ledger.append(SnovAnswered(request_id=f"snov-{task}-p", call="domains_poll", task_id=task, outcome="ok",
                               elapsed_ms=5, status=200, credits=1,
                               results=_raw([{"company_number": number, "state": "found", "domain": domain}])))


def add_email(ledger: Ledger, officer_id: str, number: str, domain: str, emails: Sequence[tuple[str, str]],
              first: str = "Jane", last: str = "Doe") -> None:
    """An e-mail lookup for the officer at the company's domain, and its answer: (address, status)
    pairs, each address sealed under the officer's subject as the stage records them."""
    task = f"et{next(_seq)}"
    subject = officer_subject(officer_id)
    with ledger.transaction() as tx:
        sealer = Sealer(tx.conn, from_epoch(ledger.clock.now()))
        item, _ = sealer.seal_object({"officer_id": _raw(officer_id), "company_number": _raw(number),
                                      "domain": _raw(domain), "first_name": _raw(first), "last_name": _raw(last)},
                                     subject, frozenset({"officer_id", "company_number", "domain"}))
        tx.append(SnovSent(request_id=f"snov-{task}-s", call="emails_start", task_id=task, items=_raw([item]),
                           lookups=(f"{officer_id}|{domain}",), worst_credits=3))
    with ledger.transaction() as tx:
        sealer = Sealer(tx.conn, from_epoch(ledger.clock.now()))
        found = []
        for address, status in emails:
            obj = {"email": _raw(address), "smtp_status": _raw(status), "is_valid_format": _raw(True)}
            found.append(sealer.seal_object(obj, subject, READABLE_EMAIL_LOOKUP_FIELDS)[0])
        tx.append(SnovAnswered(request_id=f"snov-{task}-p", call="emails_poll", task_id=task, outcome="ok",
                               elapsed_ms=5, status=200, credits=len(emails),
                               results=_raw([{"officer_id": officer_id, "domain": domain,
                                              "state": "found" if emails else "none", "emails": found}])))
