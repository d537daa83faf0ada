"""Building and running the Snov.io simulator application.

``build_app`` is for aiohttp's test tools; ``running_snov_simulator`` serves it on loopback
(port 0 picks a free one) for the tests and ``ingest --simulate``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from eventlog.simulator.snov.config import SnovSimulatorConfig
from eventlog.simulator.snov.context import SNOV_SIMULATOR, Clock, SnovSimulator
from eventlog.simulator.snov.gate import TOKEN_PATH, snov_gate
from eventlog.simulator.snov.handlers import (
    access_token,
    domains_result,
    domains_start,
    emails_result,
    emails_start,
    get_balance,
)
from eventlog.simulator.snov.record import SnovSimulatorState
from eventlog.simulator.serving import Served, serve

__all__ = ["RunningSnovSimulator", "build_snov_app", "running_snov_simulator"]


def build_snov_app(config: SnovSimulatorConfig | None = None, clock: Clock = time.time) -> web.Application:
    """An aiohttp app playing Snov.io's token, domain, e-mail and balance endpoints."""
    sim = SnovSimulator(config or SnovSimulatorConfig(), clock)
    app = web.Application(middlewares=[snov_gate])
    app[SNOV_SIMULATOR] = sim
    app.router.add_post(TOKEN_PATH, access_token)
    app.router.add_post("/v2/company-domain-by-name/start", domains_start)
    app.router.add_get("/v2/company-domain-by-name/result", domains_result)
    app.router.add_post("/v2/emails-by-domain-by-name/start", emails_start)
    app.router.add_get("/v2/emails-by-domain-by-name/result", emails_result)
    app.router.add_get("/v1/get-balance", get_balance)
    return app


class RunningSnovSimulator(Served):
    """A Snov.io simulator listening on a real socket."""

    @property
    def simulator(self) -> SnovSimulator:
        """Config, clock, directory, tokens and tasks, for tests that compute expectations."""
        return self.app[SNOV_SIMULATOR]

    @property
    def state(self) -> SnovSimulatorState:
        """The record: requests, tokens issued, starts per lookup, balance."""
        return self.simulator.state


@asynccontextmanager
async def running_snov_simulator(
    config: SnovSimulatorConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Clock = time.time,
) -> AsyncIterator[RunningSnovSimulator]:
    """Serve the Snov.io simulator on ``host:port`` for the duration of the ``async with`` block."""
    async with serve(build_snov_app(config, clock), host, port, RunningSnovSimulator) as running:
        yield running
