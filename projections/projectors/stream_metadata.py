"""`stream_metadata`: one row per stream path, what a reconnect and `status` need.

- `last_timepoint`/`last_event_id`: the highest timepoint recorded and its entry
  (the stream resumes after it; an older event arriving late doesn't move it back);
  `last_processed_timestamp`: when the latest event was received.
- `connection_status`: connected / disconnected / error (a fatal disconnect, e.g. 401).
- `error_count`/`last_error`: lines that could not be read, and disconnects that were
  errors (an HTTP status, or fatal); a clean close is not an error.
- `reconnect_count`: connections that resumed from a timepoint; `gap_count`: 416 gaps.
- `created_at`/`updated_at`: `received_at` of the first and the latest entry.
- `last_heard_at`: `received_at` of the latest event or connection: how long the stream has been
  dark is measured from it (STREAM_MAX_DARK_HOURS, the `horizon` check of /health and status).
"""

from __future__ import annotations

from typing import NamedTuple

import apsw

from eventlog.clock import to_epoch

from projections.records import Batch
from projections.rows import Rows, Table

NAME = "stream_metadata"
VERSION = 2  # 2: last_heard_at
TABLES = ("stream_metadata",)
LOOKUP_INDEXES: tuple[str, ...] = ()

_TABLE = Table("stream_metadata", (
    "id", "stream_type", "last_event_id", "last_timepoint", "last_processed_timestamp",
    "connection_status", "error_count", "reconnect_count", "gap_count", "last_error",
    "created_at", "updated_at", "last_heard_at",
), key="stream_type", autoid="id", defaults={
    "connection_status": "disconnected", "error_count": 0, "reconnect_count": 0, "gap_count": 0,
})
_TYPES = frozenset(("stream.event", "stream.rejected", "stream.connected", "stream.disconnected",
                    "stream.gap"))


def _error(row: dict, text: str) -> None:
    row["error_count"] += 1
    row["last_error"] = text


def apply(conn: apsw.Connection, batch: Batch) -> None:
    records = [r for r in batch.records if r.event_type in _TYPES]
    if not records:
        return
    rows = Rows(_TABLE, conn, {r.entry.stream for r in records})  # type: ignore[attr-defined]
    for r in records:
        e = r.entry
        t = r.event_type
        row = rows.get(e.stream)  # type: ignore[attr-defined]
        if row is None:
            row = rows.create(e.stream, created_at=r.received_at)  # type: ignore[attr-defined]
        else:
            rows.changed(e.stream, row)  # type: ignore[attr-defined]
        row["updated_at"] = r.received_at
        if t == "stream.event":
            held = row["last_timepoint"]
            if held is None or e.timepoint >= held:  # type: ignore[attr-defined]
                row["last_timepoint"] = e.timepoint  # type: ignore[attr-defined]
                row["last_event_id"] = r.event_id
            row["last_processed_timestamp"] = r.received_at
            row["last_heard_at"] = r.received_at
        elif t == "stream.connected":
            row["connection_status"] = "connected"
            row["last_heard_at"] = r.received_at
            if e.from_timepoint is not None:  # type: ignore[attr-defined]
                row["reconnect_count"] += 1
        elif t == "stream.disconnected":
            row["connection_status"] = "error" if e.fatal else "disconnected"  # type: ignore[attr-defined]
            if e.fatal or e.status is not None:  # type: ignore[attr-defined]
                _error(row, e.reason if e.status is None else f"HTTP {e.status}: {e.reason}")  # type: ignore[attr-defined]
        elif t == "stream.rejected":
            _error(row, f"rejected line: {e.reason}")  # type: ignore[attr-defined]
        else:
            row["gap_count"] += 1
    rows.flush(conn)


# --- reads ---------------------------------------------------------------------------------------


class StreamRow(NamedTuple):
    stream: str
    connection_status: str
    last_timepoint: int | None
    last_processed_at: str | None
    reconnects: int
    gaps: int
    errors: int
    last_heard_at: str | None = None


def stream_rows(conn: apsw.Connection) -> list[StreamRow]:
    """Every stream path's row, by path."""
    return [StreamRow(r[0], r[1], r[2], r[3], r[4] or 0, r[5] or 0, r[6] or 0, r[7]) for r in conn.execute(
        "SELECT stream_type, connection_status, last_timepoint, last_processed_timestamp, "
        "reconnect_count, gap_count, error_count, last_heard_at FROM stream_metadata ORDER BY stream_type")]


def dark_streams(conn: apsw.Connection, now: float, max_dark_hours: float) -> list[tuple[str, float | None]]:
    """Streams unheard for longer than `max_dark_hours`: (stream, hours dark; None if never heard)."""
    out = []
    for row in stream_rows(conn):
        if row.last_heard_at is None:
            out.append((row.stream, None))
            continue
        hours = (now - to_epoch(row.last_heard_at)) / 3600.0
        if hours > max_dark_hours:
            out.append((row.stream, hours))
    return out
