"""One hour of saturated demand through the real grant path, time-compressed.

The sender's grant (limiter check + queue pick + write-ahead `request.sent`, in
one transaction) runs against a real ledger with every projection attached,
on a fake clock; the server is the simulator's fixed-window model. No HTTP and
no real waiting: the clock jumps by exactly the wait the limiter asks for.
"""

from __future__ import annotations

import asyncio
import random

import msgspec

import projections
from eventlog.clock import FixedClock
from eventlog.ledger.entries import HIGH, LOW, RateLimitHeaders, RequestQueued, ResponseReceived
from eventlog.ledger.store import Ledger
from eventlog.worker.limiter import SlidingWindowLimiter
from eventlog.worker.sender import Sender
from eventlog.config.settings import Settings
from eventlog.simulator import FixedWindowLimiter, max_in_any_window

T0 = 1_700_000_000.0
LIMIT, WINDOW = 600, 300.0
HOURS = float(__import__("os").environ.get("SIM_HOURS", "1"))


def test_one_hour_saturated_no_breach_full_use_and_priority_order(conn):
    # Durability is not under test here and 14,000 fsyncs would dominate the run.
    conn.execute("PRAGMA synchronous=OFF")
    clock = FixedClock(T0)
    ledger = Ledger(conn, clock)
    projections.attach(ledger)
    settings = Settings(rate_limit_requests=LIMIT, rate_limit_window=WINDOW, rate_limit_slack=2.0)
    limiter = SlidingWindowLimiter(conn, clock, limit=LIMIT, window=WINDOW, slack=2.0)
    sender = Sender(settings, ledger, limiter, session=None, clock=clock,  # type: ignore[arg-type]
                    stop=asyncio.Event(), wake=asyncio.Event(), rng=random.Random(1))
    # a LOW backlog far beyond an hour's allowance, then HIGH work arriving along the way
    ledger.append_many(RequestQueued(request_id=f"low-{i}", kind="profile", company_number=f"{i:08d}",
                                     priority=LOW) for i in range(9000))
    server = FixedWindowLimiter(LIMIT, WINDOW)
    arrivals: list[float] = []
    order: list[str] = []
    rejected = 0
    next_high = T0 + 600.0
    high_queued = 0
    while clock.now() < T0 + HOURS * 3600:
        if clock.now() >= next_high and high_queued < 50:
            ledger.append(RequestQueued(request_id=f"high-{high_queued}", kind="profile",
                                        company_number=f"9{high_queued:07d}", priority=HIGH))
            high_queued += 1
            next_high += 30.0
        grant = sender._grant(None, 0)
        if grant.item is None:
            # wait as the limiter says, but wake for the next HIGH arrival (once they stop, nothing
            # else can wake us: bounding by a past arrival time stepped the clock 1 ms at a time)
            until_high = next_high - clock.now() if high_queued < 50 else float("inf")
            clock.advance(min(grant.wait, max(until_high, 0.001)) if grant.wait else 1.0)
            continue
        arrival = clock.now() + 0.15
        decision = server.hit("k", arrival)
        rejected += not decision.allowed
        arrivals.append(arrival)
        order.append(grant.item.request_id)
        clock.advance(0.2)  # the response arrives
        body = msgspec.json.encode({"company_number": grant.item.company_number, "company_status": "active"})
        ledger.append(ResponseReceived(request_id=grant.item.request_id, kind="profile",
                                       company_number=grant.item.company_number, status=200, elapsed_ms=200,
                                       ratelimit=RateLimitHeaders(limit=LIMIT, remain=decision.remaining),
                                       body=msgspec.Raw(body)))
    assert rejected == 0
    assert max_in_any_window(arrivals, WINDOW) <= LIMIT
    ideal = LIMIT * HOURS * 3600 / WINDOW
    assert len(arrivals) >= 0.99 * ideal, f"{len(arrivals)} of {ideal:.0f}"
    # every HIGH request was sent, each within the first few grants after it was queued
    assert sum(rid.startswith("high-") for rid in order) == high_queued
    lows = [rid for rid in order if rid.startswith("low-")]
    assert lows == sorted(lows, key=lambda r: int(r.split("-")[1]))  # FIFO within LOW
    # what the server saw is what the ledger counted
    assert conn.execute("SELECT count(*) FROM api_rate_limit_log").fetchone()[0] == len(arrivals)
