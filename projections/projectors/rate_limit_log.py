"""`api_rate_limit_log` (the original schema, exactly): one row per request counted against the limit.

A row appears with the `request.sent` entry, which is committed before the
socket write, so the limiter (which counts rows by `timestamp`) sees a request
as soon as it may have reached Companies House. Its `id` is that entry's ledger
position. The original schema makes `response_status` NOT NULL, so until the outcome is
appended it holds the placeholder 0 ("no HTTP response yet"); the response (or
the 429) then fills `response_status` and `processing_time_ms` into the newest
row of that request id still waiting. A transport error has no HTTP status:
the row keeps 0 and gets only its `processing_time_ms`. Each page of an
officer list is its own request, row and response.

Readers (the limiter, the health probe, `status`, `/metrics`) ask their questions through the
functions below, so there is one definition of each: above all `UNANSWERED`, a row whose request
is still on its way (no HTTP status and no transport error yet). A finished transport error keeps
status 0 too, but it is answered: reading "status 0" alone as "no response" would count every
timed-out request as waiting for ever.
"""

from __future__ import annotations

from typing import NamedTuple

import apsw

from eventlog.clock import from_epoch
from projections.records import Batch
from projections.rows import Statements

NAME = "api_rate_limit_log"
VERSION = 1
TABLES = ("api_rate_limit_log",)
LOOKUP_INDEXES = ("idx_api_rate_limit_request",)

NO_RESPONSE = 0

_SENT = ("INSERT INTO api_rate_limit_log(id, timestamp, request_type, response_status, company_number, "
         "request_id, processing_time_ms) VALUES (?, ?, ?, 0, ?, ?, NULL)")
UNANSWERED = "response_status = 0 AND processing_time_ms IS NULL"
_REFUSED = "response_status IN (429, 403)"
_WAITING = f"(SELECT max(id) FROM api_rate_limit_log WHERE request_id = ? AND {UNANSWERED})"
_ANSWERED = f"UPDATE api_rate_limit_log SET response_status = ?, processing_time_ms = ? WHERE id = {_WAITING}"
_NO_ANSWER = f"UPDATE api_rate_limit_log SET processing_time_ms = ? WHERE id = {_WAITING}"


def apply(conn: apsw.Connection, batch: Batch) -> None:
    sql = Statements()
    for r in batch.records:
        t = r.event_type
        if t == "request.sent":
            e = r.entry
            sql.add(_SENT, (r.position, r.received_at, e.kind, batch.company(r), e.request_id))
        elif t == "response.received" or t == "request.rate_limited":
            e = r.entry
            sql.add(_ANSWERED, (e.status, e.elapsed_ms, e.request_id))
        elif t == "request.transport_error":
            e = r.entry
            sql.add(_NO_ANSWER, (e.elapsed_ms, e.request_id))
    sql.run(conn)


# --- reads -------------------------------------------------------------------------------------
# Times are epoch seconds here and ISO text in the table (what the limiter compares is the text,
# which sorts as time does: every timestamp is written by `from_epoch`).


def sends_after(conn: apsw.Connection, cutoff: float) -> int:
    """Requests counted with a timestamp after `cutoff`: what a sliding window holds."""
    return conn.execute("SELECT count(*) FROM api_rate_limit_log WHERE timestamp > ?",
                        (from_epoch(cutoff),)).fetchone()[0]


def nth_send_after(conn: apsw.Connection, cutoff: float, n: int) -> str | None:
    """The timestamp of the (n+1)-th oldest request after `cutoff` (when a slot frees up)."""
    row = conn.execute("SELECT timestamp FROM api_rate_limit_log WHERE timestamp > ? "
                       "ORDER BY timestamp LIMIT 1 OFFSET ?", (from_epoch(cutoff), n)).fetchone()
    return row[0] if row else None


def unanswered_after(conn: apsw.Connection, cutoff: float) -> int:
    """Requests sent after `cutoff` that are still on their way."""
    return conn.execute(f"SELECT count(*) FROM api_rate_limit_log WHERE {UNANSWERED} AND timestamp > ?",
                        (from_epoch(cutoff),)).fetchone()[0]


def unanswered_before(conn: apsw.Connection, before: float) -> int:
    """Requests sent before `before` that are still on their way (the health probe's "stuck")."""
    return conn.execute(f"SELECT count(*) FROM api_rate_limit_log WHERE {UNANSWERED} AND timestamp < ?",
                        (from_epoch(before),)).fetchone()[0]


def unanswered_sent_at(conn: apsw.Connection, request_id: str) -> str | None:
    """When the newest send of `request_id` that is still on its way was counted."""
    row = conn.execute(f"SELECT timestamp FROM api_rate_limit_log WHERE request_id = ? AND {UNANSWERED} "
                       "ORDER BY id DESC LIMIT 1", (request_id,)).fetchone()
    return row[0] if row else None


class Refusals(NamedTuple):
    """The 429/403 rows after a horizon: how many, and the first and last row ids (ledger positions)."""

    count: int
    first_id: int | None
    last_id: int | None


def refusals_after(conn: apsw.Connection, horizon: float) -> Refusals:
    return Refusals(*conn.execute(f"SELECT count(*), min(id), max(id) FROM api_rate_limit_log "
                                  f"WHERE {_REFUSED} AND timestamp > ?", (from_epoch(horizon),)).fetchone())


def refusal_times_after(conn: apsw.Connection, since: float) -> list[tuple[str, int | None]]:
    """(sent timestamp, processing ms) of each 429/403 sent after `since`."""
    return conn.execute(f"SELECT timestamp, processing_time_ms FROM api_rate_limit_log "
                        f"WHERE {_REFUSED} AND timestamp > ?", (from_epoch(since),)).fetchall()


def after_refusal(conn: apsw.Connection, refusal_id: int) -> tuple[int, int]:
    """Of the requests counted after the row `refusal_id`: (answered without a refusal, on their way)."""
    answered, waiting = conn.execute(
        f"SELECT count(*) FILTER (WHERE response_status NOT IN (0, 429, 403)), "
        f"count(*) FILTER (WHERE {UNANSWERED}) FROM api_rate_limit_log WHERE id > ?",
        (refusal_id,)).fetchone()
    return answered, waiting


def refusal_counts(conn: apsw.Connection) -> dict[int, int]:
    """Every 429 and 403 ever answered, by status (both keys always present)."""
    out = {429: 0, 403: 0}
    out.update({int(s): int(n) for s, n in conn.execute(
        f"SELECT response_status, count(*) FROM api_rate_limit_log WHERE {_REFUSED} GROUP BY 1")})
    return out


def last_send(conn: apsw.Connection) -> str | None:
    return conn.execute("SELECT max(timestamp) FROM api_rate_limit_log").fetchone()[0]


def total_sends(conn: apsw.Connection) -> int:
    return conn.execute("SELECT count(*) FROM api_rate_limit_log").fetchone()[0]


def answers_after(conn: apsw.Connection, cutoff: float) -> tuple[int, int]:
    """Requests sent after `cutoff` that are finished: (all, errors), where anything but a 2xx or a
    404 (a company that isn't there: an answer) is an error, transport failures included."""
    answered, errors = conn.execute(
        "SELECT count(*), coalesce(sum(NOT (response_status BETWEEN 200 AND 299 OR response_status = 404)), 0) "
        f"FROM api_rate_limit_log WHERE timestamp > ? AND NOT ({UNANSWERED})", (from_epoch(cutoff),)).fetchone()
    return int(answered), int(errors)
