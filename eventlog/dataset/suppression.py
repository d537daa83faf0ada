"""The suppression list: who must never be delivered, as the ledger records it.

`suppress add|remove` append `suppression.added` / `suppression.removed` entries; the list is
their fold, in ledger order. An entry names a subject, never data: `officer:<id>`,
`company:<number>`, or `email:<sha256>` of the trimmed, lower-cased address (the address itself
is not recorded, so the list can be shown and kept without holding what it protects).

The entries are found through the ledger's unique `event_id` index (their ids start with their
tag), so reading the list costs a few index steps however long the ledger is, and needs no table
of its own: an export reads it inside its own snapshot.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import apsw

from eventlog.errors import DatasetError
from eventlog.ledger.entries import SuppressionAdded, SuppressionRemoved, decode, normalise_company_number
from eventlog.privacy import BadSubject, email_subject, officer_subject

__all__ = ["Suppressed", "parse_target", "suppressed", "active_subjects", "company_subject"]

_COMPANY = re.compile(r"[A-Z0-9]{8}")
# Both tags start "suppression." and a natural event id is "<tag>:<uuid>": one index range.
_READ = ("SELECT event_id, event_data, received_at FROM event_log WHERE event_id >= ? AND event_id < ? "
         "ORDER BY id")


class Suppressed(NamedTuple):
    subject: str
    since: str  # when it was (last) added


def company_subject(number: str) -> str:
    return "company:" + (normalise_company_number(number) or "")


def parse_target(text: str) -> str:
    """What the operator typed as a subject: `officer:`/`company:`/`email:` prefixed, an e-mail
    address (has an @), a company number (8 letters or digits, short numbers zero-padded), or
    else an officer id."""
    value = text.strip()
    kind, sep, rest = value.partition(":")
    try:
        if sep and kind == "company" and rest.strip():
            number = normalise_company_number(rest) or ""
            if not _COMPANY.fullmatch(number):
                raise DatasetError("not a company number: expected 8 letters or digits, e.g. 05954546 or SC123456")
            return "company:" + number
        if sep and kind == "officer":
            return officer_subject(rest)
        if sep and kind == "email":
            if "@" in rest:
                return email_subject(rest)
            if re.fullmatch(r"[0-9a-f]{64}", rest.strip()):
                return "email:" + rest.strip()
            raise DatasetError("not an e-mail subject: expected email:<address> or email:<sha256 hex>")
        if "@" in value:
            return email_subject(value)
        number = normalise_company_number(value) or ""
        if value.isdigit() or (_COMPANY.fullmatch(number) and any(c.isdigit() for c in number)):
            if not _COMPANY.fullmatch(number):
                raise DatasetError("not a company number: expected 8 letters or digits, e.g. 05954546 or SC123456")
            return "company:" + number
        return officer_subject(value)
    except BadSubject as exc:
        raise DatasetError(str(exc)) from None


def suppressed(conn: apsw.Connection) -> list[Suppressed]:
    """The subjects suppressed now, in the order they were (last) added."""
    state: dict[str, str] = {}
    for _, data, received_at in conn.execute(_READ, ("suppression.", "suppression/")):
        entry = decode(data)
        if isinstance(entry, SuppressionAdded):
            state.pop(entry.subject, None)
            state[entry.subject] = received_at
        elif isinstance(entry, SuppressionRemoved):
            state.pop(entry.subject, None)
    return [Suppressed(s, at) for s, at in state.items()]


def active_subjects(conn: apsw.Connection) -> frozenset[str]:
    return frozenset(s.subject for s in suppressed(conn))
