"""Building and running the simulator application.

``build_app`` is for aiohttp's test tools; ``running_simulator`` starts a real server on loopback
(port 0 picks a free one) for tests and ``ingest --simulate``; ``serve_forever`` is the body of a
standalone ``simulate`` command.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from ..errors import ConfigError
from .config import SimulatorConfig
from .context import RECORD, SIMULATOR, STATE, Clock, Simulator
from .gate import rest_gate
from .record import SimulatorState
from .rest import company_officers, company_profile
from .serving import Served, serve
from .stream import stream_handler

__all__ = ["RunningSimulator", "build_app", "running_simulator", "serve_forever"]

log = logging.getLogger(__name__)


def build_app(config: SimulatorConfig | None = None, clock: Clock = time.time) -> web.Application:
    """An aiohttp app playing Companies House; the stream's clock starts now (``clock()``)."""
    sim = Simulator(config or SimulatorConfig(), clock)
    app = web.Application(middlewares=[rest_gate])
    app[SIMULATOR] = sim
    app[STATE] = sim.state
    app[RECORD] = sim.state.requests
    for path in sim.feeds:  # /companies and /filings
        app.router.add_get(path, stream_handler)
    app.router.add_get("/company/{number}", company_profile)
    app.router.add_get("/company/{number}/officers", company_officers)
    app.on_shutdown.append(_end_streams)
    return app


async def _end_streams(app: web.Application) -> None:
    """Let long-lived stream handlers return, so shutdown does not wait for its timeout."""
    app[STATE].stopping.set()


class RunningSimulator(Served):
    """A simulator listening on a real socket."""

    @property
    def state(self) -> SimulatorState:
        """The record of requests and stream connections."""
        return self.app[STATE]

    @property
    def simulator(self) -> Simulator:
        """Config, clock, universe and timeline, for tests that need to compute expectations."""
        return self.app[SIMULATOR]


@asynccontextmanager
async def running_simulator(
    config: SimulatorConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Clock = time.time,
) -> AsyncIterator[RunningSimulator]:
    """Serve the simulator on ``host:port`` for the duration of the ``async with`` block."""
    async with serve(build_app(config, clock), host, port, RunningSimulator) as running:
        yield running


async def serve_forever(
    config: SimulatorConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 8765,
    ready: Callable[[RunningSimulator], None] | None = None,
) -> None:
    """Run until SIGTERM or Ctrl-C (then return), or until cancelled. ``ready`` gets the server
    once it listens, e.g. to print its base URL. A host:port it can't listen on is a ConfigError."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # a clean stop (exit 0), not death by signal
        loop.add_signal_handler(sig, stop.set)
    try:
        async with running_simulator(config, host, port) as running:
            log.info("Companies House simulator listening on %s", running.base_url)
            if ready is not None:
                ready(running)
            await stop.wait()
    except OSError as exc:  # a port in use, an address that isn't ours, a host that doesn't resolve
        raise ConfigError(f"the simulator cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
