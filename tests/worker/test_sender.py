"""The sender and the limiter's view of the server: one request on the wire per `request.sent`,
the longest cooldown wins, the server's `Remain` net of what is in flight, 429 incidents."""

from __future__ import annotations

import asyncio

from aiohttp import web

import projections
from eventlog.clock import FixedClock, SystemClock, from_epoch
from eventlog.ledger.entries import RateLimited, RateLimitHeaders, RequestQueued, RequestSent
from eventlog.ledger.store import Ledger
from eventlog.worker.limiter import SlidingWindowLimiter
from eventlog.worker.sender import Sender, rest_session
from eventlog.config.settings import Settings

T0 = 1_700_000_000.0


def projected(conn, clock) -> Ledger:
    ledger = Ledger(conn, clock)
    projections.attach(ledger)
    return ledger


async def one_request(conn, url: str) -> Ledger:
    clock = SystemClock()
    ledger = projected(conn, clock)
    settings = Settings(api_url=url, api_key="k", max_retries=3)
    limiter = SlidingWindowLimiter(conn, clock, limit=600, window=300, slack=2)
    ledger.append(RequestQueued(request_id="r1", kind="profile", company_number="00000001"))
    async with rest_session() as session:
        sender = Sender(settings, ledger, limiter, session, clock=clock, stop=asyncio.Event(),
                        wake=asyncio.Event())
        grant = sender._grant(None, 0)
        await sender._perform(grant.item)
    return ledger


def count(conn, event_type: str) -> int:
    return conn.execute("SELECT count(*) FROM event_log WHERE event_type = ?", (event_type,)).fetchone()[0]


async def test_a_dropped_connection_is_not_silently_sent_again(conn):
    """aiohttp re-sends an idempotent GET once when a connection drops; that must be off."""
    seen = []

    async def drop_after_reading(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        seen.append(1)
        writer.close()

    server = await asyncio.start_server(drop_after_reading, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await one_request(conn, f"http://127.0.0.1:{port}")
    finally:
        server.close()
    assert len(seen) == count(conn, "request.sent") == 1
    assert count(conn, "request.transport_error") == 1  # recorded, and retried by the policy
    assert conn.execute("SELECT count(*) FROM request_queue").fetchone()[0] == 1


async def test_a_redirect_is_not_followed(conn, aiohttp_server):
    seen = []

    async def handler(request):
        seen.append(str(request.rel_url))
        raise web.HTTPFound("/company/00000001?again=1")

    app = web.Application()
    app.router.add_get("/company/{n}", handler)
    server = await aiohttp_server(app)
    await one_request(conn, str(server.make_url("")).rstrip("/"))
    assert seen == ["/company/00000001"]
    assert count(conn, "request.sent") == 1
    status = conn.execute("SELECT response_status FROM api_rate_limit_log").fetchone()[0]
    assert status == 302


def test_the_longest_recent_cooldown_wins(conn):
    """X and Y in flight; Y's 429 (10 s) is recorded before X's 403 (300 s)."""
    clock = FixedClock(T0)
    ledger = projected(conn, clock)
    lim = SlidingWindowLimiter(conn, clock, limit=600, window=300, slack=2)
    for rid, n in (("X", "00000001"), ("Y", "00000002")):
        ledger.append(RequestQueued(request_id=rid, kind="profile", company_number=n))
    for rid, n in (("X", "00000001"), ("Y", "00000002")):
        ledger.append(RequestSent(request_id=rid, kind="profile", company_number=n, path="/"))
    clock.advance(0.5)
    ledger.append(RateLimited(request_id="Y", kind="profile", company_number="00000002", status=429,
                              elapsed_ms=500, cooldown_until=from_epoch(clock.now() + 10)))
    assert lim.check().wait == 10
    clock.advance(0.5)
    ledger.append(RateLimited(request_id="X", kind="profile", company_number="00000001", status=403,
                              elapsed_ms=1000, cooldown_until=from_epoch(clock.now() + 300)))
    clock.advance(11)
    assert lim.check().wait == 289  # X's 403 still holds, though Y's request was sent later


def test_the_servers_remain_is_net_of_requests_in_flight(conn):
    clock = FixedClock(T0)
    ledger = projected(conn, clock)
    lim = SlidingWindowLimiter(conn, clock, limit=600, window=300, slack=2)
    for i in range(4):
        ledger.append(RequestQueued(request_id=f"r{i}", kind="profile", company_number=f"{i:08d}"))
        ledger.append(RequestSent(request_id=f"r{i}", kind="profile", company_number=f"{i:08d}", path="/"))
    # r0's answer says 3 remain; r1..r3 are still on the wire and will take those 3
    lim.observe(RateLimitHeaders(limit=600, remain=3, reset=int(T0 + 100)))
    d = lim.check()
    assert d.wait == 100 and "server" in d.why


def test_429s_of_requests_already_in_flight_are_one_incident(conn):
    clock = FixedClock(T0)
    ledger = projected(conn, clock)
    lim = SlidingWindowLimiter(conn, clock, limit=600, window=300, slack=2)
    for rid in ("a", "b", "c"):
        ledger.append(RequestQueued(request_id=rid, kind="profile", company_number="00000001"))
        ledger.append(RequestSent(request_id=rid, kind="profile", company_number="00000001", path="/"))
    clock.advance(0.2)
    assert lim.incidents_since(T0 - 3600, "a") == 1
    ledger.append(RateLimited(request_id="a", kind="profile", company_number="00000001", status=429,
                              elapsed_ms=200, cooldown_until=from_epoch(T0 + 60)))
    clock.advance(0.1)  # b and c were sent with a, before its 429 was known
    assert lim.incidents_since(T0 - 3600, "b") == 1
    ledger.append(RateLimited(request_id="b", kind="profile", company_number="00000001", status=429,
                              elapsed_ms=300, cooldown_until=from_epoch(T0 + 60)))
    clock.set(T0 + 61)  # after the cooldown, a new send refused again: a second incident
    ledger.append(RequestQueued(request_id="d", kind="profile", company_number="00000002"))
    ledger.append(RequestSent(request_id="d", kind="profile", company_number="00000002", path="/"))
    clock.advance(0.2)
    assert lim.incidents_since(T0 - 3600, "d") == 2
