"""Load: a burst of stream events through the real worker, its peak memory measured from outside.

The ledger is seeded with one stream event at the simulator's first timepoint, so the worker
resumes there and the whole backlog arrives as one burst (20,000 events in CI, 1,000,000 with
CHLEDGER_SOAK=1), with the officers fetches of the strike-off companies among them under the
limit. Peak RSS is the kernel's high-water mark (VmHWM) of the worker process, read just before
it is stopped; it must stay under 100 MB, the memory budget RELIABILITY.md reports against.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from eventlog.clock import FixedClock
from eventlog.ledger.db import connect
from eventlog.simulator import SimulatorConfig, max_in_any_window, running_simulator
from projections.testing import stream_event
from support import REPO
from support.filled_ledger import projected

SOAK = os.environ.get("CHLEDGER_SOAK") == "1"
BURST = 1_000_000 if SOAK else 20_000
RSS_LIMIT_MB = 100
LIMIT, WINDOW = 20, 2.0


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def stream_events(db: Path) -> int:
    conn = connect(db, readonly=True)
    try:
        gaps = conn.execute("SELECT count(*) FROM event_log WHERE event_type = 'stream.gap'").fetchone()[0]
        assert gaps == 0, "the simulator refused to resume (a gap): the burst never came"
        return conn.execute("SELECT count(*) FROM event_log WHERE event_type = 'stream.event'").fetchone()[0]
    finally:
        conn.close()


def worker_env(sim, db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPANIES_HOUSE", "RATE_LIMIT", "CHLEDGER_"))}
    env.update({"COMPANIES_HOUSE_API_KEY": "sim-key", "COMPANIES_HOUSE_STREAM_KEY": "sim-stream-key",
                "STREAMING_API_URL": f"{sim.base_url}/companies", "COMPANIES_HOUSE_API_URL": sim.base_url,
                "DATABASE_PATH": str(db), "RATE_LIMIT_REQUESTS": str(LIMIT), "RATE_LIMIT_WINDOW": str(WINDOW),
                "RATE_LIMIT_SLACK": "0.5", "DISK_RESERVE_MB": "0", "LOG_LEVEL": "WARNING"})
    return env


async def start_ingest(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, str(REPO / "cli.py"), "ingest", env=env,
                                                cwd=str(cwd), stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)


async def stop_and_measure(proc: asyncio.subprocess.Process, sim) -> tuple[float, int, int]:
    """The still running worker's peak RSS, then a clean stop (exit 0); with the simulator's own
    count of the busiest window and of the requests sent: (peak MB, busiest, sent)."""
    assert proc.returncode is None, (await proc.stderr.read()).decode()[-2000:]
    peak = peak_rss_mb(proc.pid)
    proc.terminate()
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    times = sim.state.times("sim-key")
    return peak, max_in_any_window(times, WINDOW), len(times)


async def test_a_burst_of_stream_events_keeps_the_worker_under_100_mb(tmp_path, faults):
    first = 1000
    # retention_seconds=0: a backlog of a million at 0.5/s reaches 23 days back, past the real 3 days
    config = SimulatorConfig(seed=9, first_timepoint=first, backlog_events=BURST, gap_share=0.0,
                             retention_seconds=0, events_per_second=0.5, strike_off_share=0.02, company_count=5000,
                             rate_limit_requests=LIMIT, rate_limit_window=WINDOW)
    db = tmp_path / "load.db"
    conn, ledger = projected(db, FixedClock(1_700_000_000.0))
    ledger.append(stream_event("00000001", first))  # the worker resumes right after it
    conn.close()
    async with running_simulator(config) as sim:
        env = worker_env(sim, db)
        proc = await start_ingest(env, tmp_path)
        started = time.monotonic()
        seen = 0
        while seen < BURST:
            try:
                await asyncio.wait_for(proc.wait(), 0.25)
                break  # it ended on its own: the assertion below says so
            except TimeoutError:
                seen = stream_events(db) - 1
            assert time.monotonic() - started < (3600 if SOAK else 120), f"only {seen} events in time"
        seconds = time.monotonic() - started
        peak, ch_max, requests = await stop_and_measure(proc, sim)
    assert peak < RSS_LIMIT_MB, f"peak RSS {peak:.1f} MB during a burst of {BURST:,} events"
    assert ch_max <= LIMIT
    conn = connect(db, readonly=True)
    tps = conn.execute("SELECT count(DISTINCT event_id), count(*) FROM event_log WHERE event_type = 'stream.event'")
    distinct, total = tps.fetchone()
    conn.close()
    assert distinct == total >= BURST
    print(f"\n{BURST:,} events in {seconds:.1f} s ({BURST / seconds:,.0f}/s), peak RSS {peak:.1f} MB")
    faults.record(f"a burst of {BURST:,} stream events", injected=BURST, lost=0, duplicates=total - distinct,
                  breaches=int(ch_max > LIMIT), peak_rss=f"{peak:.1f} MB (limit {RSS_LIMIT_MB})",
                  events_per_second=round(BURST / seconds), officers_requests=requests)


async def test_a_10000_company_backlog_is_worked_under_the_limit_in_bounded_memory(tmp_path, faults):
    config = SimulatorConfig(seed=10, backlog_events=50, events_per_second=5.0, company_count=12_000,
                             rate_limit_requests=LIMIT, rate_limit_window=WINDOW)
    db = tmp_path / "backlog.db"
    async with running_simulator(config) as sim:
        env = worker_env(sim, db)
        numbers = tmp_path / "backlog.txt"
        numbers.write_text("\n".join(sim.simulator.universe.numbers[:10_000]) + "\n")
        made = await asyncio.create_subprocess_exec(sys.executable, str(REPO / "cli.py"), "backfill", str(numbers),
                                                    env=env, stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(made.communicate(), 120)
        assert made.returncode == 0, err.decode()
        proc = await start_ingest(env, tmp_path)
        while len(sim.state.times("sim-key")) < 2 * LIMIT + 1:  # past two windows: the limiter held back
            try:
                await asyncio.wait_for(proc.wait(), 0.25)
                break
            except TimeoutError:
                pass
        peak, busiest, sent = await stop_and_measure(proc, sim)
    conn = connect(db, readonly=True)
    try:
        waiting = conn.execute("SELECT count(*) FROM batch_jobs "
                               "WHERE status IN ('pending', 'processing')").fetchone()[0]
    finally:
        conn.close()
    assert busiest <= LIMIT, f"{busiest} requests in a window of {WINDOW} s"
    assert peak < RSS_LIMIT_MB, f"peak RSS {peak:.1f} MB with a 10,000-company backlog"
    assert waiting >= 10_000 - sent, waiting
    faults.record("a 10,000-company backlog", injected=10_000, breaches=int(busiest > LIMIT),
                  peak_rss=f"{peak:.1f} MB", busiest_window=f"{busiest} of {LIMIT}", requests_sent=sent)
