"""The dark horizon and the gaps: a stream is never unheard past STREAM_MAX_DARK_HOURS, business
hours pause only the REST calls, and a 416 gap shows UNRESOLVED in status, /health and audit until
a bulk snapshot newer than it reconciles it."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import projections
from eventlog.audit.assemble import build_report
from eventlog.audit.report import summary
from eventlog.audit.run import collect
from eventlog.clock import FixedClock, SystemClock
from eventlog.commands.ingest import follow_business_hours
from eventlog.config.settings import Settings
from eventlog.ledger.entries import (RequestQueued, StreamConnected, StreamEvent, StreamGapsReconciled,
                                     WorkerStarted)
from eventlog.ledger.store import Ledger
from eventlog.ops.probe import Probe
from eventlog.ops.status_report import collect_status, render_status
from eventlog.simulator import SimulatorConfig, running_simulator
from eventlog.worker.limiter import SlidingWindowLimiter
from eventlog.worker.runtime import Worker
from eventlog.worker.sender import Sender, rest_session
from eventlog.worker.stream.client import StreamClient
from projections.projectors import stream_gaps
from support.obs import FakeView

HOUR = 3600.0


def projected(conn, clock) -> Ledger:
    ledger = Ledger(conn, clock)
    projections.attach(ledger)
    return ledger


async def test_a_416_gap_is_unresolved_everywhere_until_a_newer_snapshot_reconciles_it(conn, clock, db_path):
    ledger = projected(conn, clock)
    # the ledger last heard timepoint 1000; the simulator keeps only 10 timepoints behind its head
    config = SimulatorConfig(backlog_events=200, retention=10, gap_share=0.0, events_per_second=50.0)
    async with running_simulator(config) as sim:
        ledger.append(StreamEvent(stream="companies", timepoint=1000, published_at="2023-11-14T22:00:00",
                                  change="changed", resource_kind="company-profile", resource_id="00000001",
                                  resource_uri="/company/00000001", company_number="00000001"))
        settings = Settings(stream_key=config.stream_key, streaming_api_url=f"{sim.base_url}/companies",
                            stream_connect_spacing=0.0, read_timeout=5.0)
        client = StreamClient(settings, ledger, url=settings.streaming_api_url)
        stop = asyncio.Event()
        task = asyncio.create_task(client.run(stop))
        for _ in range(500):
            if client.stats.gaps and client.stats.connected:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await task
        assert [c.status for c in sim.state.streams][:2] == [416, 200]
    [gap] = stream_gaps.gaps(conn)
    assert gap.reconciled_at is None and gap.requested_timepoint == 1001

    report = collect_status(conn, Settings(), clock.now())
    assert len(report.unresolved_gaps) == 1 and "UNRESOLVED" in render_status(report)
    probe = Probe(FakeView(conn, clock), memory_limit_mb=100_000)
    try:
        assert probe.health().warnings == [stream_gaps.describe(gap)]
        report_ = build_report(collect(str(db_path)))
        [out] = report_.gaps
        assert (out.reconciled, out.reconciled_by) == (False, None)
        assert "UNRESOLVED: import a newer bulk snapshot" in summary(report_)

        # a snapshot of the same day does not reconcile it (it may predate the gap) ...
        day = gap.gap_at[:10]
        ledger.append(StreamGapsReconciled(snapshot_date=day, snapshot="BasicCompanyDataAsOneFile-same-day.zip"))
        assert stream_gaps.gaps(conn, unresolved_only=True) == [gap]
        # ... a newer one does
        clock.advance(40 * 86400)
        newer = datetime.fromtimestamp(clock.now(), tz=timezone.utc).date().isoformat()
        ledger.append(StreamGapsReconciled(snapshot_date=newer, snapshot="BasicCompanyDataAsOneFile-newer.zip"))
        assert stream_gaps.gaps(conn, unresolved_only=True) == []
        assert probe.health().warnings == []
        [out] = build_report(collect(str(db_path))).gaps
        assert (out.reconciled, out.reconciled_by) == (True, "BasicCompanyDataAsOneFile-newer.zip")
        assert "UNRESOLVED" not in render_status(collect_status(conn, Settings(), clock.now()))
    finally:
        probe.close()


def test_a_stream_dark_past_the_horizon_fails_health_and_warns_in_status(conn, clock):
    ledger = projected(conn, clock)
    ledger.append(StreamConnected(stream="companies", from_timepoint=None))
    ledger.append(StreamConnected(stream="filings", from_timepoint=None))
    settings = Settings(stream_max_dark_hours=24.0)
    probe = Probe(FakeView(conn, clock, settings=settings), memory_limit_mb=100_000)
    try:
        clock.advance(23 * HOUR)
        ledger.append(StreamConnected(stream="filings", from_timepoint=5))  # filings heard again
        assert probe.check_horizon(clock.now()).ok
        clock.advance(2 * HOUR)  # companies: 25 h dark, filings 2 h
        check = probe.check_horizon(clock.now())
        assert not check.ok and "companies (25.0 h)" in check.detail and "filings" not in check.detail
        assert "horizon" in probe.health().failed
        text = render_status(collect_status(conn, settings, clock.now()))
        assert "horizon      WARNING: dark past STREAM_MAX_DARK_HOURS (24 h): companies (25.0 h)" in text
    finally:
        probe.close()


async def test_business_hours_pause_only_the_rest_calls_never_the_stream(conn):
    """Saturday: the schedule pauses the senders, the stream client keeps recording events."""
    saturday = FixedClock(datetime(2025, 4, 19, 12, 0, tzinfo=timezone.utc).timestamp())
    config = SimulatorConfig(backlog_events=20, events_per_second=20.0, strike_off_share=1.0)
    async with running_simulator(config) as sim:
        settings = Settings(api_key=config.api_key, stream_key=config.stream_key, api_url=sim.base_url,
                            streaming_api_url=f"{sim.base_url}/companies", stream_connect_spacing=0.0,
                            business_hours=True)
        clock = SystemClock()
        ledger = projected(conn, clock)
        ledger.append(WorkerStarted(version="t", pid=1, rate_limit_requests=600, rate_limit_window=300))
        client = StreamClient(settings, ledger, url=settings.streaming_api_url)
        worker = Worker(settings, ledger, [client])
        lines: list[str] = []
        hours = asyncio.create_task(follow_business_hours(worker, saturday, lines.append))
        await asyncio.sleep(0)
        assert worker.calls_paused and "outside business hours until 2025-04-22T07:30:00+00:00" in worker.calls_paused
        limiter = SlidingWindowLimiter(conn, clock, limit=600, window=300, slack=2)
        stop = asyncio.Event()
        async with rest_session() as session:
            sender = Sender(settings, ledger, limiter, session, clock=clock, stop=stop, wake=worker.wake,
                            calls_open=worker.calls_open)
            ledger.append(RequestQueued(request_id="r-1", kind="profile",
                                        company_number=sim.simulator.universe.numbers[0]))
            lane = asyncio.create_task(sender.run())
            streaming = asyncio.create_task(client.run(stop))
            for _ in range(300):
                if client.stats.events_seen >= 20:
                    break
                await asyncio.sleep(0.01)
            assert client.stats.events_seen >= 20  # the stream went on
            assert sender.sent == 0 and sim.state.requests == []  # no REST call while closed
            worker.resume_calls()  # Tuesday 08:30 London
            for _ in range(300):
                if sender.sent:
                    break
                await asyncio.sleep(0.01)
            stop.set()
            await asyncio.gather(lane, streaming)
        hours.cancel()
        assert sender.sent >= 1 and sim.state.requests
        assert lines and "the stream goes on" in lines[0]


async def test_a_business_hours_schedule_that_dies_stops_the_worker_in_one_line(conn):
    """The schedule is what reopens the calls on Tuesday: if it dies (a holidays lookup that
    raises, say), the worker stops and says so instead of staying paused, or open, for ever."""
    import signal

    import pytest

    from eventlog.commands.ingest import _sessions
    from eventlog.errors import ConfigError

    async def broken_sleep(seconds: float) -> None:
        raise RuntimeError("holidays lookup failed")

    config = SimulatorConfig(backlog_events=5, events_per_second=5.0)
    async with running_simulator(config) as sim:
        settings = Settings(api_key=config.api_key, stream_key=config.stream_key, api_url=sim.base_url,
                            streaming_api_url=f"{sim.base_url}/companies", business_hours=True,
                            stream_connect_spacing=0.0)
        before = signal.getsignal(signal.SIGTERM)
        try:
            with pytest.raises(ConfigError, match="the schedule failed .*holidays lookup failed"):
                await asyncio.wait_for(_sessions(settings, conn, 30.0, lambda line: None, 3600.0,
                                                 sleep=broken_sleep), 20)
        finally:
            signal.signal(signal.SIGTERM, before)
    stopped = conn.execute("SELECT json_extract(event_data, '$.reason') FROM event_log "
                           "WHERE event_type = 'worker.stopped'").fetchall()
    assert stopped == [("the business-hours schedule failed",)]
