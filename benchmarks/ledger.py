"""Ledger throughput: hash-chained batched appends and decoded reads vs raw apsw.

    python benchmarks/ledger.py                 # 1,000,000 entries (a few minutes on 2 cores)
    python benchmarks/ledger.py --count 20000   # a quick check that it works

What it measures, all in one run on files with chledger's pragmas (WAL,
synchronous=FULL, busy timeout, foreign keys, via `eventlog.ledger.db.connect`):
- raw baseline: one table with the ledger's columns minus the hash (UNIQUE
  event_id, as the ledger has), one `executemany` in one transaction, the same
  entries msgspec-encoded on the fly; for context also the same without the
  UNIQUE index, and the same committed once per batch (what durability per
  batch costs before any ledger code runs);
- ledger: `Ledger.append_many` in batches (one transaction, hash chain,
  positions, idempotency, per batch);
- `Ledger.verify()` over the whole chain;
- read: `Ledger.read()` decoding every entry, in a child process so its RSS is
  the reader's alone (sampled after 10% and 100%), next to a raw
  `SELECT event_data` + `msgspec` decode of the baseline table.

The entries alternate a small `StreamEvent` (~100-byte profile excerpt) and a
`RequestSent`, drawn from a pool of 10,000 distinct ones, each appended under
its own event_id `bench:<i>`. Everything is repeated `--rounds` times (default
3) on fresh files and the medians are reported: on a shared 2-core machine a
single round can be off by 30%.

Goals (issue 2): appends >= 50% of the raw baseline; read+decode >= 300,000/s;
RSS flat while reading.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    Stopwatch, fresh_db, load_average, peak_rss_mb, per_second, request_sent, rss_mb, small_stream_event, stopwatch,
)
from eventlog.clock import SystemClock, from_epoch  # noqa: E402
from eventlog.ledger.db import connect, transaction  # noqa: E402
from eventlog.ledger.entries import AnyEntry, Entry, encode  # noqa: E402
from eventlog.ledger.store import Ledger  # noqa: E402
from eventlog.ledger.migrate import migrate  # noqa: E402

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


def raw_append(path: Path, pool: list[Entry], count: int, batch: int, *, unique: bool,
               per_batch: bool = False) -> Stopwatch:
    """Time `executemany` of `count` rows: in one transaction, or one per batch."""
    conn = connect(fresh_db(path))
    conn.execute(_RAW_TABLE.format(unique="UNIQUE" if unique else ""))
    clock = SystemClock()
    n = len(pool)

    def rows(start: int, stop: int):
        received_at = from_epoch(clock.now())
        for i in range(start, stop):
            if i % batch == 0:  # the ledger stamps once per batch too
                received_at = from_epoch(clock.now())
            entry = pool[i % n]
            yield (f"bench:{i}", entry.__struct_config__.tag, entry.company(),
                   encode(entry).decode(), received_at)

    with stopwatch() as sw:
        if per_batch:
            for start in range(0, count, batch):
                with transaction(conn):
                    conn.executemany(_RAW_INSERT, rows(start, min(count, start + batch)))
        else:
            with transaction(conn):
                conn.executemany(_RAW_INSERT, rows(0, count))
    conn.close()
    return sw


def ledger_append(path: Path, pool: list[Entry], count: int, batch: int) -> tuple[Stopwatch, Stopwatch]:
    """Time appending `count` entries in batches, and verifying the chain."""
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
    return sw, vw


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
    out["read_cpu_seconds"] = sw.cpu_seconds

    raw = connect(raw_path, readonly=True)
    decoder = msgspec.json.Decoder(AnyEntry)
    m = 0
    with stopwatch() as rw:
        for (data,) in raw.execute("SELECT event_data FROM raw_log ORDER BY id"):
            decoder.decode(data)
            m += 1
    assert m == count, (m, count)
    out["raw_read_seconds"] = rw.seconds
    out["raw_read_cpu_seconds"] = rw.cpu_seconds
    return out


def one_round(workdir: Path, pool: list[Entry], count: int, batch: int) -> dict:
    """Every measurement once, on fresh files; the read runs in a child process."""
    raw_path, ledger_path = workdir / "raw.db", workdir / "ledger.db"
    out: dict = {}
    timings = {
        "raw": raw_append(raw_path, pool, count, batch, unique=True),
        "bare": raw_append(workdir / "bare.db", pool, count, batch, unique=False),
        "raw_batched": raw_append(workdir / "batched.db", pool, count, batch, unique=True, per_batch=True),
    }
    fresh_db(workdir / "bare.db")
    fresh_db(workdir / "batched.db")
    timings["ledger"], timings["verify"] = ledger_append(ledger_path, pool, count, batch)
    for name, sw in timings.items():
        out[f"{name}_s"], out[f"{name}_cpu_s"] = sw.seconds, sw.cpu_seconds
    child = subprocess.run(
        [sys.executable, __file__, "--count", str(count), "--read-child", str(ledger_path), str(raw_path)],
        check=True, capture_output=True, text=True,
    )
    out.update(json.loads(child.stdout.strip().splitlines()[-1]))
    out["ledger_file_mb"] = ledger_path.stat().st_size / 2**20
    return out


def profile(workdir: Path, pool: list[Entry], count: int, batch: int) -> None:
    """cProfile the ledger's append and read paths; print where the time goes."""
    import cProfile
    import pstats

    conn = connect(fresh_db(workdir / "profile.db"))
    migrate(conn)
    ledger = Ledger(conn)
    n = len(pool)

    def append() -> None:
        for start in range(0, count, batch):
            ledger.append_many([(f"bench:{i}", pool[i % n]) for i in range(start, min(count, start + batch))])

    def read() -> None:
        for _ in ledger.read():
            pass

    for name, fn in (("append", append), ("read", read)):
        prof = cProfile.Profile()
        prof.runcall(fn)
        print(f"\n--- {name}: {count:,} entries, top functions by own time ---")
        pstats.Stats(prof).sort_stats("tottime").print_stats(12)
    conn.close()
    fresh_db(workdir / "profile.db")


def median(values: list[float]) -> float:
    return statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=1_000_000, help="entries to append and read (default 1,000,000)")
    ap.add_argument("--batch", type=int, default=1000, help="entries per append_many (default 1000)")
    ap.add_argument("--rounds", type=int, default=3, help="repeat everything; medians are reported (default 3)")
    ap.add_argument("--dir", default=None, help="where the SQLite files go (default: a temp dir, removed after)")
    ap.add_argument("--json", action="store_true", help="print every round's figures as JSON too")
    ap.add_argument("--profile", action="store_true", help="only cProfile the ledger's append and read paths")
    ap.add_argument("--read-child", nargs=2, metavar=("LEDGER", "RAW"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.read_child:
        print(json.dumps(read_child(*args.read_child, args.count)))
        return 0

    workdir = Path(args.dir or tempfile.mkdtemp(prefix="chledger-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    count, batch = args.count, args.batch
    pool = make_pool(count)
    if args.profile:
        profile(workdir, pool, count, batch)
        if not args.dir:
            workdir.rmdir()
        return 0
    print(f"{count:,} entries, batches of {batch:,}, {args.rounds} round(s), files in {workdir}; "
          f"load {load_average()}", flush=True)
    rounds = []
    for r in range(args.rounds):
        rd = one_round(workdir, pool, count, batch)
        rounds.append(rd)
        print(f"  round {r + 1}: raw {per_second(count, rd['raw_s']):,.0f}/s, "
              f"ledger {per_second(count, rd['ledger_s']):,.0f}/s "
              f"({rd['raw_s'] / rd['ledger_s']:.0%}), read {per_second(count, rd['read_seconds']):,.0f}/s, "
              f"reader RSS {rd['rss_10pct_mb']:.1f} -> {rd['rss_100pct_mb']:.1f} MiB; load {load_average()}",
              flush=True)
    append_peak = peak_rss_mb()

    def rate(key: str) -> float:
        return median([per_second(count, rd[key]) for rd in rounds])

    ratio = median([rd["raw_s"] / rd["ledger_s"] for rd in rounds])
    ratio_bare = median([rd["bare_s"] / rd["ledger_s"] for rd in rounds])
    ratio_batched = median([rd["raw_batched_s"] / rd["ledger_s"] for rd in rounds])
    read_rate = rate("read_seconds")
    growth = max(rd["rss_100pct_mb"] - rd["rss_10pct_mb"] for rd in rounds)
    last = rounds[-1]

    print(f"\nmedians of {len(rounds)} round(s), entries/s      wall clock  per CPU second")
    for label, key, cpu_key in [
        ("raw executemany, one transaction, UNIQUE event_id", "raw_s", "raw_cpu_s"),
        ("raw executemany, one transaction, no index", "bare_s", "bare_cpu_s"),
        ("raw executemany, one transaction per batch", "raw_batched_s", "raw_batched_cpu_s"),
        ("ledger append_many (hash chain)", "ledger_s", "ledger_cpu_s"),
        ("ledger verify", "verify_s", "verify_cpu_s"),
        ("ledger read + decode", "read_seconds", "read_cpu_seconds"),
        ("raw SELECT event_data + decode", "raw_read_seconds", "raw_read_cpu_seconds"),
    ]:
        print(f"  {label:<50} {rate(key):>10,.0f}  {rate(cpu_key):>10,.0f}")
    print(f"  reader RSS (last round): start {last['rss_start_mb']:.1f} MiB, after 10% {last['rss_10pct_mb']:.1f}, "
          f"after 100% {last['rss_100pct_mb']:.1f}, peak {last['peak_rss_mb']:.1f} "
          f"(ledger file {last['ledger_file_mb']:.0f} MiB)")

    goals = {
        "append_vs_raw": ratio >= APPEND_GOAL,
        "read_decode": read_rate >= READ_GOAL,
        "read_rss_flat": growth < FLAT_MB,
    }
    print(f"append: ledger at {ratio:.0%} of raw (UNIQUE event_id); {ratio_bare:.0%} of the bare table; "
          f"{ratio_batched:.0%} of raw committed per batch; goal >= {APPEND_GOAL:.0%}: "
          f"{'met' if goals['append_vs_raw'] else 'MISSED'}")
    print(f"read:   {read_rate:,.0f} entries/s; goal >= {READ_GOAL:,}: {'met' if goals['read_decode'] else 'MISSED'}")
    print(f"memory: reader RSS grew at most {growth:+.1f} MiB from 10% to 100%; goal < {FLAT_MB:.0f} MiB: "
          f"{'met' if goals['read_rss_flat'] else 'MISSED'} (appending process peak {append_peak:.0f} MiB)")
    print(f"load at the end: {load_average()}")
    if args.json:
        print(json.dumps({"count": count, "batch": batch, "rounds": rounds, "goals": goals}))
    for name in ("raw.db", "ledger.db"):
        if not args.dir:
            fresh_db(workdir / name)
    if not args.dir:
        workdir.rmdir()
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
