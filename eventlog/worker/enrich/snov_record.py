"""What a Snov.io lookup puts in the ledger, and how a task's batch is read back from it.

A start records its items: for domains `{company_number, name, key}` (company names are not
personal), for e-mails `{officer_id, company_number, domain}` with the person's first and last
names sealed under the officer's subject (`eventlog.privacy`), so forgetting the officer erases
them. A completed poll records the matched results: per company its state and domain; per
person its state and each address found, the address sealed the same way and its statuses in
clear. Nothing else of an answer is kept: its raw body holds names.

After a restart, a task still running is polled again and its result matched against the batch
rebuilt from these items (`domain_batch`, `email_batch`): no state outside the ledger.
"""

from __future__ import annotations

from typing import Sequence

import apsw
import msgspec

from eventlog.clock import from_epoch
from eventlog.privacy import READABLE_EMAIL_LOOKUP_FIELDS, Opener, Sealer, officer_subject
from eventlog.worker.enrich.snov_api import DomainBatch, EmailBatch, EmailRow, name_key
from eventlog.worker.enrich.snov_match import DomainMatch, EmailMatch
from projections.projectors import domains, emails

__all__ = ["DomainLookup", "EmailLookup", "domain_items", "email_items", "domain_results", "email_results",
           "domain_batch", "email_batch", "lookup_key"]

_ITEM_CLEAR = frozenset({"officer_id", "company_number", "domain"})
_enc = msgspec.json.encode


class DomainLookup(msgspec.Struct, frozen=True):
    company_number: str
    name: str


class EmailLookup(msgspec.Struct, frozen=True):
    officer_id: str
    company_number: str
    row: EmailRow


def lookup_key(item: DomainLookup | EmailLookup) -> str:
    """The de-duplication key of a lookup: the company name as compared, or officer + domain."""
    if isinstance(item, DomainLookup):
        return "domain:" + name_key(item.name)
    return f"email:{item.officer_id}|{name_key(item.row.domain)}"


def _raw(value: object) -> msgspec.Raw:
    return msgspec.Raw(_enc(value))


def domain_items(lookups: Sequence[DomainLookup]) -> msgspec.Raw:
    return _raw([{"company_number": d.company_number, "name": d.name, "key": name_key(d.name)} for d in lookups])


def email_items(conn: apsw.Connection, now: float, lookups: Sequence[EmailLookup]) -> msgspec.Raw:
    """The rows of an e-mail start, names sealed; inside the transaction that appends it (it may
    create the officer's key, which must commit with the entry)."""
    sealer = Sealer(conn, from_epoch(now))
    out = []
    for e in lookups:
        obj = {"officer_id": _raw(e.officer_id), "company_number": _raw(e.company_number),
               "domain": _raw(e.row.domain), "first_name": _raw(e.row.first_name),
               "last_name": _raw(e.row.last_name)}
        sealed, _ = sealer.seal_object(obj, officer_subject(e.officer_id), _ITEM_CLEAR)
        out.append(sealed)
    return _raw(out)


def domain_results(items: Sequence[domains.DomainItem], match: DomainMatch) -> msgspec.Raw:
    """Per company of the start (in its order, as the batch was built), its outcome."""
    return _raw([{"company_number": item.company_number, "state": o.state, "domain": o.domain}
                 for item, o in zip(items, match.outcomes)])


def email_results(conn: apsw.Connection, now: float, items: Sequence[emails.EmailItem],
                  match: EmailMatch | None, unmatched: Sequence[emails.EmailItem] = ()) -> msgspec.Raw:
    """Per row of the start, its outcome with each address sealed under the officer's subject;
    `unmatched` rows (whose names could no longer be read: the officer was forgotten meanwhile)
    are recorded as missing, with nothing found kept."""
    sealer = Sealer(conn, from_epoch(now))
    out = []
    for item, o in zip(items, match.outcomes if match else ()):
        found = []
        for finding in o.emails:
            obj = {k: _raw(v) for k, v in msgspec.structs.asdict(finding).items() if v is not None}
            sealed, _ = sealer.seal_object(obj, officer_subject(item.officer_id), READABLE_EMAIL_LOOKUP_FIELDS)
            found.append(sealed)
        out.append({"officer_id": item.officer_id, "domain": item.domain, "state": o.state, "emails": found})
    for item in unmatched:
        out.append({"officer_id": item.officer_id, "domain": item.domain, "state": "missing", "emails": []})
    return _raw(out)


def domain_batch(items_text: str) -> tuple[list[domains.DomainItem], DomainBatch | None]:
    items = domains.decode_items(items_text)
    return items, (DomainBatch(tuple(i.name for i in items)) if items else None)


class _Names(msgspec.Struct):
    first_name: str
    last_name: str


_obj = msgspec.json.Decoder(list[dict[str, msgspec.Raw]])


def email_batch(conn: apsw.Connection, items_text: str
                ) -> tuple[list[emails.EmailItem], EmailBatch | None, list[emails.EmailItem]]:
    """The start's rows whose names can still be opened, their batch, and the rows that can't."""
    items = emails.decode_items(items_text)
    opener = Opener(conn)
    readable, rows, unreadable = [], [], []
    for item, obj in zip(items, _obj.decode(items_text.encode())):
        opened = opener.open_object(obj)
        names = None
        if not opened.erased and opened.fields is not None:
            try:
                names = msgspec.json.decode(_enc(opened.fields), type=_Names)
            except (msgspec.DecodeError, msgspec.ValidationError):
                names = None
        if names is None:
            unreadable.append(item)
            continue
        readable.append(item)
        rows.append(EmailRow(first_name=names.first_name, last_name=names.last_name, domain=item.domain))
    return readable, (EmailBatch(tuple(rows)) if rows else None), unreadable
