"""The stream client against the project's Companies House simulator on loopback.

The simulator runs on a `FixedClock`, so its head moves only when a test says
so, and every event it serves is a pure function of (seed, timepoint): the
tests can compute exactly which timepoints the ledger must hold.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import msgspec
import pytest

from eventlog.clock import FixedClock
from eventlog.ledger.db import connect
from eventlog.ledger.entries import (StreamConnected, StreamDisconnected, StreamEvent, StreamGap,
                              StreamLineRejected)
from eventlog.errors import Unauthorized
from eventlog.ledger.store import Ledger
from eventlog.ledger.migrate import migrate
from eventlog.config.settings import Settings
from eventlog.simulator import SimulatorConfig, running_simulator
from eventlog.worker.stream.client import StreamClient

FIRST = 1000  # the simulator's first timepoint


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    conn = connect(tmp_path / "sim.db")
    migrate(conn)
    return Ledger(conn, FixedClock())


def settings_for(base_url: str, **overrides: Any) -> Settings:
    values = dict(stream_key="sim-stream-key", streaming_api_url=f"{base_url}/companies",
                  read_timeout=2.0, connection_timeout=2.0, flush_interval=0.05,
                  initial_retry_delay=1.0, max_retry_delay=30.0, max_retries=50)
    values.update(overrides)
    return Settings(**values)


async def no_wait(delay: float) -> None:
    await asyncio.sleep(0)


def stream_events(ledger: Ledger) -> list[StreamEvent]:
    return [r.entry for r in ledger.read() if isinstance(r.entry, StreamEvent)]


def of(ledger: Ledger, kind: type) -> list[Any]:
    return [r.entry for r in ledger.read() if isinstance(r.entry, kind)]


def seed_yesterday(ledger: Ledger, timepoint: int) -> None:
    """A ledger whose newest stream event is `timepoint`, as if the worker ran yesterday."""
    ledger.append(StreamEvent(stream="companies", timepoint=timepoint,
                              published_at="2023-11-03T17:30:00", change="changed",
                              resource_kind="company-profile", resource_id="00000001",
                              resource_uri="/company/00000001"))


async def run_until(client: StreamClient, check: Callable[[], bool], timeout: float = 10.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while not (check() or task.done()):
            assert loop.time() < deadline, "condition not reached in time"
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_follows_live_then_resumes_after_a_restart_without_loss_or_duplicates(ledger) -> None:
    sim_clock = FixedClock(1_700_000_000.0)
    config = SimulatorConfig(seed=5, backlog_events=30, events_per_second=100.0,
                             heartbeat_interval=0.05)
    async with running_simulator(config, clock=sim_clock.now) as sim:
        timeline = sim.simulator.timeline
        settings = settings_for(sim.base_url, read_timeout=0.5)
        first = StreamClient(settings, ledger, url=settings.stream_urls[0], sleep=no_wait)
        stop = asyncio.Event()
        task = asyncio.create_task(first.run(stop))
        while not sim.state.streams:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.6)  # quiet: only heartbeats, and the 0.5 s watchdog must not fire
        assert first.stats.heartbeats >= 5 and first.stats.connections == 1
        sim_clock.advance(0.5)  # 50 events published live
        while len(stream_events(ledger)) < 50:
            await asyncio.sleep(0.01)
        stop.set()
        await task
        last = stream_events(ledger)[-1].timepoint
        assert last == timeline.timepoint_of(79)

        sim_clock.advance(1.0)  # 100 more while "the worker was down"
        restarted = Ledger(ledger.conn, FixedClock())
        second = StreamClient(settings, restarted, url=settings.stream_urls[0], sleep=no_wait)
        await run_until(second, lambda: len(stream_events(restarted)) == 150)

        requested = [s.requested_timepoint for s in sim.state.streams]
        assert requested == [None, last + 1]
        got = [e.timepoint for e in stream_events(restarted)]
        assert got == [timeline.timepoint_of(i) for i in range(30, 180)]
        assert [c.from_timepoint for c in of(restarted, StreamConnected)] == [None, last + 1]
        # The profile is stored byte for byte as the simulator sent it.
        sent = msgspec.json.encode(timeline.event_at(100).data)
        assert bytes(stream_events(restarted)[70].data) == sent


async def test_catches_up_a_backlog_through_clean_closes_and_mid_line_drops(ledger) -> None:
    seed_yesterday(ledger, FIRST - 1)
    config = SimulatorConfig(seed=11, backlog_events=3000, close_after_events=400,
                             disconnect_mid_line_share=0.002)
    async with running_simulator(config, clock=FixedClock().now) as sim:
        timeline = sim.simulator.timeline
        settings = settings_for(sim.base_url, batch_size=200)
        client = StreamClient(settings, ledger, url=settings.stream_urls[0], sleep=no_wait)
        await run_until(client, lambda: len(stream_events(ledger)) == 3001)
        ends = [s.end for s in sim.state.streams]

    got = [e.timepoint for e in stream_events(ledger)[1:]]
    assert got == [timeline.timepoint_of(i) for i in range(3000)]
    assert of(ledger, StreamLineRejected) == []
    assert "close_after" in ends and "disconnect" in ends
    assert client.stats.partial_lines == ends.count("disconnect")
    reasons = [d.reason for d in of(ledger, StreamDisconnected)]
    assert "closed by server" in reasons and any(r.startswith("connection reset") for r in reasons)
    assert client.stats.duplicates == 0  # resumed at last + 1 every time


async def test_malformed_lines_from_the_simulator_are_recorded_not_fatal(ledger) -> None:
    seed_yesterday(ledger, FIRST - 1)
    config = SimulatorConfig(seed=3, backlog_events=500, malformed_share=0.05)
    async with running_simulator(config, clock=FixedClock().now) as sim:
        settings = settings_for(sim.base_url)
        client = StreamClient(settings, ledger, url=settings.stream_urls[0], sleep=no_wait)
        await run_until(client, lambda: client.stats.events + client.stats.rejected == 500)
        assert len(sim.state.streams) == 1
    rejected = of(ledger, StreamLineRejected)
    assert 5 < len(rejected) < 60
    assert all(r.reason and len(r.excerpt) <= 200 and r.length > 0 for r in rejected)
    assert len(stream_events(ledger)) - 1 == 500 - len(rejected)


async def test_a_wrong_key_stops_the_client(ledger) -> None:
    async with running_simulator(SimulatorConfig(), clock=FixedClock().now) as sim:
        settings = settings_for(sim.base_url, stream_key="not-the-key")
        client = StreamClient(settings, ledger, url=settings.stream_urls[0], sleep=no_wait)
        with pytest.raises(Unauthorized, match="COMPANIES_HOUSE_STREAM_KEY"):
            await asyncio.wait_for(client.run(asyncio.Event()), 5)
        assert [s.status for s in sim.state.streams] == [401]


async def test_a_timepoint_past_retention_is_a_recorded_gap_then_live(ledger) -> None:
    seed_yesterday(ledger, FIRST - 1)
    config = SimulatorConfig(seed=2, backlog_events=1000, retention=100)
    async with running_simulator(config, clock=FixedClock().now) as sim:
        settings = settings_for(sim.base_url)
        client = StreamClient(settings, ledger, url=settings.stream_urls[0], sleep=no_wait)
        await run_until(client, lambda: client.stats.connected)
        assert [(s.status, s.requested_timepoint) for s in sim.state.streams] == [
            (416, FIRST), (200, None)]
    gap, = of(ledger, StreamGap)
    assert gap.requested_timepoint == FIRST
    assert [c.from_timepoint for c in of(ledger, StreamConnected)] == [None]
