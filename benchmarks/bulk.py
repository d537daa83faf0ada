"""Bulk snapshot: ZIP → companies of interest → ledger, against csv.reader and a bytes scan of the same ZIP.

    python benchmarks/bulk.py                   # 1,000,000 rows (~470 MB of CSV), 3 rounds
    python benchmarks/bulk.py --rows 100000     # a quick check that it works
    python benchmarks/bulk.py --file BasicCompanyDataAsOneFile-2024-05-01.zip   # a real snapshot

The file is written by the simulator's synthetic writer in the published format (header quirks,
every field quoted, CRLF, ~2% of rows "Active - Proposal to Strike off", a few names with quotes
or commas), into a temp dir that is removed afterwards. Every pass reads the same ZIP from the
start, in its own child process, so its time, CPU and peak RSS are its own:

  bytes scan       inflate + split into lines, nothing else: the floor any reader pays
  csv.reader       Python's own reader over the same member (TextIOWrapper, utf-8): the baseline
  reader, interest SnapshotReader with the default interest (strike-off proposed): what `bulk` does
  reader, all      SnapshotReader keeping every company (`--all`): every row parsed into a profile
  ledger, interest `bulk FILE` as the command runs it (eventlog.commands.bulk.run_bulk): a fresh
                   database, the companies of interest appended in 20,000-entry transactions with
                   every projection applied inline, the snapshot entry and its batch
  ledger, all      `bulk FILE --all`: every company appended; the database's size is reported

The reader's passes hash the file first (SHA-256, for idempotency); that is timed apart and
added back for the 5-million-row extrapolation. RSS is sampled (psutil) about once per MiB read;
its highest value is the peak reported, and the reader's value at 10% and 100% of the bytes shows
whether it stays flat. Each round runs the passes in turn; medians over rounds are reported.

The ledger passes are timed whole, hashing, migrating and the final transaction included: rows
from ZIP to ledger.

Goals (issue 14): the interest pass at least as fast as csv.reader over the same ZIP; the whole
5M-row file in <= 20 s (extrapolated from the measured rate); RSS flat under 150 MB.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import load_average, per_second, rss_mb  # noqa: E402

PASSES = ("scan", "csv", "interest", "all", "ledger", "ledger-all")
LABELS = {"scan": "bytes scan (floor)", "csv": "csv.reader (baseline)", "interest": "reader, interest",
          "all": "reader, all", "ledger": "ledger, interest", "ledger-all": "ledger, all"}
LEDGER_PASSES = ("ledger", "ledger-all")
FULL_FILE = 5_000_000
GOAL_SECONDS = 20.0
GOAL_RSS_MB = 150.0


def _member(path: str):
    archive = zipfile.ZipFile(path)
    name = next(i.filename for i in archive.infolist() if i.filename.lower().endswith(".csv"))
    return archive, archive.open(name)


class Memory:
    """The highest RSS seen, sampled about once per MiB read (ru_maxrss is no use in a child:
    Linux carries the parent's high-water mark over fork and exec)."""

    def __init__(self) -> None:
        self.max_mb = rss_mb()

    def sample(self) -> float:
        now = rss_mb()
        self.max_mb = max(self.max_mb, now)
        return now


def pass_scan(path: str, memory: Memory) -> dict:
    archive, member = _member(path)
    rows, carry = -1, b""  # the header is not a row
    with archive, member:
        while True:
            data = member.read(1 << 20)
            lines = (carry + data).split(b"\n")
            carry = lines.pop()
            rows += len(lines)
            memory.sample()
            if not data:
                break
    return {"rows": rows + (1 if carry else 0)}


def pass_csv(path: str, memory: Memory) -> dict:
    archive, member = _member(path)
    rows = -1
    with archive, member:
        for _ in csv.reader(io.TextIOWrapper(member, encoding="utf-8", newline="")):
            rows += 1
            if not rows & 2047:
                memory.sample()
    return {"rows": rows}


def pass_reader(path: str, keep_all: bool, memory: Memory) -> dict:
    from eventlog.bulk import SnapshotReader
    from eventlog.ledger.entries import Interest

    rss: dict[str, float] = {}

    def sample(p) -> None:
        now = memory.sample()
        if p.stage == "reading" and p.bytes_total:
            if "rss_10pct_mb" not in rss and p.bytes_done >= p.bytes_total / 10:
                rss["rss_10pct_mb"] = now
            if p.bytes_done >= p.bytes_total:
                rss["rss_100pct_mb"] = now

    start = time.perf_counter()
    reader = SnapshotReader([path], None if keep_all else Interest(), on_progress=sample)
    hashed = time.perf_counter() - start
    kept = sum(1 for _ in reader)
    r = reader.report
    assert kept == r.rows_kept and r.complete
    return {"rows": r.rows_read, "kept": kept, "parsed": r.rows_parsed, "rejected": r.rejected,
            "hash_s": hashed, **rss}


def pass_ledger(path: str, keep_all: bool, memory: Memory) -> dict:
    """`python cli.py bulk FILE [--all]` without the terminal: into a fresh database beside the ZIP."""
    import os

    from eventlog.commands.bulk import run_bulk
    from eventlog.config.settings import Settings

    db = Path(path).with_name(f"bench-{os.getpid()}.db")
    try:
        report = run_bulk(Settings(database_path=str(db), disk_reserve_mb=0), [path], keep_all=keep_all,
                          on_progress=lambda p: memory.sample())
        size = sum(f.stat().st_size for f in db.parent.glob(db.name + "*"))
    finally:
        for f in db.parent.glob(db.name + "*"):
            f.unlink()
    assert report.read is not None and report.read.complete and report.snapshot_position is not None
    return {"rows": report.read.rows_read, "kept": report.of_interest, "recorded": report.companies_recorded,
            "transactions": report.transactions, "db_mb": size / 2**20}


def child(name: str, path: str) -> dict:
    """One pass, timed from the first byte (the reader's hashing timed apart inside it)."""
    memory = Memory()
    start, cpu = time.perf_counter(), time.process_time()
    if name == "scan":
        out = pass_scan(path, memory)
    elif name == "csv":
        out = pass_csv(path, memory)
    elif name in LEDGER_PASSES:
        out = pass_ledger(path, name == "ledger-all", memory)
    else:
        out = pass_reader(path, name == "all", memory)
    out["seconds"] = time.perf_counter() - start - out.get("hash_s", 0.0)
    out["cpu_s"] = time.process_time() - cpu
    out["peak_rss_mb"] = memory.max_mb
    return out


def run_child(name: str, path: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", name, path], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the synthetic file (default 1,000,000)")
    ap.add_argument("--rounds", type=int, default=3, help="repeat every pass; medians are reported (default 3)")
    ap.add_argument("--file", default=None, help="read this snapshot ZIP instead of writing a synthetic one")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--child", nargs=2, metavar=("PASS", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0

    with tempfile.TemporaryDirectory(prefix="chledger-bulk-bench-") as folder:
        if args.file:
            path, expected_kept = args.file, None
            print(f"reading {path}")
        else:
            from eventlog.simulator.bulkfile import write_synthetic

            path = str(Path(folder) / "BasicCompanyDataAsOneFile-2024-01-01.zip")
            started = time.perf_counter()
            made = write_synthetic(path, args.rows, seed=args.seed)
            expected_kept = made.of_interest
            zipped = Path(path).stat().st_size / 2**20
            print(f"wrote {made.rows:,} rows in {time.perf_counter() - started:.1f} s: {made.csv_bytes / 2**20:,.0f} "
                  f"MiB of CSV, {made.csv_bytes / made.rows:.0f} bytes a row, ZIP {zipped:,.0f} MiB; "
                  f"{made.of_interest:,} rows of interest ({made.of_interest / made.rows:.1%})")
        print(f"{args.rounds} round(s), each pass in its own process; load {load_average()}", flush=True)
        results: dict[str, list[dict]] = {name: [] for name in PASSES}
        for r in range(args.rounds):
            line = []
            for name in PASSES:
                out = run_child(name, path)
                results[name].append(out)
                line.append(f"{name} {per_second(out['rows'], out['seconds']):,.0f}/s")
            print(f"  round {r + 1}: " + ", ".join(line) + f"; load {load_average()}", flush=True)

    rows = results["scan"][0]["rows"]
    for name in PASSES:
        counts = {o["rows"] for o in results[name]}
        assert counts == {rows}, f"{name} read {counts} rows, the scan {rows}"
    kept = {o["kept"] for o in results["interest"]}
    assert len(kept) == 1 and (expected_kept is None or kept == {expected_kept}), (kept, expected_kept)
    # both ledger passes found the same companies of interest, the reader's rows less the few
    # numbers the synthetic file draws twice (recorded once)
    ledger_kept = {o["kept"] for name in LEDGER_PASSES for o in results[name]}
    assert len(ledger_kept) == 1 and 0.99 * min(kept) <= min(ledger_kept) <= min(kept), (ledger_kept, kept)

    def med(name: str, key: str) -> float:
        return statistics.median(o[key] for o in results[name])

    csv_rate = per_second(rows, med("csv", "seconds"))
    print(f"\n{rows:,} rows, medians of {args.rounds}:")
    for name in PASSES:
        seconds = med(name, "seconds")
        rate = per_second(rows, seconds)
        extra = f"  {rate / csv_rate:4.0%} of csv.reader" if name not in ("scan", "csv") else ""
        rss = ""
        if name in LEDGER_PASSES:
            o = results[name][0]
            rss = (f"  {o['recorded']:,} companies recorded in {o['transactions']} transactions, database "
                   f"{med(name, 'db_mb'):,.0f} MiB")
        if name in ("interest", "all"):
            rss = (f"  RSS {med(name, 'rss_10pct_mb'):.1f} MiB at 10%, {med(name, 'rss_100pct_mb'):.1f} MiB at "
                   f"100%")
        print(f"  {LABELS[name]:<22} {rate:>9,.0f} rows/s ({seconds:6.2f} s, CPU {med(name, 'cpu_s'):6.2f} s, "
              f"peak RSS {med(name, 'peak_rss_mb'):5.1f} MiB){extra}{rss}")
    hash_s = med("interest", "hash_s")
    interest_s = med("interest", "seconds")
    full = (interest_s + hash_s) * FULL_FILE / rows
    all_full = (med("all", "seconds") + med("all", "hash_s")) * FULL_FILE / rows
    o = results["interest"][0]
    print(f"  interest pass: kept {o['kept']:,}, parsed {o['parsed']:,} of {rows:,} rows ({o['parsed'] / rows:.1%}), "
          f"rejected {o['rejected']}; SHA-256 of the ZIP {hash_s:.2f} s")
    peak = max(med("interest", "peak_rss_mb"), med("all", "peak_rss_mb"))
    ledger_full = med("ledger", "seconds") * FULL_FILE / rows
    ledger_all_full = med("ledger-all", "seconds") * FULL_FILE / rows
    all_bytes = med("ledger-all", "db_mb") * 2**20 / results["ledger-all"][0]["recorded"]
    print(f"\n5,000,000 rows extrapolated: {full:.1f} s with the interest filter (goal <= {GOAL_SECONDS:.0f} s), "
          f"{all_full:.1f} s keeping all")
    print(f"  into the ledger: {ledger_full:.1f} s for the companies of interest, {ledger_all_full / 60:.1f} min "
          f"and {all_bytes * FULL_FILE / 2**30:.1f} GiB ({all_bytes:,.0f} bytes a company) with --all; "
          f"peak RSS {med('ledger', 'peak_rss_mb'):.0f} / {med('ledger-all', 'peak_rss_mb'):.0f} MiB")
    print(f"goals: rate >= csv.reader: {'met' if interest_s <= med('csv', 'seconds') else 'MISSED'}; "
          f"5M <= {GOAL_SECONDS:.0f} s: {'met' if full <= GOAL_SECONDS else 'MISSED'}; "
          f"peak RSS < {GOAL_RSS_MB:.0f} MiB: {'met' if peak < GOAL_RSS_MB else 'MISSED'} ({peak:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
