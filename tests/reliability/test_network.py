"""The network misbehaving, against the real worker process: timeouts shrunk so each fault shows fast.

- Nothing to talk to (a refused port, a host name that does not resolve, a server that accepts and
  never answers): the worker retries with backoff, records each failed connection, and gives up
  after MAX_RETRIES with one `chledger:` line and exit 2 (Render restarts it); the ledger verifies.
- A stream that drops mid-line, or goes silent past READ_TIMEOUT: the worker reconnects where it
  left off; no event lost, none recorded twice, no half line recorded.
- REST answers slower than REQUEST_TIMEOUT: each is a transport error and a later retry; every
  request the server received is counted in the ledger, and the limit holds.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eventlog.ledger.chain import walk
from eventlog.ledger.db import connect
from eventlog.simulator import SimulatorConfig, max_in_any_window, running_simulator
from eventlog.simulator.faults import refused_url, silent_server
from support import REPO

LIMIT, WINDOW = 10, 2.0
FAST = {"MAX_RETRIES": "2", "INITIAL_RETRY_DELAY": "0.05", "MAX_RETRY_DELAY": "0.1", "CONNECTION_TIMEOUT": "0.3",
        "READ_TIMEOUT": "0.5", "REQUEST_TIMEOUT": "0.3", "DISK_RESERVE_MB": "0", "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_REQUESTS": str(LIMIT), "RATE_LIMIT_WINDOW": str(WINDOW), "RATE_LIMIT_SLACK": "0.5",
        # connection attempts 50 ms apart, not 5 s: a run of 2 s must see its stream broken and resumed
        "STREAM_CONNECT_SPACING": "0.05"}


def env_for(stream_base: str, rest_base: str, db: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPANIES_HOUSE", "RATE_LIMIT", "CHLEDGER_"))}
    env.update(FAST, COMPANIES_HOUSE_API_KEY="sim-key", COMPANIES_HOUSE_STREAM_KEY="sim-stream-key",
               STREAMING_API_URL=f"{stream_base}/companies", COMPANIES_HOUSE_API_URL=rest_base, DATABASE_PATH=str(db))
    env.update(extra)
    return env


async def ingest(env: dict[str, str], *args: str, prefix: tuple[str, ...] = ()) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*prefix, sys.executable, str(REPO / "cli.py"), "ingest", *args,
                                                env=env, cwd=str(REPO), stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, err.decode()


def counts(db: Path) -> dict[str, int]:
    conn = connect(db, readonly=True)
    try:
        assert walk(conn).ok
        return dict(conn.execute("SELECT event_type, count(*) FROM event_log GROUP BY 1").fetchall())
    finally:
        conn.close()


def _no_network_prefix() -> tuple[str, ...]:
    """A private network namespace (nothing but a down loopback): no name server can be asked."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "--net", "true"], capture_output=True).returncode == 0:
        return (unshare, "--net")
    return ()


@pytest.mark.parametrize("fault", ["refused", "dns", "silent"])
async def test_nothing_to_talk_to_is_retried_then_given_up_in_one_line(tmp_path, fault, faults):
    db = tmp_path / f"{fault}.db"
    prefix: tuple[str, ...] = ()
    if fault == "refused":
        code, err = await ingest(env_for(refused_url(), refused_url(), db), "--duration", "20")
    elif fault == "dns":
        # `.invalid` never resolves (RFC 2606); in a namespace without a network the lookup fails
        # at once without a packet leaving the machine
        prefix = _no_network_prefix()
        base = "http://ch-stream.invalid" if prefix else "http://ch-stream.invalid.localhost.invalid"
        code, err = await ingest(env_for(base, base, db), "--duration", "20", prefix=prefix)
    else:
        async with silent_server() as base:
            code, err = await ingest(env_for(base, base, db), "--duration", "20")
    assert "Traceback" not in err, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("chledger: ")]
    assert code == 2 and len(lines) == 1, err[-2000:]
    assert "gave up after 3 failed connections" in lines[0], lines
    seen = counts(db)
    assert seen.get("stream.disconnected") == 3 and seen.get("worker.stopped") == 1, seen
    faults.record(f"stream endpoint {'refused' if fault == 'refused' else fault}: "
                  + {"refused": "connection refused", "dns": "host name does not resolve",
                     "silent": "accepts and never answers"}[fault], injected=3)


def _timepoints(db: Path) -> list[int]:
    conn = connect(db, readonly=True)
    try:
        return [r[0] for r in conn.execute("SELECT json_extract(event_data, '$.timepoint') FROM event_log "
                                           "WHERE event_type = 'stream.event' ORDER BY 1")]
    finally:
        conn.close()


@pytest.mark.parametrize("fault", ["reset mid-line", "stalled past READ_TIMEOUT"])
async def test_a_broken_or_silent_stream_is_resumed_without_loss_or_repeat(tmp_path, fault, faults):
    db = tmp_path / "stream.db"
    knobs = {"disconnect_mid_line_share": 0.03} if fault == "reset mid-line" else {"stall_after_events": 40}
    config = SimulatorConfig(seed=31, rate_limit_requests=LIMIT, rate_limit_window=WINDOW, backlog_events=200,
                             strike_off_share=0.2, events_per_second=30.0, company_count=1000, gap_share=0.0,
                             **knobs)
    async with running_simulator(config) as sim:
        code, err = await ingest(env_for(sim.base_url, sim.base_url, db, MAX_RETRIES="50"), "--duration", "2")
        streams = sim.state.streams_on("/companies")
        timeline = sim.simulator.timeline
    assert code == 0, err[-2000:]
    broken = [s for s in streams if s.end in ("disconnect", "stalled")]
    assert len(broken) >= 1 and len(streams) >= 2, [s.end for s in streams]  # broken, then resumed
    tps = _timepoints(db)
    first, last = timeline.index_at_or_after(tps[0]), timeline.index_at_or_after(tps[-1])
    expected = [timeline.timepoint_of(i) for i in range(first, last + 1)]
    assert len(tps) == len(set(tps)), "an event recorded twice"
    assert tps == expected, f"{len(set(expected) - set(tps))} events lost"
    faults.record(f"stream {fault}", injected=len(broken), stream_events=len(tps))


async def test_rest_answers_slower_than_the_timeout_are_counted_and_retried_within_the_limit(tmp_path, faults):
    db = tmp_path / "slow.db"
    config = SimulatorConfig(seed=37, rate_limit_requests=LIMIT, rate_limit_window=WINDOW, backlog_events=100,
                             strike_off_share=0.5, events_per_second=10.0, company_count=500, latency_ms=600)
    async with running_simulator(config) as sim:
        code, err = await ingest(env_for(sim.base_url, sim.base_url, db, REQUEST_TIMEOUT="0.2"), "--duration", "2")
        received = len(sim.state.times("sim-key"))
        busiest = max_in_any_window(sim.state.times("sim-key"), WINDOW)
    assert code == 0, err[-2000:]
    seen = counts(db)
    assert received >= 3 and seen.get("request.sent", 0) >= received, (received, seen)
    assert seen.get("request.transport_error", 0) >= 1, seen
    assert busiest <= LIMIT
    faults.record("REST answers slower than REQUEST_TIMEOUT", injected=seen["request.transport_error"])
