"""Limiter benchmark: allowance used in saturated windows, and the cost of one decision.

    python benchmarks/limiter.py [--rows 1000000] [--decisions 20000]

1. Saturation (fake clock, no real waiting): six hours of demand far above the
   limit, sent as fast as `SlidingWindowLimiter` allows; judged by the
   simulator's fixed-window server model. Reports requests per 300 s against
   600, the busiest sliding window, and 429s. Then the adversarial pattern:
   one lone request opens the server's window, idle, then a backlog lands 1 s
   before that window ends.
2. Decision cost with `--rows` rows in `api_rate_limit_log` (a week of history
   at ~2 req/s), next to aiolimiter's in-memory decision in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from eventlog.clock import FixedClock, from_epoch  # noqa: E402
from eventlog.ledger.db import connect  # noqa: E402
from eventlog.worker.limiter import SlidingWindowLimiter  # noqa: E402
from eventlog.ledger.migrate import migrate  # noqa: E402
from eventlog.simulator import FixedWindowLimiter, max_in_any_window  # noqa: E402

T0 = 1_700_000_000.0
LIMIT, WINDOW, SLACK = 600, 300.0, 2.0


def fresh_db(path: str):
    conn = connect(path)
    migrate(conn)
    return conn


def saturate(conn, demand: list[float], until: float, latency: float = 0.2):
    clock = FixedClock(T0)
    lim = SlidingWindowLimiter(conn, clock, limit=LIMIT, window=WINDOW, slack=SLACK)
    server = FixedWindowLimiter(LIMIT, WINDOW)
    arrivals, rejected, i = [], 0, 0
    conn.execute("BEGIN")
    while i < len(demand) and clock.now() < until:
        if demand[i] > clock.now():
            clock.set(demand[i])
        d = lim.check()
        if d.wait > 0:
            clock.advance(d.wait)
            continue
        i += 1
        conn.execute(
            "INSERT INTO api_rate_limit_log(timestamp, request_type, response_status) VALUES (?, 'profile', 0)",
            (from_epoch(clock.now()),))
        arrival = clock.now() + latency
        rejected += not server.hit("k", arrival).allowed
        arrivals.append(arrival)
        clock.advance(0.01)  # the next request can't start in the same microsecond
    conn.execute("COMMIT")
    return arrivals, rejected


def server_windows(arrivals: list[float]) -> list[int]:
    """Requests per Companies House window (each starts at the first request after the last ended)."""
    counts: list[int] = []
    end = float("-inf")
    for t in arrivals:
        if t >= end:
            counts.append(0)
            end = t + WINDOW
        counts[-1] += 1
    return counts


def report_saturation(tmp: str) -> None:
    hours = 6
    conn = fresh_db(os.path.join(tmp, "sat.db"))
    demand = [T0 + 0.001 * i for i in range(LIMIT * 12 * hours * 2)]
    arrivals, rejected = saturate(conn, demand, until=T0 + hours * 3600)
    windows = server_windows(arrivals)
    full = windows[:-1]  # the last window is cut off by the end of the run
    span = arrivals[-1] - arrivals[0] + WINDOW
    print(f"saturated {hours} h: sent {len(arrivals)}; the server's {len(full)} complete fixed windows "
          f"carried min {min(full)} / mean {sum(full) / len(full):.1f} of {LIMIT} "
          f"({100 * min(full) / LIMIT:.2f}% at worst); long-run rate {len(arrivals) * WINDOW / span:.1f} "
          f"per {WINDOW:.0f} s ({100 * len(arrivals) * WINDOW / span / LIMIT:.2f}% of the allowance, "
          f"the {SLACK:g} s slack is the rest); busiest sliding window "
          f"{max_in_any_window(arrivals, WINDOW)}/{LIMIT}; 429s from the fixed-window server {rejected}")

    conn = fresh_db(os.path.join(tmp, "adv.db"))
    demand = [T0] + [T0 + WINDOW - 1.0] * 3000
    arrivals, rejected = saturate(conn, demand, until=T0 + 3600)
    print(f"adversarial (lone request, idle, backlog of 3000 at the server window's last second): "
          f"sent {len(arrivals)}, busiest sliding window {max_in_any_window(arrivals, WINDOW)}/{LIMIT}, "
          f"429s {rejected}")


def report_decision_cost(tmp: str, rows: int, decisions: int) -> None:
    conn = fresh_db(os.path.join(tmp, "cost.db"))
    start = T0
    step = 604_800 / rows  # a week of history
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO api_rate_limit_log(timestamp, request_type, response_status, company_number, request_id) "
        "VALUES (?, 'profile', 200, '00000001', ?)",
        ((from_epoch(start + i * step), f"r{i}") for i in range(rows)))
    conn.execute("COMMIT")
    now = start + rows * step
    clock = FixedClock(now)
    lim = SlidingWindowLimiter(conn, clock, limit=LIMIT, window=WINDOW, slack=SLACK)
    lim.check()  # warm the cache
    t = time.perf_counter()
    for i in range(decisions):
        clock.set(now + i * 0.001)
        lim.check()
    ours = (time.perf_counter() - t) / decisions
    print(f"decision cost with {rows:,} rows in api_rate_limit_log "
          f"({lim.in_window()} in the current window): {ours * 1e6:.1f} µs per check")

    from aiolimiter import AsyncLimiter

    async def aiolimiter_cost() -> float:
        limiter = AsyncLimiter(LIMIT, WINDOW)
        n = min(decisions, LIMIT)  # acquire never waits while capacity remains
        t = time.perf_counter()
        for _ in range(n):
            limiter.has_capacity()
            await limiter.acquire()
        return (time.perf_counter() - t) / n

    theirs = asyncio.run(aiolimiter_cost())
    print(f"aiolimiter (in memory, no persistence, leaky bucket) has_capacity+acquire: "
          f"{theirs * 1e6:.1f} µs per decision")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--decisions", type=int, default=20_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report_saturation(tmp)
        report_decision_cost(tmp, args.rows, args.decisions)


if __name__ == "__main__":
    main()
