"""Helpers shared by the tests/test_simulator_*.py files (no tests here).

A simulator on loopback with a fake clock and a real aiohttp client, the two keys, and a reader
of stream lines. Nothing sleeps on purpose: time moves when a test moves the clock.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import aiohttp

from eventlog.simulator import RunningSimulator, SimulatorConfig, running_simulator

REST_KEY = "sim-key"
STREAM_KEY = "sim-stream-key"
START = 1_700_000_000.5  # 2023-11-14T22:13:20.5Z
TIMEOUT = 5.0


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def epoch(stamp: str) -> float:
    """``2025-01-30T01:59:00`` (UTC) as epoch seconds."""
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(key, "")}


REST = auth(REST_KEY)
STREAM = auth(STREAM_KEY)


@asynccontextmanager
async def simulator(
    clock: FakeClock | None = None, **knobs: object
) -> AsyncIterator[tuple[RunningSimulator, aiohttp.ClientSession]]:
    """A simulator on loopback plus a client session (no auth by default)."""
    config = SimulatorConfig(**knobs)  # type: ignore[arg-type]
    async with running_simulator(config, clock=clock or FakeClock()) as sim:
        async with aiohttp.ClientSession(sim.base_url) as session:
            yield sim, session


async def read_events(response: aiohttp.ClientResponse, count: int) -> list[dict]:
    """The next ``count`` events of a stream, skipping heartbeats."""
    events: list[dict] = []
    async with asyncio.timeout(TIMEOUT):
        while len(events) < count:
            line = await response.content.readline()
            assert line, "stream ended early"
            if line != b"\n":
                events.append(json.loads(line))
    return events


async def read_to_end(response: aiohttp.ClientResponse) -> list[dict]:
    """Every event until the server ends the body cleanly (a broken body raises)."""
    events: list[dict] = []
    async with asyncio.timeout(TIMEOUT):
        async for line in response.content:
            if line != b"\n":
                events.append(json.loads(line))
    return events
