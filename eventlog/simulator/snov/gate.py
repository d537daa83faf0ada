"""The middleware every request passes: attribution, the limit, expiry, faults, the record.

Order, and what is undocumented and chosen strictly here:
1. The request is attributed to an account: a token request by its ``client_id`` field (right or
   wrong secret), any other request by its bearer token, *expired or not*. A request that can't
   be attributed (no token, an unknown one, an unknown client id) is 401 and counts against no
   account (it is still recorded).
2. Every attributed request is counted by the sliding window before anything else: token, balance,
   starts, polls, 401s for an expired token, and refused requests alike. Over the limit the answer
   is 429 ``{"message": "Too Many Attempts."}`` with ``Retry-After`` (when configured) and no
   ``X-RateLimit-*`` headers, whose existence is undocumented; nothing else happens.
3. An expired token is 401.
4. ``error_5xx_share`` of requests (by seed and sequence number) get a 500/502/503 before the
   handler runs, so a 5xx start never created a task here (the real service might have: a client
   must treat a start without an answer as spent).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from aiohttp import web

from eventlog.simulator.snov.context import SNOV_SIMULATOR, SnovSimulator
from eventlog.simulator.snov.handlers import NOTE, Note, invalid_client
from eventlog.simulator.snov.record import SnovRequestRecord

__all__ = ["TOKEN_PATH", "snov_gate"]

TOKEN_PATH = "/v1/oauth/access_token"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_ENDPOINTS = {
    TOKEN_PATH: "token",
    "/v2/company-domain-by-name/start": "domains_start",
    "/v2/company-domain-by-name/result": "domains_result",
    "/v2/emails-by-domain-by-name/start": "emails_start",
    "/v2/emails-by-domain-by-name/result": "emails_result",
    "/v1/get-balance": "balance",
}


def _bearer(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def _invalid_token() -> web.Response:
    return web.json_response(
        {"success": False, "message": "Unauthenticated.", "error": "invalid_token"},
        status=401,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def _too_many(sim: SnovSimulator, retry_after: int) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if sim.config.retry_after_header else None
    return web.json_response({"message": "Too Many Attempts."}, status=429, headers=headers)


def _injected_5xx(sim: SnovSimulator, seq: int) -> web.Response | None:
    share = sim.config.error_5xx_share
    if share <= 0:
        return None
    rng = random.Random(f"{sim.config.seed}:fault:{seq}")
    if rng.random() >= share:
        return None
    status = rng.choice((500, 502, 503))
    if status == 502:
        return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>",
                            content_type="text/html")
    return web.json_response({"success": False, "message": "Server Error"}, status=status)


async def _call(handler: Handler, request: web.Request) -> web.StreamResponse:
    """Run the handler, turning aiohttp's raised HTTP errors (no route, wrong method) into JSON."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        return web.json_response({"success": False, "message": exc.reason}, status=exc.status)


async def _attribute(sim: SnovSimulator, request: web.Request, endpoint: str) -> tuple[str | None, float]:
    """(account, token expiry); the token endpoint's "expiry" is infinite."""
    if endpoint == "token":
        form = await request.post()  # cached by aiohttp: the handler reads it again for free
        known = form.get("client_id") == sim.config.client_id
        return (sim.config.client_id if known else None), float("inf")
    token = sim.tokens.lookup(_bearer(request))
    return (None, 0.0) if token is None else (token.account, token.expires_at)


def _default_outcome(status: int) -> str:
    if status == 401:
        return "unauthorized"
    if status == 404:
        return "not_found"
    if status == 429:
        return "rate_limited"
    return "server_error" if status >= 500 else "bad_request"


@web.middleware
async def snov_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    sim: SnovSimulator = request.app[SNOV_SIMULATOR]
    now = sim.clock()
    endpoint = _ENDPOINTS.get(request.path, "unknown")
    account, expires_at = await _attribute(sim, request, endpoint)
    response: web.StreamResponse
    note = Note(account or "")
    if account is None:
        response = invalid_client() if endpoint == "token" else _invalid_token()
    else:
        NOTE.set(note)
        decision = sim.limit.hit(account, now)
        seq = sim.state.next_seq()
        if not decision.allowed:
            response = _too_many(sim, decision.retry_after)
        elif expires_at <= now:
            response = _invalid_token()
        else:
            if sim.config.latency_ms > 0:
                await asyncio.sleep(sim.config.latency_ms / 1000)
            response = _injected_5xx(sim, seq) or await _call(handler, request)
    ok = response.status == 200
    sim.state.requests.append(
        SnovRequestRecord(
            time=now,
            account=account or "",
            method=request.method,
            path=request.path_qs,
            endpoint=endpoint,
            status=response.status,
            outcome=note.outcome if ok else _default_outcome(response.status),
            credits=note.credits if ok else 0,
            task=note.task if ok else "",
        )
    )
    return response
