"""`python cli.py batch cancel ID`: the wiring of a batch's cancellation.

The cancellation is a recorded decision: `batch.cancelled`, and in the same `BEGIN IMMEDIATE`
the abandonment (CANCELLED) of every request of the batch's own companies still only queued, or
due next. The worker's sender takes work in its own `BEGIN IMMEDIATE`, so a request is either
abandoned here or already on the wire, never both: one in flight finishes and is recorded, and
the worker's policy drops that company's next step. Stream work is never the batch's to drop.
"""

from __future__ import annotations

import msgspec

import projections
from eventlog.config.settings import Settings
from eventlog.ledger.db import connect
from eventlog.ledger.entries import BatchCancelled
from eventlog.ledger.migrate import migrate
from eventlog.ledger.store import Ledger
from eventlog.ops import fact_log
from eventlog.ops.batch_report import find_batch
from eventlog.worker.policy import drop_cancelled
from projections.projectors import batch_jobs

__all__ = ["CancelReport", "cancel_batch"]


class CancelReport(msgspec.Struct, frozen=True, kw_only=True):
    batch_id: str
    was: str  # the batch's status before
    cancelled: bool  # False: it was over (or cancelled) already
    dropped: int  # jobs whose queued (or next) request was abandoned now
    still_open: int  # jobs whose work is in flight, or stream work: they finish as they do
    position: int | None = None


def cancel_batch(settings: Settings, wanted: str, reason: str = "") -> CancelReport:
    conn = connect(settings.database_path)
    try:
        migrate(conn)
        projections.check_versions(conn)
        ledger = Ledger(conn)
        projections.attach(ledger)
        fact_log.attach(ledger, settings)
        with ledger.transaction() as tx:
            batch = find_batch(conn, wanted)
            if batch.status in batch_jobs.FINISHED:
                return CancelReport(batch_id=batch.id, was=batch.status, cancelled=False, dropped=0,
                                    still_open=batch.open_jobs)
            dropped = drop_cancelled(conn, [batch.id])
            appended = tx.append_many([BatchCancelled(batch_id=batch.id, reason=reason), *dropped])
        after = batch_jobs.batch(conn, batch.id)
        return CancelReport(batch_id=batch.id, was=batch.status, cancelled=True, dropped=len(dropped),
                            still_open=after.open_jobs if after else 0, position=appended[0].position)
    finally:
        conn.close()
