"""`snov_request_log`: one row per Snov.io request, what the enrichment limiter counts.

The Snov.io twin of `api_rate_limit_log`: a row appears with the `snov.sent` entry, which is
committed before the socket write (every token, balance, start and poll request: Snov.io counts
them all), and its `id` is that entry's ledger position. The answer (`snov.answered`) fills
`response_status`, `outcome`, `processing_time_ms` and, for a 429 or a 5xx, `cooldown_until`
into the newest row of that request id still waiting. `outcome IS NULL` is the one definition
of "still on its way".

Readers (the enrichment limiter and stage, `status`, `/metrics`) ask through the functions
below; the audit recomputes everything from the ledger instead.
"""

from __future__ import annotations

import apsw

from eventlog.clock import from_epoch
from projections.records import Batch
from projections.rows import Statements

NAME = "snov_request_log"
VERSION = 1
TABLES = ("snov_request_log",)
LOOKUP_INDEXES = ("idx_snov_request_log_request",)

WAITING = "outcome IS NULL"
_SENT = ("INSERT INTO snov_request_log(id, timestamp, call, request_id, task_id) VALUES (?, ?, ?, ?, ?)")
_ANSWERED = ("UPDATE snov_request_log SET response_status = ?, outcome = ?, processing_time_ms = ?, "
             "cooldown_until = ? WHERE id = (SELECT max(id) FROM snov_request_log "
             f"WHERE request_id = ? AND {WAITING})")


def apply(conn: apsw.Connection, batch: Batch) -> None:
    sql = Statements()
    for r in batch.records:
        if r.event_type == "snov.sent":
            e = r.entry
            sql.add(_SENT, (r.position, r.received_at, e.call, e.request_id, e.task_id or None))  # type: ignore[attr-defined]
        elif r.event_type == "snov.answered":
            e = r.entry
            sql.add(_ANSWERED, (e.status or 0, e.outcome, e.elapsed_ms, e.cooldown_until,  # type: ignore[attr-defined]
                                e.request_id))  # type: ignore[attr-defined]
    sql.run(conn)


# --- reads (times are epoch seconds here, ISO text in the table) ---------------------------------


def sends_after(conn: apsw.Connection, cutoff: float) -> int:
    """Requests counted after `cutoff`: what the sliding window holds."""
    return conn.execute("SELECT count(*) FROM snov_request_log WHERE timestamp > ?",
                        (from_epoch(cutoff),)).fetchone()[0]


def nth_send_after(conn: apsw.Connection, cutoff: float, n: int) -> str | None:
    """The timestamp of the (n+1)-th oldest request after `cutoff` (when a slot frees up)."""
    row = conn.execute("SELECT timestamp FROM snov_request_log WHERE timestamp > ? "
                       "ORDER BY timestamp LIMIT 1 OFFSET ?", (from_epoch(cutoff), n)).fetchone()
    return row[0] if row else None


def cooldown_until(conn: apsw.Connection, horizon: float) -> str | None:
    """The latest cooldown a 429 or 5xx to a request counted after `horizon` set, if any."""
    return conn.execute("SELECT max(cooldown_until) FROM snov_request_log WHERE cooldown_until IS NOT NULL "
                        "AND timestamp > ?", (from_epoch(horizon),)).fetchone()[0]


def waiting_before(conn: apsw.Connection, before: float) -> list[tuple[str, str, str | None]]:
    """(request_id, call, task_id) of requests counted before `before` that were never answered:
    a process stopped while they were on their way."""
    return conn.execute(f"SELECT request_id, call, task_id FROM snov_request_log WHERE {WAITING} "
                        "AND timestamp < ? ORDER BY id", (from_epoch(before),)).fetchall()


def outcome_counts(conn: apsw.Connection) -> dict[tuple[str, str], int]:
    """Requests by (call, outcome) over the whole table; outcome "waiting" while unanswered."""
    return {(str(c), str(o)): int(n) for c, o, n in conn.execute(
        "SELECT call, coalesce(outcome, 'waiting'), count(*) FROM snov_request_log GROUP BY 1, 2")}


def total_sends(conn: apsw.Connection) -> int:
    return conn.execute("SELECT count(*) FROM snov_request_log").fetchone()[0]
