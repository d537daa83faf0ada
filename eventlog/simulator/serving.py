"""Serving a simulator's aiohttp application on a real socket, the same way for every simulator.

Port 0 picks a free one; the base URL is read back from the bound socket (IPv6 in brackets).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from aiohttp import web

__all__ = ["Served", "serve"]


class Served:
    """An application listening on a real socket until `stop()`."""

    def __init__(self, app: web.Application, runner: web.AppRunner) -> None:
        self.app = app
        self.base_url = ""
        self._runner = runner
        self._stopped = False

    async def stop(self) -> None:
        """Close the listening socket (and whatever the app's shutdown closes); safe to call twice."""
        if not self._stopped:
            self._stopped = True
            await self._runner.cleanup()


S = TypeVar("S", bound=Served)


@asynccontextmanager
async def serve(app: web.Application, host: str, port: int,
                wrap: Callable[[web.Application, web.AppRunner], S]) -> AsyncIterator[S]:
    """Serve `app` on `host:port` for the `async with` block; yields `wrap(app, runner)`."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    running = wrap(app, runner)
    try:
        await web.TCPSite(runner, host, port).start()
        bound_host, bound_port = runner.addresses[0][:2]
        url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        running.base_url = f"http://{url_host}:{bound_port}"
        yield running
    finally:
        await running.stop()
