"""`status`: where the pipeline stands, read from the projections alone.

Everything here is a read of projection tables (never a scan of the ledger),
so it is safe against a running worker (WAL: readers never block its appends)
and cheap enough for the live status page. The two counts that grow with the
whole history (requests ever sent, status calls saved by the stream) are only
taken with `detail=True`: `count(*)` over months of `api_rate_limit_log` is a
CLI's business, not something to repeat every few seconds on the worker's
event loop.

`now` is passed in, so a test (or the page's snapshot) decides what time it is.
"""

from __future__ import annotations

import msgspec
import apsw

from eventlog.clock import Clock, FixedClock, SystemClock, from_epoch, to_epoch
from eventlog.ledger.db import connect, translated
from eventlog.ledger.disk import DiskReport, measure
from eventlog.errors import DatabaseError
from eventlog.ops.enrichment_status import EnrichmentStatus, collect_enrichment, render_enrichment
from eventlog.worker.limiter import SlidingWindowLimiter
from eventlog.ledger.schema import current_version, latest_version
from projections.projectors import (batch_jobs, companies, officers, processing_state, rate_limit_log, stream_gaps,
                                    stream_metadata)
from projections.projectors.request_queue import depth_by_priority
from eventlog.config.settings import Settings, load_settings

__all__ = ["StatusReport", "StreamState", "collect_status", "render_status", "read_status",
           "READY_LINE", "DEFAULT_TARGET"]

READY_LINE = "READY FOR STREAMING API"  # the verdict the customer's import waits for
DEFAULT_TARGET = 10_000
_FINISHED = ("completed", "failed")


class StreamState(msgspec.Struct, frozen=True, kw_only=True):
    """One row of `stream_metadata`."""

    stream: str
    connection_status: str | None
    last_timepoint: int | None
    last_processed_at: str | None
    reconnects: int
    gaps: int
    errors: int
    last_heard_at: str | None = None


class StatusReport(msgspec.Struct, frozen=True, kw_only=True):
    generated_at: str
    ledger_head: int
    # companies by company_processing_state.processing_state
    companies_detected: int  # every company that entered the pipeline (any state)
    companies_completed: int
    companies_failed: int
    companies_in_progress: int  # neither completed nor failed
    states: dict[str, int]
    # the customer's progress check
    companies_with_officers: int
    target: int
    ready: bool
    # the rate limit
    window_used: int
    window_limit: int
    window_seconds: float
    cooldown_until: str | None
    queue: dict[str, int]
    # the stream
    last_event_published_at: str | None  # newest companies.stream_last_updated
    last_event_received_at: str | None  # newest stream_metadata.last_processed_timestamp
    stream_lag_seconds: float | None  # now - last_event_published_at
    streams: list[StreamState]
    # the budget
    responses_429: int
    responses_403: int
    requests_sent: int | None = None  # detail only
    calls_per_completed: float | None = None  # detail only
    status_calls_saved: int | None = None  # detail only: status taken from a stream event or a bulk snapshot
    disk: DiskReport | None = None  # room left beside the database (None for an unnamed database)
    # backfill batches not finished (a bulk snapshot's, a backfill list's): their companies count
    # towards the target like the stream's once their officers are in
    batches_unfinished: int = 0
    batch_jobs: int = 0
    batch_jobs_open: int = 0
    enrichment: EnrichmentStatus | None = None  # Snov.io: None when off and never run here
    # the dark horizon: streams unheard longer than STREAM_MAX_DARK_HOURS, "stream (N h)" each
    max_dark_hours: float = 24.0
    dark_streams: list[str] = []
    # 416 gaps no bulk snapshot has reconciled yet, one line each
    unresolved_gaps: list[str] = []


def _one(conn: apsw.Connection, sql: str, args: tuple = ()) -> object:
    row = conn.execute(sql, args).fetchone()
    return row[0] if row else None


def _epoch(text: object) -> float | None:
    """A stored timestamp as epoch seconds; None for absent or unreadable ones."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return to_epoch(text)
    except ValueError:
        return None


def _canonical(text: object) -> str | None:
    t = _epoch(text)
    return from_epoch(t) if t is not None else None


def collect_status(conn: apsw.Connection, settings: Settings, now: float, *,
                   target: int = DEFAULT_TARGET, detail: bool = True) -> StatusReport:
    """Everything `status` and the status page show, as one typed value."""
    with translated(conn.filename):
        states = processing_state.state_counts(conn)
        detected = sum(states.values())
        completed, failed = states.get("completed", 0), states.get("failed", 0)
        with_officers = officers.companies_with_officers(conn)
        limiter = SlidingWindowLimiter(conn, FixedClock(now), limit=settings.rate_limit_requests,
                                       window=settings.rate_limit_window,
                                       slack=settings.rate_limit_slack)
        used = limiter.in_window(now)
        cooldown = limiter.cooldown_until()
        published = companies.latest_stream_update(conn)
        streams = [StreamState(**r._asdict()) for r in stream_metadata.stream_rows(conn)]
        received = max((s.last_processed_at for s in streams if s.last_processed_at), default=None)
        by_status = rate_limit_log.refusal_counts(conn)
        head = int(_one(conn, "SELECT max(id) FROM event_log") or 0)
        disk = measure(conn, conn.filename, now, settings.disk_reserve_bytes) if conn.filename else None
        unfinished, jobs_total, jobs_open = batch_jobs.unfinished_totals(conn)
        enrichment = collect_enrichment(conn, settings, now, detail=detail)
        sent = per_company = saved = None
        if detail:
            sent = rate_limit_log.total_sends(conn)
            per_company = round(sent / completed, 3) if completed else None
            saved = processing_state.status_calls_saved(conn)
    published_epoch = _epoch(published)
    return StatusReport(
        generated_at=from_epoch(now),
        ledger_head=head,
        companies_detected=detected,
        companies_completed=completed,
        companies_failed=failed,
        companies_in_progress=detected - completed - failed,
        states=states,
        companies_with_officers=with_officers,
        target=target,
        ready=with_officers >= target,
        window_used=used,
        window_limit=settings.rate_limit_requests,
        window_seconds=settings.rate_limit_window,
        cooldown_until=from_epoch(cooldown) if cooldown > now else None,
        queue=depth_by_priority(conn),
        last_event_published_at=_canonical(published),
        last_event_received_at=_canonical(received),
        stream_lag_seconds=round(now - published_epoch, 3) if published_epoch is not None else None,
        streams=streams,
        responses_429=int(by_status.get(429, 0)),
        responses_403=int(by_status.get(403, 0)),
        requests_sent=sent,
        calls_per_completed=per_company,
        status_calls_saved=saved,
        disk=disk,
        batches_unfinished=unfinished,
        batch_jobs=jobs_total,
        batch_jobs_open=jobs_open,
        enrichment=enrichment,
        max_dark_hours=settings.stream_max_dark_hours,
        dark_streams=horizon_problems(conn, now, settings.stream_max_dark_hours),
        unresolved_gaps=[stream_gaps.describe(g) for g in stream_gaps.gaps(conn, unresolved_only=True)],
    )


def horizon_problems(conn: apsw.Connection, now: float, max_dark_hours: float) -> list[str]:
    """Streams dark past the horizon, as `companies (30.2 h)` / `filings (never heard)`."""
    return [f"{name} ({'never heard' if hours is None else f'{hours:.1f} h'})"
            for name, hours in stream_metadata.dark_streams(conn, now, max_dark_hours)]


def _pct(n: int, of: int | float) -> str:
    return f"{100.0 * n / of:.1f}%" if of else "-"


def _lag(seconds: float | None) -> str:
    if seconds is None:
        return "no stream events yet"
    if abs(seconds) < 120:
        return f"{seconds:.1f} s behind"
    if abs(seconds) < 7200:
        return f"{seconds / 60:.1f} min behind"
    return f"{seconds / 3600:.1f} h behind"


def render_status(report: StatusReport) -> str:
    """The human lines of `status`: one fact per line, label first."""
    r = report
    lines = [
        f"as of        {r.generated_at} (ledger head {r.ledger_head})",
        f"companies    detected {r.companies_detected} | completed {r.companies_completed}"
        f" | failed {r.companies_failed} | in progress {r.companies_in_progress}",
        f"officers     {r.companies_with_officers} / {r.target} companies with officers"
        f" ({_pct(r.companies_with_officers, r.target)})",
    ]
    if r.ready:
        lines.append(READY_LINE)
    else:
        lines.append(f"             {r.target - r.companies_with_officers} more to reach the target")
    window = (f"window       {r.window_used} / {r.window_limit} requests in the last"
              f" {r.window_seconds:g} s ({_pct(r.window_used, r.window_limit)})")
    if r.cooldown_until:
        window += f", cooling down until {r.cooldown_until}"
    lines.append(window)
    lines.append("queue        " + " | ".join(f"{p} {n}" for p, n in r.queue.items()))
    if r.batches_unfinished:
        lines.append(f"batches      {r.batches_unfinished} under way: {r.batch_jobs - r.batch_jobs_open} of "
                     f"{r.batch_jobs} jobs finished (`python cli.py batches`)")
    lines.append(f"last event   {r.last_event_published_at or '-'} published,"
                 f" {r.last_event_received_at or '-'} received ({_lag(r.stream_lag_seconds)})")
    for s in r.streams:
        lines.append(f"stream       {s.stream}: {s.connection_status or 'unknown'}, timepoint"
                     f" {s.last_timepoint if s.last_timepoint is not None else '-'},"
                     f" {s.reconnects} reconnects, {s.gaps} gaps, {s.errors} errors,"
                     f" last heard {s.last_heard_at or '-'}")
    if r.dark_streams:
        lines.append(f"horizon      WARNING: dark past STREAM_MAX_DARK_HOURS ({r.max_dark_hours:g} h): "
                     + ", ".join(r.dark_streams))
    elif r.streams:
        lines.append(f"horizon      every stream heard within {r.max_dark_hours:g} h")
    for gap in r.unresolved_gaps:
        lines.append(f"gap          {gap}")
    if r.requests_sent is not None:
        per = f"{r.calls_per_completed:.2f}" if r.calls_per_completed is not None else "-"
        lines.append(f"calls        {r.requests_sent} sent | {per} per completed company"
                     f" | {r.status_calls_saved} status calls saved by the stream or a snapshot")
    lines.append(f"429s         {r.responses_429} (403s {r.responses_403})")
    if r.enrichment is not None:
        lines.extend(render_enrichment(r.enrichment))
    if r.disk is not None:
        lines.append(f"disk         {r.disk.describe()}")
        if r.disk.low or r.disk.warning:
            lines.append(f"             WARNING: {'below the reserve: ingest will not run' if r.disk.low else r.disk.warning}")
    return "\n".join(lines)


def open_for_status(path: str) -> apsw.Connection:
    """A read-only connection to a migrated database, or one clear DatabaseError."""
    conn = connect(path, readonly=True)
    version = current_version(conn)
    latest = latest_version()
    if version == 0:
        conn.close()
        raise DatabaseError(f"{path} has no chledger schema: run `python cli.py migrate --db {path}`"
                            " (or `ingest`, which migrates) first")
    if version < latest:
        conn.close()
        raise DatabaseError(f"{path} is at schema version {version}, this chledger expects {latest}:"
                            f" run `python cli.py migrate --db {path}`")
    if version > latest:
        conn.close()
        raise DatabaseError(f"{path} is at schema version {version}, newer than this chledger"
                            f" knows ({latest}): upgrade chledger")
    return conn


def read_status(db_path: str | None, target: int = DEFAULT_TARGET, *,
                settings: Settings | None = None, clock: Clock | None = None) -> StatusReport:
    """The `status` command's report of the database at `db_path`.

    A database that can't be read (missing, corrupt, not or differently
    migrated) raises its DatabaseError; `cli.py` prints it and exits 2.
    """
    settings = settings or load_settings({"database_path": db_path})
    path = db_path or settings.database_path
    conn = open_for_status(path)
    try:
        return collect_status(conn, settings, (clock or SystemClock()).now(), target=target)
    finally:
        conn.close()
