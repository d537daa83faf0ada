"""Helpers for the status, health and status-page tests: projection rows and a fake worker view.

The projectors are someone else's job; these tests fill the projection tables
with direct SQL in the shapes the migrations define, so `status` and the health
server are checked against real SQLite files without waiting on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import apsw

from eventlog.clock import FixedClock, from_epoch
from eventlog.worker.limiter import SlidingWindowLimiter
from eventlog.config.settings import Settings
from eventlog.worker.stream.stats import StreamStats


def add_company(conn: apsw.Connection, number: str, state: str, *, published: str | None = None,
                status_fetched_at: str | None = None, status_request_id: str | None = None) -> None:
    conn.execute(
        "INSERT INTO companies(company_number, company_name, stream_last_updated, data_source) "
        "VALUES (?, ?, ?, 'stream')", (number, f"COMPANY {number} LTD", published))
    conn.execute(
        "INSERT INTO company_processing_state(company_number, processing_state, status_fetched_at, "
        "status_request_id) VALUES (?, ?, ?, ?)", (number, state, status_fetched_at, status_request_id))


def add_officers(conn: apsw.Connection, number: str, count: int) -> None:
    for i in range(count):
        conn.execute("INSERT INTO officers(company_number, officer_id, name) VALUES (?, ?, ?)",
                     (number, f"{number}-o{i}", f"OFFICER {i}"))


def add_request(conn: apsw.Connection, at: float, status: int, *, company: str = "00000001",
                request_id: str | None = None, row_id: int | None = None, kind: str = "profile",
                elapsed_ms: int | None = -1) -> None:
    """A row as the projector writes it: status 0 with no time is a request still on its way;
    status 0 with a time is a finished transport error (timeout, reset); otherwise the answer."""
    if elapsed_ms == -1:
        elapsed_ms = None if status == 0 else 120
    conn.execute(
        "INSERT INTO api_rate_limit_log(id, timestamp, request_type, response_status, company_number, "
        "request_id, processing_time_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (row_id, from_epoch(at), kind, status, company, request_id, elapsed_ms))


def add_queued(conn: apsw.Connection, request_id: str, priority: int, *, at: float,
               not_before: float | None = None, status: str = "queued", position: int = 1,
               company: str = "00000001") -> None:
    conn.execute(
        "INSERT INTO request_queue(request_id, company_number, kind, priority, not_before, queued_at, "
        "queued_position, status) VALUES (?, ?, 'profile', ?, ?, ?, ?, ?)",
        (request_id, company, priority,
         from_epoch(not_before) if not_before is not None else None, from_epoch(at), position, status))


def add_stream_metadata(conn: apsw.Connection, stream: str, *, status: str, timepoint: int,
                        processed: str, reconnects: int = 0, gaps: int = 0) -> None:
    conn.execute(
        "INSERT INTO stream_metadata(stream_type, last_timepoint, last_processed_timestamp, "
        "connection_status, reconnect_count, gap_count, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (stream, timepoint, processed, status, reconnects, gaps, processed, processed))


def live_stats(stream: str, now: float, *, events: int = 0, rejected: int = 0,
               duplicates: int = 0, connections: int = 1) -> StreamStats:
    """A StreamStats as a connected client would have it after reading that much."""
    s = StreamStats(stream)
    for _ in range(connections):
        s.on_connected(now)
    s.events = events
    s.events_seen = events + duplicates
    s.duplicates = duplicates
    s.rejected = rejected
    s.last_byte_at = now
    return s


@dataclass
class FakeView:
    """What `Worker` gives the health server, built by hand around a real database."""

    conn: apsw.Connection
    clock: FixedClock
    settings: Settings = field(default_factory=lambda: Settings(rate_limit_requests=600,
                                                                rate_limit_window=300.0,
                                                                read_timeout=90.0))
    streams: list[StreamStats] = field(default_factory=list)
    started_at: float = 0.0
    stream_paused: str | None = None

    def __post_init__(self) -> None:
        s = self.settings
        self.limiter = SlidingWindowLimiter(self.conn, self.clock, limit=s.rate_limit_requests,
                                            window=s.rate_limit_window, slack=s.rate_limit_slack)
        self.started_at = self.started_at or self.clock.now()

    def stream_stats(self) -> list[StreamStats]:
        return self.streams


def add_batch(conn: apsw.Connection, batch_id: str, name: str, *, total: int, completed: int = 0,
              failed: int = 0, status: str = "processing", created: str = "2023-11-14T22:00:00.000000Z") -> None:
    """A `processing_batches` row as the projector writes it (its jobs left out)."""
    conn.execute(
        "INSERT INTO processing_batches(id, name, total_jobs, completed_jobs, failed_jobs, cancelled_jobs, status, "
        "created_at, started_at, expires_at, last_event_id) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, 0)",
        (batch_id, name, total, completed, failed, status, created, created, "2023-12-14T22:00:00.000000Z"))
