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


class RunningSnovSimulator:
    """A Snov.io simulator listening on a real socket."""

    def __init__(self, app: web.Application, runner: web.AppRunner, base_url: str) -> None:
        self.app = app
        self.base_url = base_url
        self._runner = runner
        self._stopped = False

    @property
    def simulator(self) -> SnovSimulator:
        """Config, clock, directory, tokens and tasks, for tests that compute expectations."""
        return self.app[SNOV_SIMULATOR]

    @property
    def state(self) -> SnovSimulatorState:
        """The record: requests, tokens issued, starts per lookup, balance."""
        return self.simulator.state

    async def stop(self) -> None:
        """Close the listening socket; safe to call more than once."""
        if not self._stopped:
            self._stopped = True
            await self._runner.cleanup()


@asynccontextmanager
async def running_snov_simulator(
    config: SnovSimulatorConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Clock = time.time,
) -> AsyncIterator[RunningSnovSimulator]:
    """Serve the Snov.io simulator on ``host:port`` for the duration of the ``async with`` block."""
    app = build_snov_app(config, clock)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    running = RunningSnovSimulator(app, runner, base_url="")
    try:
        await web.TCPSite(runner, host, port).start()
        bound_host, bound_port = runner.addresses[0][:2]
        url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        running.base_url = f"http://{url_host}:{bound_port}"
        yield running
    finally:
        await running.stop()
