"""Power loss: the real worker under a VFS that cuts the power at a chosen sync (tests/support/powercut.py).

A first run counts the syncs of a short `ingest` against the simulator. Then, for each cut point
(a spread of them in CI, every one with CHLEDGER_SOAK=1), a fresh worker runs until its N-th sync,
where everything not yet synced is discarded and the process dies. After each cut:
- every request the simulator received is in the ledger as `request.sent` (the write-ahead promise:
  an entry is synced before its request leaves), so none goes uncounted against the limit;
- the file opens, the hash chain verifies from genesis, the projections catch up and equal a rebuild;
- a restarted worker runs on the same file and exits 0.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from pathlib import Path

import projections
from eventlog.clock import FixedClock
from eventlog.ledger.chain import walk
from eventlog.ledger.db import connect
from eventlog.ledger.migrate import migrate
from eventlog.simulator import SimulatorConfig, running_simulator
from projections.replay import verify
from support import REPO
from support.powercut import CUT_EXIT

SOAK = os.environ.get("CHLEDGER_SOAK") == "1"
SHIM = REPO / "tests" / "support" / "powercut.py"
DURATION = "1.5"
CI_CUTS = 4


def env_for(base_url: str, db: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPANIES_HOUSE", "RATE_LIMIT", "CHLEDGER_"))}
    env.update({"COMPANIES_HOUSE_API_KEY": "sim-key", "COMPANIES_HOUSE_STREAM_KEY": "sim-stream-key",
                "STREAMING_API_URL": f"{base_url}/companies", "COMPANIES_HOUSE_API_URL": base_url,
                "DATABASE_PATH": str(db), "RATE_LIMIT_REQUESTS": "40", "RATE_LIMIT_WINDOW": "2",
                "RATE_LIMIT_SLACK": "0.5", "INITIAL_RETRY_DELAY": "0.1", "MAX_RETRY_DELAY": "0.5",
                "DISK_RESERVE_MB": "0", "LOG_LEVEL": "WARNING"})
    env.update(extra)
    return env


async def run_shim(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, str(SHIM), "ingest", *args, env=env,
                                                cwd=str(REPO), stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, err.decode()


def sent_paths(db: Path) -> Counter:
    conn = connect(db)
    try:
        return Counter(r[0] for r in conn.execute(
            "SELECT json_extract(event_data, '$.path') FROM event_log WHERE event_type = 'request.sent'"))
    except Exception:  # a cut before the first migration: no ledger yet, nothing sent either
        return Counter()
    finally:
        conn.close()


def cut_points(total: int, ci: int) -> list[int]:
    """Every point with CHLEDGER_SOAK=1 (writes: 25 spread out); `ci` spread evenly otherwise."""
    wanted = total if SOAK and ci == CI_CUTS else (25 if SOAK else ci)
    if total <= wanted:
        return list(range(1, total + 1))
    step = (total - 1) / (wanted - 1)
    return sorted({1 + round(i * step) for i in range(wanted)})


async def test_a_power_cut_at_any_sync_loses_no_sent_request_and_the_ledger_recovers(tmp_path, faults):
    config = SimulatorConfig(seed=5, rate_limit_requests=40, rate_limit_window=2.0, backlog_events=60,
                             strike_off_share=0.5, events_per_second=20.0, company_count=500)
    async with running_simulator(config) as sim:
        counted = tmp_path / "syncs"
        code, err = await run_shim(env_for(sim.base_url, tmp_path / "count.db",
                                           CHLEDGER_POWERCUT_SYNCS=str(counted)), "--duration", DURATION)
        assert code == 0, err
        syncs, writes = map(int, counted.read_text().split())
        assert syncs > 20, f"too short a run to sweep: {syncs} syncs"
        cuts, reached, requests_at_cut = 0, 0, 0
        plan = [("AT", n) for n in cut_points(syncs, CI_CUTS)] + [("AT_WRITE", n) for n in cut_points(writes, 2)]
        for kind, n in plan:
            what = f"cut at {'sync' if kind == 'AT' else 'write'} {n}"
            db = tmp_path / f"cut-{kind}-{n}.db"
            before = len(sim.state.requests)
            code, err = await run_shim(env_for(sim.base_url, db, **{f"CHLEDGER_POWERCUT_{kind}": str(n)}),
                                       "--duration", DURATION)
            assert code in (CUT_EXIT, 0), f"{what}: exit {code}\n{err}"
            cuts += 1
            reached += code == CUT_EXIT
            received = Counter(r.path for r in sim.state.requests[before:] if r.key == "sim-key" and r.status != 401)
            requests_at_cut += sum(received.values())
            recorded = sent_paths(db)
            assert not received - recorded, f"{what}: sent but not in the ledger: {received - recorded}"
            conn = connect(db)
            try:
                migrate(conn, FixedClock(1_700_000_000.0))
                chain = walk(conn)
                assert chain.ok, f"{what}: {chain}"
                projections.catch_up(conn)
                assert verify(conn) == [], f"{what}: the projections differ from a rebuild"
            finally:
                conn.close()
        # the worker starts again on the last cut's file (each file has been reopened above)
        code, err = await run_shim(env_for(sim.base_url, db), "--duration", "0.5")
        assert code == 0, f"restart after the {what}: exit {code}\n{err}"
    assert requests_at_cut > 0, "no request reached the simulator before any cut: nothing was judged"
    assert reached >= cuts - 2, f"only {reached} of {cuts} cut points were reached: the run got shorter"
    faults.record("power cut at a sync or a write (unsynced writes discarded)", injected=reached,
                  syncs_in_run=syncs, writes_in_run=writes, cut_points=f"{cuts} ({cuts - reached} not reached)",
                  requests_before_cuts=requests_at_cut)

SHIM_ONLY = """
import sys, apsw
sys.path.insert(0, sys.argv[1])
from support.powercut import PowerCutVFS
vfs = PowerCutVFS(cut_at=int(sys.argv[3]), report=None)
conn = apsw.Connection(sys.argv[2])
conn.execute("PRAGMA journal_mode=WAL").fetchall()
conn.execute("PRAGMA synchronous=NORMAL")
conn.execute("CREATE TABLE t(x)")
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # the table itself reaches the file, synced
print(vfs.syncs, flush=True)
for i in range(3):
    conn.execute("INSERT INTO t VALUES (?)", (i,))  # NORMAL: a WAL commit is written, not synced
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # its first sync is the cut
print("not cut")
"""


def _shim_run(db: Path, cut_at: int):
    import subprocess

    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return subprocess.run([sys.executable, "-c", SHIM_ONLY, str(REPO / "tests"), str(db), str(cut_at)],
                          capture_output=True, text=True, timeout=30)


def test_the_shim_discards_exactly_what_was_not_synced(tmp_path):
    """The shim itself: commits written but never synced are gone after the cut; synced ones stay."""
    import apsw

    db = tmp_path / "shim.db"
    whole = _shim_run(db, 1000)
    first_syncs, tail = whole.stdout.split("\n", 1)
    assert tail.strip() == "not cut", whole.stderr
    assert apsw.Connection(str(db)).execute("SELECT count(*) FROM t").fetchone()[0] == 3
    cut = _shim_run(db, int(first_syncs) + 1)
    assert cut.returncode == CUT_EXIT, cut.stdout + cut.stderr
    assert not Path(f"{db}-shm").exists()
    conn = apsw.Connection(str(db))
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0  # the unsynced commits are lost
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
