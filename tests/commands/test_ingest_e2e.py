"""The real worker process against the simulator, judged from the server's side.

The simulator runs in the test's event loop; `python cli.py ingest` runs as a
real subprocess pointed at it through the environment, with the window shrunk
(10 requests per 2 s) so several saturated windows pass in seconds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import apsw
import pytest

from eventlog.simulator import SimulatorConfig, max_in_any_window, running_simulator
from eventlog.worker.runtime import SENDER_LANES
from support import REPO

ROOT = REPO
# The slack covers event-loop and loopback delay between our timestamp and the server's;
# a loaded CI machine can delay a write by a few hundred ms.
LIMIT, WINDOW, SLACK = 10, 2.0, 0.5


def worker_env(base_url: str, db: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPANIES_HOUSE", "RATE_LIMIT"))}
    env.update({
        "COMPANIES_HOUSE_API_KEY": "sim-key",
        "COMPANIES_HOUSE_STREAM_KEY": "sim-stream-key",
        "STREAMING_API_URL": f"{base_url}/companies",
        "COMPANIES_HOUSE_API_URL": base_url,
        "DATABASE_PATH": str(db),
        "RATE_LIMIT_REQUESTS": str(LIMIT),
        "RATE_LIMIT_WINDOW": str(WINDOW),
        "RATE_LIMIT_SLACK": str(SLACK),
        "INITIAL_RETRY_DELAY": "0.1",
        "MAX_RETRY_DELAY": "0.5",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


async def start_worker(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "cli.py"), "ingest", "--progress-interval", "1", *args,
        cwd=str(ROOT), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def finish(proc: asyncio.subprocess.Process, timeout: float = 30) -> tuple[int, str]:
    _, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, err.decode()


def query(db: Path, sql: str, *args):
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


async def wait_for(db: Path, sql: str, at_least: int, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            if db.exists() and query(db, sql)[0][0] >= at_least:
                return
        except apsw.Error:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {sql!r} >= {at_least}")


def sim_config(**kw) -> SimulatorConfig:
    base = dict(seed=11, rate_limit_requests=LIMIT, rate_limit_window=WINDOW, backlog_events=300,
                strike_off_share=0.5, events_per_second=10.0, company_count=2000)
    base.update(kw)
    return SimulatorConfig(**base)


async def test_demand_above_the_allowance_never_breaches_the_limit(tmp_path):
    db = tmp_path / "w.db"
    async with running_simulator(sim_config()) as sim:
        proc = await start_worker(worker_env(sim.base_url, db), "--duration", "12")
        code, err = await finish(proc)
        times = sim.state.times("sim-key")
        statuses = sim.state.statuses()
    assert code == 0, err
    assert len(times) >= 3 * LIMIT, f"too little traffic to judge: {len(times)}\n{err}"
    assert 429 not in statuses
    assert max_in_any_window(times, WINDOW) <= LIMIT
    # the demand (officers of ~150 strike-off companies) exceeded the allowance: queue left
    left = query(db, "SELECT count(*) FROM request_queue")[0][0]
    assert left > 0
    sent = query(db, "SELECT count(*) FROM api_rate_limit_log")[0][0]
    assert sent == len(times)  # every request the server saw is in the ledger, and no more
    assert "window" in err and "events" in err  # the progress line
    # the audit proves it from the ledger alone, and counts what the server counted
    import json
    import subprocess
    audit = subprocess.run([sys.executable, str(ROOT / "cli.py"), "audit", "--db", str(db), "--json"],
                           capture_output=True, text=True, timeout=60)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    report = json.loads(audit.stdout)
    assert report["verdict"] == "compliant"
    assert report["requests"]["sent"] == len(times)
    assert report["limit"] == {"requests": LIMIT, "window_seconds": WINDOW, "source": "worker.started"}
    assert report["windows"]["max"]["count"] <= LIMIT


async def test_429_storm_stops_all_calls_until_reset_then_emergency_stop(tmp_path):
    db = tmp_path / "storm.db"
    config = sim_config(storm_after_requests=3, storm_requests=1000)
    async with running_simulator(config) as sim:
        env = worker_env(sim.base_url, db, EMERGENCY_429_THRESHOLD="3")
        proc = await start_worker(env, "--duration", "20")
        code, err = await finish(proc)
        records = list(sim.state.requests)
    assert code == 3, err
    assert "emergency stop" in err
    rejected = [r for r in records if r.status == 429]
    # 3 incidents reach the threshold. The first may bring the 429s of requests already in flight
    # on the other lanes (recorded, same incident); after each cooldown one request goes alone,
    # so each later incident is a single 429
    assert 3 <= len(rejected) <= SENDER_LANES + 3 - 1
    # after each 429, nothing was sent before the cooldown the ledger recorded ...
    cooldowns = query(db, "SELECT id, received_at, json_extract(event_data, '$.cooldown_until') "
                          "FROM event_log WHERE event_type = 'request.rate_limited' ORDER BY id")
    assert len(cooldowns) == len(rejected)
    sends = query(db, "SELECT id, received_at, json_extract(event_data, '$.path') FROM event_log "
                      "WHERE event_type = 'request.sent' ORDER BY id")
    from eventlog.clock import to_epoch
    for pos, got_at, until in cooldowns:
        assert [s for s in sends if s[0] > pos and s[1] < until] == []
        # ... and from the server's side: what reached it inside a cooldown was already on the
        # wire (its request.sent precedes the 429 entry), never a new send
        for r in records:
            if to_epoch(got_at) < r.time < to_epoch(until):
                before = [s for s in sends if s[2] == r.path and to_epoch(s[1]) <= r.time]
                assert before and before[-1][0] < pos, f"{r} was sent during the cooldown"
    stops = query(db, "SELECT count(*) FROM event_log WHERE event_type = 'worker.emergency_stop'")
    assert stops[0][0] == 1


async def test_a_restart_after_an_emergency_stop_sends_nothing_while_the_stop_holds(tmp_path):
    """Render restarts an exited worker; each restart must not spend one more refusal of the key."""
    db = tmp_path / "storm.db"
    config = sim_config(storm_after_requests=3, storm_requests=1000)
    async with running_simulator(config) as sim:
        env = worker_env(sim.base_url, db, EMERGENCY_429_THRESHOLD="3")
        code, err = await finish(await start_worker(env, "--duration", "20"))
        assert code == 3, err
        seen = len(sim.state.requests)
        # the stop holds 12 windows (24 s here) from the stop, in whatever process starts next
        code, err = await finish(await start_worker(env, "--duration", "4"))
        assert code == 0, err
        assert len(sim.state.requests) == seen, "a restarted worker called the API during the stop"
    events = query(db, "SELECT count(*) FROM event_log WHERE event_type = 'stream.event' "
                       "AND id > (SELECT max(id) FROM event_log WHERE event_type = 'worker.emergency_stop')")
    assert events[0][0] > 0  # the stream was still followed


async def test_high_priority_work_overtakes_a_long_low_backlog(tmp_path):
    db = tmp_path / "prio.db"
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("\n".join(f"{n:08d}" for n in range(1, 301)))
    from click.testing import CliRunner

    import cli

    result = CliRunner().invoke(cli.cli, ["backfill", str(numbers), "--db", str(db)])
    assert result.exit_code == 0, result.output
    config = sim_config(backlog_events=0, events_per_second=3.0, strike_off_share=0.9)
    async with running_simulator(config) as sim:
        proc = await start_worker(worker_env(sim.base_url, db), "--duration", "8")
        code, err = await finish(proc)
    assert code == 0, err
    rows = query(db, "SELECT id, event_type, json_extract(event_data, '$.request_id'), "
                     "coalesce(json_extract(event_data, '$.priority'), 0) FROM event_log "
                     "WHERE event_type IN ('request.queued', 'request.sent') ORDER BY id")
    priority = {rid: p for _, t, rid, p in rows if t == "request.queued"}
    queued_at = {rid: pos for pos, t, rid, _ in rows if t == "request.queued"}
    sent_at: dict[str, int] = {}
    for pos, t, rid, _ in rows:
        if t == "request.sent":
            sent_at.setdefault(rid, pos)
    high_sent = [rid for rid, p in priority.items() if p == 0 and rid in sent_at]
    low_left = query(db, "SELECT count(*) FROM request_queue WHERE priority = 1")[0][0]
    assert len(high_sent) >= 3, "the stream produced too little HIGH work to judge"
    assert low_left > 0, "the LOW backlog should still be waiting at the end"
    for rid in high_sent:
        # a HIGH request waits only for the window, never behind the LOW backlog: at most the
        # LOW requests granted to other lanes in the same instant go before it
        lows_between = sum(1 for pos, t, r, _ in rows if t == "request.sent" and priority.get(r) == 1
                           and queued_at[rid] < pos < sent_at[rid])
        assert lows_between < SENDER_LANES, f"{lows_between} LOW sends overtook HIGH {rid}"


async def test_sigkill_and_restart_lose_nothing_and_keep_the_window(tmp_path):
    db = tmp_path / "kill.db"
    async with running_simulator(sim_config(events_per_second=20.0)) as sim:
        env = worker_env(sim.base_url, db)
        proc = await start_worker(env)
        await wait_for(db, "SELECT count(*) FROM api_rate_limit_log", LIMIT + 3)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        completed_before = {r[0] for r in query(
            db, "SELECT company_number FROM company_processing_state WHERE processing_state = 'completed' "
                "AND officers_fetched_at IS NOT NULL")}
        head_before = query(db, "SELECT max(id) FROM event_log")[0][0]
        proc = await start_worker(env, "--duration", "5")
        code, err = await finish(proc)
        times = sim.state.times("sim-key")
        timeline = sim.simulator.timeline
    assert code == 0, err
    assert 429 not in [r.status for r in sim.state.requests]
    assert max_in_any_window(times, WINDOW) <= LIMIT  # the killed worker's sends still counted
    # no stream event lost: every timepoint the simulator published up to our newest one is recorded
    tps = [r[0] for r in query(db, "SELECT json_extract(event_data, '$.timepoint') FROM event_log "
                                   "WHERE event_type = 'stream.event' ORDER BY 1")]
    assert len(tps) == len(set(tps))
    first, last = timeline.index_at_or_after(tps[0]), timeline.index_at_or_after(tps[-1])
    expected = [timeline.timepoint_of(i) for i in range(first, last + 1)]
    assert tps == expected
    # no officers request after the restart for a company completed before the kill
    again = query(db, "SELECT DISTINCT company_number FROM event_log WHERE id > ? AND "
                      "event_type = 'request.sent' AND json_extract(event_data, '$.kind') = 'officers'",
                  head_before)
    assert not ({r[0] for r in again} & completed_before)
    assert query(db, "SELECT count(*) FROM event_log WHERE event_type = 'worker.started'")[0][0] == 2
    # the live tables, built across a SIGKILL, are exactly what a replay of the ledger builds
    import subprocess
    verify = subprocess.run([sys.executable, str(ROOT / "cli.py"), "replay", "--verify", "--db", str(db)],
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr


async def test_export_during_a_running_ingest_opens_cleanly_and_matches_a_replay(tmp_path):
    import json
    import subprocess

    db = tmp_path / "live.db"
    copy = tmp_path / "copy.db"  # the operator's backup, keys and all
    handed = tmp_path / "handed.db"  # the SQLite export, handed to someone else: no key vault
    lines = tmp_path / "companies.jsonl"
    async with running_simulator(sim_config(events_per_second=30.0)) as sim:
        proc = await start_worker(worker_env(sim.base_url, db), "--duration", "8")
        await wait_for(db, "SELECT count(*) FROM officers", 20)

        def cli_run(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True,
                                  text=True, timeout=120)

        loop = asyncio.get_running_loop()
        exported = await loop.run_in_executor(None, cli_run, "backup", str(copy), "--db", str(db))
        handed_out = await loop.run_in_executor(None, cli_run, "export", "--format", "sqlite", str(handed),
                                                "--db", str(db))
        jsonl = await loop.run_in_executor(None, cli_run, "export", "--format", "jsonl", str(lines),
                                           "--db", str(db))
        still_running = proc.returncode is None
        code, err = await finish(proc)
    assert code == 0, err
    assert still_running, "the exports should have been taken while the worker ran"
    assert exported.returncode == 0 and jsonl.returncode == 0, exported.stderr + jsonl.stderr
    assert handed_out.returncode == 0, handed_out.stderr
    assert query(copy, "PRAGMA integrity_check") == [("ok",)] == query(handed, "PRAGMA integrity_check")
    # the export holds its tables' plaintext but no key to the ledger's sealed entries; the backup keeps them
    assert query(handed, "SELECT count(*) FROM person_keys") == [(0,)]
    assert query(handed, "SELECT count(*) FROM officers")[0][0] > 0
    assert query(copy, "SELECT count(*) FROM person_keys")[0][0] > 0
    # the copy is a consistent snapshot: its tables are exactly what its own ledger replays to
    verify = subprocess.run([sys.executable, str(ROOT / "cli.py"), "replay", "--verify", "--db", str(copy)],
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    head = query(copy, "SELECT max(id) FROM event_log")[0][0]
    assert f"ledger position {head}" in exported.stdout
    # the JSON lines export: one company per line with its officers, all known to the live database
    companies = [json.loads(line) for line in lines.read_text().splitlines()]
    assert companies and all("officers" in c for c in companies)
    assert any(c["officers"] for c in companies)
    known = {r[0] for r in query(db, "SELECT company_number FROM companies")}
    assert {c["company_number"] for c in companies} <= known


async def test_sigterm_stops_cleanly_with_in_flight_work_recorded(tmp_path):
    db = tmp_path / "term.db"
    # slow responses, so requests are in flight when the signal lands
    async with running_simulator(sim_config(latency_ms=400)) as sim:
        proc = await start_worker(worker_env(sim.base_url, db))
        await wait_for(db, "SELECT count(*) FROM api_rate_limit_log", 3)
        proc.send_signal(signal.SIGTERM)
        code, err = await finish(proc)
    assert code == 0, err
    last = query(db, "SELECT event_type, json_extract(event_data, '$.reason') FROM event_log "
                     "ORDER BY id DESC LIMIT 1")[0]
    assert last == ("worker.stopped", "signal SIGTERM")
    # nothing is left in flight: every send has its answer, or is recorded as interrupted and queued again
    assert query(db, "SELECT count(*) FROM request_queue WHERE status = 'in_flight'") == [(0,)]
    unanswered = query(db, "SELECT count(*) FROM api_rate_limit_log WHERE response_status = 0 "
                           "AND processing_time_ms IS NULL")
    assert unanswered == [(0,)]


def test_the_readme_command_runs_on_embedded_defaults(tmp_path, run_cli):
    """`ingest --simulate` needs no key and no network: stream in, officers fetched, compliant."""
    db = tmp_path / "companies.db"
    ran = run_cli("ingest", "--simulate", "--duration", "4", "--progress-interval", "1", "--db", db)
    assert ran.returncode == 0, ran.stderr
    assert "window" in ran.stderr and "python cli.py audit" in ran.stderr
    assert query(db, "SELECT count(*) FROM event_log WHERE event_type = 'stream.event'")[0][0] > 50
    assert query(db, "SELECT count(DISTINCT company_number) FROM officers")[0][0] > 0
    audited = run_cli("audit", "--db", db)
    assert audited.returncode == 0 and "COMPLIANT" in audited.stdout


def test_the_readme_command_run_again_on_the_same_database_still_shows_events(tmp_path, run_cli):
    """A fresh simulator's stream starts behind the ledger's last timepoint; it must start after it."""
    db = tmp_path / "companies.db"
    counted = "SELECT count(*), max(CAST(substr(event_id, 11) AS INTEGER)) FROM event_log WHERE event_type = 'stream.event'"
    for run in (1, 2):
        before, last = query(db, counted)[0] if db.exists() else (0, None)
        ran = run_cli("ingest", "--simulate", "--duration", "3", "--progress-interval", "1", "--db", db)
        assert ran.returncode == 0, ran.stderr
        after, newest = query(db, counted)[0]
        assert after - before > 50, f"run {run}: only {after - before} stream events"
        assert last is None or newest > last
    assert run_cli("audit", "--db", db).returncode == 0
