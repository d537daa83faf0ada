"""`request_queue`: the queue is the `request.queued` entries not yet finished.

    request.queued          → a row, status 'queued', ordered by its ledger position
    request.sent            → 'in_flight'
    response.received       → gone (an officers fetch: gone on its final page or any non-200;
                              between pages it stays in flight, the next page is sent under the same id)
    request.rate_limited    → 'queued' again, not before the cooldown: the same request is sent later
    request.transport_error → gone (a retry is a new request, queued by the policy)
    request.abandoned       → gone
    company.completed       → the company's requests still only queued are gone (it left the
                              pipeline without them: e.g. a bulk snapshot showed it no longer of
                              interest); one in flight finishes and is recorded

Writes don't read the queue, so they run as ordered `executemany` runs.

The reads below are the priority queue the senders pull from: nothing is held only in memory,
so a restart finds the queue as it was. Order: HIGH before LOW, FIFO (ledger position) within a
priority, a retry waits for its `not_before`, and a company never has two requests of one kind
in flight.
"""

from __future__ import annotations

import apsw
import msgspec

from eventlog.clock import from_epoch, to_epoch
from eventlog.ledger.entries import PRIORITY_NAMES

from projections.records import Batch, is_final_page
from projections.rows import Statements

NAME = "request_queue"
VERSION = 3  # 3: paging follows the items returned (next_page_start)
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
_LEFT = "DELETE FROM request_queue WHERE company_number = ? AND status = 'queued'"
_TYPES = frozenset(("request.queued", "request.sent", "response.received", "request.rate_limited",
                    "request.transport_error", "request.abandoned", "company.completed"))


def apply(conn: apsw.Connection, batch: Batch) -> None:
    sql = Statements()
    for r in batch.records:
        t = r.event_type
        if t not in _TYPES:
            continue
        e = r.entry
        if t == "company.completed":
            sql.add(_LEFT, (batch.company(r) or e.company_number,))
        elif t == "request.queued":
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


# --- reads: the queue ---------------------------------------------------------------------------


class QueueItem(msgspec.Struct, frozen=True):
    request_id: str
    company_number: str
    kind: str
    priority: int
    attempt: int
    batch_id: str | None = None


_COLUMNS = "request_id, company_number, kind, priority, attempt, batch_id"

_NEXT = f"""
SELECT {_COLUMNS} FROM request_queue AS q
WHERE q.status = 'queued'
  AND (q.not_before IS NULL OR q.not_before <= ?)
  AND NOT EXISTS (
      SELECT 1 FROM request_queue AS f
      WHERE f.company_number = q.company_number AND f.kind = q.kind AND f.status = 'in_flight')
ORDER BY q.priority, q.queued_position
LIMIT 1
"""


def next_item(conn: apsw.Connection, now: float) -> QueueItem | None:
    row = conn.execute(_NEXT, (from_epoch(now),)).fetchone()
    return QueueItem(*row) if row else None


def in_flight(conn: apsw.Connection) -> list[QueueItem]:
    return [QueueItem(*r) for r in conn.execute(
        f"SELECT {_COLUMNS} FROM request_queue WHERE status = 'in_flight' ORDER BY queued_position")]


def earliest_not_before(conn: apsw.Connection) -> float | None:
    """When the first waiting retry becomes due (None if nothing waits)."""
    row = conn.execute(
        "SELECT min(not_before) FROM request_queue WHERE status = 'queued' AND not_before IS NOT NULL"
    ).fetchone()
    return to_epoch(row[0]) if row and row[0] else None


def depth_by_priority(conn: apsw.Connection) -> dict[str, int]:
    depth = {name: 0 for name in PRIORITY_NAMES.values()}
    for priority, n in conn.execute(
        "SELECT priority, count(*) FROM request_queue GROUP BY priority"
    ):
        depth[PRIORITY_NAMES.get(priority, str(priority))] = n
    return depth


def due_count(conn: apsw.Connection, now: float) -> int:
    """Queued requests that may be sent now (their not_before, if any, has passed)."""
    return conn.execute("SELECT count(*) FROM request_queue WHERE status = 'queued' "
                        "AND (not_before IS NULL OR not_before <= ?)", (from_epoch(now),)).fetchone()[0]
