"""`stream_gaps`: every 416 gap, UNRESOLVED until a bulk snapshot newer than it reconciles it.

A 416 means the events between the timepoint asked for and the live head are gone for good:
every strike-off proposal among them is lost unless the monthly bulk snapshot brings it back.
`bulk` appends `stream.gaps_reconciled` (eventlog/bulk/reconcile.py) when a whole snapshot is
imported; it reconciles every gap of its stream (every stream when it names none) recorded
before the snapshot's date. `status`, `/health` (a warning) and `audit` (a gaps section) show
the gaps still open.
"""

from __future__ import annotations

from typing import NamedTuple

import apsw

from projections.records import Batch
from projections.rows import Statements

NAME = "stream_gaps"
VERSION = 1
TABLES = ("stream_gaps",)
LOOKUP_INDEXES = ("idx_stream_gaps_open",)

_ADD = ("INSERT INTO stream_gaps(position, stream, requested_timepoint, gap_at, reason) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(position) DO NOTHING")
_RECONCILE = ("UPDATE stream_gaps SET reconciled_at = ?, reconciled_by = ? WHERE reconciled_at IS NULL "
              "AND substr(gap_at, 1, 10) < ? AND (? IS NULL OR stream = ?)")


def apply(conn: apsw.Connection, batch: Batch) -> None:
    sql = Statements()
    for r in batch.records:
        e = r.entry
        if r.event_type == "stream.gap":
            sql.add(_ADD, (r.position, e.stream, e.requested_timepoint, r.received_at, e.reason))  # type: ignore[attr-defined]
        elif r.event_type == "stream.gaps_reconciled":
            sql.add(_RECONCILE, (r.received_at, e.snapshot, e.snapshot_date, e.stream, e.stream))  # type: ignore[attr-defined]
    sql.run(conn)


# --- reads ---------------------------------------------------------------------------------------


class Gap(NamedTuple):
    stream: str
    requested_timepoint: int | None
    gap_at: str
    reconciled_at: str | None
    reconciled_by: str | None


def gaps(conn: apsw.Connection, *, unresolved_only: bool = False) -> list[Gap]:
    """Every gap (or only those no snapshot has reconciled yet), oldest first."""
    where = " WHERE reconciled_at IS NULL" if unresolved_only else ""
    return [Gap(*row) for row in conn.execute(
        "SELECT stream, requested_timepoint, gap_at, reconciled_at, reconciled_by FROM stream_gaps"
        + where + " ORDER BY position")]


def describe(gap: Gap) -> str:
    """One line for status, /health and audit."""
    asked = f"timepoint {gap.requested_timepoint}" if gap.requested_timepoint is not None else "a resume"
    if gap.reconciled_at is None:
        return (f"UNRESOLVED: {gap.stream} lost events at {gap.gap_at} (416 for {asked}); "
                "import a bulk snapshot dated after it to reconcile")
    return f"reconciled: {gap.stream} gap at {gap.gap_at} by {gap.reconciled_by}"

