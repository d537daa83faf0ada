"""`emails`: one row per e-mail address found for an officer on a company's domain.

A lookup (officer + domain) gets one row when its start is recorded (`looking_up`, no address)
and keeps it, with the task's fate (`refused`, `lost`, `not_enough_credits`, `none`, `missing`,
`ambiguous`), unless addresses were found: then that row gives way to one row per address
(`found`), each with its statuses as Snov.io sent them (smtp_status, is_valid_format, ...).

The addresses are personal: the ledger holds them sealed under the officer's subject, and this
projector opens them (`eventlog.privacy.Opener`). An officer who was forgotten opens as erased,
so replay writes `[erased]` where the live run wrote the address and then, on the
`person.forgotten` entry, rewrote it as `[erased]`: the two tables end the same. Only rows still
`looking_up` under the answering task change, so a result recorded twice changes nothing.
"""

from __future__ import annotations

from typing import NamedTuple

import apsw
import msgspec

from eventlog.privacy import ERASED, Opener
from projections.records import Batch
from projections.rows import Statements
from projections.projectors.domains import RETRYABLE
from projections.projectors.officers import current_condition
from projections.projectors.snov_tasks import POLL_ENDS, poll_outcome, start_outcome

NAME = "emails"
VERSION = 1
TABLES = ("emails",)
LOOKUP_INDEXES = ("idx_emails_officer", "idx_emails_task")

STATUS_FIELDS = ("smtp_status", "is_valid_format", "is_disposable", "is_webmail", "is_gibberish",
                 "unknown_status_reason")


class EmailItem(msgspec.Struct, frozen=True):
    """One row of an e-mail start as recorded (the person's names are in its sealed envelope)."""

    officer_id: str
    company_number: str
    domain: str


class EmailResult(msgspec.Struct, frozen=True):
    """One looked-up row's answer in a completed task; `emails` are sealed finding objects."""

    officer_id: str
    domain: str
    state: str  # found, none, missing, ambiguous
    emails: list[dict[str, msgspec.Raw]] = []


class _Finding(msgspec.Struct):
    smtp_status: str | None = None
    is_valid_format: bool | None = None
    is_disposable: bool | None = None
    is_webmail: bool | None = None
    is_gibberish: bool | None = None
    unknown_status_reason: str | None = None


_items = msgspec.json.Decoder(list[EmailItem])
_results = msgspec.json.Decoder(list[EmailResult])
_finding = msgspec.json.Decoder(_Finding)
_text = msgspec.json.Decoder(str)

_DROP = "DELETE FROM emails WHERE officer_id = ? AND domain = ?"
_ASKED = ("INSERT INTO emails(officer_id, company_number, domain, state, task_id, requested_at) "
          "VALUES (?, ?, ?, 'looking_up', ?, ?)")
_TASK_ENDED = "UPDATE emails SET state = ?, answered_at = ? WHERE task_id = ? AND state = 'looking_up'"
_WAITING = "officer_id = ? AND domain = ? AND task_id = ? AND state = 'looking_up'"
_FOUND = ("INSERT INTO emails(officer_id, company_number, domain, state, email, smtp_status, is_valid_format, "
          "is_disposable, is_webmail, is_gibberish, unknown_status_reason, task_id, requested_at, answered_at) "
          "SELECT officer_id, company_number, domain, 'found', ?, ?, ?, ?, ?, ?, ?, task_id, requested_at, ? "
          f"FROM emails WHERE {_WAITING}")
_ANSWERED = f"UPDATE emails SET state = ?, answered_at = ? WHERE {_WAITING}"
_GIVE_WAY = f"DELETE FROM emails WHERE {_WAITING}"
_ERASE = f"UPDATE emails SET email = '{ERASED}' WHERE officer_id = ? AND email IS NOT NULL"


def apply(conn: apsw.Connection, batch: Batch) -> None:
    sql = Statements()
    opener: Opener | None = None
    for r in batch.records:
        t = r.event_type
        if t == "person.forgotten":
            kind, _, rest = r.entry.subject.partition(":")  # type: ignore[attr-defined]
            if kind == "officer":
                sql.add(_ERASE, (rest,))
            continue
        if not t.startswith("snov."):
            continue
        e = r.entry
        if t == "snov.sent" and e.call == "emails_start":  # type: ignore[attr-defined]
            for item in decode_items(e.items):  # type: ignore[attr-defined]
                sql.add(_DROP, (item.officer_id, item.domain))
                sql.add(_ASKED, (item.officer_id, item.company_number, item.domain, e.task_id, r.received_at))  # type: ignore[attr-defined]
        elif t == "snov.answered" and e.call == "emails_start":  # type: ignore[attr-defined]
            state = start_outcome(e.outcome)  # type: ignore[attr-defined]
            if state != "polling":
                sql.add(_TASK_ENDED, (state, r.received_at, e.task_id))  # type: ignore[attr-defined]
        elif t == "snov.answered" and e.call == "emails_poll":  # type: ignore[attr-defined]
            if e.outcome in POLL_ENDS and e.outcome != "ok":  # type: ignore[attr-defined]
                sql.add(_TASK_ENDED, (poll_outcome(e.outcome), r.received_at, e.task_id))  # type: ignore[attr-defined]
            elif e.outcome == "ok":  # type: ignore[attr-defined]
                if opener is None:
                    opener = Opener(conn)  # one per batch: it reads the forgotten list once
                _results_of(sql, opener, r, e)
    sql.run(conn)


def _results_of(sql: Statements, opener: Opener, r, e) -> None:
    for res in _decode(_results, e.results):
        where = (res.officer_id, res.domain, e.task_id)
        if res.state != "found" or not res.emails:
            sql.add(_ANSWERED, (res.state, r.received_at, *where))
            continue
        for sealed in res.emails:
            status = _decode_one(_finding, sealed) or _Finding()
            sql.add(_FOUND, (_address(opener, sealed), status.smtp_status, status.is_valid_format,
                             status.is_disposable, status.is_webmail, status.is_gibberish,
                             status.unknown_status_reason, r.received_at, *where))
        sql.add(_GIVE_WAY, where)


def _address(opener: Opener, sealed: dict[str, msgspec.Raw]) -> str:
    """The finding's address, or `[erased]` when its officer's key is gone (or was never there)."""
    opened = opener.open_object(sealed)
    if opened.erased or opened.fields is None or "email" not in opened.fields:
        return ERASED
    try:
        return _text.decode(opened.fields["email"])
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ERASED


def _decode_one(decoder, obj: dict[str, msgspec.Raw]):
    try:
        return decoder.decode(msgspec.json.encode(obj))
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _decode(decoder, raw) -> list:
    try:
        return decoder.decode(raw) if raw else []
    except (msgspec.DecodeError, msgspec.ValidationError):
        return []  # a projector never crashes on a payload; the audit reports what won't decode


def decode_items(raw: msgspec.Raw | bytes | str) -> list[EmailItem]:
    """The rows of an e-mail start, from its recorded items (their sealed names left aside)."""
    return _decode(_items, raw.encode() if isinstance(raw, str) else raw)


# --- reads ---------------------------------------------------------------------------------------


class Candidate(NamedTuple):
    officer_id: str
    company_number: str
    name: str
    domain: str


def needing_lookup(conn: apsw.Connection, roles: tuple[str, ...], limit: int = 500) -> list[Candidate]:
    """Current officers in `roles` of companies whose domain was found, with no e-mail lookup on
    that domain yet (or only ones that started nothing), company by company."""
    marks = ",".join("?" * len(roles))
    return [Candidate(*row) for row in conn.execute(
        "SELECT o.officer_id, o.company_number, o.name, d.domain FROM domains d "
        f"JOIN (SELECT * FROM officers WHERE {current_condition()}) o ON o.company_number = d.company_number "
        f"WHERE d.state = 'found' AND d.domain IS NOT NULL AND o.officer_id IS NOT NULL "
        f"AND o.name IS NOT NULL AND o.officer_role IN ({marks}) "
        "AND NOT EXISTS (SELECT 1 FROM emails e WHERE e.officer_id = o.officer_id AND e.domain = d.domain "
        f"AND e.state NOT IN {RETRYABLE!r}) ORDER BY d.rowid, o.id LIMIT ?", (*roles, limit))]


def state_counts(conn: apsw.Connection) -> dict[str, int]:
    """Rows by state: addresses found, and lookups that found none (or are under way)."""
    return {str(s): int(n) for s, n in conn.execute("SELECT state, count(*) FROM emails GROUP BY 1 ORDER BY 1")}


def email_rows(conn: apsw.Connection) -> list[tuple]:
    """Every row, in the order they were written (for exports and tests)."""
    return conn.execute("SELECT officer_id, company_number, domain, state, email, smtp_status FROM emails "
                        "ORDER BY id").fetchall()


class FoundEmail(NamedTuple):
    email: str
    smtp_status: str | None
    is_valid_format: bool | None
    is_disposable: bool | None
    is_webmail: bool | None
    is_gibberish: bool | None
    answered_at: str | None


def found_for(conn: apsw.Connection, officer_ids: list[str]) -> dict[tuple[str, str], list[FoundEmail]]:
    """The addresses found for each of `officer_ids`, by (officer id, company number), in the
    order they were written; erased addresses are left out."""
    out: dict[tuple[str, str], list[FoundEmail]] = {}
    if not officer_ids:
        return out
    rows = conn.execute(
        "SELECT officer_id, company_number, email, smtp_status, is_valid_format, is_disposable, is_webmail, "
        "is_gibberish, answered_at FROM emails WHERE officer_id IN (SELECT value FROM json_each(?)) "
        f"AND state = 'found' AND email IS NOT NULL AND email <> '{ERASED}' ORDER BY id",
        (msgspec.json.encode(officer_ids).decode(),))
    for oid, number, email, smtp, valid, disposable, webmail, gibberish, answered in rows:
        out.setdefault((oid, number), []).append(FoundEmail(
            email, smtp, _flag(valid), _flag(disposable), _flag(webmail), _flag(gibberish), answered))
    return out


def officers_with_address(conn: apsw.Connection, address: str) -> list[str]:
    """The officers an address was found for (compared trimmed and lower-cased), each once."""
    return [str(r[0]) for r in conn.execute(
        "SELECT DISTINCT officer_id FROM emails WHERE lower(trim(email)) = ? ORDER BY officer_id",
        (address.strip().lower(),))]


def _flag(value: object) -> bool | None:
    return None if value is None else bool(value)
