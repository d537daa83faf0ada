"""The sliding-window limiter, on a fake clock, judged by a fixed-window server model.

The server model is the simulator's own `FixedWindowLimiter` (Companies House's
rule: a window starts at the first request after the previous one expired), so
"no 429" here means what it means against the simulator and the real service.
"""

from __future__ import annotations

import apsw
import pytest

from eventlog.clock import FixedClock, from_epoch
from eventlog.ledger.db import connect
from eventlog.ledger.entries import RateLimitHeaders
from eventlog.worker.limiter import SlidingWindowLimiter, clamp_reset
from eventlog.ledger.migrate import migrate
from eventlog.simulator import FixedWindowLimiter, max_in_any_window

T0 = 1_700_000_000.0


@pytest.fixture
def conn(tmp_path) -> apsw.Connection:
    c = connect(tmp_path / "limiter.db")
    migrate(c)
    return c


def record_send(conn: apsw.Connection, at: float, status: int = 0, request_id: str = "r") -> int:
    """What the api_rate_limit_log projection does for a request.sent (tested in projections)."""
    conn.execute(
        "INSERT INTO api_rate_limit_log(timestamp, request_type, response_status, company_number, request_id) "
        "VALUES (?, 'profile', ?, '00000001', ?)", (from_epoch(at), status, request_id))
    return conn.last_insert_rowid()


def drive(conn, limiter: SlidingWindowLimiter, clock: FixedClock, demand: list[float],
          server: FixedWindowLimiter, until: float, latency: float = 0.05) -> tuple[list[float], int]:
    """Send every demanded request as soon as the limiter allows; return server-side times and 429s."""
    pending = sorted(demand, reverse=True)
    sent: list[float] = []
    rejected = 0
    conn.execute("BEGIN")  # one transaction: this drives the decision logic, not fsync
    while pending and clock.now() < until:
        if pending[-1] > clock.now():
            clock.set(pending[-1])
        decision = limiter.check()
        if decision.wait > 0:
            clock.advance(decision.wait)
            continue
        pending.pop()
        record_send(conn, clock.now())
        arrival = clock.now() + latency  # the server sees it a little later
        if not server.hit("key", arrival).allowed:
            rejected += 1
        sent.append(arrival)
    conn.execute("COMMIT")
    return sent, rejected


def test_allows_until_the_limit_then_waits_exactly_for_the_oldest(conn):
    clock = FixedClock(T0)
    lim = SlidingWindowLimiter(conn, clock, limit=3, window=10, slack=1)
    for t in (0.0, 2.0, 4.0):
        clock.set(T0 + t)
        assert lim.check().wait == 0
        record_send(conn, clock.now())
    clock.set(T0 + 5.0)
    d = lim.check()
    # the oldest (t=0) leaves the window at 0 + 10 + 1 slack = 11
    assert d.wait == pytest.approx(6.0)
    assert d.in_window == 3
    clock.set(T0 + 10.999)
    assert lim.check().wait > 0
    # at exactly 11 the two are window + slack apart: no half-open window [s, s+10) holds both
    clock.set(T0 + 11.0)
    assert lim.check().wait == 0


def test_adversarial_idle_then_backlog_just_before_the_server_boundary(conn):
    """One lone request opens the server window; the backlog lands 1 s before it ends."""
    limit, window = 30, 10.0
    clock = FixedClock(T0)
    lim = SlidingWindowLimiter(conn, clock, limit=limit, window=window, slack=0.5)
    server = FixedWindowLimiter(limit, window)
    demand = [T0] + [T0 + window - 1.0] * 200
    sent, rejected = drive(conn, lim, clock, demand, server, until=T0 + 200)
    assert rejected == 0
    assert max_in_any_window(sent, window) <= limit
    assert len(sent) == 201


def test_saturated_hour_uses_the_allowance_without_breach(conn):
    """Time-compressed: one hour of 600-per-300 s demand, no real waiting."""
    limit, window = 600, 300.0
    clock = FixedClock(T0)
    lim = SlidingWindowLimiter(conn, clock, limit=limit, window=window, slack=2.0)
    server = FixedWindowLimiter(limit, window)
    demand = [T0 + 0.01 * i for i in range(20_000)]  # far more than an hour can take
    sent, rejected = drive(conn, lim, clock, demand, server, until=T0 + 3600)
    assert rejected == 0
    assert max_in_any_window(sent, window) == limit
    # 12 windows in an hour; the slack costs 2 s per window: >= 99% of the ideal
    assert len(sent) >= 0.99 * limit * 3600 / window


def test_cooldown_after_429_blocks_until_reset_and_survives_restart(conn, tmp_path):
    from eventlog.ledger.entries import RateLimited, RequestQueued, RequestSent
    from eventlog.ledger.store import Ledger

    clock = FixedClock(T0)
    ledger = Ledger(conn, clock)
    ledger.append(RequestQueued(request_id="r1", kind="profile", company_number="00000001"))
    pos = ledger.append(RequestSent(request_id="r1", kind="profile", company_number="00000001",
                                    path="/company/00000001")).position
    conn.execute("INSERT INTO api_rate_limit_log(id, timestamp, request_type, response_status, request_id) "
                 "VALUES (?, ?, 'profile', 429, 'r1')", (pos, from_epoch(T0)))
    ledger.append(RateLimited(request_id="r1", kind="profile", company_number="00000001", status=429,
                              elapsed_ms=3, cooldown_until=from_epoch(T0 + 120)))
    lim = SlidingWindowLimiter(conn, clock, limit=600, window=300, slack=2)
    d = lim.check()
    assert d.wait == pytest.approx(120) and "cooldown" in d.why
    # a new process (new connection, new limiter) sees the same cooldown
    other = SlidingWindowLimiter(connect(conn.filename), clock, limit=600, window=300, slack=2)
    assert other.check().wait == pytest.approx(120)
    clock.set(T0 + 120.5)
    assert other.check().wait == 0


def test_server_remain_is_believed_and_reset_is_clamped(conn):
    clock = FixedClock(T0)
    lim = SlidingWindowLimiter(conn, clock, limit=600, window=300, slack=2)
    lim.observe(RateLimitHeaders(limit=600, remain=1, reset=int(T0 + 40)))
    assert lim.check().wait == 0
    lim.sent()
    d = lim.check()
    assert d.wait == pytest.approx(40, abs=1) and "server" in d.why
    # a reset in the past or far in the future is clamped, never trusted blindly
    assert clamp_reset(T0 - 100, T0, 300) == T0
    assert clamp_reset(T0 + 10_000, T0, 300) == T0 + 300
    assert clamp_reset(None, T0, 300) == T0 + 300


def test_403_cools_down_five_minutes(conn):
    clock = FixedClock(T0)
    lim = SlidingWindowLimiter(conn, clock, limit=600, window=300, slack=2)
    assert lim.cooldown_for(403, None) == from_epoch(T0 + 300)
    assert lim.cooldown_for(429, RateLimitHeaders(reset=int(T0 + 60))) == from_epoch(T0 + 62)


def test_after_a_cooldown_one_request_goes_alone_until_one_is_answered(conn):
    """Four lanes all firing when a cooldown ends would earn four 429s from a key still refused."""
    import msgspec

    import projections
    from eventlog.ledger.entries import RateLimited, RequestQueued, RequestSent, ResponseReceived
    from eventlog.ledger.store import Ledger
    from eventlog.worker.limiter import PROBE_WAIT

    clock = FixedClock(T0)
    ledger = Ledger(conn, clock)
    projections.attach(ledger)  # request.sent and its answers reach api_rate_limit_log inline
    company = "00000001"

    def send(rid: str) -> None:
        ledger.append_many([RequestQueued(request_id=rid, kind="profile", company_number=company),
                            RequestSent(request_id=rid, kind="profile", company_number=company,
                                        path=f"/company/{company}")])

    def refused(rid: str, until: float) -> None:
        ledger.append(RateLimited(request_id=rid, kind="profile", company_number=company, status=429,
                                  elapsed_ms=3, cooldown_until=from_epoch(until)))

    lim = SlidingWindowLimiter(conn, clock, limit=600, window=300, slack=2)
    for i in range(4):
        assert lim.check().wait == 0  # before any refusal, lanes go side by side
        send(f"r{i}")
    refused("r0", T0 + 60)  # r1..r3 are still on the wire: they were sent before the refusal
    assert "cooldown" in lim.check().why
    clock.set(T0 + 61)
    assert lim.check().wait == 0  # the cooldown is over: one request may go ...
    send("probe1")
    d = lim.check()
    assert d.wait == PROBE_WAIT and "one request at a time" in d.why  # ... and only one
    other = SlidingWindowLimiter(connect(conn.filename), clock, limit=600, window=300, slack=2)
    assert other.check().wait == PROBE_WAIT  # another process on the key waits too
    refused("probe1", T0 + 120)  # still refused: one more 429, not four
    clock.set(T0 + 121)
    assert lim.check().wait == 0
    send("probe2")
    assert lim.check().wait == PROBE_WAIT
    ledger.append(ResponseReceived(request_id="probe2", kind="profile", company_number=company, status=200,
                                   elapsed_ms=5, body=msgspec.Raw(b"{}")))
    assert lim.check().wait == 0 and other.check().wait == 0  # answered: every lane may go again
    send("after")
    assert lim.check().wait == 0


def test_an_emergency_stop_holds_every_call_for_an_hour_whoever_starts_next(conn):
    """Render restarts an exited worker: each restart must not earn the key one more 429."""
    from eventlog.ledger.entries import EmergencyStopped, RateLimited, RequestQueued, RequestSent
    from eventlog.ledger.store import Ledger
    from eventlog.worker.limiter import EMERGENCY_WINDOWS

    import projections

    clock = FixedClock(T0)
    ledger = Ledger(conn, clock)
    projections.attach(ledger)
    company = "00000001"
    ledger.append_many([RequestQueued(request_id="r", kind="profile", company_number=company),
                        RequestSent(request_id="r", kind="profile", company_number=company, path="/c")])
    ledger.append_many([RateLimited(request_id="r", kind="profile", company_number=company, status=429,
                                    elapsed_ms=3, cooldown_until=from_epoch(T0 + 10)),
                        EmergencyStopped(reason="3 incidents", violations=3, cooldown_until=from_epoch(T0 + 10))])
    window = 300
    hold = EMERGENCY_WINDOWS * window
    clock.set(T0 + 11)  # the 429's own cooldown is over ...
    restarted = SlidingWindowLimiter(connect(conn.filename), clock, limit=600, window=window, slack=2)
    d = restarted.check()
    assert d.why == "after an emergency stop" and d.wait == pytest.approx(hold - 11)  # ... the stop is not
    assert restarted.cooldown_until() == pytest.approx(T0 + hold)
    clock.set(T0 + hold - 1)
    assert restarted.check().wait == pytest.approx(1)
    clock.set(T0 + hold + 0.5)
    assert restarted.check().wait == 0  # an hour on, calls resume (one alone first: see above)


def test_the_hold_runs_from_a_slow_answer_and_the_first_request_after_it_goes_alone(conn):
    """The 429 row is timed by its send; the hold by the stop's answer, 30 s later here."""
    from eventlog.ledger.entries import EmergencyStopped, RateLimited, RequestQueued, RequestSent
    from eventlog.ledger.store import Ledger
    from eventlog.worker.limiter import EMERGENCY_WINDOWS, PROBE_WAIT

    import projections

    clock = FixedClock(T0)
    ledger = Ledger(conn, clock)
    projections.attach(ledger)
    company = "00000001"

    def send(rid: str) -> None:
        ledger.append_many([RequestQueued(request_id=rid, kind="profile", company_number=company),
                            RequestSent(request_id=rid, kind="profile", company_number=company, path="/c")])

    send("r")
    clock.set(T0 + 30)  # a slow 429
    ledger.append_many([RateLimited(request_id="r", kind="profile", company_number=company, status=429,
                                    elapsed_ms=30000, cooldown_until=from_epoch(T0 + 40)),
                        EmergencyStopped(reason="3 incidents", violations=3)])
    lim = SlidingWindowLimiter(conn, clock, limit=600, window=300, slack=2)
    end = T0 + 30 + EMERGENCY_WINDOWS * 300
    clock.set(end - 20)
    assert lim.check().why == "after an emergency stop" and lim.check().wait == pytest.approx(20)
    clock.set(end + 5)
    assert lim.check().wait == 0
    send("first-after")  # the key may still be refused: this one goes alone
    assert lim.check().wait == PROBE_WAIT
