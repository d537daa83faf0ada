"""SIGKILL at seeded moments: the real `ingest` killed and restarted again and again, then judged.

Both simulators run in the test's event loop, so their record outlives every worker; the worker
follows the stream, fetches officers, works through a backfill batch and enriches through Snov.io,
all at once, with both windows shrunk so they fill. Each kill lands when the ledger has grown by a
seeded number of entries since the restart (0 = during start-up), so the moments are reproducible
without sleeping. After the last restart has run to its end:
- every stream event up to the newest recorded is in the ledger exactly once (no gap, no repeat);
- the backfill batch moved and Snov.io lookups ran (else the run did not test what it says);
- no completed request was repeated: no `request.sent` for a path after a 200 for it was recorded;
- no Snov.io lookup was started twice, and neither simulator saw its limit breached;
- the tables equal a fresh rebuild, and `audit` says compliant.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from eventlog.audit import audit, summary
from eventlog.ledger.chain import walk
from eventlog.ledger.db import connect
from eventlog.simulator import SimulatorConfig, running_simulator
from eventlog.simulator.snov import SnovSimulatorConfig, running_snov_simulator
from projections.replay import verify
from support import REPO

SOAK = os.environ.get("CHLEDGER_SOAK") == "1"
KILLS = 40 if SOAK else 20
LIMIT, WINDOW = 10, 2.0
SNOV_LIMIT, SNOV_WINDOW = 8, 2.0


def env_for(ch: str, snov: str, db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COMPANIES_HOUSE", "RATE_LIMIT", "SNOV_", "CHLEDGER_"))}
    env.update({"COMPANIES_HOUSE_API_KEY": "sim-key", "COMPANIES_HOUSE_STREAM_KEY": "sim-stream-key",
                "STREAMING_API_URL": f"{ch}/companies", "COMPANIES_HOUSE_API_URL": ch, "DATABASE_PATH": str(db),
                "RATE_LIMIT_REQUESTS": str(LIMIT), "RATE_LIMIT_WINDOW": str(WINDOW), "RATE_LIMIT_SLACK": "0.5",
                "SNOV_CLIENT_ID": "sim-client", "SNOV_CLIENT_SECRET": "sim-secret", "SNOV_API_URL": snov,
                "SNOV_RATE_LIMIT": str(SNOV_LIMIT), "SNOV_RATE_WINDOW": str(SNOV_WINDOW),
                "INITIAL_RETRY_DELAY": "0.1", "MAX_RETRY_DELAY": "0.5", "DISK_RESERVE_MB": "0",
                "LOG_LEVEL": "WARNING"})
    return env


def head(db: Path) -> int:
    try:
        conn = connect(db, readonly=True)
    except Exception:
        return 0
    try:
        return conn.execute("SELECT coalesce(max(id), 0) FROM event_log").fetchone()[0]
    except Exception:
        return 0
    finally:
        conn.close()


async def kill_when(proc: asyncio.subprocess.Process, db: Path, grown: int) -> bool:
    """SIGKILL once the ledger has `grown` entries more than now (at once for 0); False if it ended."""
    target = head(db) + grown
    while grown and head(db) < target:
        if proc.returncode is not None:
            return False
        try:
            await asyncio.wait_for(proc.wait(), 0.02)
            return False
        except TimeoutError:
            pass
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    return True


async def test_twenty_seeded_sigkills_lose_nothing_repeat_nothing_and_breach_nothing(tmp_path, faults):
    db = tmp_path / "kill.db"
    # the stream asks for fewer officer calls than the window allows, so the LOW batch gets its turn
    config = SimulatorConfig(seed=23, rate_limit_requests=LIMIT, rate_limit_window=WINDOW, backlog_events=200,
                             strike_off_share=0.15, events_per_second=10.0, company_count=1500)
    snov = SnovSimulatorConfig(seed=23, client_id="sim-client", client_secret="sim-secret",
                               rate_limit_requests=SNOV_LIMIT, rate_limit_window=SNOV_WINDOW,
                               polls_before_completion=0)
    rng = random.Random(20261206)
    async with running_simulator(config) as sim, running_snov_simulator(snov) as snov_sim:
        env = env_for(sim.base_url, snov_sim.base_url, db)
        numbers = tmp_path / "backfill.txt"
        numbers.write_text("\n".join(sim.simulator.universe.strike_off_numbers[:40]) + "\n")
        made = subprocess.run([sys.executable, str(REPO / "cli.py"), "backfill", str(numbers)], env=env,
                              capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        kills = 0
        for _ in range(KILLS):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(REPO / "cli.py"), "ingest", env=env, cwd=str(REPO),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            grown = 0 if rng.random() < 0.15 else rng.randint(1, 30)
            kills += await kill_when(proc, db, grown)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(REPO / "cli.py"), "ingest", "--duration", "1.5", env=env, cwd=str(REPO),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()[-2000:]
        timeline = sim.simulator.timeline
        ch_max = sim.state.max_in_window(WINDOW, "sim-key")
        ch_429 = sim.state.served(429)
        snov_max = snov_sim.state.max_in_any_window(SNOV_WINDOW)
        repeated_lookups = snov_sim.state.repeated_lookups()
        snov_lookups = sum(snov_sim.state.starts_per_lookup.values())
    assert kills == KILLS
    conn = connect(db)
    try:
        tps = [r[0] for r in conn.execute("SELECT json_extract(event_data, '$.timepoint') FROM event_log "
                                          "WHERE event_type = 'stream.event' AND json_extract(event_data, "
                                          "'$.stream') IS NOT 'filings' ORDER BY 1")]
        duplicates = len(tps) - len(set(tps))
        first, last = timeline.index_at_or_after(tps[0]), timeline.index_at_or_after(tps[-1])
        expected = [timeline.timepoint_of(i) for i in range(first, last + 1)]
        lost = len(set(expected) - set(tps))
        # a request for a path whose 200 the ledger already holds is work done twice, including a
        # kill between an officers page's answer and the next page's request: the retry resumes at
        # the first page not yet recorded, so a page fetched again is a failure too (counted apart)
        done: dict[str, str] = {}  # path -> the request id whose 200 for it is recorded
        cut_mid_pages: set[str] = set()  # request ids answered 200 and then ended by a restart
        answered: set[str] = set()
        repeats: list[tuple[str, str]] = []
        paths: dict[str, str] = {}
        for kind, data in conn.execute("SELECT event_type, event_data FROM event_log WHERE event_type IN "
                                       "('request.sent', 'response.received', 'request.transport_error') "
                                       "ORDER BY id"):
            entry = json.loads(data)
            rid = entry["request_id"]
            if kind == "request.sent":
                paths[rid] = entry["path"]
                if entry["path"] in done:
                    repeats.append((entry["path"], done[entry["path"]]))
            elif kind == "response.received" and entry.get("status") == 200 and rid in paths:
                done[paths[rid]] = rid
                answered.add(rid)
            elif kind == "request.transport_error" and rid in answered:
                cut_mid_pages.add(rid)
        repeated = [path for path, rid in repeats if rid not in cut_mid_pages]
        page_refetches = len(repeats) - len(repeated)
        assert walk(conn).ok
        assert verify(conn) == []
        batch = dict(conn.execute("SELECT coalesce(stage, status), count(*) FROM batch_jobs GROUP BY 1").fetchall())
    finally:
        conn.close()
    assert duplicates == 0 and lost == 0, f"{duplicates} duplicated, {lost} lost stream events"
    assert not repeated, f"completed requests sent again: {Counter(repeated).most_common(5)}"
    assert page_refetches == 0, f"{page_refetches} officers page(s) fetched again after a kill mid-pagination"
    assert not repeated_lookups, f"Snov.io lookups started twice: {repeated_lookups}"
    assert ch_max <= LIMIT and ch_429 == 0, f"Companies House: {ch_max} in a window, {ch_429} 429s"
    assert batch.get("queued", 0) + batch.get("pending", 0) < 40, f"the backfill batch never moved: {batch}"
    assert snov_lookups > 0, "no Snov.io lookup: enrichment was not part of the run"
    assert snov_max <= SNOV_LIMIT, f"Snov.io: {snov_max} in a window of {SNOV_WINDOW} s"
    report = audit(str(db))
    assert report.exit_code == 0, summary(report)
    faults.record("SIGKILL of `ingest` at seeded moments, then restart", injected=kills,
                  stream_events=len(tps), snov_lookups=snov_lookups,
                  batch_jobs_by_stage=", ".join(f"{k} {v}" for k, v in sorted(batch.items())),
                  note=f"{page_refetches} officers pages fetched again after a kill mid-pagination "
                       "(a cut fetch resumes at the first page not yet recorded)")
