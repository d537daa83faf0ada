"""A large, realistic ledger for `benchmarks/audit.py`, built fast and cached under /tmp.

One request = `request.queued` (in bursts of 100, as stream detections arrive), `request.sent`
and its `response.received` (a ~500-byte company profile body), sent at ~2 req/s: gaps of
0.5-0.55 s, so no 300 s window holds more than 600 sends, the default limit. Every 250,000
requests one answer is a 429 whose 60 s cooldown is honoured. Rows are written with
`executemany` and hashes chained with `ledger.chain_hash`, so the result verifies exactly like a
ledger written by `Ledger.append`; `api_rate_limit_log` rows follow the projection's rules.
"""

from __future__ import annotations

import os
import random
import time
import uuid

import msgspec

from eventlog.clock import from_epoch
from eventlog.ledger.db import connect
from eventlog.ledger.entries import (
    RateLimited,
    RequestQueued,
    RequestSent,
    ResponseReceived,
    StreamGap,
    WorkerStarted,
    encode,
)
from eventlog.ledger.chain import GENESIS, chain_hash
from eventlog.ledger.migrate import migrate

__all__ = ["FIXTURE_VERSION", "fixture_path", "build_fixture"]

FIXTURE_VERSION = 1
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
_BODY = (
    '{"company_name":"GLENCOYNE ENGINEERING LTD","company_number":"%s","company_status":"active",'
    '"company_status_detail":"active-proposal-to-strike-off","date_of_creation":"2006-10-03",'
    '"etag":"055ef4b361baa737e96bdaf5e7c0cb9b1ba31b3b","jurisdiction":"england-wales",'
    '"links":{"filing_history":"/company/%s/filing-history","officers":"/company/%s/officers",'
    '"self":"/company/%s"},"registered_office_address":{"address_line_1":"Unit10 Heath Road '
    'Industrial Estate","address_line_2":"Banham","locality":"Norwich","postal_code":"NR16 2HS"},'
    '"sic_codes":["45200"],"type":"ltd","can_file":true}'
)
_INSERT = ("INSERT INTO event_log(id, event_id, event_type, company_number, event_data, received_at,"
           " hash) VALUES (?, ?, ?, ?, ?, ?, ?)")
_INSERT_LOG = ("INSERT INTO api_rate_limit_log(id, timestamp, request_type, response_status,"
               " company_number, request_id, processing_time_ms) VALUES (?, ?, ?, ?, ?, ?, ?)")


def fixture_path(requests: int) -> str:
    return f"/tmp/chledger-audit-bench-{requests}-v{FIXTURE_VERSION}.db"


class _Writer:
    """Chains and buffers rows; flushes them in big `executemany` batches."""

    def __init__(self, conn):
        self.conn = conn
        self.pos = 0
        self.prev = GENESIS
        self.rows: list[tuple] = []
        self.log: list[tuple] = []

    def add(self, entry, at: float, event_id: str | None = None) -> int:
        self.pos += 1
        tag = entry.__struct_config__.tag
        event_id = event_id or f"{tag}:{self.pos}"
        data = encode(entry).decode()
        company = entry.company()
        received_at = from_epoch(at)
        self.prev = chain_hash(self.prev, self.pos, event_id, tag, company, received_at, data)
        self.rows.append((self.pos, event_id, tag, company, data, received_at, self.prev))
        if len(self.rows) >= 50_000:
            self.flush()
        return self.pos

    def flush(self) -> None:
        self.conn.executemany(_INSERT, self.rows)
        self.conn.executemany(_INSERT_LOG, self.log)
        self.rows.clear()
        self.log.clear()


def build_fixture(path: str, requests: int, *, seed: int = 6) -> str:
    """Write the ledger of `requests` requests to `path` (replacing it); return the path."""
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    rnd = random.Random(seed)
    conn = connect(path)
    migrate(conn)
    conn.execute("PRAGMA synchronous=OFF")
    w = _Writer(conn)
    conn.execute("BEGIN")
    t = START
    w.add(WorkerStarted(version="bench", pid=1, rate_limit_requests=600, rate_limit_window=300.0), t)
    ids = [uuid.UUID(int=rnd.getrandbits(128)).hex for _ in range(100)]
    for k in range(requests):
        number = f"{rnd.randrange(10**8):08d}"
        if k % 100 == 0:
            ids = [uuid.UUID(int=rnd.getrandbits(128)).hex for _ in range(100)]
            companies = [f"{rnd.randrange(10**8):08d}" for _ in range(100)]
            for rid, company in zip(ids, companies):
                w.add(RequestQueued(request_id=rid, kind="profile", company_number=company), t,
                      f"queued:{rid}")
        rid, number = ids[k % 100], companies[k % 100]
        sent_at = t + 0.001
        pos = w.add(RequestSent(request_id=rid, kind="profile", company_number=number,
                                path=f"/company/{number}"), sent_at)
        elapsed = rnd.randint(40, 400)
        answer_at = sent_at + elapsed / 1000
        if k and k % 250_000 == 0:
            cooldown = answer_at + 60
            w.add(RateLimited(request_id=rid, kind="profile", company_number=number, status=429,
                              elapsed_ms=elapsed, cooldown_until=from_epoch(cooldown)), answer_at)
            w.log.append((pos, from_epoch(sent_at), "profile", 429, number, rid, elapsed))
            t = cooldown
        else:
            body = (_BODY % (number, number, number, number)).encode()
            w.add(ResponseReceived(request_id=rid, kind="profile", company_number=number, status=200,
                                   elapsed_ms=elapsed, body=msgspec.Raw(body)), answer_at)
            w.log.append((pos, from_epoch(sent_at), "profile", 200, number, rid, elapsed))
        if k == requests // 2:
            w.add(StreamGap(stream="companies", requested_timepoint=1000, reason="416"), answer_at)
        t += 0.5 + rnd.random() * 0.05
    w.flush()
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def ensure_fixture(requests: int) -> tuple[str, float]:
    """The cached fixture's path, building it first if missing; and the build time (0 if cached)."""
    path = fixture_path(requests)
    if os.path.exists(path):
        return path, 0.0
    start = time.perf_counter()
    tmp = path + ".building"
    build_fixture(tmp, requests)
    os.replace(tmp, path)
    return path, time.perf_counter() - start
