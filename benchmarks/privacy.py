"""Privacy benchmark: what sealing and opening officer pages cost, next to decoding them plainly.

    python benchmarks/privacy.py                      # 2,000 pages of 5 officers, 3 rounds
    python benchmarks/privacy.py --pages 200 --vacuum-mb 20   # a quick check that it works

All in one run, on a real SQLite file with chledger's pragmas and migrations:
1. baseline: `msgspec.json.decode` of each page, and the officers projector's own decoder
   (`projections.payloads.decode_officer_page`) on the plaintext page;
2. append each page to the ledger, one transaction (one commit) per page as the sender does:
   plaintext (today), then sealed with a new key per officer, then sealed again with the keys
   in place (a re-fetch);
3. open each sealed page with `Opener` (one per 100 pages, as one per projector batch), and open
   + the projector's decoder: what the projector will pay per page instead of (1);
4. a plaintext page through `Opener` (a ledger written before sealing, nobody forgotten);
5. the officers projector re-applying every page (DELETE + INSERT of their rows) with
   `secure_delete` off, then on: what turning it on for the worker's connection costs;
6. `VACUUM` of a file of `--vacuum-mb` MB, the step `forget` takes to leave no freed byte.

Figures are medians over `--rounds`; per-item times divide by the officers handled.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

from benchmarks.common import fresh_db, load_average, stopwatch  # noqa: E402
from eventlog.clock import SystemClock, from_epoch  # noqa: E402
from eventlog.ledger.db import connect, transaction  # noqa: E402
from eventlog.ledger.entries import ResponseReceived  # noqa: E402
from eventlog.ledger.store import Ledger, Record  # noqa: E402
from eventlog.ledger.migrate import migrate  # noqa: E402
from eventlog.privacy import Opener, Sealer  # noqa: E402
from eventlog.simulator import names  # noqa: E402
from projections import officers  # noqa: E402
from projections.records import Batch  # noqa: E402
from projections.payloads import decode_officer_page  # noqa: E402

BATCH = 100  # pages per Opener, as per projector batch


def officer_id(rng: random.Random) -> str:
    return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") for _ in range(27))


def make_pages(count: int, per_page: int, seed: int = 7) -> list[tuple[str, bytes]]:
    """(company number, officer-list page) pairs shaped like Companies House's, deterministic."""
    rng = random.Random(seed)
    pages = []
    for p in range(count):
        company = f"{10_000_000 + p:08d}"
        items = []
        for i in range(per_page):
            items.append({
                "address": {"address_line_1": rng.choice(names.STREETS), "country": "England",
                            "locality": "Leeds", "postal_code": f"LS{rng.randint(1, 28)} {rng.randint(1, 9)}AB",
                            "premises": str(rng.randint(1, 200))},
                "appointed_on": f"20{rng.randint(10, 23)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                "country_of_residence": "England",
                "date_of_birth": {"month": rng.randint(1, 12), "year": rng.randint(1940, 2000)},
                "links": {"officer": {"appointments": f"/officers/{officer_id(rng)}/appointments"},
                          "self": f"/company/{company}/appointments/{officer_id(rng)}"},
                "name": f"{rng.choice(names.SURNAMES)}, {rng.choice(names.FORENAMES)}",
                "nationality": rng.choice(names.NATIONALITIES),
                "occupation": rng.choice(names.OCCUPATIONS),
                "officer_role": "director",
            })
        pages.append((company, msgspec.json.encode({
            "active_count": per_page, "etag": f"{rng.getrandbits(160):040x}", "items": items,
            "items_per_page": 35, "kind": "officer-list", "start_index": 0, "total_results": per_page})))
    return pages


def us_per_item(seconds: float, items: int) -> float:
    return seconds / items * 1e6


def one_round(db: Path, pages: list[tuple[str, bytes]], items: int) -> dict[str, float]:
    conn = connect(fresh_db(db))
    migrate(conn)
    now = from_epoch(SystemClock().now())
    out: dict[str, float] = {}

    with stopwatch() as sw:
        for _, body in pages:
            msgspec.json.decode(body)
    out["json decode (baseline)"] = us_per_item(sw.seconds, items)
    with stopwatch() as sw:
        for _, body in pages:
            decode_officer_page(msgspec.Raw(body))
    out["projector decode (baseline)"] = us_per_item(sw.seconds, items)

    ledger = Ledger(conn)

    def response(i: int, company: str, body: bytes) -> ResponseReceived:
        return ResponseReceived(request_id=f"r{i}", kind="officers", company_number=company, status=200,
                                elapsed_ms=1, body=msgspec.Raw(body))

    with stopwatch() as sw:  # what the sender does today: one append (one commit) per page
        for i, (company, body) in enumerate(pages):
            with ledger.transaction() as tx:
                tx.append(response(i, company, body))
    out["append plaintext page (baseline)"] = us_per_item(sw.seconds, items)
    sealed: list[bytes] = []
    for label in ("new keys", "keys exist"):
        spent = 0.0  # the seal alone, inside the append transaction: a commit's fsync would drown it
        with stopwatch() as sw:
            for i, (company, body) in enumerate(pages):
                with ledger.transaction() as tx:
                    start = time.perf_counter()
                    page = Sealer(tx.conn, now).seal_officer_page(body, company).body
                    spent += time.perf_counter() - start
                    tx.append(response(i, company, page))
                if label == "new keys":
                    sealed.append(page)
        out[f"seal + append, {label}"] = us_per_item(sw.seconds, items)
        out[f"seal alone, {label}"] = us_per_item(spent, items)

    with stopwatch() as sw:
        for i, body in enumerate(sealed):
            if i % BATCH == 0:
                opener = Opener(conn)
            opener.open_officer_page(body)
    out["open"] = us_per_item(sw.seconds, items)
    with stopwatch() as sw:
        for i, body in enumerate(sealed):
            if i % BATCH == 0:
                opener = Opener(conn)
            decode_officer_page(msgspec.Raw(opener.open_officer_page(body).body))
    out["open + projector decode"] = us_per_item(sw.seconds, items)
    with stopwatch() as sw:
        for i, (_, body) in enumerate(pages):
            if i % BATCH == 0:
                opener = Opener(conn)
            decode_officer_page(msgspec.Raw(opener.open_officer_page(body).body))
    out["plaintext page + projector decode"] = us_per_item(sw.seconds, items)

    records = [Record(i + 1, f"r{i}", "response.received", company, now,
                      ResponseReceived(request_id=f"r{i}", kind="officers", company_number=company, status=200,
                                       elapsed_ms=1, body=msgspec.Raw(body)))
               for i, (company, body) in enumerate(pages)]
    for setting in ("OFF", "ON"):
        conn.execute(f"PRAGMA secure_delete = {setting}")
        with transaction(conn):  # the rows exist, so each page deletes and reinserts
            officers.apply(conn, Batch(records))
        with stopwatch() as sw:
            for i in range(0, len(records), BATCH):
                with transaction(conn):
                    officers.apply(conn, Batch(records[i:i + BATCH]))
        out[f"projector rows, secure_delete {setting}"] = us_per_item(sw.seconds, items)
    conn.close()
    return out


def vacuum_seconds(db: Path, megabytes: int) -> tuple[float, float]:
    """Seconds to VACUUM a WAL file of about `megabytes` MB of ledger-like rows, and its real size."""
    conn = connect(fresh_db(db))
    migrate(conn)
    ledger = Ledger(conn)
    body = msgspec.Raw(make_pages(1, 5)[0][1])
    per_entry = len(body) + 200
    count = megabytes * 2**20 // per_entry
    for start in range(0, count, 5000):
        ledger.append_many([ResponseReceived(request_id=f"v{i}", kind="officers", company_number="10000000",
                                             status=200, elapsed_ms=1, body=body)
                            for i in range(start, min(count, start + 5000))])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    size = db.stat().st_size / 2**20
    with stopwatch() as sw:
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    conn.close()
    return sw.seconds, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--per-page", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--vacuum-mb", type=int, default=200)
    args = ap.parse_args()
    pages = make_pages(args.pages, args.per_page)
    items = args.pages * args.per_page
    print(f"privacy: {args.pages} pages x {args.per_page} officers, {args.rounds} rounds; "
          f"load {load_average()}")
    with tempfile.TemporaryDirectory() as tmp:
        rounds = [one_round(Path(tmp) / "privacy.db", pages, items) for _ in range(args.rounds)]
        figures = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
        base = figures["projector decode (baseline)"]
        for name, value in figures.items():
            print(f"  {name:<40} {value:8.2f} µs per officer  ({value / base:5.1f}x the projector's decode)")
        extra = figures["open + projector decode"] - base
        append = figures["append plaintext page (baseline)"]
        print(f"  the projector pays {extra:.2f} µs more per officer to open sealed pages; the sender "
              f"{figures['seal alone, keys exist']:.2f} µs (keys exist) to {figures['seal alone, new keys']:.2f} µs "
              f"(new keys) per officer to seal, beside {append:.2f} µs per officer for the append and its commit")
        if args.vacuum_mb:
            seconds, size = vacuum_seconds(Path(tmp) / "vacuum.db", args.vacuum_mb)
            print(f"  VACUUM + checkpoint of a {size:.0f} MB file: {seconds:.2f} s ({size / seconds:.0f} MB/s)")


if __name__ == "__main__":
    main()
