"""The worker's own HTTP server: `/health`, `/metrics`, `/` and `/events`.

It runs inside the worker's event loop (started by `ingest --health-port N`),
bound to 127.0.0.1 unless `HEALTH_HOST` says otherwise: the page shows queue
and company data, and nothing here asks for a password.

    /health   four checks (connection, processing, database, memory) and the disk:
              200 and JSON when all pass, 503 and JSON naming the failed ones
    /metrics  Prometheus text format (metrics.py)
    /         the status page (status_page.py), kept live by
    /events   server-sent events with ledger positions as ids (sse.py)
    /batches/{id}/events
              one batch's progress, server-sent events with ledger positions as ids (batch_feed.py)

Reads go through a `Probe` on a read-only connection of its own, never the
worker's, so nothing here can hold or wait on the worker's write transaction.
"""

from __future__ import annotations

import asyncio

import msgspec
from aiohttp import web

from eventlog.errors import ConfigError
from eventlog.ops.batch_feed import BatchFeed
from eventlog.ops.sse import LiveFeed
from eventlog.ops.metrics import CONTENT_TYPE_LATEST, metrics_registry, render_metrics
from eventlog.ops.probe import DEFAULT_MEMORY_LIMIT_MB, DEFAULT_STUCK_AFTER, HealthReport, Probe, WorkerView
from eventlog.ops.status_page import render_page

__all__ = ["HealthServer", "WorkerView", "HealthReport", "build_app"]


def build_app(probe: Probe, feed: LiveFeed, batch_feed: BatchFeed) -> web.Application:
    registry = metrics_registry(probe)

    async def health(request: web.Request) -> web.Response:
        report = probe.health()
        return web.Response(body=msgspec.json.encode(report), content_type="application/json",
                            status=200 if not report.failed else 503,
                            headers={"Cache-Control": "no-store"})

    async def metrics(request: web.Request) -> web.Response:
        response = web.Response(body=render_metrics(registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=render_page(feed.snapshot(), feed.recent), content_type="text/html",
                            headers={"Cache-Control": "no-store"})

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/events", feed.handle)
    app.router.add_get("/batches/{batch_id}/events", batch_feed.handle)
    app.router.add_get("/", page)
    return app


class HealthServer:
    """`await start()` / `await stop()`; `port` is the bound port (`port=None` or 0: ephemeral)."""

    def __init__(self, view: WorkerView, host: str = "127.0.0.1", port: int | None = None, *,
                 memory_limit_mb: float = DEFAULT_MEMORY_LIMIT_MB,
                 stuck_after: float = DEFAULT_STUCK_AFTER, target: int = 10_000,
                 poll_interval: float = 0.5, snapshot_interval: float = 5.0,
                 retry_ms: int = 2000, recent: int = 50) -> None:
        self.view = view
        self.host = host
        self.requested_port = port or 0
        self.port: int | None = None
        self._options = dict(memory_limit_mb=memory_limit_mb, stuck_after=stuck_after, target=target)
        self._feed_options = dict(poll_interval=poll_interval, snapshot_interval=snapshot_interval,
                                  retry_ms=retry_ms, recent=recent)
        self.probe: Probe | None = None
        self.feed: LiveFeed | None = None
        self.batch_feed: BatchFeed | None = None
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._closing.clear()
        self.probe = Probe(self.view, **self._options)  # type: ignore[arg-type]
        self.feed = LiveFeed(self.probe, self._closing, **self._feed_options)  # type: ignore[arg-type]
        o = self._feed_options
        self.batch_feed = BatchFeed(self.probe, self._closing, poll_interval=o["poll_interval"],  # type: ignore[arg-type]
                                    snapshot_interval=o["snapshot_interval"], retry_ms=o["retry_ms"])  # type: ignore[arg-type]
        self._runner = web.AppRunner(build_app(self.probe, self.feed, self.batch_feed), access_log=None,
                                    shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.requested_port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self.probe.close()
            raise ConfigError(f"the health server cannot listen on {self.host}:{self.requested_port}:"
                              f" {exc.strerror or exc} (HEALTH_HOST / HEALTH_PORT)") from None
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """End the event streams first, so the runner's shutdown doesn't wait on them."""
        self._closing.set()
        for feed in (self.feed, self.batch_feed):
            if feed is not None:
                feed.drop_clients()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.probe is not None:
            self.probe.close()
            self.probe = None

    async def __aenter__(self) -> "HealthServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
