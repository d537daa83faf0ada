"""Where a whole replay's CPU goes: per projection, and per step of the `companies` range fold.

Works on a ledger `replay.py --keep PATH` built (a copy in a temp dir; the file is not changed).
One process, the serial replay's order of work: every batch projector batch by batch (the ledger
read and decoded once for all), then each range fold once over the whole ledger, then the index
builds and the foreign-key check (`finish`). Then, with `--steps`, the `companies` range fold
again from empty, step by step (CPU-s and wall-s per SQL statement or Python pass).

Usage:  python benchmarks/replay_profile.py --ledger PATH [--steps]
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import apsw  # noqa: E402

from eventlog.ledger.db import transaction  # noqa: E402
from projections.projectors import companies  # noqa: E402
from projections.records import Batch  # noqa: E402
from projections.registry import PROJECTORS  # noqa: E402
from projections.replay.rebuild import _finish  # noqa: E402
from projections.runner import read_batches  # noqa: E402
from projections.setbased.ranges import prepare  # noqa: E402
from projections.tables import fresh_tables  # noqa: E402


def per_projection(conn: apsw.Connection) -> None:
    t: collections.Counter[str] = collections.Counter()
    with transaction(conn):
        head = conn.execute("SELECT max(id) FROM event_log").fetchone()[0]
        a = time.process_time()
        later = fresh_tables(conn, PROJECTORS)
        t["drop + create tables"] += time.process_time() - a
        batches = read_batches(conn, 0, head, 5000)
        while True:
            a = time.process_time()
            records = next(batches, None)
            t["read + decode"] += time.process_time() - a
            if records is None:
                break
            batch = Batch(records)
            for p in PROJECTORS:
                if not hasattr(p, "apply_range"):
                    a = time.process_time()
                    p.apply(conn, batch)
                    t[p.NAME] += time.process_time() - a
        for p in PROJECTORS:
            if hasattr(p, "apply_range"):
                a = time.process_time()
                p.apply_range(conn, 0, head, check=False)
                t[f"{p.NAME} (range fold)"] += time.process_time() - a
        a = time.process_time()
        _finish(conn, PROJECTORS, later, head)
        t["finish (indexes, FK check)"] += time.process_time() - a
    total = sum(t.values())
    print(f"whole serial replay, {head:,} entries: {total:.1f} CPU-s, {head / total:,.0f} entries per CPU-s")
    for name, cpu in t.most_common():
        print(f"  {name:32s} {cpu:6.2f} CPU-s  {cpu / head * 1e6:5.1f} µs/entry")


def companies_steps(conn: apsw.Connection) -> None:
    c = companies
    conn.execute("BEGIN")
    fresh_tables(conn, [c])
    head = conn.execute("SELECT max(id) FROM event_log").fetchone()[0]
    prepare(conn)
    for sql in c._TEMP + c._CLEAR:
        conn.execute(sql)

    def step(name: str, f) -> None:
        a, w = time.process_time(), time.perf_counter()
        f()
        print(f"  {name:44s} {time.process_time() - a:6.2f} CPU-s {time.perf_counter() - w:6.2f} s")

    def others() -> None:
        seq = itertools.count(1)
        for records in c.records_chunks(conn, f"id > ? AND id <= ? AND event_type IN {c._OTHERS}", (0, head), 5000):
            found: list[tuple] = []
            c._writes(Batch(records), lambda n, p, s, params: found.append((n, p, next(seq))))
            conn.executemany("INSERT INTO temp.chl_company_mixed(company, pos, seq) VALUES (?, ?, ?)", found)

    print(f"companies range fold over {head:,} entries, step by step:")
    step("check every position is there", lambda: c.check_range(conn, 0, head))
    step("keys of the stream events (SQL, JSON)", lambda: conn.execute(c._KEYS, (0, head)))
    step("other entries decoded (REST, bulk, stubs)", others)
    step("stream events of those companies", lambda: conn.execute(c._MIXED_STREAM))
    step("plan: those companies' writes", lambda: conn.execute(c._PLAN_MIXED))
    step("plan: the others' picks (window)", lambda: conn.execute(c._PLAN_STREAM))
    step("plan index", lambda: conn.execute(c._PLAN_INDEX))
    planned, companies_n = conn.execute("SELECT count(*), count(DISTINCT company) FROM temp.chl_company_plan").fetchone()
    step("read the planned entries only (no writes)", lambda: sum(1 for _ in conn.execute(c._PLANNED)))
    step(f"decode + write the {planned:,} planned for {companies_n:,} companies", lambda: c._run_plan(conn, 5000))
    conn.execute("ROLLBACK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ledger", required=True, help="a ledger built by `replay.py --keep PATH`")
    ap.add_argument("--steps", action="store_true", help="also the companies range fold step by step")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="replay-profile-", dir=os.path.dirname(os.path.abspath(args.ledger))) as d:
        path = os.path.join(d, "copy.db")
        shutil.copy(args.ledger, path)
        conn = apsw.Connection(path)
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute("PRAGMA foreign_keys = OFF")
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        per_projection(conn)
        if args.steps:
            companies_steps(conn)
        conn.close()


if __name__ == "__main__":
    main()
