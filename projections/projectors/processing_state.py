"""`company_processing_state` (the original processing-state schema), with the backfill batches and jobs that follow it.

The rows the batch touches are loaded once, every record is stepped through
`transitions` in ledger order, and the rows are written back once. The interest
predicate in force is the one of the latest `worker.started` entry, kept in
`projection_vars` so that a live run and a replay apply the same predicate at
the same point of the ledger, whatever today's settings say.

A backfill made from a bulk snapshot (`of_interest_as_of`) carries its
companies' status: each goes straight to `strike_off_confirmed`, as a stream
event carrying the status would take it, with no REST status call.
"""

from __future__ import annotations

import apsw
import msgspec

from eventlog.ledger.entries import Interest

from projections.projectors.batch_jobs import Jobs
from projections.records import Batch, backfill_numbers
from projections.rows import Rows, Table
from projections.projectors.transitions import STEPS, confirm_of_interest, creates_row, new_row

NAME = "company_processing_state"
VERSION = 3  # 3: no_officers_link; paging follows the items returned
TABLES = ("company_processing_state", "processing_batches", "batch_jobs")
LOOKUP_INDEXES = ("idx_jobs_status", "idx_jobs_company")

_TABLE = Table("company_processing_state", (
    "id", "company_number", "processing_state", "created_at", "updated_at", "status_queued_at",
    "status_fetched_at", "officers_queued_at", "officers_fetched_at", "completed_at",
    "status_retry_count", "officers_retry_count", "status_request_id", "officers_request_id",
    "last_error", "last_error_at", "last_429_response_at", "rate_limit_violations", "no_officers_link",
), key="company_number", autoid="id")

_TYPES = frozenset(STEPS) | {"backfill.created", "worker.started", "batch.cancelled", "batch.expired"}
_BATCH_ONLY = frozenset(("batch.cancelled", "batch.expired"))
_INTEREST_KEY = "interest"
_GET_VAR = "SELECT value FROM projection_vars WHERE projection = ? AND key = ?"
_SET_VAR = ("INSERT INTO projection_vars(projection, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT(projection, key) DO UPDATE SET value = excluded.value")
_interests: dict[str, Interest] = {}


def load_interest(conn: apsw.Connection) -> Interest:
    row = conn.execute(_GET_VAR, (NAME, _INTEREST_KEY)).fetchone()
    if row is None:
        return Interest()
    found = _interests.get(row[0])
    if found is None:
        found = _interests[row[0]] = msgspec.json.decode(row[0], type=Interest)
    return found


def _save_interest(conn: apsw.Connection, interest: Interest) -> None:
    conn.execute(_SET_VAR, (NAME, _INTEREST_KEY, msgspec.json.encode(interest).decode()))


def apply(conn: apsw.Connection, batch: Batch) -> None:
    records = [r for r in batch.records if r.event_type in _TYPES]
    if not records:
        return
    keys: list[str | None] = []
    batch_ids: list[str] = []
    creates = False
    for r in records:
        if r.event_type == "backfill.created":
            creates = True
            keys.extend(backfill_numbers(r.entry.company_numbers))  # type: ignore[attr-defined]
        elif r.event_type == "batch.cancelled":
            batch_ids.append(r.entry.batch_id)  # type: ignore[attr-defined]
        elif r.event_type not in _BATCH_ONLY and r.event_type != "worker.started":
            keys.append(batch.company(r))
    rows = Rows(_TABLE, conn, keys)
    jobs = Jobs(conn, keys, creates, tuple(batch_ids))
    interest = load_interest(conn)
    restarted = False
    for r in records:
        t = r.event_type
        if t == "worker.started":
            interest = r.entry.interest  # type: ignore[attr-defined]
            restarted = True
            continue
        if t == "backfill.created":
            numbers = backfill_numbers(r.entry.company_numbers)  # type: ignore[attr-defined]
            known = r.entry.of_interest_as_of is not None  # type: ignore[attr-defined]
            for number in numbers:
                row = rows.get(number)
                if row is None:
                    row = rows.create(number, **new_row(r.received_at))
                if known and confirm_of_interest(row, r.received_at):
                    rows.changed(number, row)
            jobs.create(r, numbers, rows.rows)
            continue
        if t == "batch.cancelled":
            jobs.cancel(r)
            continue
        if t == "batch.expired":
            jobs.expire(r)
            continue
        number = batch.company(r)
        if not number:
            continue
        row = rows.get(number)
        created = False
        if row is None:
            if not creates_row(r):
                continue
            row = rows.create(number, **new_row(r.received_at))
            created = True
        changed, error_code = STEPS[t](row, r, batch, interest)
        if changed:
            row["updated_at"] = r.received_at
            rows.changed(number, row)
        if (changed or created) and jobs.active:
            jobs.follow(number, row, error_code, r)
    rows.flush(conn)
    jobs.flush(conn)
    if restarted:  # written whenever a worker started, so the table is the same however batched
        _save_interest(conn, interest)


# --- reads ---------------------------------------------------------------------------------------

_NEEDS_STATUS = """
SELECT s.company_number, coalesce(c.data_source, 'stream'),
       (SELECT j.batch_id FROM batch_jobs j WHERE j.company_number = s.company_number
        ORDER BY j.created_at DESC LIMIT 1)
FROM company_processing_state s LEFT JOIN companies c ON c.company_number = s.company_number
WHERE s.processing_state = 'detected' AND s.status_fetched_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM request_queue q WHERE q.company_number = s.company_number AND q.kind = 'profile')
ORDER BY s.id
"""

_NEEDS_OFFICERS = """
SELECT s.company_number, coalesce(c.data_source, 'stream'), s.officers_fetched_at,
       (SELECT j.batch_id FROM batch_jobs j WHERE j.company_number = s.company_number
        ORDER BY j.created_at DESC LIMIT 1), s.no_officers_link
FROM company_processing_state s LEFT JOIN companies c ON c.company_number = s.company_number
WHERE s.processing_state = 'strike_off_confirmed'
  AND NOT EXISTS (SELECT 1 FROM request_queue q WHERE q.company_number = s.company_number AND q.kind = 'officers')
ORDER BY s.id
"""


def needing_status(conn: apsw.Connection) -> list[tuple[str, str, str | None]]:
    """Companies detected whose status is unknown and not yet asked for:
    (number, data_source, the backfill batch it belongs to), in detection order."""
    return conn.execute(_NEEDS_STATUS).fetchall()


def needing_officers(conn: apsw.Connection) -> list[tuple[str, str, str | None, str | None, int]]:
    """Companies of interest whose officers are not yet asked for: (number, data_source,
    officers_fetched_at of an earlier fetch, batch, 1 if the profile had no links.officers),
    in detection order."""
    return conn.execute(_NEEDS_OFFICERS).fetchall()


def officers_fetched_at(conn: apsw.Connection, company_number: str) -> str | None:
    """When the company's last officers fetch completed (None: never)."""
    row = conn.execute("SELECT officers_fetched_at FROM company_processing_state WHERE company_number = ?",
                       (company_number,)).fetchone()
    return row[0] if row else None


def state_counts(conn: apsw.Connection) -> dict[str, int]:
    """Companies in each processing state."""
    return {str(s): int(n) for s, n in conn.execute(
        "SELECT processing_state, count(*) FROM company_processing_state GROUP BY 1 ORDER BY 1")}


def state_of(conn: apsw.Connection, company_number: str) -> tuple[str, str | None] | None:
    """(processing_state, completed_at) of one company, or None if it is not being processed."""
    return conn.execute("SELECT processing_state, completed_at FROM company_processing_state "
                        "WHERE company_number = ?", (company_number,)).fetchone()


def status_calls_saved(conn: apsw.Connection) -> int:
    """Companies whose status came from the stream event itself, so no REST status call was made."""
    return conn.execute("SELECT count(*) FROM company_processing_state "
                        "WHERE status_fetched_at IS NOT NULL AND status_request_id IS NULL").fetchone()[0]


def awaiting_officers(conn: apsw.Connection) -> list[str]:
    """Companies held as of interest whose officers are still to come (confirmed, or queued)."""
    return [r[0] for r in conn.execute(
        "SELECT company_number FROM company_processing_state "
        "WHERE processing_state IN ('strike_off_confirmed', 'officers_queued') ORDER BY id")]


def in_hand(conn: apsw.Connection, numbers: list[str]) -> set[str]:
    """Those of `numbers` the pipeline holds as done (completed with officers) or under way (any
    state but completed or failed): a bulk snapshot need not bring them in again."""
    return {r[0] for r in conn.execute(
        "SELECT company_number FROM company_processing_state "
        "WHERE company_number IN (SELECT value FROM json_each(?)) "
        "AND (processing_state NOT IN ('completed', 'failed') "
        "     OR (processing_state = 'completed' AND officers_fetched_at IS NOT NULL))",
        (msgspec.json.encode(numbers).decode(),))}


class CancelledWork(msgspec.Struct, frozen=True):
    """A company of a cancelled batch whose work is to be dropped: what to abandon.

    `request_id` is its queued request, else the request its row holds for that step (so the
    abandonment is the current one), else None (nothing was ever asked: any id will do)."""

    company_number: str
    batch_id: str
    kind: str
    request_id: str | None
    queued: bool


_CANCELLED_WORK = """
SELECT j.company_number, j.batch_id, s.processing_state, s.status_request_id, s.officers_request_id,
       (SELECT q.request_id FROM request_queue q WHERE q.company_number = j.company_number
        AND q.status = 'queued' ORDER BY q.queued_position LIMIT 1),
       (SELECT q.kind FROM request_queue q WHERE q.company_number = j.company_number
        AND q.status = 'queued' ORDER BY q.queued_position LIMIT 1)
FROM processing_batches b
JOIN batch_jobs j ON j.batch_id = b.id AND j.status IN ('pending', 'processing')
JOIN company_processing_state s ON s.company_number = j.company_number
LEFT JOIN companies c ON c.company_number = j.company_number
WHERE b.id IN (SELECT value FROM json_each(?))
  AND coalesce(c.data_source, 'stream') = 'bulk'
  AND NOT EXISTS (SELECT 1 FROM request_queue f WHERE f.company_number = j.company_number AND f.status = 'in_flight')
ORDER BY j.batch_id, j.sequence
"""


def cancelled_work(conn: apsw.Connection, batch_ids: list[str]) -> list[CancelledWork]:
    """The work of these batches' open jobs to drop: companies known only from a batch (`bulk`),
    with a request queued, or waiting for one; nothing in flight (that finishes and is recorded).
    Stream work (`stream`, `both`) is never a batch's to drop."""
    out = []
    for number, batch_id, state, status_rid, officers_rid, queued_rid, queued_kind in conn.execute(
            _CANCELLED_WORK, (msgspec.json.encode(batch_ids).decode(),)):
        if queued_rid is not None:
            out.append(CancelledWork(number, batch_id, queued_kind, queued_rid, True))
        elif state == "detected":
            out.append(CancelledWork(number, batch_id, "profile", status_rid, False))
        elif state == "strike_off_confirmed":
            out.append(CancelledWork(number, batch_id, "officers", officers_rid, False))
    return out
