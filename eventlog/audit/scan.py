"""One forward pass over a range of ledger positions: the hash chain and the facts together.

The audit's cost is reading and hashing every row (a million requests are ~3M rows and ~2 GB),
so each row is read once, and the ledger is split into ranges of positions that run in
parallel processes (`run.py` merges them). Per range this:
- checks the hash chain as `Ledger.verify` does (the ledger's own formula: same bytes, same
  SHA-256), starting from the stored hash of the row before the range (each row's check needs
  only its predecessor's stored hash, so ranges are independent; together they check the whole
  chain);
- keeps send times and positions as compact arrays (16 bytes per send), not records;
- traces every `request.sent` to an earlier `request.queued`, holding at most two generations of
  recent request ids; a send it can't trace here (queued in an earlier range, or long ago) is a
  *candidate* that `settle.py` settles with an index lookup, so memory stays flat and the
  answer stays exact;
- checks `api_rate_limit_log` against the sends, reading the table in the same snapshot, by the
  projection's rule (the `api_rate_limit_log` projector's): an answer (`response.received`,
  `request.rate_limited`, `request.transport_error`) belongs to the newest send of its
  request_id still waiting. A row is held only while its send waits, and compared when its
  answer comes. Sends still waiting at the end of the range are handed back, to be settled once
  all ranges are in.
Entries are decoded into small Structs of only the fields needed; an entry that won't decode is
reported as malformed, never a crash.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from array import array
from typing import Iterator

import apsw
import msgspec

from eventlog.ledger.chain import (GENESIS, MESSAGE_SQL, careful_rows, chain_hash, formula_agrees,
                                   mismatch_reason, row_hash)
from eventlog.audit.timestamps import to_us
from eventlog.ledger.db import connect, translated

__all__ = ["RangeScan", "Pending", "TableIssue", "Noted", "scan_range", "range_snapshot", "predecessor_hash",
           "TABLE_COLUMNS", "SENT", "ANSWERS"]

SENT = "request.sent"
QUEUED = "request.queued"
RATE_LIMITED = "request.rate_limited"
ANSWERS = frozenset({"response.received", RATE_LIMITED, "request.transport_error"})
NOTED = frozenset({"worker.started", "worker.emergency_stop", "stream.gap"})
_READ = ANSWERS | NOTED | {SENT, QUEUED}  # the entries whose body and time the scan reads
TABLE_COLUMNS = ("id", "timestamp", "request_type", "response_status", "company_number", "request_id")
# Read in the order the scan compares: what the send fixes first, the status its answer sets last.
_TABLE_SQL = ("SELECT id, timestamp, request_type, company_number, request_id, response_status "
              "FROM api_rate_limit_log WHERE id BETWEEN ? AND ? ORDER BY id")
# event_data is skipped for stream events, most rows of a real ledger and never read here (one
# comparison per row is cheaper than an IN list; the few other unread types fall through).
_ROWS_SQL = ("SELECT id, event_type, received_at, CASE WHEN event_type <> 'stream.event' "
             f"THEN event_data END, {MESSAGE_SQL}, hash "
             "FROM event_log WHERE id BETWEEN ? AND ? ORDER BY id")
_ROWS_FACTS_SQL = ("SELECT id, event_type, received_at, CASE WHEN event_type <> 'stream.event' "
                   "THEN event_data END, NULL, NULL FROM event_log WHERE id BETWEEN ? AND ? ORDER BY id")
_ROWS_FALLBACK_SQL = ("SELECT id, event_type, received_at, event_data, event_id, company_number, hash "
                      "FROM event_log WHERE id BETWEEN ? AND ? ORDER BY id")


class _Sent(msgspec.Struct):
    request_id: str
    kind: str = ""
    company_number: str | None = None


class _Answer(msgspec.Struct):
    request_id: str
    status: int = 0  # a transport error has no HTTP status: the row keeps 0


class _Queued(msgspec.Struct):
    request_id: str


class Pending(msgspec.Struct, frozen=True, array_like=True):
    """A send with no answer yet at the end of a range: `settle.settle_pending` looks for
    its answer further on and re-reads its row, in one snapshot."""

    position: int
    request_id: str
    expected: tuple  # the table row it should have, status 0 (no answer yet)


class TableIssue(msgspec.Struct, frozen=True, array_like=True):
    """`kind` is missing (no row for a send), extra (a row with no send) or mismatch."""

    kind: str
    id: int
    expected: tuple | None
    found: tuple | None


class Noted(msgspec.Struct, frozen=True, array_like=True):
    """A rarer entry the report lists with its time: 429s, stops, gaps, worker starts."""

    position: int
    event_type: str
    received_at: str
    data: str


class RangeScan(msgspec.Struct):
    first: int
    last: int
    chain_bad: int | None = None
    chain_reason: str = ""
    sends: int = 0
    queued: int = 0
    answers: int = 0
    times: array = msgspec.field(default_factory=lambda: array("q"))
    positions: array = msgspec.field(default_factory=lambda: array("q"))
    candidates: list[tuple[int, str, str]] = msgspec.field(default_factory=list)
    noted: list[Noted] = msgspec.field(default_factory=list)
    pending: list[Pending] = msgspec.field(default_factory=list)
    table_checked: int = 0
    table_issues: list[TableIssue] = msgspec.field(default_factory=list)
    malformed: list[tuple[int, str, str]] = msgspec.field(default_factory=list)
    cpu_seconds: float = 0.0  # this scan's own CPU time, wherever it ran (for benchmarks)


def _as_row(ident: tuple, status: int) -> tuple:
    """(id, timestamp, type, company, request_id) + status, in `TABLE_COLUMNS` order."""
    return ident[:3] + (status,) + ident[3:]


def _found(trow: tuple) -> tuple:
    return trow[:3] + (trow[5],) + trow[3:5]


NOT_UTF8 = object()  # from `_careful`: a stored hash or body that was text but not UTF-8


def _careful(conn: apsw.Connection, first: int, last: int) -> Iterator[tuple]:
    """The scan's rows `(id, event_type, received_at, body or None for a stream event,
    (event_id, company, event_data), hash)` from the ledger's careful reader, for a range where
    some text is not UTF-8: such a row's hash is NOT_UTF8 (a mismatch), and so is its body when
    its received_at or event_data is the bad one."""
    for row in careful_rows(conn, first, last):
        body = None if row.event_type == "stream.event" else (
            NOT_UTF8 if {"received_at", "event_data"} & set(row.bad) else row.event_data)
        yield (row.position, row.event_type, row.received_at, body,
               (row.event_id, row.company_number, row.event_data), NOT_UTF8 if row.bad else row.hash)


def scan_range(db_path: str, first: int, last: int, *, since: str = "", until: str = "\uffff",
               table_from: int | None = None, queued_memory: int = 100_000) -> RangeScan:
    """Scan positions `first..last` of the ledger (and the table rows `table_from..last`).

    `since`/`until` (canonical ISO, `until` exclusive) choose which sends enter `times`;
    `queued_memory` bounds the recent request ids held (two generations of that many).
    """
    started = time.process_time()
    with range_snapshot(db_path) as conn:
        scan = _scan(conn, first, last, since, until, first if table_from is None else table_from,
                     queued_memory)
    scan.cpu_seconds = time.process_time() - started
    return scan


@contextlib.contextmanager
def range_snapshot(db_path: str) -> Iterator[apsw.Connection]:
    """A read-only connection in one read transaction: the ledger, the table and every row read
    back seen at one snapshot. Both engines' range scans run inside one."""
    conn = connect(db_path, readonly=True)
    try:
        with translated(db_path):
            # Memory-mapped reads save a syscall per page on a multi-GB scan; the mapping is
            # the OS page cache, so it adds no private memory.
            conn.execute("PRAGMA mmap_size=17179869184")
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
    finally:
        conn.close()


def predecessor_hash(conn, first: int) -> bytes | None:
    """The stored hash the chain of a range starting at `first` starts from; None when the row
    before is missing or its hash is not 32 bytes (only tampering does that): that is the
    previous range's finding (a gap, or a row that does not match its hash), and this range's
    chain is then left unchecked, never a crash."""
    if first == 1:
        return GENESIS
    row = conn.execute("SELECT CASE WHEN typeof(hash) = 'blob' THEN hash END FROM event_log "
                       "WHERE id = ?", (first - 1,)).fetchone()  # text may not even be UTF-8
    if row is None or row[0] is None or len(row[0]) != len(GENESIS):
        return None
    return row[0]


def _scan(conn, first, last, since, until, table_from, queued_memory, *,
          check_chain: bool = True) -> RangeScan:
    """The scan of one range in an open transaction; `check_chain=False` leaves the chain out
    (`native_scan` checked it in C and hands the facts of an unusual range to this). A range
    holding text that is not UTF-8 (only tampering stores it) is scanned again, carefully: such
    a row does not match its hash, and a request entry's bad body or time is malformed."""
    args = (conn, first, last, since, until, table_from, queued_memory, check_chain)
    try:
        return _scan_once(*args, careful=False)
    except UnicodeDecodeError:
        return _scan_once(*args, careful=True)


def _scan_once(conn, first, last, since, until, table_from, queued_memory, check_chain, *,
               careful: bool) -> RangeScan:
    out = RangeScan(first, last)
    prev = predecessor_hash(conn, first) if check_chain else None
    hashing = prev is not None
    fast = not careful and (not hashing or formula_agrees(conn, first, prev))
    expected_pos = first

    dec_sent = msgspec.json.Decoder(_Sent).decode
    dec_answer = msgspec.json.Decoder(_Answer).decode
    dec_queued = msgspec.json.Decoder(_Queued).decode
    sha = hashlib.sha256
    push_time, push_pos = out.times.append, out.positions.append
    candidates, noted, issues = out.candidates, out.noted, out.table_issues
    recent: set[str] = set()  # request ids queued lately, and the generation before
    older: set[str] = set()
    # Sends waiting for an answer: the newest per request_id, and (rarely) older ones still
    # waiting under it, newest last: an answer takes the newest, as the projection does.
    in_flight: dict[str, int] = {}
    buried: dict[str, list[int]] = {}
    # The table row of each send in flight, already matched but for its status, which the
    # answer decides. A row that is missing or already differs waits in `odd` (rare) instead.
    held: dict[int, tuple | None] = {}
    odd: dict[int, tuple[tuple, tuple | None]] = {}
    table = conn.cursor().execute(_TABLE_SQL, (table_from, last))
    trow = next(table, None)
    sends = queued = answers = 0

    def settle(pos: int, status: int, found: tuple | None) -> None:
        """Record what is wrong with the row of the send at `pos` (only called when something is)."""
        if found is None:
            ident, row = odd.pop(pos)
            expected = _as_row(ident, status)
            if row is None:
                issues.append(TableIssue("missing", pos, expected, None))
            else:
                issues.append(TableIssue("mismatch", pos, expected, _found(row)))
        elif found[5] != status:
            issues.append(TableIssue("mismatch", pos, _as_row(found[:5], status), _found(found)))

    if careful:
        cursor = _careful(conn, first, last)
    elif not check_chain:
        cursor = conn.cursor().execute(_ROWS_FACTS_SQL, (first, last))
    elif fast:
        cursor = conn.cursor().execute(_ROWS_SQL, (first, last))
    else:  # the same loop, with what chain_hash needs in place of the message
        cursor = ((pos, et, at, data, (eid, company, data), h) for pos, et, at, data, eid, company, h
                  in conn.cursor().execute(_ROWS_FALLBACK_SQL, (first, last)))
    for pos, event_type, at, data, message, stored in cursor:
        if hashing:
            if pos != expected_pos:
                out.chain_bad, hashing = expected_pos, False
                out.chain_reason = f"position {expected_pos} is missing (next is {pos})"
            else:
                if not fast:
                    digest = chain_hash(prev, pos, message[0], event_type, message[1], at, message[2])
                elif message is not None:
                    if not message.isascii():  # raises (a careful rescan) if it isn't UTF-8
                        message.decode()
                    digest = sha(prev + message).digest()
                else:  # a value that is not text: hashed as chain_hash hashes it
                    digest = row_hash(conn, prev, pos)
                if digest != stored:
                    out.chain_bad, hashing = pos, False
                    out.chain_reason = mismatch_reason(conn, pos)
                prev = digest
                expected_pos += 1
        if data is None or data is NOT_UTF8:
            if data is NOT_UTF8 and event_type in _READ:
                out.malformed.append((pos, event_type, "received_at or event_data is not UTF-8"))
            continue
        try:
            if event_type == SENT:
                sends += 1
                if since <= at < until:  # counted by its row's time even if its body is bad
                    push_time(to_us(at))
                    push_pos(pos)
                s = dec_sent(data)
                rid = s.request_id
                if rid not in recent and rid not in older:
                    candidates.append((pos, rid, at))
                while trow is not None and trow[0] < pos:
                    issues.append(TableIssue("extra", trow[0], None, _found(trow)))
                    trow = next(table, None)
                ident = (pos, at, s.kind, s.company_number, rid)
                if trow is not None and trow[0] == pos and trow[:5] == ident:
                    held[pos] = trow
                    trow = next(table, None)
                else:
                    held[pos] = None
                    if trow is not None and trow[0] == pos:
                        odd[pos] = (ident, trow)
                        trow = next(table, None)
                    else:
                        odd[pos] = (ident, None)
                waiting = in_flight.get(rid)
                if waiting is not None:  # sent again before an answer: the older one waits on
                    buried.setdefault(rid, []).append(waiting)
                in_flight[rid] = pos
            elif event_type in ANSWERS:
                a = dec_answer(data)
                answers += 1
                sent_at = in_flight.pop(a.request_id, None)
                if sent_at is None and a.request_id in buried:
                    stack = buried[a.request_id]
                    sent_at = stack.pop()
                    if not stack:
                        del buried[a.request_id]
                if sent_at is not None:
                    row = held.pop(sent_at)
                    if row is None or row[5] != a.status:
                        settle(sent_at, a.status, row)
                if event_type == RATE_LIMITED:
                    noted.append(Noted(pos, event_type, at, data))
            elif event_type == QUEUED:
                recent.add(dec_queued(data).request_id)
                queued += 1
                if len(recent) >= queued_memory:
                    older, recent = recent, set()
            elif event_type in NOTED:
                noted.append(Noted(pos, event_type, at, data))
        except (msgspec.DecodeError, ValueError) as exc:  # ValueError: a received_at that isn't ISO
            out.malformed.append((pos, event_type, str(exc)))
    if hashing and expected_pos <= last:
        after = conn.execute("SELECT min(id) FROM event_log WHERE id > ?", (last,)).fetchone()[0]
        out.chain_bad = expected_pos
        out.chain_reason = f"position {expected_pos} is missing (next is {after})"
    while trow is not None:
        issues.append(TableIssue("extra", trow[0], None, _found(trow)))
        trow = next(table, None)
    left = [(pos, rid) for rid, pos in in_flight.items()]
    left += [(pos, rid) for rid, stack in buried.items() for pos in stack]
    for pos, rid in left:
        row = held.pop(pos)
        ident = row[:5] if row is not None else odd.pop(pos)[0]
        out.pending.append(Pending(pos, rid, _as_row(ident, 0)))
    out.pending.sort(key=lambda p: p.position)
    out.sends, out.queued, out.answers = sends, queued, answers
    out.table_checked = sends
    return out
