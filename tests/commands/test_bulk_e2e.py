"""The customer's import, end to end: a simulated bulk file, `bulk`, the worker, `status`.

Real processes against the simulator on loopback, in compressed time: the rate-limit window
shrunk to half a second with a proportionate limit, so hundreds of windows pass in seconds. The
simulator writes the bulk file from its own companies (half of them: the stream brings the rest,
whose strike-off proposals are stream work); `python cli.py bulk` imports it as one LOW batch;
`python cli.py ingest` drains it while following the stream. The simulator's own record judges
the limit; `status` must reach READY FOR STREAMING API.

The CI variant drains a 300-company batch in about five seconds. The 10,000-company import the
issue asks for is the same test with a bigger universe; it takes about a minute on a 2-core
machine, so it runs only when asked: `CHLEDGER_LONG_TESTS=1 python -m pytest
tests/commands/test_bulk_e2e.py`.

A third test SIGKILLs the worker mid-batch at a moment when nothing is in flight, restarts it,
and checks from the simulator's record that no request was ever sent twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from eventlog.simulator import SimulatorConfig, Universe, max_in_any_window, running_simulator
from eventlog.simulator.bulkfile import write_bulk_file
from eventlog.worker.runtime import SENDER_LANES
from support import REPO
from test_ingest_e2e import query, worker_env

WINDOW, SLACK = 0.5, 0.2  # the window 600 times shorter than Companies House's 5 minutes


def config(companies: int, limit: int, **kw) -> SimulatorConfig:
    # The IP limit (2,000 per 5 minutes, against the key's 600) is compressed with the window:
    # left at 2,000 per 5 real minutes, it would refuse the 2,001st request of a long run.
    base = dict(seed=21, company_count=companies, strike_off_share=0.5, zero_officer_share=0.0,
                no_officers_link_share=0.0, lagging_counts_share=0.0, filings_only_share=0.0,
                rate_limit_requests=limit, rate_limit_window=WINDOW, ip_limit_requests=limit * 2000 // 600,
                ip_limit_window=WINDOW, backlog_events=0, events_per_second=15.0)
    base.update(kw)
    return SimulatorConfig(**base)


def bulk_file(folder: Path, sim_config: SimulatorConfig) -> tuple[Path, list[str]]:
    """The snapshot of the first half of the simulator's companies (the stream brings the others)."""
    universe = Universe(sim_config)
    half = SimpleNamespace(numbers=universe.numbers[: len(universe.numbers) // 2], profile=universe.profile)
    written = write_bulk_file(folder, half)  # type: ignore[arg-type]
    of_interest = [n for n in written.company_numbers if universe.profile(n).company_status_detail]
    return Path(written.paths[0]), of_interest


async def start_worker(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    """`python cli.py ingest`, its log lines to a file: a long run's would fill a pipe nobody reads
    until the end, and a worker blocked writing its log sends nothing."""
    with open(log, "ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, str(REPO / "cli.py"), "ingest", "--progress-interval", "1", cwd=str(REPO), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=out)


async def finish(proc: asyncio.subprocess.Process, log: Path, timeout: float = 30) -> tuple[int, str]:
    await asyncio.wait_for(proc.wait(), timeout)
    return proc.returncode, log.read_text()[-4000:]


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "cli.py"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def env_for(base_url: str, db: Path, limit: int, **extra: str) -> dict[str, str]:
    return worker_env(base_url, db, RATE_LIMIT_REQUESTS=str(limit), RATE_LIMIT_WINDOW=str(WINDOW),
                      RATE_LIMIT_SLACK=str(SLACK), **extra)


async def wait_until(db: Path, sql: str, timeout: float, *args) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if db.exists() and query(db, sql, *args)[0][0]:
                return
        except Exception:  # noqa: BLE001 - a database mid-write: look again
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {sql!r}")


async def drain_a_bulk_batch(tmp_path: Path, companies: int, limit: int, timeout: float, at_least: int = 1) -> None:
    sim_config = config(companies, limit)
    path, of_interest = bulk_file(tmp_path / "files", sim_config)
    db = tmp_path / "import.db"
    imported = cli("bulk", path, "--db", db, env=worker_env("http://127.0.0.1:9", db))
    assert imported.returncode == 0, imported.stderr
    [(batch_id, total)] = query(db, "SELECT id, total_jobs FROM processing_batches")
    assert total == len(of_interest) >= at_least and f"batch {batch_id}" in imported.stdout
    started = time.monotonic()
    async with running_simulator(sim_config) as sim:
        log = tmp_path / "worker.log"
        proc = await start_worker(env_for(sim.base_url, db, limit), log)
        try:
            await wait_until(db, "SELECT status = 'completed' FROM processing_batches", timeout)
        finally:
            proc.send_signal(signal.SIGTERM)
            code, err = await finish(proc, log)
        times = sim.state.times("sim-key")
        statuses = sim.state.statuses()
    drained = time.monotonic() - started
    assert code == 0, err
    # the limit, judged by the simulator's record: never breached, no refusal
    assert 429 not in statuses and 403 not in statuses
    busiest = max_in_any_window(times, WINDOW)
    assert busiest <= limit
    # every job of the batch completed, each with one officers call and no status call (the
    # snapshot said its status)
    assert query(db, "SELECT completed_jobs, failed_jobs FROM processing_batches") == [(total, 0)]
    batch_sends = query(db, "SELECT json_extract(e.event_data, '$.kind'), count(*) FROM event_log e "
                            "JOIN batch_jobs j ON j.company_number = e.company_number "
                            "WHERE e.event_type = 'request.sent' GROUP BY 1")
    assert dict(batch_sends) == {"officers": total}
    # stream work overtook the batch: HIGH requests went while LOW ones waited, each behind at most
    # the LOW requests other lanes were granted in the same instant
    rows = query(db, "SELECT id, event_type, json_extract(event_data, '$.request_id'), "
                     "coalesce(json_extract(event_data, '$.priority'), 0) FROM event_log "
                     "WHERE event_type IN ('request.queued', 'request.sent') ORDER BY id")
    priority = {rid: p for _, t, rid, p in rows if t == "request.queued"}
    queued_at = {rid: pos for pos, t, rid, _ in rows if t == "request.queued"}
    sends = [(pos, rid) for pos, t, rid, _ in rows if t == "request.sent"]
    last_low = max(pos for pos, rid in sends if priority[rid] == 1)
    high = [(pos, rid) for pos, rid in sends if priority[rid] == 0 and pos < last_low]
    assert len(high) >= 5, f"only {len(high)} stream requests went while the batch was draining"
    for pos, rid in high:
        lows_between = sum(1 for p, r in sends if priority[r] == 1 and queued_at[rid] < p < pos)
        assert lows_between < SENDER_LANES, f"{lows_between} LOW sends overtook HIGH {rid}"
    # and the customer's verdict
    status = cli("status", "--db", db, "--target", total)
    assert status.returncode == 0, status.stderr
    assert "READY FOR STREAMING API" in status.stdout
    print(f"{total} companies drained in {drained:.1f} s ({len(times)} requests, busiest window {busiest}/{limit})")


async def test_a_bulk_batch_completes_under_the_limit_with_stream_work_first(tmp_path):
    # about 300 companies of interest at 50 calls per 0.7 s: the limiter, not the worker, sets the pace
    await drain_a_bulk_batch(tmp_path, 1_200, limit=50, timeout=60)


@pytest.mark.skipif(not os.environ.get("CHLEDGER_LONG_TESTS"), reason="a minute or two: CHLEDGER_LONG_TESTS=1")
async def test_the_10000_company_import_completes_under_the_limit(tmp_path):
    await drain_a_bulk_batch(tmp_path, 41_000, limit=100, timeout=900, at_least=10_000)


async def test_a_worker_killed_mid_batch_resumes_without_sending_anything_twice(tmp_path):
    """SIGKILL while the worker waits for the window (its last requests all answered): the next
    worker resumes the batch where the ledger says it stood, and the server sees every request once.
    A request caught in flight by a kill is the one exception the ledger allows (its answer was
    lost, so it is recorded as interrupted and asked again): none is here, and the test checks that."""
    limit, window, slack = 20, 1.0, 0.3
    sim_config = config(240, limit, rate_limit_window=window, ip_limit_window=window, events_per_second=2.0)
    path, of_interest = bulk_file(tmp_path / "files", sim_config)
    db = tmp_path / "kill.db"
    assert cli("bulk", path, "--db", db, env=worker_env("http://127.0.0.1:9", db)).returncode == 0
    env = worker_env("", db, RATE_LIMIT_REQUESTS=str(limit), RATE_LIMIT_WINDOW=str(window),
                     RATE_LIMIT_SLACK=str(slack))
    async with running_simulator(sim_config) as sim:
        env.update(STREAMING_API_URL=f"{sim.base_url}/companies", COMPANIES_HOUSE_API_URL=sim.base_url)
        log = tmp_path / "worker.log"
        proc = await start_worker(env, log)
        try:
            deadline = time.monotonic() + 30
            while True:  # a quiet moment: a full window sent, every answer in, the next send > 0.3 s away
                assert time.monotonic() < deadline, "never caught the worker waiting for the window"
                sends = [r[0] for r in query(db, "SELECT timestamp FROM api_rate_limit_log ORDER BY id DESC "
                                                 "LIMIT ?", limit)] if db.exists() else []
                unanswered = query(db, "SELECT count(*) FROM api_rate_limit_log WHERE response_status = 0 "
                                       "AND processing_time_ms IS NULL")[0][0] if sends else 1
                if len(sends) == limit and unanswered == 0:
                    from eventlog.clock import to_epoch
                    if to_epoch(sends[-1]) + window + slack - time.time() > 0.3:
                        break
                await asyncio.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        sent_before = len(sim.state.requests)
        [(done_before, total)] = query(db, "SELECT completed_jobs, total_jobs FROM processing_batches")
        assert 0 < done_before < total == len(of_interest), "the kill should land mid-batch"
        proc = await start_worker(env, log)
        try:
            await wait_until(db, "SELECT status = 'completed' FROM processing_batches", 60)
        finally:
            proc.send_signal(signal.SIGTERM)
            code, err = await finish(proc, log)
        records = list(sim.state.requests)
    assert code == 0, err
    assert len(records) > sent_before
    paths = [r.path for r in records]
    assert len(paths) == len(set(paths)), "a request reached the server twice"
    assert all(r.status == 200 for r in records)
    assert max_in_any_window([r.time for r in records], window) <= limit  # the kill kept the window too
    # the ledger agrees: every request it recorded as sent reached the server, none was interrupted
    assert query(db, "SELECT count(*) FROM event_log WHERE event_type = 'request.sent'")[0][0] == len(records)
    assert query(db, "SELECT count(*) FROM event_log WHERE event_type = 'request.transport_error'")[0][0] == 0
    assert query(db, "SELECT completed_jobs FROM processing_batches")[0][0] == total
    assert query(db, "SELECT count(*) FROM event_log WHERE event_type = 'worker.started'")[0][0] == 2
