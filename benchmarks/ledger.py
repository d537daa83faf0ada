"""Ledger throughput: hash-chained batched appends and decoded reads vs raw apsw.

    python benchmarks/ledger.py                 # 1,000,000 entries (a few minutes on 2 cores)
    python benchmarks/ledger.py --count 20000   # a quick check that it works

What it measures, all in one run on files with chledger's pragmas (WAL,
synchronous=FULL, busy timeout, foreign keys, via `eventlog.db.connect`):
- raw baseline: one table with the ledger's columns minus the hash (UNIQUE
  event_id, as the ledger has), one `executemany` in one transaction, the same
  entries msgspec-encoded on the fly; and the same without the UNIQUE index;
- ledger: `Ledger.append_many` in batches (one transaction, hash chain,
  positions, idempotency, per batch);
- `Ledger.verify()` over the whole chain;
- read: `Ledger.read()` decoding every entry, in a child process so its RSS is
  the reader's alone (sampled after 10% and 100%), next to a raw
  `SELECT event_data` + `msgspec` decode of the baseline table.

The entries alternate a small `StreamEvent` (~100-byte profile excerpt) and a
`RequestSent`, drawn from a pool of 10,000 distinct ones, each appended under
its own event_id `bench:<i>`.

Goals (issue 2): appends >= 50% of the raw baseline; read+decode >= 300,000/s;
RSS flat while reading.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    fresh_db, peak_rss_mb, per_second, request_sent, rss_mb, small_stream_event, stopwatch,
)
from eventlog.clock import SystemClock, from_epoch  # noqa: E402
from eventlog.db import connect, transaction  # noqa: E402
from eventlog.entries import AnyEntry, Entry, encode  # noqa: E402
from eventlog.ledger import Ledger  # noqa: E402
from eventlog.migrate import migrate  # noqa: E402

POOL = 10_000
APPEND_GOAL = 0.50
READ_GOAL = 300_000
FLAT_MB = 10.0  # RSS growth between 10% and 100% read that still counts as flat

_RAW_TABLE = (
    "CREATE TABLE raw_log (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL {unique}, "
    "event_type TEXT NOT NULL, company_number TEXT, event_data TEXT NOT NULL, received_at TEXT NOT NULL)"
)
_RAW_INSERT = ("INSERT INTO raw_log(event_id, event_type, company_number, event_data, received_at) "
               "VALUES (?, ?, ?, ?, ?)")


def make_pool(count: int) -> list[Entry]:
    return [small_stream_event(i) if i % 2 == 0 else request_sent(i) for i in range(min(count, POOL))]


def raw_append(path: Path, pool: list[Entry], count: int, batch: int, unique: bool) -> float:
    """Seconds for one executemany of `count` rows in one transaction."""
    conn = connect(fresh_db(path))
    conn.execute(_RAW_TABLE.format(unique="UNIQUE" if unique else ""))
    clock = SystemClock()

    def rows():
        received_at = from_epoch(clock.now())
        n = len(pool)
        for i in range(count):
            if i % batch == 0:  # the ledger stamps once per batch too
                received_at = from_epoch(clock.now())
            entry = pool[i % n]
            yield (f"bench:{i}", entry.__struct_config__.tag, entry.company(),
                   encode(entry).decode(), received_at)

    with stopwatch() as sw:
        with transaction(conn):
            conn.executemany(_RAW_INSERT, rows())
    conn.close()
    return sw.seconds


def ledger_append(path: Path, pool: list[Entry], count: int, batch: int) -> tuple[float, float]:
    """Seconds to append `count` entries in batches, and seconds to verify the chain."""
    conn = connect(fresh_db(path))
    migrate(conn)
    ledger = Ledger(conn)
    n = len(pool)
    with stopwatch() as sw:
        for start in range(0, count, batch):
            ledger.append_many([(f"bench:{i}", pool[i % n]) for i in range(start, min(count, start + batch))])
    assert ledger.head() == count, (ledger.head(), count)
    with stopwatch() as vw:
        report = ledger.verify()
    assert report.ok and report.checked == count, report
    conn.close()
    return sw.seconds, vw.seconds


def read_child(ledger_path: str, raw_path: str, count: int) -> dict:
    """Runs in a fresh process: read everything back decoded, sampling RSS."""
    import msgspec

    conn = connect(ledger_path, readonly=True)
    ledger = Ledger(conn)
    out: dict = {"rss_start_mb": rss_mb()}
    tenth = max(1, count // 10)
    n = 0
    with stopwatch() as sw:
        for record in ledger.read():
            n += 1
            if n == tenth:
                out["rss_10pct_mb"] = rss_mb()
    out["rss_100pct_mb"] = rss_mb()
    out["peak_rss_mb"] = peak_rss_mb()
    assert n == count, (n, count)
    assert isinstance(record.entry, Entry)
    out["read_seconds"] = sw.seconds

    raw = connect(raw_path, readonly=True)
    decoder = msgspec.json.Decoder(AnyEntry)
    m = 0
    with stopwatch() as rw:
        for (data,) in raw.execute("SELECT event_data FROM raw_log ORDER BY id"):
            decoder.decode(data)
            m += 1
    assert m == count, (m, count)
    out["raw_read_seconds"] = rw.seconds
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=1_000_000, help="entries to append and read (default 1,000,000)")
    ap.add_argument("--batch", type=int, default=1000, help="entries per append_many (default 1000)")
    ap.add_argument("--dir", default=None, help="where the SQLite files go (default: a temp dir)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    ap.add_argument("--read-child", nargs=2, metavar=("LEDGER", "RAW"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.read_child:
        print(json.dumps(read_child(*args.read_child, args.count)))
        return 0

    workdir = Path(args.dir or tempfile.mkdtemp(prefix="chledger-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    count, batch = args.count, args.batch
    pool = make_pool(count)
    print(f"{count:,} entries, batches of {batch:,}, files in {workdir}", flush=True)

    raw_path, bare_path, ledger_path = workdir / "raw.db", workdir / "bare.db", workdir / "ledger.db"
    raw_s = raw_append(raw_path, pool, count, batch, unique=True)
    print(f"  raw executemany (UNIQUE event_id)  {per_second(count, raw_s):>12,.0f} entries/s", flush=True)
    bare_s = raw_append(bare_path, pool, count, batch, unique=False)
    print(f"  raw executemany (no index)         {per_second(count, bare_s):>12,.0f} entries/s", flush=True)
    ledger_s, verify_s = ledger_append(ledger_path, pool, count, batch)
    print(f"  ledger append_many                 {per_second(count, ledger_s):>12,.0f} entries/s", flush=True)
    print(f"  ledger verify                      {per_second(count, verify_s):>12,.0f} entries/s", flush=True)
    append_peak = peak_rss_mb()

    child = subprocess.run(
        [sys.executable, __file__, "--count", str(count), "--read-child", str(ledger_path), str(raw_path)],
        check=True, capture_output=True, text=True,
    )
    rd = json.loads(child.stdout.strip().splitlines()[-1])
    read_rate = per_second(count, rd["read_seconds"])
    growth = rd["rss_100pct_mb"] - rd["rss_10pct_mb"]
    print(f"  ledger read + decode               {read_rate:>12,.0f} entries/s", flush=True)
    print(f"  raw SELECT + decode                {per_second(count, rd['raw_read_seconds']):>12,.0f} entries/s")
    print(f"  reader RSS: start {rd['rss_start_mb']:.1f} MiB, after 10% {rd['rss_10pct_mb']:.1f} MiB, "
          f"after 100% {rd['rss_100pct_mb']:.1f} MiB, peak {rd['peak_rss_mb']:.1f} MiB "
          f"(ledger file {ledger_path.stat().st_size / 2**20:.0f} MiB)")

    ratio, ratio_bare = raw_s / ledger_s, bare_s / ledger_s
    goals = {
        "append_vs_raw": ratio >= APPEND_GOAL,
        "read_decode": read_rate >= READ_GOAL,
        "read_rss_flat": growth < FLAT_MB,
    }
    print(f"append: ledger at {ratio:.0%} of raw with UNIQUE event_id ({ratio_bare:.0%} of the bare table); "
          f"goal >= {APPEND_GOAL:.0%}: {'met' if goals['append_vs_raw'] else 'MISSED'}")
    print(f"read:   {read_rate:,.0f} entries/s; goal >= {READ_GOAL:,}: {'met' if goals['read_decode'] else 'MISSED'}")
    print(f"memory: reader RSS grew {growth:+.1f} MiB from 10% to 100%; goal < {FLAT_MB:.0f} MiB: "
          f"{'met' if goals['read_rss_flat'] else 'MISSED'} (appending process peak {append_peak:.0f} MiB)")
    if args.json:
        print(json.dumps({
            "count": count, "batch": batch, "raw_seconds": raw_s, "bare_seconds": bare_s,
            "ledger_seconds": ledger_s, "verify_seconds": verify_s, **rd, "goals": goals,
        }))
    if not args.dir:
        for p in (raw_path, bare_path, ledger_path):
            fresh_db(p)
        workdir.rmdir()
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
