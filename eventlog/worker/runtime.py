"""`ingest`: the stream client, the policies and the senders in one asyncio process.

Start-up order matters: migrate, take the worker lock, refuse outdated
projections, catch projections up, record `worker.started`, recover requests
a killed worker left in flight, sweep the projections for work not yet
queued; only then start the stream and the senders. Shutdown (SIGTERM,
SIGINT, `--duration`) lets in-flight requests finish for a short grace
period, records the rest as interrupted, and appends `worker.stopped`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
from typing import AsyncIterator, Callable, Iterator

import aiohttp
import msgspec

from eventlog import __version__
from eventlog.ops import fact_log as ledger_logging
from eventlog.clock import Clock, SystemClock
from eventlog.ledger.db import connect
from eventlog.ledger.disk import DiskUsage, check_reserve
from eventlog.ledger.entries import WorkerStarted, WorkerStopped
from eventlog.errors import ChledgerError, ConfigError
from eventlog.ledger.store import Ledger, Record
from eventlog.worker.limiter import SlidingWindowLimiter
from eventlog.ledger.migrate import migrate
from eventlog.worker.policy import recover_in_flight, sweep
from projections.projectors import processing_state
from projections.projectors.request_queue import depth_by_priority
from eventlog.worker.sender import Sender, rest_session
from eventlog.config.settings import Settings

__all__ = ["run_worker", "Worker", "SENDER_LANES", "StoppedBeforeStart", "early_stop_signals"]

SENDER_LANES = 4  # enough to keep 2 req/s flowing when responses take ~1 s
SHUTDOWN_GRACE = 5.0
POLICY_INTERVAL = 5.0

_WAKES_POLICY = frozenset({"stream.event", "response.received", "request.abandoned",
                           "request.transport_error", "backfill.created", "company.completed"})


class Worker:
    def __init__(self, settings: Settings, conn, *, clock: Clock | None = None,
                 report: Callable[[str], None] | None = None, progress_interval: float = 10.0,
                 rng: random.Random | None = None, disk_usage: DiskUsage | None = None):
        import projections

        self.settings = settings
        self.clock = clock or SystemClock()
        self.conn = conn
        self.ledger = Ledger(conn, self.clock)
        projections.attach(self.ledger)
        ledger_logging.attach(self.ledger, settings)  # every committed fact logged once
        self.ledger.on_append.append(self._observe)
        self.limiter = SlidingWindowLimiter(conn, self.clock, limit=settings.rate_limit_requests,
                                            window=settings.rate_limit_window,
                                            slack=settings.rate_limit_slack)
        self.stop = asyncio.Event()
        self.wake = asyncio.Event()
        self.dirty = asyncio.Event()
        self.report = report or (lambda line: print(line, file=sys.stderr, flush=True))
        self.progress_interval = progress_interval
        self.rng = rng or random.Random()
        self.stream_events = 0
        self.stop_reason = "stopped"
        self.senders: list[Sender] = []
        self.started_at = self.clock.now()
        self._disk = {"usage": disk_usage} if disk_usage else {}
        from eventlog.worker.stream.client import stream_clients

        self.stream_clients = stream_clients(settings, self.ledger, clock=self.clock, rng=self.rng)

    def stream_stats(self) -> list:
        return [c.stats for c in self.stream_clients]

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
            await _first(self.stop.wait(), self.dirty.wait(), asyncio.sleep(POLICY_INTERVAL))
            self.dirty.clear()
            if self.stop.is_set():
                return
            self.run_policy_once()
            await asyncio.sleep(0.05)  # coalesce a burst of stream events into one sweep

    # --- progress -------------------------------------------------------------------

    def summary(self) -> str:
        depth = depth_by_priority(self.conn)
        states = processing_state.state_counts(self.conn)
        r429 = sum(n for s, n in self._responses().items() if s in (429, 403))
        return (f"events {self.stream_events} | queue HIGH {depth.get('HIGH', 0)} LOW {depth.get('LOW', 0)}"
                f" | window {self.limiter.in_window()}/{self.settings.rate_limit_requests}"
                f" | sent {sum(s.sent for s in self.senders)}"
                f" | completed {states.get('completed', 0)} failed {states.get('failed', 0)}"
                f" | 429s {r429}")

    def _responses(self) -> dict[int, int]:
        total: dict[int, int] = {}
        for s in self.senders:
            for status, n in s.responses.items():
                total[status] = total.get(status, 0) + n
        return total

    async def _progress_loop(self) -> None:
        while not self.stop.is_set():
            await _first(self.stop.wait(), asyncio.sleep(self.progress_interval))
            if not self.stop.is_set():  # the final summary is printed on the way out
                self.report(self.summary())

    # --- disk ---------------------------------------------------------------------------

    def check_disk(self) -> None:
        """Raise DiskLow once less than DISK_RESERVE_MB is free beside the database."""
        if self.conn.filename:  # an in-memory database (tests) has no disk to watch
            check_reserve(self.conn.filename, self.settings.disk_reserve_bytes, **self._disk)

    async def _disk_loop(self) -> None:
        """Stop cleanly before the disk is full: every HEALTH_CHECK_INTERVAL, between appends."""
        while not self.stop.is_set():
            await _first(self.stop.wait(), asyncio.sleep(self.settings.health_check_interval))
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
        from eventlog.worker.stream.client import run_streams

        self.check_disk()  # before `worker.started`: a worker that won't run appends nothing
        self.start()
        exit_code = 0
        connector = aiohttp.TCPConnector(limit=SENDER_LANES * 2)
        async with rest_session(connector=connector) as session:
            for _ in range(SENDER_LANES):
                self.senders.append(Sender(self.settings, self.ledger, self.limiter, session,
                                           clock=self.clock, stop=self.stop, wake=self.wake,
                                           rng=self.rng))
            tasks = [asyncio.create_task(s.run(), name=f"sender-{i}") for i, s in enumerate(self.senders)]
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
                self.report(self.summary())
        if late is not None and exit_code != 0:
            raise late
        return exit_code

    async def _timer(self, duration: float | None) -> None:
        if duration is None:
            return
        await _first(self.stop.wait(), asyncio.sleep(duration))
        if not self.stop.is_set():
            self.stop_reason = f"duration of {duration:g} s reached"
            self.stop.set()

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
                        self.stop_reason = f"{type(exc).__name__}: {exc}"
                        self.stop.set()
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


async def _first(*aws) -> None:
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


@contextlib.asynccontextmanager
async def simulated(settings: Settings, seed: int = 0, after_timepoint: int | None = None) -> AsyncIterator[Settings]:
    """Start the built-in simulator on loopback and point the settings at it.

    A fresh simulator's stream starts at timepoint 1000; on a database an earlier
    run filled, the worker resumes after its last timepoint, and the stream would
    stay silent until its head got there. So the simulated stream begins just
    after `after_timepoint` (the ledger's last), and every run shows events.
    """
    from eventlog.simulator import SimulatorConfig, running_simulator

    # 70 events/s with 30% strike-off proposals asks for over ten officer calls a second, far above
    # the allowance of 2: within a minute the window fills and the limiter visibly holds the line.
    config = SimulatorConfig(seed=seed, rate_limit_requests=settings.rate_limit_requests,
                             rate_limit_window=settings.rate_limit_window, events_per_second=70.0,
                             **({"first_timepoint": after_timepoint + 1} if after_timepoint else {}))
    async with running_simulator(config) as sim:
        yield msgspec.structs.replace(
            settings, api_key=config.api_key, stream_key=config.stream_key,
            streaming_api_url=f"{sim.base_url}/companies", api_url=sim.base_url)


async def _main(settings: Settings, simulate: bool, duration: float | None,
                report: Callable[[str], None] | None, progress_interval: float) -> int:
    from projections import catch_up, check_versions
    from eventlog.ledger.lock import worker_lock

    conn = connect(settings.database_path)
    check_reserve(settings.database_path, settings.disk_reserve_bytes)  # before migrate writes anything
    migrate(conn)
    with worker_lock(settings.database_path):
        check_versions(conn)
        catch_up(conn)
        async with contextlib.AsyncExitStack() as stack:
            if simulate:
                from eventlog.worker.stream.client import last_recorded_timepoint

                last = last_recorded_timepoint(Ledger(conn), "companies")
                settings = await stack.enter_async_context(simulated(settings, after_timepoint=last))
            return await _sessions(settings, conn, duration, report, progress_interval)


async def _sessions(settings: Settings, conn, duration: float | None,
                    report: Callable[[str], None] | None, progress_interval: float) -> int:
    """Run the worker; with BUSINESS_HOURS, one session per opening, sleeping in between.

    Each session resumes the stream from the ledger's last timepoint, so the
    hours closed cost nothing but latency.
    """
    if settings.business_hours:
        _need_ops("BUSINESS_HOURS=true", "holidays")
        from eventlog.worker.schedule import is_open, next_change, wait_until_open
    if settings.health_port:
        _need_ops("a health port", "prometheus_client", "aiohttp_sse", "psutil")

    loop = asyncio.get_running_loop()
    shutdown = asyncio.Event()
    current: list[Worker] = []
    clock = SystemClock()
    say = report or (lambda line: print(line, file=sys.stderr, flush=True))

    def on_signal(sig: signal.Signals) -> None:
        shutdown.set()
        for w in current:
            _on_signal(w, sig)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    deadline = None if duration is None else loop.time() + duration
    view = _SessionView(settings, conn, clock)
    health = None
    if settings.health_port:
        from eventlog.ops.server import HealthServer

        health = HealthServer(view, settings.health_host, settings.health_port)
        await health.start()
        say(f"health, metrics and status page on {health.url}")
    try:
        while True:
            if settings.business_hours and not is_open(_utcnow(clock)):
                opens = next_change(_utcnow(clock))
                view.current, view.stream_paused = None, f"outside business hours until {opens.isoformat()}"
                say(f"outside business hours: sleeping until {opens.isoformat()}")
                waiter = wait_until_open(clock, asyncio.sleep)
                limit = None if deadline is None else max(deadline - loop.time(), 0)
                await _first(shutdown.wait(), asyncio.wait_for(waiter, limit))
                if shutdown.is_set() or (deadline is not None and loop.time() >= deadline):
                    return 0
            left = None if deadline is None else max(deadline - loop.time(), 0)
            session = left
            if settings.business_hours:
                closes = (next_change(_utcnow(clock)) - _utcnow(clock)).total_seconds()
                session = closes if left is None else min(left, closes)
            worker = Worker(settings, conn, report=report, progress_interval=progress_interval)
            current[:] = [worker]
            view.current, view.stream_paused = worker, None
            code = await worker.run(session)
            if code != 0 or shutdown.is_set() or not settings.business_hours:
                return code
            if deadline is not None and loop.time() >= deadline:
                return code
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        # The stop is under way: a second SIGTERM (a deploy's) must not kill the teardown and hide
        # its exit code. Ctrl-C stays a way out. The CLI restores both when it is done.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if health is not None:
            await health.stop()


def _need_ops(what: str, *modules: str) -> None:
    """A missing optional package is a one-line configuration error, not a traceback."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"{what} needs the ops extra ({', '.join(missing)} not installed): "
                          "pip install '.[ops]'")


class _SessionView:
    """What the health server reads (`eventlog.probe.WorkerView`), across business-hours sessions.

    The server outlives each session so `/health` keeps answering at night, and says
    the stream is paused on purpose instead of turning 503.
    """

    def __init__(self, settings: Settings, conn, clock: Clock):
        self.settings = settings
        self.conn = conn
        self.limiter = SlidingWindowLimiter(conn, clock, limit=settings.rate_limit_requests,
                                            window=settings.rate_limit_window,
                                            slack=settings.rate_limit_slack)
        self.started_at = clock.now()
        self.current: Worker | None = None
        self.stream_paused: str | None = None

    def stream_stats(self) -> list:
        return self.current.stream_stats() if self.current else []


def _utcnow(clock: Clock):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(clock.now(), tz=timezone.utc)


def _on_signal(worker: Worker, sig: signal.Signals) -> None:
    worker.stop_reason = f"signal {sig.name}"
    worker.stop.set()


class StoppedBeforeStart(KeyboardInterrupt):
    """SIGTERM or Ctrl-C while starting up (config, migrate, catch-up, simulator): nothing appended yet.

    A KeyboardInterrupt, so nothing on the way can swallow it: not an `except
    Exception`, and not asyncio, which re-raises only KeyboardInterrupt and
    SystemExit out of a callback. Transactions it interrupts roll back.
    """


@contextlib.contextmanager
def early_stop_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into `StoppedBeforeStart` until the event loop's handlers replace them.

    Start-up can take a while (catching projections up after an upgrade), and a
    deploy's SIGTERM then must be a clean stop (exit 0), not a death by signal.
    """
    def stop(signum: int, frame: object) -> None:
        raise StoppedBeforeStart(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_worker(settings: Settings, *, simulate: bool = False, duration: float | None = None,
               report: Callable[[str], None] | None = None, progress_interval: float = 10.0) -> int:
    """The `ingest` command. Returns the exit code; known failures raise ChledgerError."""
    if not simulate and not settings.api_key:
        raise ConfigError("COMPANIES_HOUSE_API_KEY is not set: set it to your Companies House key, "
                          "or run `python cli.py ingest --simulate` to use the built-in simulator")
    before = signal.getsignal(signal.SIGTERM)
    try:
        return asyncio.run(_main(settings, simulate, duration, report, progress_interval))
    finally:
        signal.signal(signal.SIGTERM, before)  # the teardown ignored a second SIGTERM; no longer
