"""Policies: read the projections, decide, and return entries to append.

They run live only (never during replay, so replay can't cause a call) and
are idempotent: a sweep appends nothing for work already queued, so running
one at every start-up repairs a crash between a fact and its consequence.
Decisions (retry, give up, complete without a call) become ledger entries, so
projectors only follow facts and replay needs no settings.

Batches: the work of a cancelled batch's own companies is abandoned (CANCELLED)
as it comes due, never queued; finished batches past their `expires_at` are
expired (their rows leave the tables; the ledger keeps them).
"""

from __future__ import annotations

import random
import re
import uuid

import apsw

from eventlog.clock import from_epoch, to_epoch
from eventlog.ledger.entries import (
    HIGH,
    LOW,
    BatchesExpired,
    CompanyCompleted,
    Entry,
    RequestAbandoned,
    RequestQueued,
    TransportError,
)
from projections.projectors import batch_jobs, processing_state
from projections.projectors.request_queue import QueueItem, in_flight
from eventlog.config.settings import Settings

__all__ = ["NO_OFFICERS_LINK", "sweep", "recover_in_flight", "retry_or_abandon", "new_request_id", "valid_company_number",
           "drop_cancelled"]

NO_OFFICERS_LINK = "NO_OFFICERS_LINK"
NO_OFFICERS_LINK_REASON = f"{NO_OFFICERS_LINK}: the company profile has no links.officers"
_VALID = re.compile(r"^[A-Z0-9]{8}$")


def valid_company_number(number: str) -> bool:
    return bool(_VALID.match(number))


def new_request_id(kind: str, company_number: str) -> str:
    return f"{kind}-{company_number}-{uuid.uuid4().hex[:12]}"


def _priority(data_source: str) -> int:
    """Backfill (companies known only from a bulk list) waits behind stream work."""
    return LOW if data_source == "bulk" else HIGH


def drop_cancelled(conn: apsw.Connection, batch_ids: list[str]) -> list[Entry]:
    """Abandon (CANCELLED) the queued or due work of these cancelled batches' own companies."""
    return [RequestAbandoned(request_id=w.request_id or f"cancelled-{w.batch_id}-{w.company_number}",
                             kind=w.kind, company_number=w.company_number, error_code=batch_jobs.CANCELLED,
                             reason=f"batch {w.batch_id} cancelled" + ("" if w.queued else " before this step"))
            for w in processing_state.cancelled_work(conn, batch_ids)]


def sweep(conn: apsw.Connection, settings: Settings, now: float) -> list[Entry]:
    """Everything the projections say should happen next and isn't queued yet."""
    out: list[Entry] = []
    cancelled = batch_jobs.cancelled_open(conn)
    dropped: set[str] = set()
    if cancelled:
        out.extend(drop_cancelled(conn, cancelled))
        dropped = {e.company_number for e in out}  # type: ignore[attr-defined]
    for number, source, batch_id in processing_state.needing_status(conn):
        if number in dropped:
            continue
        if not valid_company_number(number):
            out.append(RequestAbandoned(request_id=f"invalid-{number}", kind="profile",
                                        company_number=number, error_code="BAD_COMPANY_NUMBER",
                                        reason="not 8 characters of A-Z and 0-9"))
            continue
        out.append(RequestQueued(request_id=new_request_id("profile", number), kind="profile",
                                 company_number=number, priority=_priority(source),
                                 cause="status unknown", batch_id=batch_id))
    max_age = settings.officers_max_age_days * 86400.0
    for number, source, fetched_at, batch_id, no_link in processing_state.needing_officers(conn):
        if number in dropped:
            continue
        if no_link:  # nothing behind it: a call would be a wasted 404
            out.append(CompanyCompleted(company_number=number, reason=NO_OFFICERS_LINK_REASON))
            continue
        if fetched_at and now - to_epoch(fetched_at) < max_age:
            out.append(CompanyCompleted(
                company_number=number,
                reason=f"officers fetched {fetched_at}, within {settings.officers_max_age_days:g} days"))
            continue
        out.append(RequestQueued(request_id=new_request_id("officers", number), kind="officers",
                                 company_number=number, priority=_priority(source),
                                 cause="of interest", batch_id=batch_id))
    expired = batch_jobs.expired_batches(conn, from_epoch(now))
    if expired:
        out.append(BatchesExpired(batch_ids=expired))
    return out


def recover_in_flight(conn: apsw.Connection, now: float) -> list[Entry]:
    """Requests a killed worker left in flight: recorded as interrupted and queued again.

    The `request.sent` stays in the window (it may have reached the server);
    the work is simply done again, at the same attempt number.
    """
    out: list[Entry] = []
    for item in in_flight(conn):
        out.append(TransportError(request_id=item.request_id, kind=item.kind,
                                  company_number=item.company_number,
                                  error="interrupted: worker restarted", elapsed_ms=0))
        out.append(_requeue(item, item.attempt, None, "retry after restart"))
    return out


def _requeue(item: QueueItem, attempt: int, not_before: str | None, cause: str) -> RequestQueued:
    return RequestQueued(request_id=new_request_id(item.kind, item.company_number), kind=item.kind,
                         company_number=item.company_number, priority=item.priority,
                         attempt=attempt, not_before=not_before, cause=f"{cause} of {item.request_id}",
                         batch_id=item.batch_id)


def retry_or_abandon(item: QueueItem, error_code: str, reason: str, settings: Settings,
                     now: float, rng: random.Random) -> Entry:
    """Retry with exponential backoff and full jitter, or give up after MAX_RETRIES."""
    if item.attempt >= max(settings.max_retries, 1):
        return RequestAbandoned(request_id=item.request_id, kind=item.kind,
                                company_number=item.company_number, error_code=error_code,
                                reason=f"{reason} after {item.attempt} attempt(s)")
    cap = min(settings.max_retry_delay, settings.initial_retry_delay * 2 ** (item.attempt - 1))
    delay = rng.uniform(0, cap)
    return _requeue(item, item.attempt + 1, from_epoch(now + delay), f"retry ({error_code})")


def requeue_same_attempt(item: QueueItem, cause: str) -> RequestQueued:
    return _requeue(item, item.attempt, None, cause)
