"""`api_rate_limit_log` (seed 000, exactly): one row per request counted against the limit.

A row appears with the `request.sent` entry, which is committed before the
socket write, so the limiter (which counts rows by `timestamp`) sees a request
as soon as it may have reached Companies House. Its `id` is that entry's ledger
position. Seed 000 makes `response_status` NOT NULL, so until the outcome is
appended it holds the placeholder 0 ("no HTTP response yet"); the response (or
the 429) then fills `response_status` and `processing_time_ms` into the newest
row of that request id still waiting. A transport error has no HTTP status:
the row keeps 0 and gets only its `processing_time_ms`. Each page of an
officer list is its own request, row and response.
"""

from __future__ import annotations

import apsw

from projections.records import Batch
from projections.rows import Statements

NAME = "api_rate_limit_log"
VERSION = 1
TABLES = ("api_rate_limit_log",)
LOOKUP_INDEXES = ("idx_api_rate_limit_request",)

NO_RESPONSE = 0

_SENT = ("INSERT INTO api_rate_limit_log(id, timestamp, request_type, response_status, company_number, "
         "request_id, processing_time_ms) VALUES (?, ?, ?, 0, ?, ?, NULL)")
_WAITING = ("(SELECT max(id) FROM api_rate_limit_log WHERE request_id = ? "
            "AND response_status = 0 AND processing_time_ms IS NULL)")
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
