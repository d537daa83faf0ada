"""`request_queue`: the queue is the `request.queued` entries not yet finished.

    request.queued          → a row, status 'queued', ordered by its ledger position
    request.sent            → 'in_flight'
    response.received       → gone (an officers fetch: gone on its final page or any non-200;
                              between pages it stays in flight, the next page is sent under the same id)
    request.rate_limited    → 'queued' again, not before the cooldown: the same request is sent later
    request.transport_error → gone (a retry is a new request, queued by the policy)
    request.abandoned       → gone

Writes don't read the queue, so they run as ordered `executemany` runs.
"""

from __future__ import annotations

import apsw

from projections.records import Batch, is_final_page
from projections.rows import Statements

NAME = "request_queue"
VERSION = 1
TABLES = ("request_queue",)
LOOKUP_INDEXES: tuple[str, ...] = ()

_QUEUE = (
    "INSERT INTO request_queue(request_id, company_number, kind, priority, attempt, not_before, "
    "queued_at, queued_position, status, cause, batch_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?) "
    "ON CONFLICT(request_id) DO UPDATE SET company_number = excluded.company_number, kind = excluded.kind, "
    "priority = excluded.priority, attempt = excluded.attempt, not_before = excluded.not_before, "
    "queued_at = excluded.queued_at, queued_position = excluded.queued_position, status = 'queued', "
    "cause = excluded.cause, batch_id = excluded.batch_id"
)
_SENT = "UPDATE request_queue SET status = 'in_flight' WHERE request_id = ?"
_REQUEUE = "UPDATE request_queue SET status = 'queued', not_before = ? WHERE request_id = ?"
_DONE = "DELETE FROM request_queue WHERE request_id = ?"
_TYPES = frozenset(("request.queued", "request.sent", "response.received", "request.rate_limited",
                    "request.transport_error", "request.abandoned"))


def apply(conn: apsw.Connection, batch: Batch) -> None:
    sql = Statements()
    for r in batch.records:
        t = r.event_type
        if t not in _TYPES:
            continue
        e = r.entry
        if t == "request.queued":
            sql.add(_QUEUE, (e.request_id, batch.company(r) or e.company_number, e.kind, e.priority,
                             e.attempt, e.not_before, r.received_at, r.position, e.cause, e.batch_id))
        elif t == "request.sent":
            sql.add(_SENT, (e.request_id,))
        elif t == "request.rate_limited":
            sql.add(_REQUEUE, (e.cooldown_until, e.request_id))
        elif t == "response.received":
            if e.kind == "officers" and e.status == 200:
                page = batch.officer_page(r)
                if page is not None and not is_final_page(page, e.page_start):
                    continue
            sql.add(_DONE, (e.request_id,))
        else:
            sql.add(_DONE, (e.request_id,))
    sql.run(conn)
