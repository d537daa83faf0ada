"""Replay speed: 1,000,000 realistic ledger entries rebuilt into every projection.

The ledger is mostly company-profile stream events with real-sized payloads
(the captured sample of tests/data/captured-events.ndjson, about 1.3 kB, varied per
company; see projections.testing), plus the REST traffic a worker appends: queued, sent, profile and
officer-list responses, some 429s and transport errors, abandoned requests,
worker starts and stream connections. Baseline, measured in the same run on the
same file: the ledger's raw read rate (rows only, then rows decoded into
entries), which bounds what any replay can do. The replay runs twice on the
same file: in one process (`jobs=1`), then split over processes as the command
does by default (one per core, at most 3; `projections/replay/parallel.py`).

    python benchmarks/replay.py                 # 1,000,000 entries
    python benchmarks/replay.py --entries 200000 --keep /tmp/bench.db

Peak memory is the RSS of the process plus its replay workers, sampled at every
progress report; "flat" means the RSS at the end is about what it was after the
first 10% of the ledger. CPU seconds include the workers'.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import apsw
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eventlog.clock import FixedClock  # noqa: E402
from eventlog.ledger.db import connect  # noqa: E402
from eventlog.ledger.entries import (  # noqa: E402
    BackfillCreated, RateLimited, RequestAbandoned, RequestQueued, RequestSent, ResponseReceived,
    StreamConnected, StreamEvent, TransportError, WorkerStarted,
)
from eventlog.ledger.store import Ledger  # noqa: E402
from eventlog.ledger.migrate import migrate  # noqa: E402
from projections.testing import STRIKE_OFF, officer, officers_page, profile  # noqa: E402

WORDS = ("NORTH", "ACME", "THAMES", "OAK", "PHOENIX", "BRIDGE", "ORCHARD", "SUMMIT", "HARBOUR", "VALE")


def _profile(rng: random.Random, number: str, strike_off: bool) -> bytes:
    return profile(number, name=f"{rng.choice(WORDS)} {rng.choice(WORDS)} {number[-4:]} LTD",
                   detail=STRIKE_OFF if strike_off else None, etag=f"{rng.getrandbits(160):040x}")


def _officers(rng: random.Random, n: int) -> bytes:
    return officers_page([officer(f"{rng.getrandbits(100):025x}", f"SMITH, {rng.choice(WORDS).title()}")
                          for _ in range(n)])


def entries(n: int, seed: int = 1):
    """`n` entries in the proportions of a busy day: ~93% stream events, ~7% REST traffic."""
    rng = random.Random(seed)
    pool = max(n // 2, 10)
    timepoint = 68_000_000
    req = 0
    yield WorkerStarted(version="bench", pid=1, rate_limit_requests=600, rate_limit_window=300.0)
    yield StreamConnected(stream="companies", from_timepoint=None)
    count = 2
    while count < n:
        timepoint += rng.randint(1, 3)
        number = f"{rng.randrange(pool):08d}"
        strike = rng.random() < 0.05
        ev = StreamEvent(stream="companies", timepoint=timepoint, published_at="2023-11-04T14:33:29",
                         change="deleted" if rng.random() < 0.01 else "changed",
                         resource_kind="company-profile", resource_id=number,
                         resource_uri=f"/company/{number}", company_number=number,
                         data=msgspec.Raw(_profile(rng, number, strike)))
        yield ev
        count += 1
        if rng.random() < 0.0125 and count + 6 < n:  # a REST round trip: profile, maybe officers
            req += 1
            kind = "officers" if strike else "profile"
            rid = f"{kind}-{number}-{req}"
            yield RequestQueued(request_id=rid, kind=kind, company_number=number)
            yield RequestSent(request_id=rid, kind=kind, company_number=number, path=f"/company/{number}")
            draw = rng.random()
            if draw < 0.03:
                yield RateLimited(request_id=rid, kind=kind, company_number=number, status=429, elapsed_ms=40,
                                  cooldown_until="2023-11-04T14:40:00.000000Z")
            elif draw < 0.06:
                yield TransportError(request_id=rid, kind=kind, company_number=number,
                                     error="TIMEOUT: request timed out", elapsed_ms=30000)
            elif draw < 0.08:
                yield ResponseReceived(request_id=rid, kind=kind, company_number=number, status=404, elapsed_ms=80)
                yield RequestAbandoned(request_id=rid, kind=kind, company_number=number, error_code="NOT_FOUND")
            else:
                body = _officers(rng, rng.randint(1, 6)) if kind == "officers" else _profile(rng, number, False)
                yield ResponseReceived(request_id=rid, kind=kind, company_number=number, status=200,
                                       elapsed_ms=rng.randint(60, 400), body=msgspec.Raw(body))
            count += 3
        if count % 200_000 == 0:
            yield BackfillCreated(batch_id=f"b{count}", name="bench", expires_at="2030-01-01T00:00:00.000000Z",
                                  company_numbers=[f"{rng.randrange(pool):08d}" for _ in range(500)])
            count += 1


def build(path: str, n: int) -> int:
    conn = connect(path)
    migrate(conn)
    clock = FixedClock(1_700_000_000.0)
    ledger = Ledger(conn, clock)  # no projection hooks: replay builds them
    batch = []
    for entry in entries(n):
        batch.append(entry)
        if len(batch) == 2000:
            ledger.append_many(batch)
            batch = []
            clock.advance(1.0)
    if batch:
        ledger.append_many(batch)
    head = ledger.head()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return head


def _cpu() -> float:
    """CPU seconds (user + system) of this process and of its children that have ended (replay workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class Timer:
    """Wall and CPU (user + system, replay workers included) seconds of a block."""

    def __enter__(self) -> "Timer":
        self._wall, self._cpu = time.perf_counter(), _cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = _cpu() - self._cpu


def rss_mb() -> float:
    """RSS of this process plus its live children (the replay workers), in MB."""
    try:
        import psutil
        me = psutil.Process()
        total = me.memory_info().rss
        for child in me.children():
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return total / 1e6
    except ImportError:  # bench extra not installed: read /proc (this process only)
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


_PROFILE_COLUMNS = ("company_name", "company_status", "company_status_detail", "company_type", "jurisdiction",
                    "date_of_creation", "registered_office_address", "sic_codes", "etag")
_FLOOR_COMPANIES = (
    f"INSERT INTO companies(company_number, {', '.join(_PROFILE_COLUMNS)}, deleted, stream_last_updated, "
    "stream_event_id, stream_event_type, stream_timepoint, stream_processing_status, stream_status, "
    "stream_metadata, data_source, last_stream_event_id, updated_at) "
    "SELECT company_number, "
    + ", ".join(f"json_extract(event_data, '$.data.{'type' if c == 'company_type' else c}')" for c in _PROFILE_COLUMNS)
    + ", json_extract(event_data, '$.change') = 'deleted', json_extract(event_data, '$.published_at'), event_id, "
    "json_extract(event_data, '$.change'), json_extract(event_data, '$.timepoint'), 'processed', 'active', "
    "json_object('timepoint', json_extract(event_data, '$.timepoint'), 'published_at', "
    "json_extract(event_data, '$.published_at'), 'resource_uri', json_extract(event_data, '$.resource_uri')), "
    "'stream', event_id, received_at FROM ledger.event_log "
    "WHERE id > ? AND id <= ? AND event_type = 'stream.event' ORDER BY id "
    "ON CONFLICT(company_number) DO UPDATE SET "
    + ", ".join(f"{c} = iif(excluded.stream_timepoint >= companies.stream_timepoint, excluded.{c}, companies.{c})"
                for c in _PROFILE_COLUMNS + ("stream_last_updated", "stream_event_id", "stream_timepoint",
                                             "stream_metadata"))
    + ", last_stream_event_id = excluded.last_stream_event_id, updated_at = excluded.updated_at")
_FLOOR_STATE = (
    "INSERT INTO company_processing_state(company_number, processing_state, created_at, updated_at, "
    "status_fetched_at, completed_at) "
    "SELECT company_number, iif(json_extract(event_data, '$.data.company_status_detail') = "
    "'active-proposal-to-strike-off', 'strike_off_confirmed', 'completed'), received_at, received_at, "
    "received_at, received_at FROM ledger.event_log "
    "WHERE id > ? AND id <= ? AND event_type = 'stream.event' ORDER BY id "
    "ON CONFLICT(company_number) DO UPDATE SET updated_at = excluded.updated_at, "
    "status_fetched_at = excluded.status_fetched_at")


def sql_floor(path: str, head: int) -> None:
    """What SQLite alone costs for the two rows a replay writes per stream event, with no Python at all.

    Both upserts run as `INSERT … SELECT json_extract(…) FROM event_log` in C, in
    batches of 5,000 positions, into empty tables made from the real DDL (no
    secondary indexes, as replay builds them) in a scratch file: a lower bound for
    one core that no Python projector can beat, whatever it does.
    """
    from projections.tables import table_ddl

    source = connect(path)
    ddl = [table_ddl(source, t)[0] for t in ("companies", "company_processing_state")]
    stream_events = source.execute("SELECT count(*) FROM event_log WHERE event_type = 'stream.event'").fetchone()[0]
    source.close()
    with tempfile.TemporaryDirectory(prefix="replay-floor-") as d:
        scratch = apsw.Connection(os.path.join(d, "floor.db"))
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -65536"):
            scratch.execute(f"PRAGMA {pragma}")
        for sql in ddl:
            scratch.execute(sql)
        scratch.execute("ATTACH DATABASE ? AS ledger", (path,))  # only read
        parts = {}
        for name, sql in (("companies", _FLOOR_COMPANIES), ("company_processing_state", _FLOOR_STATE)):
            scratch.execute("BEGIN")
            with Timer() as t:
                for lo in range(0, head, 5000):
                    scratch.execute(sql, (lo, lo + 5000))
            scratch.execute("COMMIT")
            parts[name] = t.cpu
        scratch.close()
    both = sum(parts.values())
    print(f"SQL floor (no Python): {stream_events:,} stream events upserted into companies in "
          f"{parts['companies']:.1f} CPU-s ({parts['companies'] / stream_events * 1e6:.1f} µs each) and into "
          f"company_processing_state in {parts['company_processing_state']:.1f} CPU-s "
          f"({parts['company_processing_state'] / stream_events * 1e6:.1f} µs each)")
    print(f"  = at most {head / both:,.0f} entries/s on one core, {head / max(parts.values()):,.0f}/s "
          "with the two tables on two cores, before reading or projecting anything in Python")


def timed_replay(conn, head: int, decoded: float, decoded_cpu: float, jobs: int | None) -> None:
    """One replay (serial with jobs=1, or the default split over processes), its rates and memory."""
    from projections.replay import replay, verify

    samples: list[tuple[int, float]] = []

    def progress(done: int, total: int) -> None:
        samples.append((done, rss_mb()))

    start_rss = rss_mb()
    with Timer() as t:
        report = replay(conn, progress=progress, jobs=jobs)
    peak = max(m for _, m in samples)
    tenth = next((m for d, m in samples if d >= head // 10), samples[-1][1])
    how = "1 process" if report.processes == 1 else f"{report.processes} processes"
    print(f"replay, {how} (all {len(report.projections)} projections): {report.rate:>10,.0f} entries/s wall, "
          f"{report.entries / t.cpu:>10,.0f} per CPU-second  ({report.entries:,} entries in {report.seconds:.1f} s, "
          f"{t.cpu:.1f} CPU-s)")
    print(f"  {report.rate / decoded:.0%} of the decoded read rate (wall), "
          f"{report.entries / t.cpu / decoded_cpu:.0%} (CPU)")
    print(f"  memory (with workers): RSS {start_rss:,.0f} MB before, {tenth:,.0f} MB at 10%, peak {peak:,.0f} MB, "
          f"{samples[-1][1]:,.0f} MB at the last report")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--keep", help="build (or reuse) the ledger at this path")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="replay-bench-") as workdir:
        run(args.keep or os.path.join(workdir, "bench.db"), args.entries)


def run(path: str, entries: int) -> None:
    from projections.replay import replay, verify
    from eventlog.ledger.store import Ledger as L

    t = time.perf_counter()
    if not os.path.exists(path):
        head = build(path, entries)
        print(f"built a ledger of {head:,} entries in {time.perf_counter() - t:.1f} s "
              f"({os.path.getsize(path) / 1e6:,.0f} MB)")
    conn = connect(path)
    ledger = L(conn)
    head = ledger.head()

    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
          "(wall-clock rates suffer when other processes share the CPUs; CPU-time rates much less)")
    with Timer() as t:
        n = sum(1 for _ in ledger.read_rows(0, batch_size=5000))
    raw, raw_cpu = n / t.wall, n / t.cpu
    with Timer() as t:
        n = sum(1 for _ in ledger.read(0, batch_size=5000))
    decoded, decoded_cpu = n / t.wall, n / t.cpu
    print(f"ledger raw read:       {raw:>10,.0f} entries/s wall, {raw_cpu:>10,.0f} per CPU-second  (rows)")
    print(f"ledger decoded read:   {decoded:>10,.0f} entries/s wall, {decoded_cpu:>10,.0f} per CPU-second  "
          "(rows -> typed entries)")

    sql_floor(path, head)
    for jobs in (1, None):
        timed_replay(conn, head, decoded, decoded_cpu, jobs)
    counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("companies", "company_processing_state", "officers", "api_rate_limit_log",
                        "request_queue", "batch_jobs")}
    print("rows:", ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    t = time.perf_counter()
    diffs = verify(conn)
    print(f"verify: {len(diffs)} difference(s) in {time.perf_counter() - t:.1f} s")
    conn.close()


if __name__ == "__main__":
    main()
