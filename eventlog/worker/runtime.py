"""The worker's asyncio runtime: senders, the policy loop, the streams, the disk loop, shutdown.

`Worker` runs one session of `ingest` on a ledger its caller built: the caller
attaches the hooks every append must go through (the projections, the fact
log) and hands over the stream clients, so this module knows nothing of the
command line, the simulator, the health server or business hours
(`eventlog.commands.ingest` wires those).

`run` records `worker.started`, recovers requests a killed worker left in
flight, sweeps the projections for work not yet queued, and only then starts
the stream and the senders. A stop (`request_stop`, the duration, or the first
task to fail) lets in-flight requests finish for a short grace period, records
the rest as interrupted, and appends `worker.stopped`.
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Awaitable, Callable, Sequence

import aiohttp

from eventlog import __version__
from eventlog.errors import ChledgerError
from eventlog.ledger.disk import DiskUsage, check_reserve
from eventlog.ledger.wal import check_wal
from eventlog.ledger.entries import WorkerStarted, WorkerStopped
from eventlog.ledger.store import Ledger, Record
from eventlog.worker.enrich.stage import Enricher
from eventlog.worker.limiter import SlidingWindowLimiter
from eventlog.worker.policy import recover_in_flight, sweep
from eventlog.worker.sender import Sender, rest_session
from eventlog.worker.stream.client import StreamClient, run_streams
from eventlog.worker.stream.stats import StreamStats
from eventlog.config.settings import Settings

__all__ = ["Worker", "SENDER_LANES", "wait_first"]

SENDER_LANES = 4  # enough to keep 2 req/s flowing when responses take ~1 s
SHUTDOWN_GRACE = 5.0
POLICY_INTERVAL = 5.0

_WAKES_POLICY = frozenset({"stream.event", "response.received", "request.abandoned",
                           "request.transport_error", "backfill.created", "company.completed"})


class Worker:
    """One session of the worker on `ledger` (hooks already attached by the caller).

    `stream_clients` must append through the same `ledger`. `progress(worker)` is
    called every `progress_interval` seconds and once on the way out; it is how
    the command prints its progress line. The worker also provides what the
    health server reads (`eventlog.ops.probe.WorkerView`): `conn`, `settings`,
    `limiter`, `started_at`, `stream_stats()`.
    """

    def __init__(self, settings: Settings, ledger: Ledger, stream_clients: Sequence[StreamClient], *,
                 rng: random.Random | None = None, progress: Callable[[Worker], None] | None = None,
                 progress_interval: float = 10.0, disk_usage: DiskUsage | None = None):
        self.settings = settings
        self.ledger = ledger
        self.clock = ledger.clock
        self.conn = ledger.conn
        self.ledger.on_append.append(self._observe)
        self.limiter = SlidingWindowLimiter(self.conn, self.clock, limit=settings.rate_limit_requests,
                                            window=settings.rate_limit_window,
                                            slack=settings.rate_limit_slack)
        self.stream_clients = list(stream_clients)
        self.stop = asyncio.Event()
        self.wake = asyncio.Event()
        self.dirty = asyncio.Event()
        self.progress = progress
        self.progress_interval = progress_interval
        self.rng = rng or random.Random()
        self.stream_events = 0
        self.stop_reason = "stopped"
        self.senders: list[Sender] = []
        self.enricher: Enricher | None = None  # with SNOV_CLIENT_ID and SNOV_CLIENT_SECRET set
        self.started_at = self.clock.now()
        # REST calls are open unless paused (business hours); the streams are never paused.
        self.calls_open = asyncio.Event()
        self.calls_open.set()
        self.calls_paused: str | None = None  # why, for /health and the progress line
        self._disk = {"usage": disk_usage} if disk_usage else {}

    def stream_stats(self) -> list[StreamStats]:
        return [c.stats for c in self.stream_clients]

    def responses(self) -> dict[int, int]:
        """Responses by HTTP status, summed over the sender lanes of this session."""
        total: dict[int, int] = {}
        for s in self.senders:
            for status, n in s.responses.items():
                total[status] = total.get(status, 0) + n
        return total

    def pause_calls(self, reason: str) -> None:
        """Hold every REST sender (a fetch already under way finishes its current page); the
        streams go on, so the dark horizon is never at risk."""
        self.calls_paused = reason
        self.calls_open.clear()

    def resume_calls(self) -> None:
        self.calls_paused = None
        self.calls_open.set()

    def request_stop(self, reason: str) -> None:
        """Begin a clean stop (e.g. on a signal); `reason` goes into `worker.stopped`."""
        self.stop_reason = reason
        self.stop.set()

    def _observe(self, conn, records: list[Record]) -> None:
        """Inline hook: note what the policy must look at (runs inside the append transaction)."""
        for r in records:
            if r.event_type == "stream.event":
                self.stream_events += 1
            if r.event_type in _WAKES_POLICY:
                self.dirty.set()

    # --- policy ---------------------------------------------------------------------

    def run_policy_once(self) -> int:
        """Sweep and append, in one BEGIN IMMEDIATE so two workers can't double-queue."""
        with self.ledger.transaction() as tx:
            entries = sweep(self.conn, self.settings, self.clock.now())
            if entries:
                tx.append_many(entries)
        if entries:
            self.wake.set()
        return len(entries)

    async def _policy_loop(self) -> None:
        """Sweep when our own appends call for it, and every few seconds for other
        processes' appends (a `backfill` run while the worker is up)."""
        while not self.stop.is_set():
            await wait_first(self.stop.wait(), self.dirty.wait(), asyncio.sleep(POLICY_INTERVAL))
            self.dirty.clear()
            if self.stop.is_set():
                return
            self.run_policy_once()
            await asyncio.sleep(0.05)  # coalesce a burst of stream events into one sweep

    # --- progress -------------------------------------------------------------------

    async def _progress_loop(self) -> None:
        while not self.stop.is_set():
            await wait_first(self.stop.wait(), asyncio.sleep(self.progress_interval))
            if not self.stop.is_set() and self.progress is not None:  # the final one comes on the way out
                self.progress(self)

    # --- disk ---------------------------------------------------------------------------

    def check_disk(self) -> None:
        """Raise DiskLow once less than DISK_RESERVE_MB is free beside the database, DatabaseError
        once its -wal was deleted under us (eventlog/ledger/wal.py)."""
        if self.conn.filename:  # an in-memory database (tests) has no disk to watch
            check_reserve(self.conn.filename, self.settings.disk_reserve_bytes, **self._disk)
            check_wal(self.conn)

    async def _disk_loop(self) -> None:
        """Stop cleanly before the disk is full: every HEALTH_CHECK_INTERVAL, between appends."""
        while not self.stop.is_set():
            await wait_first(self.stop.wait(), asyncio.sleep(self.settings.health_check_interval))
            if not self.stop.is_set():
                self.check_disk()

    # --- running --------------------------------------------------------------------

    def start(self) -> None:
        """Record the start and repair what a crash may have left behind."""
        s = self.settings
        with self.ledger.transaction() as tx:
            tx.append(WorkerStarted(version=__version__, pid=os.getpid(),
                                    rate_limit_requests=s.rate_limit_requests,
                                    rate_limit_window=s.rate_limit_window, interest=s.interest))
            tx.append_many(recover_in_flight(self.conn, self.clock.now()))
        self.run_policy_once()

    async def run(self, duration: float | None = None) -> int:
        self.check_disk()  # before `worker.started`: a worker that won't run appends nothing
        self.start()
        exit_code = 0
        connector = aiohttp.TCPConnector(limit=SENDER_LANES * 2)
        async with rest_session(connector=connector) as session:
            for _ in range(SENDER_LANES):
                self.senders.append(Sender(self.settings, self.ledger, self.limiter, session,
                                           clock=self.clock, stop=self.stop, wake=self.wake,
                                           rng=self.rng, calls_open=self.calls_open))
            tasks = [asyncio.create_task(s.run(), name=f"sender-{i}") for i, s in enumerate(self.senders)]
            if self.settings.snov_enabled:  # optional; its end (a stop for credits) ends nothing else
                self.enricher = Enricher(self.settings, self.ledger, session, clock=self.clock, stop=self.stop)
                tasks.append(asyncio.create_task(self.enricher.run(), name="enrich"))
            tasks.append(asyncio.create_task(self._policy_loop(), name="policy"))
            tasks.append(asyncio.create_task(self._progress_loop(), name="progress"))
            tasks.append(asyncio.create_task(self._disk_loop(), name="disk"))
            tasks.append(asyncio.create_task(
                run_streams(self.settings, self.ledger, self.stop, clients=self.stream_clients),
                name="stream"))
            timer = asyncio.create_task(self._timer(duration))
            late: ChledgerError | None = None
            try:
                exit_code = await self._supervise(tasks)
            except ChledgerError as exc:
                exit_code = exc.exit_code
                raise
            finally:
                timer.cancel()
                late = await self._shutdown(tasks)
                if late is not None and exit_code == 0:
                    # e.g. the answers of in-flight requests crossed the 429 threshold
                    # during the grace period: the stop was declared, so it must show
                    exit_code = late.exit_code
                    self.stop_reason = f"{type(late).__name__}: {late}"
                self.ledger.append(WorkerStopped(reason=self.stop_reason, exit_code=exit_code))
                if self.progress is not None:
                    self.progress(self)
        if late is not None and exit_code != 0:
            raise late
        return exit_code

    async def _timer(self, duration: float | None) -> None:
        if duration is None:
            return
        await wait_first(self.stop.wait(), asyncio.sleep(duration))
        if not self.stop.is_set():
            self.request_stop(f"duration of {duration:g} s reached")

    async def _supervise(self, tasks: list[asyncio.Task]) -> int:
        """Wait for the stop signal or the first task to fail; a failure stops everything."""
        stop_task = asyncio.create_task(self.stop.wait())
        try:
            pending = set(tasks) | {stop_task}
            while True:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    if t is stop_task:
                        return 0
                    if t.cancelled():
                        continue
                    exc = t.exception()
                    if exc is not None:
                        self.request_stop(f"{type(exc).__name__}: {exc}")
                        raise exc
                if pending == {stop_task}:
                    return 0
        finally:
            stop_task.cancel()

    async def _shutdown(self, tasks: list[asyncio.Task]) -> ChledgerError | None:
        """Stop every task (grace period, then cancel); return a known failure raised meanwhile."""
        self.stop.set()
        _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
        for t in pending:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return next((r for r in results if isinstance(r, ChledgerError)), None)


async def wait_first(*aws: Awaitable[object]) -> None:
    """Wait until the first of these completes; cancel the rest."""
    futs = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(futs, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for f in futs:
            f.cancel()
        for f in futs:  # a timeout among them is an answer, not an error to log later
            if f.done() and not f.cancelled():
                f.exception()
