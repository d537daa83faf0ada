"""Secrets stay secret, the HTTP server stays on loopback, and the chain catches tampering.

A full run with distinctive keys (the REST key, the stream key and the Snov.io client secret):
the worker follows the stream, fetches officers and enriches, with its HTTP server on; then
`status`, `audit`, `config`, three exports and a backup. Every output is scanned for the three
secrets: stdout, stderr (the logs), the database file and its -wal, every table's rows, /health,
/metrics, the status page, the SSE feed, the exports and the backup.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import apsw
import psutil

from eventlog.ledger.chain import walk
from eventlog.ledger.db import connect
from eventlog.simulator import SimulatorConfig, running_simulator
from eventlog.simulator.snov import SnovSimulatorConfig, running_snov_simulator
from support import REPO

REST_KEY = "rk-7Q2v9XmZpL4sW8bN3cT6"
STREAM_KEY = "sk-J5hD1fR8yK0uE6aG9oV2"
SNOV_SECRET = "ss-M3nB7vC1xZ9qW5eR2tY8"
SECRETS = (REST_KEY, STREAM_KEY, SNOV_SECRET)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def found_in(blob: bytes) -> list[str]:
    return [s for s in SECRETS if s.encode() in blob]


async def test_no_secret_in_any_output_of_a_full_run_and_the_server_binds_loopback(tmp_path, faults):
    db = tmp_path / "sec.db"
    port = free_port()
    config = SimulatorConfig(seed=3, api_key=REST_KEY, stream_key=STREAM_KEY, rate_limit_requests=20,
                             rate_limit_window=2.0, backlog_events=150, strike_off_share=0.5,
                             events_per_second=20.0, company_count=800)
    snov = SnovSimulatorConfig(seed=3, client_id="sec-client", client_secret=SNOV_SECRET, rate_limit_requests=20,
                               rate_limit_window=2.0, polls_before_completion=0)
    outputs: dict[str, bytes] = {}
    async with running_simulator(config) as sim, running_snov_simulator(snov) as snov_sim:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("COMPANIES_HOUSE", "RATE_LIMIT", "SNOV_", "CHLEDGER_", "HEALTH_"))}
        env.update({"COMPANIES_HOUSE_API_KEY": REST_KEY, "COMPANIES_HOUSE_STREAM_KEY": STREAM_KEY,
                    "STREAMING_API_URL": f"{sim.base_url}/companies", "COMPANIES_HOUSE_API_URL": sim.base_url,
                    "DATABASE_PATH": str(db), "RATE_LIMIT_REQUESTS": "20", "RATE_LIMIT_WINDOW": "2",
                    "SNOV_CLIENT_ID": "sec-client", "SNOV_CLIENT_SECRET": SNOV_SECRET,
                    "SNOV_API_URL": snov_sim.base_url, "SNOV_RATE_LIMIT": "20", "SNOV_RATE_WINDOW": "2",
                    "DISK_RESERVE_MB": "0", "LOG_LEVEL": "DEBUG", "LOG_SAMPLE_RATE": "1"})
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(REPO / "cli.py"), "ingest", "--duration", "4", "--health-port", str(port),
            "--progress-interval", "1", env=env, cwd=str(tmp_path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/health") as r:
                        outputs["/health"] = await r.read()
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            for _ in range(200):  # some work done, so the pages have something to show
                if len(sim.state.requests) >= 5:
                    break
                await asyncio.sleep(0.05)
            bound = {c.laddr.ip for c in psutil.Process(proc.pid).net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
            for path in ("/health", "/metrics", "/"):
                async with http.get(f"http://127.0.0.1:{port}{path}") as r:
                    outputs[f"GET {path}"] = await r.read()
            async with http.get(f"http://127.0.0.1:{port}/events") as r:
                chunks = b""
                try:
                    async with asyncio.timeout(1.5):
                        async for chunk in r.content.iter_any():
                            chunks += chunk
                except TimeoutError:
                    pass
                outputs["SSE /events"] = chunks
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()[-2000:]
        outputs["ingest stdout"], outputs["ingest stderr"] = out, err
        assert snov_sim.state.tokens and len(sim.state.requests) > 10  # the secrets were used
    assert bound == {"127.0.0.1"}, f"the HTTP server listens on {bound}"
    assert outputs["SSE /events"], "the SSE feed said nothing"
    run_env = {**env, "HEALTH_PORT": "0"}
    for args in (["status"], ["status", "--json"], ["audit"], ["audit", "--json"], ["config"],
                 ["export", str(tmp_path / "out.csv")], ["export", str(tmp_path / "out.jsonl"), "--format", "jsonl"],
                 ["export", str(tmp_path / "out.sqlite"), "--format", "sqlite"], ["backup", str(tmp_path / "bk.db")]):
        ran = subprocess.run([sys.executable, str(REPO / "cli.py"), *args], env=run_env, capture_output=True,
                             timeout=120, cwd=str(tmp_path))
        assert ran.returncode == 0, ran.stderr[-2000:]
        outputs[" ".join(args[:2]) + " stdout"] = ran.stdout
        outputs[" ".join(args[:2]) + " stderr"] = ran.stderr
    for f in sorted(tmp_path.iterdir()):
        if f.is_file():
            outputs[f"file {f.name}"] = f.read_bytes()
    conn = connect(db, readonly=True)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        outputs[f"table {table}"] = repr(conn.execute(f"SELECT * FROM \"{table}\"").fetchall()).encode()
    conn.close()
    leaks = {where: found_in(blob) for where, blob in outputs.items() if found_in(blob)}
    assert not leaks, f"secrets found in: {sorted(leaks)}"
    assert len(tables) > 10 and any(k.startswith("file bk") for k in outputs)
    faults.record("secrets scanned for in every output of a full run", injected=len(SECRETS) * len(outputs),
                  outputs_scanned=len(outputs))


def _tamper(src: Path, dst: Path, how: str) -> int:
    """A copy of the ledger with one row edited, deleted, or two rows swapped; the position hit."""
    shutil.copy(src, dst)
    conn = apsw.Connection(str(dst))
    triggers = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'event_log'")
    for (name,) in triggers.fetchall():
        conn.execute(f"DROP TRIGGER \"{name}\"")  # what an attacker with the file can do
    head = conn.execute("SELECT max(id) FROM event_log").fetchone()[0]
    k = head // 2
    if how == "edited":
        conn.execute("UPDATE event_log SET event_data = replace(event_data, '\"', '\"') || ' ' WHERE id = ?", (k,))
    elif how == "deleted":
        conn.execute("DELETE FROM event_log WHERE id = ?", (k,))
    else:  # reordered: rows k and k + 1 trade places, each keeping its own hash
        conn.execute("UPDATE event_log SET id = -1 WHERE id = ?", (k,))
        conn.execute("UPDATE event_log SET id = ? WHERE id = ?", (k, k + 1))
        conn.execute("UPDATE event_log SET id = ? WHERE id = -1", (k + 1,))
    conn.close()
    return k


def test_the_chain_catches_an_edited_a_deleted_and_a_reordered_row(tmp_path, faults):
    src = tmp_path / "src.db"
    ran = subprocess.run([sys.executable, str(REPO / "cli.py"), "ingest", "--simulate", "--duration", "1",
                          "--db", str(src)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "DISK_RESERVE_MB": "0"}, cwd=str(tmp_path))
    assert ran.returncode == 0, ran.stderr[-2000:]
    conn = connect(src, readonly=True)
    assert walk(conn).ok
    conn.close()
    caught = 0
    for how in ("edited", "deleted", "reordered"):
        dst = tmp_path / f"{how}.db"
        k = _tamper(src, dst, how)
        conn = apsw.Connection(str(dst), flags=apsw.SQLITE_OPEN_READONLY)
        report = walk(conn)
        conn.close()
        assert not report.ok and report.bad_position == k, (how, report)
        audited = subprocess.run([sys.executable, str(REPO / "cli.py"), "audit", "--db", str(dst)],
                                 capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
        assert audited.returncode in (1, 2) and "Traceback" not in audited.stderr, audited.stderr[-2000:]
        assert audited.returncode != 0
        caught += 1
    faults.record("ledger tampering: a row edited, deleted, reordered", injected=3, breaches=3 - caught)
