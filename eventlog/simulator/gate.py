"""The middleware every REST request passes: IP limit, auth, rate limit, faults, record.

Order matters and mirrors the real service. The gateway counts every request per client address
first (keys or not) and answers 403 past the IP limit, before any key is looked at. Then a bad key
is refused before anything else is counted; every authenticated request is counted by the key's
limiter before anything else, whatever it asks for and whatever the answer (404, 500, an injected
5xx, a gateway page: the gateway counted it before the service behind it failed); over the limit
nothing else happens.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from aiohttp import web

from .auth import presented_key, unauthorized
from .context import SIMULATOR, Simulator
from .gateway import gateway_error, ip_forbidden
from .ratelimit import RateDecision
from .record import RequestRecord

__all__ = ["REST_PREFIX", "rest_gate"]

REST_PREFIX = "/company/"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _too_many() -> web.Response:
    body = {"errors": [{"error": "rate-limit-exceeded", "type": "ch:service"}]}
    return web.json_response(body, status=429)


def _in_storm(sim: Simulator, seq: int) -> bool:
    """True for the ``storm_requests`` counted requests after the first ``storm_after_requests``."""
    cfg = sim.config
    return cfg.storm_requests > 0 and (
        cfg.storm_after_requests < seq <= cfg.storm_after_requests + cfg.storm_requests
    )


def _injected_5xx(sim: Simulator, seq: int) -> web.Response | None:
    """A server error for ``error_5xx_share`` of requests, decided by (seed, request number)."""
    share = sim.config.error_5xx_share
    if share <= 0:
        return None
    rng = random.Random(f"{sim.config.seed}:fault:{seq}")
    if rng.random() >= share:
        return None
    status = rng.choice((500, 502, 503))
    if status == 502:
        return web.Response(
            status=502, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html"
        )
    return web.json_response({"errors": [{"error": "service-unavailable"}]}, status=status)


async def _call(handler: Handler, request: web.Request) -> web.StreamResponse:
    """Run the handler, turning aiohttp's raised HTTP errors (e.g. no route) into responses."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        body = {"errors": [{"error": exc.reason.lower().replace(" ", "-"), "type": "ch:service"}]}
        return web.json_response(body, status=exc.status)


async def _serve(
    sim: Simulator, request: web.Request, handler: Handler, key: str, now: float
) -> web.StreamResponse:
    decision = sim.limiter.hit(key, now)
    seq = sim.state.next_request_seq()
    if not decision.allowed:
        response: web.StreamResponse = _too_many()
    elif _in_storm(sim, seq):
        decision = RateDecision(
            allowed=False,
            limit=decision.limit,
            remaining=0,
            reset=decision.reset,
            window=decision.window,
        )
        response = _too_many()
    else:
        if sim.config.latency_ms > 0:
            await asyncio.sleep(sim.config.latency_ms / 1000)
        response = (
            gateway_error(sim.config.seed, "rest", seq, sim.config.rest_gateway_error_share)
            or _injected_5xx(sim, seq)
            or await _call(handler, request)
        )
    response.headers.update(decision.headers())
    return response


@web.middleware
async def rest_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Gate REST paths (``/company/...``); the streams (``/companies``, ``/filings``) pass untouched:
    they live on another host in reality, behind neither the IP limit nor the REST key."""
    if not request.path.startswith(REST_PREFIX):
        return await handler(request)
    sim = request.app[SIMULATOR]
    now = sim.clock()
    key = presented_key(request)
    ip = request.remote or ""
    response: web.StreamResponse
    if sim.ip_limiter is not None and not sim.ip_limiter.hit(ip, now).allowed:
        response = ip_forbidden()
    elif key != sim.config.api_key:
        response = unauthorized()
    else:
        response = await _serve(sim, request, handler, key, now)
    sim.state.requests.append(
        RequestRecord(
            time=now,
            key=key or "",
            method=request.method,
            path=request.path_qs,
            status=response.status,
            ip=ip,
        )
    )
    return response
