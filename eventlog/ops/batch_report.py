"""`batches` and `batch show`: backfill batches as operators see them, from the projections alone.

A batch's ETA comes from the pace it really had: the jobs it finished within the last rate-limit
window, over that window. That pace already holds everything that slows a batch (the allowance,
stream work going first, retries, pages), which a figure worked out from the allowance alone
would not; a batch that finished nothing in the last window has no ETA, and says so.

`follow` yields a fresh report every `interval` seconds until the batch is finished: the CLI
draws it as a live progress bar. Like `status`, every read goes through a read-only connection,
safe beside a running worker.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator

import apsw
import msgspec

from eventlog.clock import Clock, SystemClock, from_epoch
from eventlog.config.settings import Settings
from eventlog.errors import BatchNotFound
from eventlog.ledger.db import translated
from eventlog.ops.status_report import open_for_status
from eventlog.worker.limiter import SlidingWindowLimiter
from eventlog.clock import FixedClock
from projections.projectors import batch_jobs
from projections.projectors.batch_jobs import BatchRow, JobCounts

__all__ = ["BatchReport", "find_batch", "list_batches", "batch_report", "read_batch", "follow",
           "render_batches", "render_batch", "eta_text"]


class BatchReport(msgspec.Struct, frozen=True, kw_only=True):
    generated_at: str
    batch: BatchRow
    jobs: list[JobCounts]  # by status and stage
    errors: dict[str, int]  # jobs by the error code they last saw
    window_seconds: float
    done_in_window: int  # jobs finished within the last window: the pace
    eta_seconds: float | None  # open jobs at that pace; None when nothing finished in the window
    window_used: int  # requests in the rate-limit window now (all work, stream first)
    window_limit: int

    @property
    def done(self) -> int:
        b = self.batch
        return b.completed_jobs + b.failed_jobs + b.cancelled_jobs

    @property
    def finished(self) -> bool:
        return self.batch.finished


def find_batch(conn: apsw.Connection, wanted: str) -> BatchRow:
    """The batch with this id, or the one whose id starts with it (at least 4 characters)."""
    found = batch_jobs.batch(conn, wanted)
    if found is None and len(wanted) >= 4:
        matches = [b for b in batch_jobs.batches(conn) if b.id.startswith(wanted)]
        if len(matches) > 1:
            raise BatchNotFound(f"{wanted!r} starts {len(matches)} batch ids: give more of it")
        found = matches[0] if matches else None
    if found is None:
        raise BatchNotFound(f"no batch {wanted!r} in this database (`python cli.py batches` lists them; "
                            "a finished batch's rows go once it expires)")
    return found


def list_batches(path: str) -> list[BatchRow]:
    conn = open_for_status(path)
    try:
        with translated(conn.filename):
            return batch_jobs.batches(conn)
    finally:
        conn.close()


def batch_report(conn: apsw.Connection, settings: Settings, wanted: str, now: float) -> BatchReport:
    with translated(conn.filename):
        b = find_batch(conn, wanted)
        window = settings.rate_limit_window
        recent = batch_jobs.jobs_done_since(conn, b.id, from_epoch(now - window))
        limiter = SlidingWindowLimiter(conn, FixedClock(now), limit=settings.rate_limit_requests, window=window,
                                       slack=settings.rate_limit_slack)
        return BatchReport(
            generated_at=from_epoch(now), batch=b, jobs=batch_jobs.job_counts(conn, b.id),
            errors=batch_jobs.job_errors(conn, b.id), window_seconds=window, done_in_window=recent,
            eta_seconds=(b.open_jobs * window / recent) if recent and not b.finished else None,
            window_used=limiter.in_window(now), window_limit=settings.rate_limit_requests)


def read_batch(path: str, settings: Settings, wanted: str, clock: Clock | None = None) -> BatchReport:
    conn = open_for_status(path)
    try:
        return batch_report(conn, settings, wanted, (clock or SystemClock()).now())
    finally:
        conn.close()


def follow(path: str, settings: Settings, wanted: str, *, interval: float = 1.0, clock: Clock | None = None,
           sleep: Callable[[float], None] = time.sleep) -> Iterator[BatchReport]:
    """A report now, then one every `interval` seconds, until (and including) the finished one."""
    clock = clock or SystemClock()
    conn = open_for_status(path)
    try:
        batch_id = find_batch(conn, wanted).id
        while True:
            report = batch_report(conn, settings, batch_id, clock.now())
            yield report
            if report.finished:
                return
            sleep(interval)
    finally:
        conn.close()


# --- text --------------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def eta_text(r: BatchReport) -> str:
    if r.finished:
        return f"finished {r.batch.completed_at}"
    if r.eta_seconds is None:
        return f"ETA unknown: no job finished in the last {r.window_seconds:g} s"
    return (f"ETA {_duration(r.eta_seconds)} at the last window's pace ({r.done_in_window:,} jobs in "
            f"{r.window_seconds:g} s)")


def render_batches(rows: list[BatchRow]) -> str:
    if not rows:
        return "no batches (`python cli.py bulk` or `python cli.py backfill` creates them)"
    lines = [f"{'id':<32}  {'status':<10} {'done':>15}  {'failed':>7}  created                      name"]
    for b in rows:
        done = b.completed_jobs + b.failed_jobs + b.cancelled_jobs
        lines.append(f"{b.id:<32}  {b.status:<10} {f'{done:,}/{b.total_jobs:,}':>15}  {b.failed_jobs:>7,}  "
                     f"{b.created_at or '-':<27}  {b.name}")
    return "\n".join(lines)


def render_batch(r: BatchReport) -> str:
    b = r.batch
    pct = f"{100.0 * r.done / b.total_jobs:.1f}%" if b.total_jobs else "-"
    lines = [
        f"batch        {b.id} ({b.name})",
        f"status       {b.status}: {r.done:,} / {b.total_jobs:,} jobs finished ({pct}), {b.open_jobs:,} open",
        f"jobs         completed {b.completed_jobs:,} | failed {b.failed_jobs:,} | cancelled {b.cancelled_jobs:,}",
        "by stage     " + (" | ".join(f"{j.status}/{j.stage or '-'} {j.jobs:,}" for j in r.jobs) or "-"),
        "errors       " + (" | ".join(f"{code} {n:,}" for code, n in r.errors.items()) or "none"),
        f"progress     {eta_text(r)}",
        f"window       {r.window_used} / {r.window_limit} requests in the last {r.window_seconds:g} s "
        "(stream work goes first)",
        f"times        created {b.created_at or '-'}, started {b.started_at or '-'}, "
        f"finished {b.completed_at or '-'}, rows expire {b.expires_at or '-'}",
    ]
    return "\n".join(lines)
