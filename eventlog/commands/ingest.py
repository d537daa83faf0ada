"""`python cli.py ingest`: the composition root that builds and runs the worker.

The runtime (`eventlog.worker.runtime.Worker`) knows nothing of what is wired
here: the settings check, the database, the simulator, business hours,
signals, the health server and the fact log.

Start-up order matters: refuse to start below the disk reserve, migrate, take
the worker lock, refuse outdated projections, catch projections up; only then
does a session's `Worker` record `worker.started` and start its tasks. With
BUSINESS_HOURS the REST calls pause outside the hours; the streams never do.
SIGTERM and SIGINT stop the running session cleanly (exit 0); before the event
loop's handlers are installed, `early_stop_signals` turns them into
`StoppedBeforeStart`, so a stop during start-up appends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import random
import signal
from datetime import datetime, timezone
from typing import AsyncIterator, Awaitable, Callable, Iterator

import apsw
import msgspec

import projections
from eventlog.clock import Clock, CompressedClock, SystemClock
from eventlog.config.settings import Settings
from eventlog.errors import ConfigError
from eventlog.ledger.db import connect
from eventlog.ledger.integrity import QUICK, check_integrity
from eventlog.ledger.disk import check_reserve
from eventlog.ledger.lock import worker_lock
from eventlog.ledger.migrate import migrate
from eventlog.ledger.store import Ledger
from eventlog.ops import fact_log
from eventlog.simulator import SimulatorConfig, running_simulator
from eventlog.simulator.snov import SIM_CLIENT_ID, SIM_CLIENT_SECRET, SnovSimulatorConfig, running_snov_simulator
from projections.projectors import domains, emails, processing_state
from projections.projectors.request_queue import depth_by_priority
from eventlog.worker.limiter import SlidingWindowLimiter
from eventlog.worker.runtime import Worker
from eventlog.worker.stream.client import last_recorded_timepoint, stream_clients, stream_name

__all__ = ["run_worker", "StoppedBeforeStart", "early_stop_signals", "build_worker", "progress_line",
           "simulated"]

Report = Callable[[str], None]


def run_worker(settings: Settings, *, simulate: bool = False, duration: float | None = None,
               report: Report | None = None, progress_interval: float = 10.0,
               compressed: CompressedClock | None = None) -> int:
    """The `ingest` command. Returns the exit code; known failures raise ChledgerError.

    `report` receives the human lines (the progress line, the health server's
    address, business-hours pauses); without one they are dropped. `compressed` runs the worker
    in compressed time (end-to-end runs over days; `duration` stays in real seconds).
    """
    if not simulate and not settings.api_key:
        raise ConfigError("COMPANIES_HOUSE_API_KEY is not set: set it to your Companies House key, "
                          "or run `python cli.py ingest --simulate` to use the built-in simulator")
    if not simulate and not settings.stream_key:
        raise ConfigError("COMPANIES_HOUSE_STREAM_KEY is not set: set it to your Companies House "
                          "streaming API key (a different key from COMPANIES_HOUSE_API_KEY; the stream "
                          "refuses the REST key), or run `python cli.py ingest --simulate`")
    before = signal.getsignal(signal.SIGTERM)
    try:
        return asyncio.run(_main(settings, simulate, duration, report or _quiet, progress_interval, compressed))
    finally:
        signal.signal(signal.SIGTERM, before)  # the teardown ignored a second SIGTERM; no longer


def _quiet(line: str) -> None:
    pass


def build_worker(settings: Settings, conn: apsw.Connection, *, clock: Clock, report: Report,
                 progress_interval: float = 10.0) -> Worker:
    """One session's worker: a fresh ledger on `conn` with the projections and the fact log attached.

    A fresh ledger per session, because each `Worker` adds its own observer to
    the ledger it is given: a shared one would keep every past session's.
    """
    ledger = Ledger(conn, clock)
    projections.attach(ledger)  # every append updates the tables in its own transaction
    fact_log.attach(ledger, settings)  # every committed fact logged once
    rng = random.Random()
    clients = stream_clients(settings, ledger, clock=clock, rng=rng)
    return Worker(settings, ledger, clients, rng=rng, progress=lambda w: report(progress_line(w)),
                  progress_interval=progress_interval)


def progress_line(worker: Worker) -> str:
    """The one line `ingest` prints every `--progress-interval` seconds and when a session ends."""
    depth = depth_by_priority(worker.conn)
    states = processing_state.state_counts(worker.conn)
    r429 = sum(n for s, n in worker.responses().items() if s in (429, 403))
    return (f"events {worker.stream_events} | queue HIGH {depth.get('HIGH', 0)} LOW {depth.get('LOW', 0)}"
            f" | window {worker.limiter.in_window()}/{worker.settings.rate_limit_requests}"
            f" | sent {sum(s.sent for s in worker.senders)}"
            f" | completed {states.get('completed', 0)} failed {states.get('failed', 0)}"
            f" | 429s {r429}"
            + (_enrichment_part(worker) if worker.enricher is not None else ""))


def _enrichment_part(worker: Worker) -> str:
    found = domains.state_counts(worker.conn).get("found", 0)
    addresses = emails.state_counts(worker.conn).get("found", 0)
    stopped = f" STOPPED ({worker.enricher.stopped})" if worker.enricher and worker.enricher.stopped else ""
    return f" | snov domains {found} e-mails {addresses}{stopped}"


@contextlib.asynccontextmanager
async def simulated(settings: Settings, seed: int = 0, after_timepoint: int | None = None,
                    after_filings: int | None = None) -> AsyncIterator[Settings]:
    """Start the built-in simulators (Companies House and Snov.io) on loopback and point the settings at them.

    A fresh simulator's stream starts at timepoint 1000; on a database an earlier
    run filled, the worker resumes after its last timepoint, and the stream would
    stay silent until its head got there. So the simulated stream begins just
    after `after_timepoint` (the ledger's last), and every run shows events.
    """
    # 70 events/s with 30% strike-off proposals asks for over ten officer calls a second, far above
    # the allowance of 2: within a minute the window fills and the limiter visibly holds the line.
    config = SimulatorConfig(seed=seed, rate_limit_requests=settings.rate_limit_requests,
                             rate_limit_window=settings.rate_limit_window, events_per_second=70.0,
                             **({"first_timepoint": after_timepoint + 1} if after_timepoint else {}),
                             **({"filings_first_timepoint": after_filings + 1} if after_filings else {}))
    # Snov.io plays along with its own client id and secret, at its documented limit, so the first
    # minute shows domains and e-mails too: a task's result is ready at its first poll (the stage
    # polls two seconds after a start), and `in_progress` is left to the tests.
    snov = SnovSimulatorConfig(seed=seed, rate_limit_requests=settings.snov_rate_limit,
                               rate_limit_window=settings.snov_rate_window, polls_before_completion=0)
    async with running_simulator(config) as sim, running_snov_simulator(snov) as snov_sim:
        yield msgspec.structs.replace(
            settings, api_key=config.api_key, stream_key=config.stream_key,
            streaming_api_url=_simulated_streams(settings, sim.base_url), api_url=sim.base_url,
            snov_client_id=SIM_CLIENT_ID, snov_client_secret=SIM_CLIENT_SECRET, snov_api_url=snov_sim.base_url)


def _simulated_streams(settings: Settings, base_url: str) -> str:
    """The configured streams, by name, served by the simulator (it serves /companies and /filings)."""
    names = [stream_name(u) for u in settings.stream_urls] or ["companies"]
    return ",".join(f"{base_url}/{n}" for n in dict.fromkeys(names))


async def _main(settings: Settings, simulate: bool, duration: float | None, report: Report,
                progress_interval: float, compressed: CompressedClock | None = None) -> int:
    conn = connect(settings.database_path)
    check_reserve(settings.database_path, settings.disk_reserve_bytes)  # before migrate writes anything
    check_integrity(conn, QUICK)  # a damaged b-tree can hide rows or break event_id's uniqueness
    migrate(conn)
    with worker_lock(settings.database_path):
        projections.check_versions(conn)
        projections.catch_up(conn)
        async with contextlib.AsyncExitStack() as stack:
            if simulate:
                last = last_recorded_timepoint(Ledger(conn), "companies")
                filings = last_recorded_timepoint(Ledger(conn), "filings")
                settings = await stack.enter_async_context(
                    simulated(settings, after_timepoint=last, after_filings=filings))
            if compressed is not None:
                return await _sessions(settings, conn, duration, report, progress_interval,
                                       clock=compressed, sleep=compressed.sleep)
            return await _sessions(settings, conn, duration, report, progress_interval)


async def _sessions(settings: Settings, conn: apsw.Connection, duration: float | None, report: Report,
                    progress_interval: float, clock: Clock | None = None,
                    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> int:
    """Run the worker: one session, the streams followed all the time.

    With BUSINESS_HOURS only the REST calls pause outside the hours (`Worker.pause_calls`):
    the stream is never dark, so a long weekend (63 h, 111 h at Easter) can't outrun CH's
    retention of about 3 days and end in a 416. `clock`/`sleep` are for compressed-time runs.
    """
    if settings.business_hours:
        _need_ops("BUSINESS_HOURS=true", "holidays")
    if settings.health_port:
        _need_ops("a health port", "prometheus_client", "aiohttp_sse", "psutil")

    loop = asyncio.get_running_loop()
    shutdown = asyncio.Event()
    current: list[Worker] = []
    clock = clock or SystemClock()

    def on_signal(sig: signal.Signals) -> None:
        shutdown.set()
        for w in current:
            w.request_stop(f"signal {sig.name}")

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    view = _SessionView(settings, conn, clock)
    health = None
    if settings.health_port:
        # Imported here, not at the top: the health server needs prometheus_client, aiohttp_sse and
        # psutil, from the optional ops extra, and a worker without a health port must run without them.
        from eventlog.ops.server import HealthServer

        health = HealthServer(view, settings.health_host, settings.health_port)
        await health.start()
        report(f"health, metrics and status page on {health.url}")
    schedule: asyncio.Task | None = None
    try:
        worker = build_worker(settings, conn, clock=clock, report=report, progress_interval=progress_interval)
        current[:] = [worker]
        view.current = worker
        if settings.business_hours:
            schedule = asyncio.create_task(follow_business_hours(worker, clock, report, sleep), name="hours")
            # A schedule that dies would leave the calls paused for ever, or open outside the hours:
            # stop the worker instead, and say why.
            schedule.add_done_callback(lambda t: t.cancelled() or t.exception() is None
                                       or worker.request_stop("the business-hours schedule failed"))
        code = await worker.run(duration)
        if schedule is not None and schedule.done() and not schedule.cancelled() and schedule.exception():
            raise ConfigError(f"BUSINESS_HOURS: the schedule failed ({schedule.exception()!r}): the worker "
                              "stopped rather than call outside business hours, or never again")
        return code
    finally:
        if schedule is not None:
            schedule.cancel()
            await asyncio.gather(schedule, return_exceptions=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        # The stop is under way: a second SIGTERM (a deploy's) must not kill the teardown and hide
        # its exit code. Ctrl-C stays a way out. `run_worker` restores SIGTERM when it is done.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if health is not None:
            await health.stop()


async def follow_business_hours(worker: Worker, clock: Clock, report: Report,
                                sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                                max_sleep: float = 600.0) -> None:
    """Pause the worker's REST calls outside business hours and resume them at opening; never
    the stream. Looks again at least every `max_sleep` seconds (the wall clock can jump)."""
    # Imported here, not at the top: the schedule needs `holidays`, from the optional ops extra,
    # and a worker without BUSINESS_HOURS must run without it.
    from eventlog.worker.schedule import is_open, next_change

    while True:
        now = _utcnow(clock)
        change = next_change(now)
        if is_open(now):
            if worker.calls_paused is not None:
                worker.resume_calls()
                report("business hours: REST calls resumed (the stream never paused)")
        elif worker.calls_paused is None:
            worker.pause_calls(f"outside business hours until {change.isoformat()}")
            report(f"outside business hours: REST calls paused until {change.isoformat()}; "
                   "the stream goes on")
        await sleep(min(max((change - now).total_seconds(), 0.01), max_sleep))


def _need_ops(what: str, *modules: str) -> None:
    """A missing optional package is a one-line configuration error, not a traceback."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"{what} needs the ops extra ({', '.join(missing)} not installed): "
                          "pip install '.[ops]'")


class _SessionView:
    """What the health server reads (`eventlog.ops.probe.WorkerView`), across business-hours sessions.

    The server outlives each session so `/health` keeps answering at night, and says
    the stream is paused on purpose instead of turning 503.
    """

    def __init__(self, settings: Settings, conn: apsw.Connection, clock: Clock):
        self.settings = settings
        self.conn = conn
        self.limiter = SlidingWindowLimiter(conn, clock, limit=settings.rate_limit_requests,
                                            window=settings.rate_limit_window,
                                            slack=settings.rate_limit_slack)
        self.started_at = clock.now()
        self.current: Worker | None = None
        self.stream_paused: str | None = None  # never set now: the stream is followed all the time

    @property
    def calls_paused(self) -> str | None:
        """Why the REST calls are paused (outside business hours), or None."""
        return self.current.calls_paused if self.current else None

    def stream_stats(self) -> list:
        return self.current.stream_stats() if self.current else []


def _utcnow(clock: Clock) -> datetime:
    return datetime.fromtimestamp(clock.now(), tz=timezone.utc)


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
