"""The best case of the "write each company once" lever for replay, measured rather than estimated.

`benchmarks/replay.py` shows that writing the original schemas' rows once per stream event
cannot reach 100,000 entries/s on this machine (its SQL floor). The lever left
is to fold each company's events first and write its row once. This measures
the most favourable version of that for `companies` alone, so that the answer
does not rest on an estimate:

- one sequential scan of the ledger, each stream event decoded only as far as
  the fold needs (timepoint, change, the payload left raw), the winning event
  of every company kept in a dict in memory (so memory grows with the number
  of companies: a real engine would have to spill, and be slower);
- then each company's profile decoded once and its row written with a plain
  `INSERT` (no upsert, no `iif`), in first-appearance order, into a scratch file;
- nothing else: no REST responses, stubs, deletes' flags, `data_source`, nor
  `company_processing_state` and the five other projections, which a replay
  must also build. Every one of those adds time.

It runs once in one process, then split into `--parts` processes by company
number (each scans the whole ledger and folds only its share), and prints the
ledger's raw read rate (`Ledger.read_rows`) in the same run as the baseline.

    python benchmarks/replay_fold.py --ledger /tmp/bench.db   # a ledger built by replay.py --keep
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import apsw
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eventlog.ledger.db import connect  # noqa: E402
from eventlog.ledger.store import Ledger  # noqa: E402
from projections.payloads import decode_profile, raw_text  # noqa: E402


class _Head(msgspec.Struct):
    timepoint: int = 0
    published_at: str = ""
    change: str = ""
    resource_uri: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")


_COLUMNS = ("company_number", "company_name", "company_status", "company_status_detail", "company_type",
            "jurisdiction", "date_of_creation", "registered_office_address", "sic_codes", "etag", "deleted",
            "stream_last_updated", "stream_event_id", "stream_event_type", "stream_timepoint",
            "stream_processing_status", "stream_status", "stream_metadata", "data_source",
            "last_stream_event_id", "updated_at")
_INSERT = f"INSERT INTO companies({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def fold_companies(ledger: str, out: str, part: int, parts: int) -> dict:
    """Scan, fold, write: returns seconds per phase, companies written and peak RSS."""
    decode = msgspec.json.Decoder(_Head).decode
    src = apsw.Connection(ledger, flags=apsw.SQLITE_OPEN_READONLY)
    src.execute("PRAGMA cache_size = -65536")
    ddl = src.execute("SELECT sql FROM sqlite_master WHERE name = 'companies'").fetchone()[0]
    start, cpu0 = time.perf_counter(), _cpu()
    winners: dict[str, list] = {}  # number -> [(timepoint, position), head, last event_id, last received_at]
    scanned = 0
    # The share is chosen in SQL, so another share's payloads are never even made into Python strings.
    for pos, number, data, received_at, event_id in src.execute(
            "SELECT id, company_number, event_data, received_at, event_id FROM event_log "
            "WHERE event_type = 'stream.event' AND company_number IS NOT NULL "
            "AND unicode(substr(company_number, -1)) % ? = ?", (parts, part)):
        scanned += 1
        head = decode(data)
        key = (head.timepoint, pos)
        seen = winners.get(number)
        if seen is None:
            winners[number] = [key, head, event_id, received_at]
        else:
            if key >= seen[0]:
                seen[0], seen[1] = key, head
            seen[2], seen[3] = event_id, received_at
    scan = time.perf_counter() - start
    dst = apsw.Connection(out)
    for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -65536"):
        dst.execute(f"PRAGMA {pragma}")
    dst.execute(ddl)
    dst.execute("BEGIN")
    rows = []
    for number, (_, h, event_id, received_at) in winners.items():  # dict order: first appearance
        p = decode_profile(h.data) if h.data else None
        profile = ((p.company_name, p.company_status, p.company_status_detail, p.type, p.jurisdiction,
                    p.date_of_creation, raw_text(p.registered_office_address), raw_text(p.sic_codes), p.etag)
                   if p is not None else (None,) * 9)
        rows.append((number,) + profile + (
            int(h.change == "deleted"), h.published_at, event_id, h.change, h.timepoint, "processed", "active",
            json.dumps({"timepoint": h.timepoint, "published_at": h.published_at, "resource_uri": h.resource_uri}),
            "stream", event_id, received_at))
        if len(rows) == 5000:
            dst.executemany(_INSERT, rows)
            rows = []
    dst.executemany(_INSERT, rows)
    dst.execute("COMMIT")
    dst.close()
    src.close()
    return {"folded": scanned, "companies": len(winners), "scan_s": scan,
            "write_s": time.perf_counter() - start - scan, "wall_s": time.perf_counter() - start,
            "cpu_s": _cpu() - cpu0, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _split(ledger: str, workdir: str, parts: int) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--ledger", ledger, "--part", str(k), "--parts", str(parts),
                               "--out", os.path.join(workdir, f"part{k}.db")], stdout=subprocess.PIPE,
                              )
             for k in range(parts)]
    results = []
    for k, p in enumerate(procs):
        out = p.communicate()[0]
        if p.returncode != 0:
            raise SystemExit(f"share {k} of {parts} failed (exit {p.returncode}); see its stderr above")
        results.append(json.loads(out))
    return time.perf_counter() - start, results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ledger", required=True, help="a ledger built by `python benchmarks/replay.py --keep PATH`")
    ap.add_argument("--parts", type=int, default=2)
    ap.add_argument("--part", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part is not None:  # one share of the split run: report as JSON to the parent
        print(json.dumps(fold_companies(args.ledger, args.out, args.part, args.parts)))
        return

    conn = connect(args.ledger, readonly=True)
    start = time.perf_counter()
    n = sum(1 for _ in Ledger(conn).read_rows(0, batch_size=5000))
    raw = n / (time.perf_counter() - start)
    conn.close()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"ledger raw read (baseline): {raw:>10,.0f} entries/s ({n:,} entries)")
    with tempfile.TemporaryDirectory(prefix="replay-fold-", dir=os.path.dirname(os.path.abspath(args.ledger))) as d:
        one = fold_companies(args.ledger, os.path.join(d, "one.db"), 0, 1)
        print(f"companies alone, folded, 1 process: {n / one['wall_s']:>10,.0f} entries/s  "
              f"({one['wall_s']:.1f} s: scan and fold {one['folded']:,} stream events {one['scan_s']:.1f} s, decode and write "
              f"{one['companies']:,} rows {one['write_s']:.1f} s; {one['cpu_s']:.1f} CPU-s; peak RSS "
              f"{one['rss_mb']:,.0f} MB)")
        wall, parts = _split(args.ledger, d, args.parts)
        print(f"companies alone, folded, {args.parts} processes: {n / wall:>10,.0f} entries/s  "
              f"({wall:.1f} s; slowest share {max(p['wall_s'] for p in parts):.1f} s, of which scan "
              f"{max(p['scan_s'] for p in parts):.1f} s; {sum(p['cpu_s'] for p in parts):.1f} CPU-s; peak RSS "
              f"{sum(p['rss_mb'] for p in parts):,.0f} MB together)")


if __name__ == "__main__":
    main()
