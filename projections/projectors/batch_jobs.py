"""Backfill batches (`processing_batches`) and their jobs (`batch_jobs`), the shapes the batch tables have always had.

A job is one company of a backfill list, and it follows its company: whenever
the company's processing state changes, its open jobs take the matching
status and stage, the error code of the entry that moved it, and its retry
count; the batch counts finished jobs and settles as completed, failed or
partial. Following the company (rather than only requests tagged with the
batch) means a company the stream is already handling, or has finished, ends
its job too: a job created for a company already completed is completed at
once. `last_event_id` is the ledger position of the last entry that changed
the batch or one of its jobs, which is what the SSE progress stream resumes from.

Kept inside the `company_processing_state` projector so a job can never
disagree with its company.
"""

from __future__ import annotations

import apsw

from eventlog.ledger.store import Record

from projections.rows import Rows, Table
from projections.projectors.transitions import (COMPLETED, DETECTED, FAILED, OFFICERS_QUEUED, STATUS_QUEUED,
                          STRIKE_OFF_CONFIRMED)

__all__ = ["BATCHES", "JOBS", "Jobs", "OPEN"]

BATCHES = Table("processing_batches", (
    "id", "name", "total_jobs", "completed_jobs", "failed_jobs", "status", "created_at",
    "started_at", "completed_at", "expires_at", "last_event_id",
), key="id")

JOBS = Table("batch_jobs", (
    "id", "batch_id", "sequence", "company_number", "status", "stage", "progress_message",
    "error_message", "error_code", "retry_count", "created_at", "started_at", "completed_at",
), key="id")

OPEN = ("pending", "processing")
_OPEN_JOBS = (f"SELECT {', '.join(JOBS.columns)} FROM batch_jobs "
              "WHERE company_number IN (SELECT value FROM json_each(?)) "
              "AND status IN ('pending', 'processing') ORDER BY id")
_ANY_OPEN = "SELECT 1 FROM batch_jobs WHERE status IN ('pending', 'processing') LIMIT 1"

# processing state -> (job status, stage, which retry count)
_MIRROR = {
    DETECTED: ("pending", "queued", None),
    STATUS_QUEUED: ("processing", "status", "status_retry_count"),
    STRIKE_OFF_CONFIRMED: ("processing", "officers", None),
    OFFICERS_QUEUED: ("processing", "officers", "officers_retry_count"),
    COMPLETED: ("completed", "done", None),
    FAILED: ("failed", None, None),
}


class Jobs:
    """The open jobs of one projector batch's companies, and their batches."""

    def __init__(self, conn: apsw.Connection, companies: list[str | None], creates: bool):
        self.conn = conn
        self.active = creates or conn.execute(_ANY_OPEN).fetchone() is not None
        self.jobs = Rows(JOBS, conn, companies if self.active else (), select=_OPEN_JOBS)
        self.by_company: dict[str, list[dict]] = {}
        for job in self.jobs.rows.values():
            self.by_company.setdefault(job["company_number"], []).append(job)
        self.batches = Rows(BATCHES, conn, {job["batch_id"] for job in self.jobs.rows.values()})

    def create(self, r: Record, numbers: list[str], states: "dict[str, dict | None]") -> None:
        """A backfill.created entry: its batch, one pending job per company, mirrored at once."""
        e = r.entry
        if self.batches.get(e.batch_id) is not None or self._exists(e.batch_id):  # type: ignore[attr-defined]
            return  # the same batch id twice: the first one stands
        at = r.received_at
        batch = self.batches.create(e.batch_id, name=e.name, total_jobs=len(numbers),  # type: ignore[attr-defined]
                                    completed_jobs=0, failed_jobs=0, status="pending",
                                    created_at=at, expires_at=e.expires_at,  # type: ignore[attr-defined]
                                    last_event_id=r.position)
        for seq, number in enumerate(numbers, start=1):
            job = self.jobs.create(f"{e.batch_id}:{seq}", batch_id=e.batch_id, sequence=seq,  # type: ignore[attr-defined]
                                   company_number=number, status="pending", stage="queued",
                                   retry_count=0, created_at=at)
            self.by_company.setdefault(number, []).append(job)
            state = states.get(number)
            if state is not None:
                self._mirror(job, state, None, r)
        _settle(batch, at)

    def _exists(self, batch_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM processing_batches WHERE id = ?", (batch_id,)).fetchone() is not None

    def follow(self, number: str, state: dict, error_code: str | None, r: Record) -> None:
        """The company's row changed: move its open jobs along."""
        for job in self.by_company.get(number, ()):
            if job["status"] in OPEN:
                self._mirror(job, state, error_code, r)

    def _mirror(self, job: dict, state: dict, error_code: str | None, r: Record) -> None:
        status, stage, retries = _MIRROR.get(state["processing_state"], (job["status"], job["stage"], None))
        at = r.received_at
        before = job["status"]
        job["status"] = status
        if stage is not None:
            job["stage"] = stage
        if retries is not None:
            job["retry_count"] = state[retries] or 0
        job["progress_message"] = state["processing_state"]
        if error_code is not None:
            job["error_code"] = error_code
            job["error_message"] = state["last_error"]
        if status != "pending" and job["started_at"] is None:
            job["started_at"] = at
        if status not in OPEN:
            job["completed_at"] = at
        self.jobs.changed(job["id"], job)
        batch = self.batches.get(job["batch_id"])
        if batch is None:
            return
        if before in OPEN and status == "completed":
            batch["completed_jobs"] += 1
        elif before in OPEN and status == "failed":
            batch["failed_jobs"] += 1
        if status != "pending" and batch["started_at"] is None:
            batch["started_at"] = at
        _settle(batch, at)
        batch["last_event_id"] = r.position
        self.batches.changed(batch["id"], batch)

    def flush(self, conn: apsw.Connection) -> None:
        self.batches.flush(conn)  # before the jobs: batch_jobs refers to processing_batches
        self.jobs.flush(conn)


def _settle(batch: dict, at: str) -> None:
    done, failed, total = batch["completed_jobs"], batch["failed_jobs"], batch["total_jobs"]
    if done + failed >= total:
        batch["status"] = "failed" if failed and not done else "partial" if failed else "completed"
        if batch["completed_at"] is None:
            batch["completed_at"] = at
    elif batch["started_at"] is not None:
        batch["status"] = "processing"
