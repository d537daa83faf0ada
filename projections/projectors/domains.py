"""`domains`: one row per company looked up on Snov.io (company name -> web domain).

A row appears with the start that asks for the company's name (`snov.sent`, state
`looking_up`) and takes the task's fate: `refused` (nothing was started: it may be asked
again), `lost` (no readable answer to the start: never asked again), `not_enough_credits`, or,
from the completed result, `found` (with its domain), `none`, `missing` (the result left it
out) or `ambiguous` (two different domains for one name). A company whose name was already
answered for another takes that answer (`snov.reused`, `source_company` set) without a request.

Only a row still `looking_up` under the answering task changes, so a result recorded twice (two
processes polling one task) changes nothing the second time. Every statement is a pure function
of the entry, run in ledger order, so replay writes the same rows.
"""

from __future__ import annotations

from typing import NamedTuple

import apsw
import msgspec

from projections.records import Batch
from projections.rows import Statements
from projections.projectors.snov_tasks import POLL_ENDS, poll_outcome, start_outcome

NAME = "domains"
VERSION = 1
TABLES = ("domains",)
LOOKUP_INDEXES = ("idx_domains_task",)

RETRYABLE = ("refused", "not_enough_credits")  # nothing was started: the name may be asked again


class DomainItem(msgspec.Struct, frozen=True):
    """One company of a domain start, as recorded in its `snov.sent`."""

    company_number: str
    name: str
    key: str  # the name as compared (snov_api.name_key)


class DomainResult(msgspec.Struct, frozen=True):
    """One company's answer in a completed task, as recorded in its `snov.answered`."""

    company_number: str
    state: str  # found, none, missing, ambiguous
    domain: str | None = None


_items = msgspec.json.Decoder(list[DomainItem])
_results = msgspec.json.Decoder(list[DomainResult])

_ASKED = ("INSERT INTO domains(company_number, company_name, name_key, state, domain, task_id, source_company, "
          "requested_at, answered_at) VALUES (?, ?, ?, 'looking_up', NULL, ?, NULL, ?, NULL) "
          "ON CONFLICT(company_number) DO UPDATE SET company_name = excluded.company_name, "
          "name_key = excluded.name_key, state = 'looking_up', domain = NULL, task_id = excluded.task_id, "
          "source_company = NULL, requested_at = excluded.requested_at, answered_at = NULL")
_TASK_ENDED = "UPDATE domains SET state = ?, answered_at = ? WHERE task_id = ? AND state = 'looking_up'"
_RESULT = ("UPDATE domains SET state = ?, domain = ?, answered_at = ? "
           "WHERE company_number = ? AND task_id = ? AND state = 'looking_up'")
_REUSED = ("INSERT INTO domains(company_number, company_name, name_key, state, domain, task_id, source_company, "
           "requested_at, answered_at) SELECT ?, ?, name_key, state, domain, task_id, company_number, ?, ? "
           "FROM domains WHERE company_number = ? ON CONFLICT(company_number) DO UPDATE SET "
           "company_name = excluded.company_name, name_key = excluded.name_key, state = excluded.state, "
           "domain = excluded.domain, task_id = excluded.task_id, source_company = excluded.source_company, "
           "requested_at = excluded.requested_at, answered_at = excluded.answered_at")


def apply(conn: apsw.Connection, batch: Batch) -> None:
    sql = Statements()
    for r in batch.records:
        t = r.event_type
        if not t.startswith("snov."):
            continue
        e = r.entry
        if t == "snov.sent" and e.call == "domains_start":  # type: ignore[attr-defined]
            for item in decode_items(e.items):  # type: ignore[attr-defined]
                sql.add(_ASKED, (item.company_number, item.name, item.key, e.task_id, r.received_at))  # type: ignore[attr-defined]
        elif t == "snov.answered" and e.call == "domains_start":  # type: ignore[attr-defined]
            state = start_outcome(e.outcome)  # type: ignore[attr-defined]
            if state != "polling":
                sql.add(_TASK_ENDED, (state, r.received_at, e.task_id))  # type: ignore[attr-defined]
        elif t == "snov.answered" and e.call == "domains_poll":  # type: ignore[attr-defined]
            if e.outcome in POLL_ENDS and e.outcome != "ok":  # type: ignore[attr-defined]
                sql.add(_TASK_ENDED, (poll_outcome(e.outcome), r.received_at, e.task_id))  # type: ignore[attr-defined]
            elif e.outcome == "ok":  # type: ignore[attr-defined]
                for res in _decode(_results, e.results):  # type: ignore[attr-defined]
                    sql.add(_RESULT, (res.state, res.domain, r.received_at, res.company_number, e.task_id))  # type: ignore[attr-defined]
        elif t == "snov.reused":
            sql.add(_REUSED, (e.company_number, e.name, r.received_at, r.received_at, e.source_company))  # type: ignore[attr-defined]
    sql.run(conn)


def _decode(decoder, raw) -> list:
    try:
        return decoder.decode(raw) if raw else []
    except (msgspec.DecodeError, msgspec.ValidationError):
        return []  # a projector never crashes on a payload; the audit reports what won't decode


def decode_items(raw: msgspec.Raw | bytes | str) -> list[DomainItem]:
    """The companies of a domain start, from its recorded items."""
    return _decode(_items, raw.encode() if isinstance(raw, str) else raw)


# --- reads ---------------------------------------------------------------------------------------


class Candidate(NamedTuple):
    company_number: str
    company_name: str


class Known(NamedTuple):
    company_number: str
    state: str


_CANDIDATES = f"""
SELECT s.company_number, c.company_name
FROM company_processing_state s JOIN companies c ON c.company_number = s.company_number
WHERE (s.processing_state IN ('strike_off_confirmed', 'officers_queued', 'officers_fetched')
       OR s.officers_queued_at IS NOT NULL OR s.officers_fetched_at IS NOT NULL)
  AND c.company_name IS NOT NULL AND trim(c.company_name) <> ''
  AND NOT EXISTS (SELECT 1 FROM domains d WHERE d.company_number = s.company_number
                  AND d.state NOT IN {RETRYABLE!r})
ORDER BY s.id LIMIT ?
"""


def needing_lookup(conn: apsw.Connection, limit: int = 200) -> list[Candidate]:
    """Companies of interest with a name and no domain lookup yet (or only ones that started
    nothing), in the order they entered the pipeline."""
    return [Candidate(*row) for row in conn.execute(_CANDIDATES, (limit,))]


def known_names(conn: apsw.Connection, keys: list[str]) -> dict[str, Known]:
    """For each name key, a company already asked about under it (an answered one first), and the
    state of that lookup; names never asked about are absent."""
    out: dict[str, Known] = {}
    if not keys:
        return out
    rows = conn.execute(
        "SELECT name_key, company_number, state FROM domains WHERE name_key IN (SELECT value FROM json_each(?)) "
        f"AND state NOT IN {RETRYABLE!r} ORDER BY state = 'looking_up', rowid",
        (msgspec.json.encode(keys).decode(),))
    for key, number, state in rows:
        out.setdefault(key, Known(number, state))
    return out


def state_counts(conn: apsw.Connection) -> dict[str, int]:
    """Companies by lookup state."""
    return {str(s): int(n) for s, n in conn.execute("SELECT state, count(*) FROM domains GROUP BY 1 ORDER BY 1")}


def domain_rows(conn: apsw.Connection) -> list[tuple]:
    """Every row, in the order they were created (for exports and tests)."""
    return conn.execute("SELECT company_number, company_name, state, domain, source_company FROM domains "
                        "ORDER BY rowid").fetchall()


class FoundDomain(NamedTuple):
    domain: str
    answered_at: str | None


def found_for(conn: apsw.Connection, numbers: list[str]) -> dict[str, FoundDomain]:
    """The domain found for each of `numbers` (companies with none found are absent)."""
    if not numbers:
        return {}
    return {str(n): FoundDomain(str(d), a) for n, d, a in conn.execute(
        "SELECT company_number, domain, answered_at FROM domains WHERE company_number IN "
        "(SELECT value FROM json_each(?)) AND state = 'found' AND domain IS NOT NULL",
        (msgspec.json.encode(numbers).decode(),))}
