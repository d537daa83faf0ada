"""Generated ledgers for the determinism contract (hypothesis): every kind of entry the worker
appends, with ids and companies drawn from small pools so that they collide, cut into appends.

Used by the determinism suite and by the parallel replay's tests, which must build the same
tables from the same ledgers.
"""

from __future__ import annotations

import json

import msgspec
from hypothesis import strategies as st

import projections
from eventlog.clock import FixedClock
from eventlog.ledger.db import connect
from eventlog.ledger.entries import (
    BackfillCreated,
    CompanyCompleted,
    Interest,
    RateLimited,
    RequestAbandoned,
    RequestQueued,
    RequestSent,
    StreamConnected,
    StreamDisconnected,
    StreamEvent,
    StreamGap,
    StreamLineRejected,
    TransportError,
    WorkerStarted,
)
from eventlog.ledger.store import Ledger
from eventlog.ledger.migrate import migrate
from projections.testing import STRIKE_OFF, officer, officers_page, profile, response, stream_event

NUMBERS = ["1", "00000001", "2", "sc000003", "SC000003", "4"]
REQUESTS = ["r1", "r2", "r3", "r4", "r5"]
KINDS = ["profile", "officers"]

numbers = st.sampled_from(NUMBERS)
request_ids = st.sampled_from(REQUESTS)
kinds = st.sampled_from(KINDS)


@st.composite
def payloads(draw, number: str) -> bytes:
    choice = draw(st.sampled_from(["active", "strike", "strike", "no-status", "null", "odd", "liquidation",
                                   "dissolved"]))
    if choice == "active":
        return profile(number)
    if choice == "strike":
        return profile(number, detail=STRIKE_OFF)
    if choice == "no-status":
        return profile(number, status=None)
    if choice == "liquidation":
        return profile(number, status="liquidation")
    if choice == "dissolved":  # its officers without resigned_on are inactive, not current
        return profile(number, status="dissolved")
    if choice == "odd":
        return json.dumps({"company_name": 7, "company_status": "active", "sic_codes": "1"}).encode()
    return b"null"


# A first Gazette notice (compulsory, voluntary) makes a stub row in `companies`; another filing doesn't.
_GAZ1 = b'{"category":"gazette","type":"GAZ1","description":"gazette-notice-compulsory"}'
_GAZ1A = b'{"category":"gazette","type":"GAZ1(A)","description":"gazette-notice-voluntary"}'
_OTHER_FILING = b'{"category":"accounts","type":"AA","description":"accounts-with-accounts-type-micro-entity"}'


@st.composite
def stream_events(draw) -> StreamEvent:
    number = draw(numbers)
    event = stream_event(number, draw(st.integers(1, 30)),
                         change=draw(st.sampled_from(["changed", "changed", "changed", "deleted"])),
                         data=draw(payloads(number)),
                         fields_changed=draw(st.none() | st.just(["company_status"])))
    if draw(st.integers(0, 9)) == 0:  # another stream's resource: only stream_metadata cares
        event = StreamEvent(stream="filings", timepoint=event.timepoint, published_at=event.published_at,
                            change="changed", resource_kind="filing-history", resource_id="MzM5",
                            resource_uri="/company/1/filing-history/MzM5", company_number=number,
                            data=draw(st.sampled_from([msgspec.Raw(b"null"), msgspec.Raw(_GAZ1), msgspec.Raw(_GAZ1A),
                                                       msgspec.Raw(_OTHER_FILING)])))
    return event


@st.composite
def responses(draw):
    rid, kind, number = draw(request_ids), draw(kinds), draw(numbers)
    status = draw(st.sampled_from([200, 200, 200, 404, 503]))
    page_start = draw(st.sampled_from([0, 0, 2]))
    if status != 200:
        body = None
    elif kind == "profile":
        body = draw(payloads(number))
    else:
        items = [officer(f"p{i}") for i in range(draw(st.integers(0, 3)))]
        body = draw(st.sampled_from([officers_page(items, total=page_start + len(items) + draw(st.integers(0, 2)),
                                                   start=page_start), b'{"items": 3}']))
    return response(rid, kind, number, status=status, body=body, page_start=page_start,
                    elapsed_ms=draw(st.integers(0, 900)))


def _request(cls, draw, **kw):
    return cls(request_id=draw(request_ids), kind=draw(kinds), company_number=draw(numbers), **kw)


@st.composite
def entries(draw):
    kind = draw(st.sampled_from(
        ["event"] * 8 + ["queued"] * 2 + ["sent"] * 2 + ["response"] * 2 +
        ["429", "transport", "abandoned", "completed", "backfill", "worker", "worker", "connection"]))
    if kind == "event":
        return draw(stream_events())
    if kind == "queued":
        return _request(RequestQueued, draw, attempt=draw(st.integers(1, 4)), priority=draw(st.sampled_from([0, 1])),
                        batch_id=draw(st.none() | st.just("b1")))
    if kind == "sent":
        return _request(RequestSent, draw, path="/x", page_start=draw(st.sampled_from([0, 2])))
    if kind == "response":
        return draw(responses())
    if kind == "429":
        return _request(RateLimited, draw, status=draw(st.sampled_from([429, 403])), elapsed_ms=5,
                        cooldown_until="2023-11-14T23:00:00.000000Z")
    if kind == "transport":
        return _request(TransportError, draw, error=draw(st.sampled_from(["TIMEOUT: slow", "reset"])), elapsed_ms=9)
    if kind == "abandoned":
        return _request(RequestAbandoned, draw, error_code=draw(st.sampled_from(["NOT_FOUND", "MAX_RETRIES"])))
    if kind == "completed":
        return CompanyCompleted(company_number=draw(numbers), reason="fresh")
    if kind == "backfill":
        return BackfillCreated(batch_id=draw(st.sampled_from(["b1", "b2"])), name="n",
                               company_numbers=draw(st.lists(numbers, max_size=4)),
                               expires_at="2030-01-01T00:00:00.000000Z")
    if kind == "worker":
        interest = draw(st.sampled_from([Interest(), Interest(field="company_status", values=("liquidation",))]))
        return WorkerStarted(version="t", pid=1, rate_limit_requests=600, rate_limit_window=300.0, interest=interest)
    return draw(st.sampled_from([
        StreamConnected(stream="companies"), StreamConnected(stream="companies", from_timepoint=3),
        StreamDisconnected(stream="companies", reason="closed"),
        StreamDisconnected(stream="companies", reason="401", status=401, fatal=True),
        StreamGap(stream="companies", requested_timepoint=2, reason="416"),
        StreamLineRejected(stream="companies", reason="bad JSON", excerpt="{", length=1),
    ]))


@st.composite
def ledgers(draw):
    """Entries with their event ids, cut into appends, each with the clock step before it."""
    items = draw(st.lists(entries(), min_size=20, max_size=90))
    with_ids = []
    for i, e in enumerate(items):
        natural = isinstance(e, (StreamEvent, RequestQueued))  # their ids de-duplicate
        with_ids.append((None if natural else f"e{i}", e))
    cuts, i = [], 0
    while i < len(with_ids):
        n = draw(st.integers(1, 6))
        cuts.append((draw(st.sampled_from([0.0, 0.5, 1.0, 7.0])), with_ids[i:i + n]))
        i += n
    return cuts


def _build(path: str, cuts, hook: bool) -> tuple:
    conn = connect(path)
    migrate(conn)
    clock = FixedClock(1_700_000_000.0)
    ledger = Ledger(conn, clock)
    projections.check_versions(conn)
    if hook:
        projections.attach(ledger)
    for step, batch in cuts:
        clock.advance(step)
        ledger.append_many(batch)
    return conn
