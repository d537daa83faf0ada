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

A cancelled batch (`batch.cancelled`) keeps the status `cancelled`; its jobs
dropped by the cancellation (`request.abandoned` with CANCELLED) end `cancelled`,
the ones already under way finish as their companies do, and the batch gets its
`completed_at` once none is open. `batch.expired` removes finished batches' rows.

Kept inside the `company_processing_state` projector so a job can never
disagree with its company.
"""

from __future__ import annotations

import apsw
import msgspec

from eventlog.ledger.store import Record

from projections.rows import Rows, Table
from projections.projectors.transitions import (COMPLETED, DETECTED, FAILED, OFFICERS_QUEUED, STATUS_QUEUED,
                          STRIKE_OFF_CONFIRMED)

__all__ = ["BATCHES", "JOBS", "Jobs", "OPEN", "CANCELLED", "FINISHED", "BatchRow", "JobCounts", "batch",
           "batches", "job_counts", "job_errors", "jobs_done_since", "cancelled_open",
           "expired_batches", "unfinished_totals",
           "open_jobs", "batch_companies", "job_of"]

BATCHES = Table("processing_batches", (
    "id", "name", "total_jobs", "completed_jobs", "failed_jobs", "status", "created_at",
    "started_at", "completed_at", "expires_at", "last_event_id", "cancelled_jobs",
), key="id")

JOBS = Table("batch_jobs", (
    "id", "batch_id", "sequence", "company_number", "status", "stage", "progress_message",
    "error_message", "error_code", "retry_count", "created_at", "started_at", "completed_at",
), key="id")

OPEN = ("pending", "processing")
CANCELLED = "CANCELLED"  # the error code of work a batch's cancellation dropped
FINISHED = ("completed", "failed", "partial", "cancelled")  # batch statuses once no job will move
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

    def __init__(self, conn: apsw.Connection, companies: list[str | None], creates: bool,
                 batch_ids: tuple[str, ...] = ()):
        self.conn = conn
        self.active = creates or conn.execute(_ANY_OPEN).fetchone() is not None
        self.jobs = Rows(JOBS, conn, companies if self.active else (), select=_OPEN_JOBS)
        self.by_company: dict[str, list[dict]] = {}
        for job in self.jobs.rows.values():
            self.by_company.setdefault(job["company_number"], []).append(job)
        self.batches = Rows(BATCHES, conn, {job["batch_id"] for job in self.jobs.rows.values()} | set(batch_ids))
        self.expired: list[str] = []

    def create(self, r: Record, numbers: list[str], states: "dict[str, dict | None]") -> None:
        """A backfill.created entry: its batch, one pending job per company, mirrored at once."""
        e = r.entry
        if self.batches.get(e.batch_id) is not None or self._exists(e.batch_id):  # type: ignore[attr-defined]
            return  # the same batch id twice: the first one stands
        at = r.received_at
        batch = self.batches.create(e.batch_id, name=e.name, total_jobs=len(numbers),  # type: ignore[attr-defined]
                                    completed_jobs=0, failed_jobs=0, cancelled_jobs=0, status="pending",
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

    def cancel(self, r: Record) -> None:
        """A batch.cancelled entry: the batch says so at once; its jobs close as their work does."""
        batch = self.batches.get(r.entry.batch_id)  # type: ignore[attr-defined]
        if batch is None or batch["status"] in FINISHED:
            return  # unknown, expired, or already over: nothing left to cancel
        batch["status"] = "cancelled"
        batch["last_event_id"] = r.position
        _settle(batch, r.received_at)
        self.batches.changed(batch["id"], batch)

    def expire(self, r: Record) -> None:
        """A batch.expired entry: its batches' rows are deleted once this projector batch is written."""
        self.expired.extend(r.entry.batch_ids)  # type: ignore[attr-defined]

    def _exists(self, batch_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM processing_batches WHERE id = ?", (batch_id,)).fetchone() is not None

    def follow(self, number: str, state: dict, error_code: str | None, r: Record) -> None:
        """The company's row changed: move its open jobs along."""
        for job in self.by_company.get(number, ()):
            if job["status"] in OPEN:
                self._mirror(job, state, error_code, r)

    def _mirror(self, job: dict, state: dict, error_code: str | None, r: Record) -> None:
        status, stage, retries = _MIRROR.get(state["processing_state"], (job["status"], job["stage"], None))
        if status == "failed" and error_code == CANCELLED:
            status = "cancelled"
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
        elif before in OPEN and status == "cancelled":
            batch["cancelled_jobs"] = (batch["cancelled_jobs"] or 0) + 1
        if status != "pending" and batch["started_at"] is None:
            batch["started_at"] = at
        _settle(batch, at)
        batch["last_event_id"] = r.position
        self.batches.changed(batch["id"], batch)

    def flush(self, conn: apsw.Connection) -> None:
        self.batches.flush(conn)  # before the jobs: batch_jobs refers to processing_batches
        self.jobs.flush(conn)
        if self.expired:  # finished batches have no open job, so nothing above wrote theirs
            ids = [(i,) for i in self.expired]
            conn.executemany("DELETE FROM batch_jobs WHERE batch_id = ?", ids)
            conn.executemany("DELETE FROM processing_batches WHERE id = ?", ids)
            self.expired = []


def _settle(batch: dict, at: str) -> None:
    done, failed, total = batch["completed_jobs"], batch["failed_jobs"], batch["total_jobs"]
    if batch["status"] == "cancelled":  # stays cancelled; over once no job is open
        if done + failed + (batch["cancelled_jobs"] or 0) >= total and batch["completed_at"] is None:
            batch["completed_at"] = at
        return
    if done + failed >= total:
        batch["status"] = "failed" if failed and not done else "partial" if failed else "completed"
        if batch["completed_at"] is None:
            batch["completed_at"] = at
    elif batch["started_at"] is not None:
        batch["status"] = "processing"


# --- reads ---------------------------------------------------------------------------------------


class BatchRow(msgspec.Struct, frozen=True):
    """One row of `processing_batches`."""

    id: str
    name: str
    total_jobs: int
    completed_jobs: int
    failed_jobs: int
    cancelled_jobs: int
    status: str
    created_at: str | None
    started_at: str | None
    completed_at: str | None
    expires_at: str | None
    last_event_id: int

    @property
    def open_jobs(self) -> int:
        return self.total_jobs - self.completed_jobs - self.failed_jobs - self.cancelled_jobs

    @property
    def finished(self) -> bool:
        """No job of it will move again (a cancelled batch: once its work under way is over)."""
        return self.status in FINISHED and self.completed_at is not None


class JobCounts(msgspec.Struct, frozen=True):
    status: str
    stage: str | None
    jobs: int


_BATCH_COLUMNS = ("id, name, total_jobs, coalesce(completed_jobs, 0), coalesce(failed_jobs, 0), "
                  "coalesce(cancelled_jobs, 0), status, created_at, started_at, completed_at, expires_at, "
                  "coalesce(last_event_id, 0)")


def batches(conn: apsw.Connection) -> list[BatchRow]:
    """Every batch, newest first."""
    return [BatchRow(*r) for r in conn.execute(
        f"SELECT {_BATCH_COLUMNS} FROM processing_batches ORDER BY created_at DESC, id")]


def batch(conn: apsw.Connection, batch_id: str) -> BatchRow | None:
    row = conn.execute(f"SELECT {_BATCH_COLUMNS} FROM processing_batches WHERE id = ?", (batch_id,)).fetchone()
    return BatchRow(*row) if row else None


def job_counts(conn: apsw.Connection, batch_id: str) -> list[JobCounts]:
    """Jobs of the batch by status and stage."""
    return [JobCounts(*r) for r in conn.execute(
        "SELECT status, stage, count(*) FROM batch_jobs WHERE batch_id = ? GROUP BY 1, 2 ORDER BY 1, 2",
        (batch_id,))]


def job_errors(conn: apsw.Connection, batch_id: str) -> dict[str, int]:
    """Jobs of the batch by the error code of the last failure they saw (finished or not)."""
    return {code: n for code, n in conn.execute(
        "SELECT error_code, count(*) FROM batch_jobs WHERE batch_id = ? AND error_code IS NOT NULL "
        "GROUP BY 1 ORDER BY 2 DESC, 1", (batch_id,))}


def jobs_done_since(conn: apsw.Connection, batch_id: str, since: str) -> int:
    """Jobs of the batch that finished (completed or failed) at or after `since` (ISO)."""
    return conn.execute("SELECT count(*) FROM batch_jobs WHERE batch_id = ? AND completed_at >= ? "
                        "AND status IN ('completed', 'failed')", (batch_id, since)).fetchone()[0]


def cancelled_open(conn: apsw.Connection) -> list[str]:
    """Cancelled batches with jobs still open: whose work the policy keeps dropping as it comes."""
    return [r[0] for r in conn.execute(
        "SELECT id FROM processing_batches WHERE status = 'cancelled' AND completed_at IS NULL ORDER BY id")]


def expired_batches(conn: apsw.Connection, now: str) -> list[str]:
    """Finished batches whose `expires_at` is at or before `now` (ISO), oldest first."""
    marks = ", ".join(f"'{s}'" for s in FINISHED)
    return [r[0] for r in conn.execute(
        f"SELECT id FROM processing_batches WHERE expires_at <= ? AND status IN ({marks}) "
        "AND completed_at IS NOT NULL ORDER BY expires_at, id", (now,))]


def unfinished_totals(conn: apsw.Connection) -> tuple[int, int, int]:
    """(batches not finished, their jobs, their jobs still open): what `status` shows of batches."""
    row = conn.execute(
        "SELECT count(*), coalesce(sum(total_jobs), 0), coalesce(sum(total_jobs - coalesce(completed_jobs, 0) "
        "- coalesce(failed_jobs, 0) - coalesce(cancelled_jobs, 0)), 0) FROM processing_batches "
        "WHERE completed_at IS NULL").fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def open_jobs(conn: apsw.Connection, batch_id: str) -> list[str]:
    """Company numbers of the batch's jobs not yet finished, in the batch's order."""
    return [r[0] for r in conn.execute(
        "SELECT company_number FROM batch_jobs WHERE batch_id = ? AND status IN ('pending', 'processing') "
        "ORDER BY sequence", (batch_id,))]


def batch_companies(conn: apsw.Connection, batch_id: str) -> frozenset[str]:
    """Every company number of the batch."""
    return frozenset(r[0] for r in conn.execute("SELECT company_number FROM batch_jobs WHERE batch_id = ?",
                                                (batch_id,)))


def job_of(conn: apsw.Connection, batch_id: str, company_number: str) -> dict | None:
    """The batch's job for one company: status, stage, error code, retry count."""
    row = conn.execute("SELECT sequence, status, stage, error_code, retry_count FROM batch_jobs "
                       "WHERE batch_id = ? AND company_number = ? ORDER BY sequence LIMIT 1",
                       (batch_id, company_number)).fetchone()
    if row is None:
        return None
    return dict(zip(("sequence", "status", "stage", "error_code", "retry_count"), row))
