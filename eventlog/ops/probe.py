"""What the health server knows about a running worker, and how it finds out.

The server never touches the worker's own connection: it opens a read-only
connection of its own on the same file, so a slow scrape can't sit inside the
worker's `BEGIN IMMEDIATE`, and WAL lets it read while the worker appends.
Everything else comes from the worker through `WorkerView`, a small protocol,
so tests hand in a plain object and the server needs nothing of `Worker`.

Every query here is bounded (an index lookup, or a scan of a fixed number of
recent rows): they run on the worker's event loop, between its appends.
"""

from __future__ import annotations

import math
import os
import time
from typing import Protocol, Sequence

import apsw
import msgspec
import psutil

from eventlog.clock import Clock, from_epoch, published_epoch, to_epoch
from eventlog.ledger.db import connect
from eventlog.ledger.disk import DiskReport, measure
from eventlog.worker.limiter import SlidingWindowLimiter
from eventlog.config.settings import Settings
from eventlog.ops.enrichment_status import collect_enrichment, health_line
from eventlog.ops.status_report import StatusReport, collect_status, horizon_problems
from eventlog.worker.stream.stats import StreamStats
from projections.projectors import rate_limit_log, request_queue, stream_gaps

__all__ = ["WorkerView", "Probe", "Check", "HealthReport", "CHECKS", "DEFAULT_MEMORY_LIMIT_MB",
           "DEFAULT_STUCK_AFTER", "LATENCY_SAMPLE", "LATENCY_QUANTILES"]

DEFAULT_MEMORY_LIMIT_MB = 256.0  # the stream module's old guide warned at 100 MB; Render's smallest worker has 512 MB
DEFAULT_STUCK_AFTER = 120.0  # due work, room in the window, and nothing sent for this long
LATENCY_SAMPLE = 1000  # stream events the latency quantiles are taken over
LATENCY_SCAN = 20_000  # ... looked for among this many newest ledger positions
LATENCY_QUANTILES = (0.5, 0.95, 0.99)
CHECKS = ("connection", "processing", "database", "memory", "disk", "horizon")  # the four, the disk, the horizon


class WorkerView(Protocol):
    """What the health server reads from the worker. `Worker` provides it.

    Optional: a `stream_paused` attribute (str or None). When it holds a reason,
    a disconnected stream is on purpose and the connection check passes, saying so.
    Optional: a `calls_paused` attribute (str or None): REST calls paused on purpose
    (outside business hours; the stream goes on), so due work waiting is not "stuck".
    """

    conn: apsw.Connection  # only `conn.filename` is used: the server opens its own
    settings: Settings
    limiter: SlidingWindowLimiter  # its limit, window, slack and clock
    started_at: float  # epoch seconds, by the limiter's clock

    def stream_stats(self) -> Sequence[StreamStats]:
        """One StreamStats per stream client, live objects or copies."""
        ...


class Check(msgspec.Struct, frozen=True):
    ok: bool
    detail: str


class HealthReport(msgspec.Struct, frozen=True, kw_only=True):
    status: str  # "healthy" or "unhealthy"
    checked_at: str
    uptime_seconds: float
    failed: list[str]
    checks: dict[str, Check]
    # Snov.io: off, running, or stopped and why. Not a check: a stop for credits needs money, not
    # a restart, and the stream and Companies House work go on without it.
    enrichment: str = ""
    # Not failures, but a person must act: 416 gaps no bulk snapshot has reconciled yet.
    warnings: list[str] = []


def _quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile: a value that was observed, not an interpolation."""
    rank = math.ceil(q * len(sorted_values))
    return sorted_values[max(0, min(len(sorted_values), rank) - 1)]


class Probe:
    """Reads for `/health`, `/metrics` and the status page, over a read-only connection."""

    def __init__(self, view: WorkerView, *, memory_limit_mb: float = DEFAULT_MEMORY_LIMIT_MB,
                 stuck_after: float = DEFAULT_STUCK_AFTER, target: int = 10_000,
                 clock: Clock | None = None) -> None:
        self.view = view
        self.settings = view.settings
        self.clock: Clock = clock or view.limiter.clock
        self.memory_limit_bytes = int(memory_limit_mb * 1024 * 1024)
        self.stuck_after = stuck_after
        self.target = target
        self.conn = connect(view.conn.filename, readonly=True)
        lim = view.limiter
        self.limiter = SlidingWindowLimiter(self.conn, self.clock, limit=lim.limit,
                                            window=lim.window, slack=lim.slack)
        self._process = psutil.Process(os.getpid())

    def close(self) -> None:
        self.conn.close()

    def now(self) -> float:
        return self.clock.now()

    def streams(self) -> list[StreamStats]:
        return list(self.view.stream_stats())

    # --- the four checks -------------------------------------------------------------

    def health(self) -> HealthReport:
        now = self.now()
        checks = {name: self._run_check(name, now) for name in CHECKS}
        failed = [name for name, c in checks.items() if not c.ok]
        return HealthReport(status="unhealthy" if failed else "healthy", checked_at=from_epoch(now),
                            uptime_seconds=round(now - self.view.started_at, 3),
                            failed=failed, checks=checks, enrichment=self._enrichment(now),
                            warnings=self._warnings())

    def _warnings(self) -> list[str]:
        try:
            return [stream_gaps.describe(g) for g in stream_gaps.gaps(self.conn, unresolved_only=True)]
        except Exception as exc:  # noqa: BLE001 - /health must answer, whatever broke
            return [f"stream gaps could not be read: {type(exc).__name__}"]

    def check_horizon(self, now: float) -> Check:
        """Every stream heard within STREAM_MAX_DARK_HOURS: well inside CH's ~3 days of retention,
        so the next resume cannot meet a 416."""
        limit = self.settings.stream_max_dark_hours
        dark = horizon_problems(self.conn, now, limit)
        if dark:
            return Check(False, f"dark past STREAM_MAX_DARK_HOURS ({limit:g} h): " + ", ".join(dark))
        return Check(True, f"every stream heard within {limit:g} h")

    def _enrichment(self, now: float) -> str:
        try:
            return health_line(collect_enrichment(self.conn, self.settings, now, detail=False))
        except Exception as exc:  # noqa: BLE001 - /health must answer, whatever broke
            return f"could not be read: {type(exc).__name__}"

    def _run_check(self, name: str, now: float) -> Check:
        """A check that raises has failed: /health must answer, whatever broke."""
        try:
            return getattr(self, f"check_{name}")(now)
        except Exception as exc:  # noqa: BLE001 - reported, not swallowed
            return Check(False, f"check raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")

    def check_connection(self, now: float) -> Check:
        """Every stream connected, and heard from (a heartbeat will do) within READ_TIMEOUT."""
        paused = getattr(self.view, "stream_paused", None)
        if paused:
            return Check(True, f"paused on purpose: {paused}")
        stats = self.streams()
        if not stats:
            return Check(False, "no stream client is running")
        limit = self.settings.read_timeout
        problems, fine = [], []
        for s in stats:
            heard = s.last_byte_at if s.last_byte_at is not None else s.connected_since
            if not s.connected:
                problems.append(f"{s.stream}: disconnected")
            elif heard is None or now - heard > limit:
                silent = "never" if heard is None else f"{now - heard:.0f} s ago"
                problems.append(f"{s.stream}: last heard {silent} (READ_TIMEOUT {limit:g} s)")
            else:
                fine.append(f"{s.stream}: connected, last heard {now - heard:.1f} s ago")
        return Check(not problems, "; ".join(problems or fine))

    def check_processing(self, now: float) -> Check:
        """Due work with room in the window and no cooldown must leave within `stuck_after`;
        and no request may wait for its response longer than that past REQUEST_TIMEOUT."""
        conn = self.conn
        due = request_queue.due_count(conn, now)
        used = self.limiter.in_window(now)
        cooldown = self.limiter.cooldown_until()
        last_sent = rate_limit_log.last_send(conn)
        since = max(to_epoch(last_sent) if last_sent else 0.0, self.view.started_at)
        overdue = now - self.settings.request_timeout - self.stuck_after
        waiting = rate_limit_log.unanswered_before(conn, overdue)
        if waiting:
            return Check(False, f"{waiting} request(s) sent before {from_epoch(overdue)} still have no response")
        state = f"{due} due, window {used}/{self.limiter.limit}"
        paused = getattr(self.view, "calls_paused", None)
        if paused:
            return Check(True, f"{state}, calls paused on purpose: {paused}")
        if cooldown > now:
            return Check(True, f"{state}, cooling down until {from_epoch(cooldown)}")
        if due and used < self.limiter.limit and now - since > self.stuck_after:
            return Check(False, f"stuck: {state}, nothing sent for {now - since:.0f} s")
        return Check(True, state)

    def check_database(self, now: float) -> Check:
        started = time.perf_counter()
        try:
            self.conn.execute("SELECT 1").fetchone()
        except apsw.Error as exc:
            return Check(False, f"SELECT 1 failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        return Check(True, f"SELECT 1 in {1000 * (time.perf_counter() - started):.1f} ms")

    def check_memory(self, now: float) -> Check:
        rss = self.rss_bytes()
        text = f"RSS {rss / 1048576:.0f} MB of {self.memory_limit_bytes / 1048576:.0f} MB allowed"
        return Check(rss < self.memory_limit_bytes, text)

    def check_disk(self, now: float) -> Check:
        """Fails a week before the reserve would be reached, or under twice the reserve (ledger/disk.py)."""
        if not self.conn.filename:
            return Check(True, "an in-memory database: no disk to watch")
        report = self.disk()
        if report.low:
            return Check(False, f"below the reserve, the worker stops: {report.describe()}")
        warning = report.warning
        return Check(warning is None, f"{warning}: {report.describe()}" if warning else report.describe())

    # --- numbers for /metrics and the page -------------------------------------------

    def disk(self) -> DiskReport:
        return measure(self.conn, self.conn.filename, self.now(), self.settings.disk_reserve_bytes)

    def rss_bytes(self) -> int:
        return int(self._process.memory_info().rss)

    def head(self) -> int:
        return int(self.conn.execute("SELECT max(id) FROM event_log").fetchone()[0] or 0)

    def status(self) -> StatusReport:
        """The `status` report without the two history-long counts (see status.py)."""
        return collect_status(self.conn, self.settings, self.now(), target=self.target, detail=False)

    def latency_seconds(self) -> list[float]:
        """Publication-to-ledger delay of recent stream events, sorted.

        `received_at` (our commit time) minus the event's `published_at` (Companies
        House's time, whole seconds): the end-to-end delay a customer sees. While
        catching up a backlog it is large on purpose; that is the lag.
        """
        head = self.head()
        rows = self.conn.execute(
            "SELECT received_at, json_extract(event_data, '$.published_at') FROM event_log "
            "WHERE id > ? AND event_type = 'stream.event' ORDER BY id DESC LIMIT ?",
            (head - LATENCY_SCAN, LATENCY_SAMPLE)).fetchall()
        out = []
        for received, published in rows:
            try:
                got = to_epoch(received)
                out.append(max(0.0, got - published_epoch(published, got)))
            except (TypeError, ValueError):
                continue
        out.sort()
        return out

    def latency_quantiles(self) -> dict[float, float]:
        values = self.latency_seconds()
        return {q: _quantile(values, q) for q in LATENCY_QUANTILES} if values else {}

    def request_outcomes(self) -> tuple[int, int]:
        """(answered, errors) among requests sent in the current window.

        An error is anything but a 2xx or a 404 (a company that does not exist is an
        answer): 429/403, 5xx, and transport failures. Requests still on their way don't count.
        """
        return rate_limit_log.answers_after(self.conn, self.now() - self.limiter.window - self.limiter.slack)

    def rate_limited_total(self) -> dict[int, int]:
        return rate_limit_log.refusal_counts(self.conn)
