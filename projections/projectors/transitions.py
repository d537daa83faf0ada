"""The processing state machine as pure steps: (row, record) -> changed?, error code.

    detected ─► status_queued ─► (status fetched) ─► strike_off_confirmed ─► officers_queued ─► completed
        │              │                 └─ not of interest ──────────────────────────────────► completed
        │              └─► failed (request abandoned: NOT_FOUND, MAX_RETRIES, …)
        └─ stream event carrying the status: counts as the fetch (no REST call)

The projector only follows facts. Decisions (retry with a new request id, give
up, complete without a call) are the live policy's, appended as entries in the
same transaction as the response they answer, so replay needs no settings.
A response or abandonment that names a request other than the one the row is
waiting for (a stale request replaced by a retry) moves nothing.

Times written are the entry's `received_at`, never the clock. Each step returns `(changed, error_code)`; the error code (RATE_LIMIT, TIMEOUT,
NOT_FOUND, SERVER_ERROR, …) is for the backfill job the company belongs to.
"""

from __future__ import annotations

from typing import Callable

from eventlog.ledger.entries import Interest
from eventlog.ledger.store import Record

from projections.payloads import FILING_HISTORY, is_first_gazette_notice, lacks_officers_link
from projections.records import COMPANY_PROFILE, Batch, is_final_page

__all__ = [
    "DETECTED", "STATUS_QUEUED", "STATUS_FETCHED", "STRIKE_OFF_CONFIRMED", "OFFICERS_QUEUED",
    "OFFICERS_FETCHED", "COMPLETED", "FAILED", "STATES", "STEPS", "creates_row", "new_row",
    "confirm_of_interest",
]

DETECTED = "detected"
STATUS_QUEUED = "status_queued"
STATUS_FETCHED = "status_fetched"
STRIKE_OFF_CONFIRMED = "strike_off_confirmed"
OFFICERS_QUEUED = "officers_queued"
OFFICERS_FETCHED = "officers_fetched"
COMPLETED = "completed"
FAILED = "failed"
STATES = (DETECTED, STATUS_QUEUED, STATUS_FETCHED, STRIKE_OFF_CONFIRMED, OFFICERS_QUEUED,
          OFFICERS_FETCHED, COMPLETED, FAILED)

_SETTLED = frozenset((DETECTED, COMPLETED, FAILED))  # not waiting for a request of ours
_REQUEST_ID = {"profile": "status_request_id", "officers": "officers_request_id"}

Row = dict
Step = Callable[[Row, Record, Batch, Interest], "tuple[bool, str | None]"]
UNCHANGED = (False, None)
CHANGED = (True, None)


def new_row(received_at: str) -> dict:
    return {"processing_state": DETECTED, "created_at": received_at, "updated_at": received_at,
            "status_retry_count": 0, "officers_retry_count": 0, "rate_limit_violations": 0,
            "no_officers_link": 0}


def creates_row(record: Record) -> bool:
    """Entries that bring a company into processing when it has no row yet."""
    t = record.event_type
    if t == "stream.event":
        e = record.entry
        if e.resource_kind == FILING_HISTORY:  # type: ignore[attr-defined]
            return e.change != "deleted" and is_first_gazette_notice(e.data)  # type: ignore[attr-defined]
        return e.resource_kind == COMPANY_PROFILE and e.change != "deleted"  # type: ignore[attr-defined]
    return t == "request.queued"


def confirm_of_interest(row: Row, at: str) -> bool:
    """A bulk snapshot showed the company of interest: that is its status, fetched, as a stream
    event carrying it would be. Only a row not waiting on a request of ours moves; True if it did."""
    if row["processing_state"] not in _SETTLED:
        return False
    row["processing_state"] = STRIKE_OFF_CONFIRMED
    row["status_fetched_at"] = at
    row["updated_at"] = at
    return True


def _complete(row: Row, at: str) -> None:
    row["processing_state"] = COMPLETED
    row["completed_at"] = at


def _decide_interest(row: Row, interesting: bool, at: str) -> None:
    if interesting:
        row["processing_state"] = STRIKE_OFF_CONFIRMED
    else:
        _complete(row, at)


def _error(row: Row, text: str, at: str) -> None:
    row["last_error"] = text
    row["last_error_at"] = at


def _is_current(row: Row, kind: str, request_id: str) -> bool:
    """False when the row waits for a different request of this kind (this one is stale)."""
    held = row.get(_REQUEST_ID.get(kind, ""))
    return held is None or held == request_id


# What a first Gazette notice for strike-off says of the company's profile.
_GAZETTE_IMPLIES = {"company_status_detail": "active-proposal-to-strike-off", "company_status": "active"}


def gazette_notice(row: Row, r: Record, batch: Batch, interest: Interest) -> tuple[bool, str | None]:
    """A GAZ1 / GAZ1(A) on /filings is the strike-off proposal itself: when the interest is the
    proposal, the company is confirmed with no status call, as a /companies event carrying the
    status would; whichever stream spoke first, a row already under way or done is left alone
    unless, settled, it now becomes of interest (then the policy completes it without a call
    when its officers are fresh). With another interest the row stays detected: a status call
    decides."""
    e = r.entry
    if e.change == "deleted" or not is_first_gazette_notice(e.data):  # type: ignore[attr-defined]
        return UNCHANGED
    implied = _GAZETTE_IMPLIES.get(interest.field)
    if implied is None or not interest.matches(implied):
        return UNCHANGED
    if row["processing_state"] not in _SETTLED or row["processing_state"] == STRIKE_OFF_CONFIRMED:
        return UNCHANGED
    row["processing_state"] = STRIKE_OFF_CONFIRMED
    row["status_fetched_at"] = r.received_at
    return CHANGED


def stream_event(row: Row, r: Record, batch: Batch, interest: Interest) -> tuple[bool, str | None]:
    e = r.entry
    if e.resource_kind == FILING_HISTORY:  # type: ignore[attr-defined]
        return gazette_notice(row, r, batch, interest)
    if e.resource_kind != COMPANY_PROFILE or e.change == "deleted":  # type: ignore[attr-defined]
        return UNCHANGED
    profile = batch.profile(r)
    if profile is None or profile.company_status is None:
        return UNCHANGED  # status unknown: the policy queues a REST profile request
    row["status_fetched_at"] = r.received_at
    row["no_officers_link"] = 1 if lacks_officers_link(e.data) else 0  # type: ignore[attr-defined]
    state = row["processing_state"]
    if state in _SETTLED:
        if interest.matches(batch.value(r, interest.field)):
            row["processing_state"] = STRIKE_OFF_CONFIRMED
        elif state == DETECTED:
            _complete(row, r.received_at)
    return CHANGED


def request_queued(row: Row, r: Record, batch: Batch, interest: Interest) -> tuple[bool, str | None]:
    e = r.entry
    retries = max(e.attempt - 1, 0)  # type: ignore[attr-defined]
    if e.kind == "profile":  # type: ignore[attr-defined]
        row["processing_state"] = STATUS_QUEUED
        row["status_queued_at"] = r.received_at
        row["status_request_id"] = e.request_id  # type: ignore[attr-defined]
        row["status_retry_count"] = retries
    elif e.kind == "officers":  # type: ignore[attr-defined]
        row["processing_state"] = OFFICERS_QUEUED
        row["officers_queued_at"] = r.received_at
        row["officers_request_id"] = e.request_id  # type: ignore[attr-defined]
        row["officers_retry_count"] = retries
    else:
        return UNCHANGED
    return CHANGED


def response_received(row: Row, r: Record, batch: Batch, interest: Interest) -> tuple[bool, str | None]:
    e = r.entry
    if not _is_current(row, e.kind, e.request_id):  # type: ignore[attr-defined]
        return UNCHANGED
    status = e.status  # type: ignore[attr-defined]
    at = r.received_at
    if status != 200:
        _error(row, f"HTTP {status}", at)
        return True, "NOT_FOUND" if status == 404 else "SERVER_ERROR" if status >= 500 else "HTTP_ERROR"
    if e.kind == "profile":  # type: ignore[attr-defined]
        if batch.profile(r) is None:
            _error(row, "BAD_RESPONSE: the body is not a company profile", at)
            return True, "BAD_RESPONSE"
        row["status_fetched_at"] = at
        row["no_officers_link"] = 1 if lacks_officers_link(e.body) else 0  # type: ignore[attr-defined]
        _decide_interest(row, interest.matches(batch.value(r, interest.field)), at)
        return CHANGED
    if e.kind == "officers":  # type: ignore[attr-defined]
        page = batch.officer_page(r)
        if page is None:
            _error(row, "BAD_RESPONSE: the body is not an officer list", at)
            return True, "BAD_RESPONSE"
        if not is_final_page(page, e.page_start):  # type: ignore[attr-defined]
            return UNCHANGED
        row["officers_fetched_at"] = at
        _complete(row, at)
        return CHANGED
    return UNCHANGED


def rate_limited(row: Row, r: Record, batch: Batch, interest: Interest) -> tuple[bool, str | None]:
    row["last_429_response_at"] = r.received_at
    row["rate_limit_violations"] = (row["rate_limit_violations"] or 0) + 1
    _error(row, "RATE_LIMIT", r.received_at)
    return True, "RATE_LIMIT"


def transport_error(row: Row, r: Record, batch: Batch, interest: Interest) -> tuple[bool, str | None]:
    error = r.entry.error  # type: ignore[attr-defined]
    _error(row, error, r.received_at)
    head = error.split(":", 1)[0].strip()
    code = head.upper().replace(" ", "_")[:30] if head and ":" in error else "NETWORK_ERROR"
    return True, code


def request_abandoned(row: Row, r: Record, batch: Batch, interest: Interest) -> tuple[bool, str | None]:
    e = r.entry
    if not _is_current(row, e.kind, e.request_id):  # type: ignore[attr-defined]
        return UNCHANGED
    row["processing_state"] = FAILED
    _error(row, f"{e.error_code}: {e.reason}" if e.reason else e.error_code, r.received_at)  # type: ignore[attr-defined]
    return True, e.error_code  # type: ignore[attr-defined]


def company_completed(row: Row, r: Record, batch: Batch, interest: Interest) -> tuple[bool, str | None]:
    _complete(row, r.received_at)
    return CHANGED


STEPS: dict[str, Step] = {
    "stream.event": stream_event,
    "request.queued": request_queued,
    "response.received": response_received,
    "request.rate_limited": rate_limited,
    "request.transport_error": transport_error,
    "request.abandoned": request_abandoned,
    "company.completed": company_completed,
}
