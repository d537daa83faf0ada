"""Lead export benchmark: rows per second per format, next to a plain SELECT of the same rows.

    python benchmarks/export.py                       # 100,000 companies, ~2.5 current officers each
    python benchmarks/export.py --companies 5000      # a quick check that it works

All in one run, on a real SQLite file with chledger's pragmas and migrations:
1. fill `companies`, `officers` (3 appointments per company, one of them resigned, on average),
   `domains` (a third of the companies) and `emails` (one or two addresses for half of those
   companies' directors) directly with SQL: the export reads the tables, so how they were
   projected does not matter here;
2. baseline: the export's own query (`leads.lead_query`: companies of interest joined to their
   current officers, ordered) run as a plain SELECT, every row fetched into Python and dropped;
3. `export_leads` to each format (csv, jsonl, sqlite, parquet when pyarrow is installed), with a
   suppression list of 100 subjects, timed end to end (snapshot, enrichment join, suppression,
   formatting, fsync, rename); rows/s and the ratio to the SELECT.

Figures are medians over `--rounds`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import fresh_db, load_average  # noqa: E402
from eventlog.dataset.leads import LeadFilters, export_leads, lead_query  # noqa: E402
from eventlog.ledger.db import connect, transaction  # noqa: E402
from eventlog.ledger.entries import SuppressionAdded  # noqa: E402
from eventlog.ledger.migrate import migrate  # noqa: E402
from eventlog.ledger.store import Ledger  # noqa: E402

TODAY = dt.date(2026, 12, 6)
_SURNAMES = ("SMITH", "JONES", "TAYLOR", "BROWN", "WILLIAMS", "WILSON", "JOHNSON", "DAVIES", "PATEL", "WRIGHT")
_FIRST = ("John", "Mary", "Peter", "Anne", "David", "Sarah", "James", "Emma", "Robert", "Laura", "Aisha")


def fill(path: Path, companies: int, seed: int = 11) -> int:
    rng = random.Random(seed)
    conn = connect(path)
    migrate(conn)
    at = "2026-12-01T10:00:00.000000Z"
    with transaction(conn):
        for i in range(companies):
            number = f"{i:08d}"
            address = json.dumps({"address_line_1": f"{i} High Street", "locality": rng.choice(("Leeds", "York")),
                                  "region": "Yorkshire", "postal_code": f"LS{i % 30} {i % 9}AB"})
            conn.execute(
                "INSERT INTO companies(company_number, company_name, company_status, company_status_detail, "
                "company_type, date_of_creation, registered_office_address, sic_codes) VALUES (?, ?, 'active', "
                "'active-proposal-to-strike-off', 'ltd', ?, ?, ?)",
                (number, f"COMPANY {i} LIMITED", f"{2000 + i % 25}-0{1 + i % 9}-15", address,
                 json.dumps([str(62000 + i % 50)])))
            for j in range(3):
                oid = f"o{i}x{j}"
                conn.execute(
                    "INSERT INTO officers(company_number, officer_id, name, officer_role, appointed_on, resigned_on, "
                    "nationality, occupation, country_of_residence, date_of_birth_month, date_of_birth_year, address, "
                    "fetched_at, request_id) VALUES (?, ?, ?, ?, '2019-04-01', ?, 'British', 'Director', 'England', "
                    "7, 1971, ?, ?, ?)",
                    (number, oid, f"{rng.choice(_SURNAMES)}, {rng.choice(_FIRST)}",
                     "secretary" if j == 2 else "director", "2022-01-01" if rng.random() < 0.5 and j == 1 else None,
                     json.dumps({"premises": str(j), "address_line_1": "Tulip Lane", "postal_code": "HG1 1AA"}),
                     at, f"r{i}"))
            if i % 3 == 0:
                domain = f"company{i}.example"
                conn.execute("INSERT INTO domains(company_number, company_name, name_key, state, domain, task_id, "
                             "requested_at, answered_at) VALUES (?, ?, ?, 'found', ?, 't', ?, ?)",
                             (number, f"COMPANY {i} LIMITED", f"company {i} limited", domain, at, at))
                if i % 2 == 0:
                    for k in range(1 + i % 2 + (i // 6) % 2):
                        conn.execute("INSERT INTO emails(officer_id, company_number, domain, state, email, smtp_status, "
                                     "is_valid_format, task_id, requested_at, answered_at) VALUES (?, ?, ?, 'found', ?, "
                                     "'valid', 1, 't', ?, ?)", (f"o{i}x0", number, domain, f"p{k}@{domain}", at, at))
    ledger = Ledger(conn)
    ledger.append_many([SuppressionAdded(subject=f"officer:o{i * 7}x0") for i in range(100)])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return companies


def plain_select(path: Path) -> tuple[int, float]:
    conn = connect(path, readonly=True)
    try:
        sql, args = lead_query(conn, LeadFilters(), TODAY)
        started = time.perf_counter()
        n = 0
        for _ in conn.execute(sql, args):
            n += 1
        return n, time.perf_counter() - started
    finally:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--companies", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    try:
        import pyarrow  # noqa: F401
        formats = ["csv", "jsonl", "sqlite", "parquet"]
    except ImportError:
        formats = ["csv", "jsonl", "sqlite"]
        print("pyarrow not installed: Parquet skipped (pip install -e '.[parquet]')")
    with tempfile.TemporaryDirectory() as tmp:
        db = fresh_db(Path(tmp) / "bench.db")
        started = time.perf_counter()
        fill(db, args.companies)
        print(f"filled {args.companies:,} companies in {time.perf_counter() - started:.1f} s; load {load_average()}")
        selects = [plain_select(db) for _ in range(args.rounds)]
        rows = selects[0][0]
        base = statistics.median(s for _, s in selects)
        print(f"plain SELECT of the same rows: {rows:,} rows in {base:.2f} s = {rows / base:,.0f} rows/s")
        for fmt in formats:
            times, report = [], None
            for r in range(args.rounds):
                out = Path(tmp) / f"leads-{r}.{fmt}"
                t0 = time.perf_counter()
                report = export_leads(db, out, fmt, today=TODAY)  # type: ignore[arg-type]
                times.append(time.perf_counter() - t0)
                out.unlink()
            secs = statistics.median(times)
            assert report is not None
            print(f"{fmt:8s}: {report.rows:,} rows ({report.withheld} withheld) in {secs:.2f} s = "
                  f"{report.rows / secs:,.0f} rows/s, {base / secs:.0%} of the SELECT's rate; "
                  f"{report.bytes / 1e6:.1f} MB")
        print(f"load after: {load_average()}")


if __name__ == "__main__":
    main()
