"""The priority queue (`PriorityQueueManager` of the seeds), read from its projection.

Nothing is held only in memory: the queue is the `request_queue` projection of
`request.queued` entries not yet finished, so a restart finds it as it was.
Order: HIGH before LOW, FIFO (ledger position) within a priority, a retry
waits for its `not_before`, and a company never has two requests of one kind
in flight.
"""

from __future__ import annotations

import apsw
import msgspec

from eventlog.clock import from_epoch, to_epoch
from eventlog.ledger.entries import PRIORITY_NAMES

__all__ = ["QueueItem", "next_item", "depth_by_priority", "earliest_not_before", "in_flight"]


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
