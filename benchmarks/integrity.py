"""What SQLite's integrity checks cost on a large ledger, next to reading the file once.

`ingest` and `replay` run `PRAGMA quick_check` at start-up and `audit` the full
`PRAGMA integrity_check` (eventlog/ledger/integrity.py says why). Both read the whole file, so
their cost grows with the ledger; the baseline in the same run is the cheapest full read there
is, `SELECT sum(length(event_data)) FROM event_log` (every ledger page once, no index).

Two more rows put those figures in context: the whole `audit` of the same file (its
`integrity_check` included), so the check's share of an audit is read in one run; and the worker's
`-wal` check (eventlog/ledger/wal.py), which runs with the disk check every HEALTH_CHECK_INTERVAL.

    python benchmarks/integrity.py --ledger PATH      # an existing ledger (e.g. replay.py --keep)
    python benchmarks/integrity.py --entries 450000   # builds one of about 1 GB first (replay.py's)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import apsw  # noqa: E402

from benchmarks.common import load_average  # noqa: E402


def timed(conn: apsw.Connection, sql: str) -> tuple[float, object]:
    started = time.perf_counter()
    rows = conn.execute(sql).fetchall()
    return time.perf_counter() - started, rows[0][0] if rows else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ledger", help="an existing chledger database")
    ap.add_argument("--entries", type=int, default=450_000, help="build a ledger of this many entries")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    path = args.ledger or f"/tmp/chledger-integrity-{args.entries}.db"
    if not os.path.exists(path):
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "replay.py"), "--entries", str(args.entries),
                        "--keep", path], check=True, stdout=subprocess.DEVNULL)
    size = os.path.getsize(path) / 1e9
    conn = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
    head = conn.execute("SELECT max(id) FROM event_log").fetchone()[0]
    print(f"{path}: {size:.2f} GB, {head:,} entries; load {load_average()}")
    results: dict[str, list[float]] = {"read every ledger page (baseline)": [], "quick_check": [],
                                       "integrity_check": []}
    sql = {"read every ledger page (baseline)": "SELECT sum(length(event_data)) FROM event_log",
           "quick_check": "PRAGMA quick_check(1)", "integrity_check": "PRAGMA integrity_check(1)"}
    for _ in range(args.rounds):
        for name in results:
            seconds, value = timed(conn, sql[name])
            if name != "read every ledger page (baseline)":
                assert value == "ok", value
            results[name].append(seconds)
    from eventlog.audit import audit as audit_ledger
    from eventlog.ledger.wal import wal_deleted

    results["audit, whole (integrity_check included)"] = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        report = audit_ledger(path)
        results["audit, whole (integrity_check included)"].append(time.perf_counter() - started)
    print(f"  (audit verdict: exit {report.exit_code})")
    writer = apsw.Connection(path)  # the -wal check needs a connection in WAL mode, as the worker's is
    writer.execute("SELECT count(*) FROM sqlite_master").fetchall()
    calls = 1000
    started = time.perf_counter()
    for _ in range(calls):
        assert not wal_deleted(writer)
    per_call = (time.perf_counter() - started) / calls
    writer.close()
    base = sorted(results["read every ledger page (baseline)"])[args.rounds // 2]
    for name, times in results.items():
        med = sorted(times)[args.rounds // 2]
        print(f"  {name:40s} {med:6.2f} s (median of {args.rounds})  {size / med:5.2f} GB/s  "
              f"{med / base:4.1f}x the baseline")
    check = sorted(results["integrity_check"])[args.rounds // 2]
    whole = sorted(results["audit, whole (integrity_check included)"])[args.rounds // 2]
    print(f"  integrity_check is {check / whole:.0%} of the whole audit")
    print(f"  -wal check (wal_deleted)                 {per_call * 1e6:6.1f} µs per call, once per HEALTH_CHECK_INTERVAL")


if __name__ == "__main__":
    main()
