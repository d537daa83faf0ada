"""One range of the audit in C: the hash chain and the request facts in a single scan.

The C aggregate `chledger_audit` (eventlog/ledger/chainext/chledger_audit.c) walks the rows of a range
of positions once, inside one `sqlite3_step` (so with the GIL released: threads run ranges in
parallel), and does there what `scan._scan` does in Python: the chain, the send times,
the orphan candidates, the answer of every send and its `api_rate_limit_log` row. It hands back
a blob of integers: the chain's outcome, the counts, the send times and positions, and the
positions of the few rows that need more than a number (candidates, 429s and the other noted
entries, table issues, sends still waiting, extra table rows). This module reads those rows and
builds the very `RangeScan` the Python scan builds; the tests compare the two on awkward
ledgers.

The C side is exact or it declines: at a row it is not sure of (JSON it would read differently
from msgspec, a received_at not in the canonical form, ...) it stops gathering facts and says
where, and the range's facts are then gathered by the Python scan (the chain stays checked in C).
"""

from __future__ import annotations

import json
import time
from array import array

import msgspec

from eventlog.ledger import native as native_chain
from eventlog.audit.scan import (Noted, Pending, RangeScan, TableIssue, _as_row, _found, _scan, _Sent,
                         predecessor_hash, range_snapshot)

__all__ = ["scan_range_native", "HEADER", "VERSION", "NativeUnavailable"]

_AUDIT_SQL = ("SELECT chledger_audit(?1, ?2, ?3, ?4, ?5, ?6, ?7, id, event_id, event_type, "
              "company_number, received_at, event_data, hash) FROM event_log WHERE id BETWEEN ?2 AND ?7")
_ROWS_AT = ("SELECT id, event_type, received_at, event_data FROM event_log "
            "WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id")
_TABLE_AT = ("SELECT id, timestamp, request_type, company_number, request_id, response_status "
             "FROM api_rate_limit_log WHERE id IN (SELECT value FROM json_each(?))")
HEADER = 17  # int64s before the lists; see chledger_audit.c
VERSION = 1  # the result format this module reads


class NativeUnavailable(Exception):
    """The extension can't be used on this connection (then the caller scans in Python)."""


def scan_range_native(db_path: str, first: int, last: int, *, since: str = "",
                      until: str = "\uffff", table_from: int | None = None,
                      queued_memory: int = 100_000) -> RangeScan:
    """`scan.scan_range`, in C: the same arguments, the same `RangeScan`."""
    started = time.thread_time()
    with range_snapshot(db_path) as conn:
        if not native_chain.usable(conn):
            raise NativeUnavailable(native_chain.unavailable_reason() or "not UTF-8")
        scan = _scan_native(conn, first, last, since, until, first if table_from is None else table_from,
                            queued_memory)
    scan.cpu_seconds = time.thread_time() - started
    return scan


def _scan_native(conn, first, last, since, until, table_from, queued_memory) -> RangeScan:
    prev = predecessor_hash(conn, first)  # None: the chain is left to the range before
    cursor = conn.execute(_AUDIT_SQL, (prev, first, since, until, queued_memory, table_from, last))
    blob = cursor.fetchone()[0]
    cursor.close()  # SQLite's copy of the result goes now, not when the cursor is collected
    if blob is None:  # no rows at all: nothing to hash, only what the Python scan says of that
        return _scan(conn, first, last, since, until, table_from, queued_memory)
    view = memoryview(blob)
    head = _ints(view, 0, HEADER)
    (version, kind, checked, position, next_id, _last_seen, declined, _declined_at, sends, queued,
     answers, n_times, n_candidates, n_noted, n_issues, n_pending, n_extras) = head
    if version != VERSION:  # a stale build (after a pull, say): the audit runs in Python
        raise NativeUnavailable(f"chledger_audit gives result version {version}, not {VERSION}: "
                                "rebuild the extension (python setup.py build_ext --inplace)")
    if declined:
        out = _scan(conn, first, last, since, until, table_from, queued_memory, check_chain=False)
    else:
        out = RangeScan(first, last, sends=sends, queued=queued, answers=answers)
        out.table_checked = sends
        at = HEADER

        def take(n: int) -> array:
            nonlocal at
            at += n
            return _ints(view, at - n, n)

        out.times, out.positions = take(n_times), take(n_times)
        candidates, noted, issues = take(n_candidates), take(n_noted), take(2 * n_issues)
        pending, extras = take(n_pending), take(n_extras)
        _read_back(conn, out, candidates, noted, issues, pending, extras)
    del view, blob
    if kind >= 0:  # the chain was checked (kind -1: its predecessor is missing or not a hash)
        _chain(conn, out, first, last, prev, kind, checked, position, next_id)
    return out


def _ints(view: memoryview, start: int, n: int) -> array:
    """n native int64s of the blob from index `start`, copied into an array."""
    out = array("q")
    out.frombytes(view[start * 8:(start + n) * 8])
    return out


def _chain(conn, out: RangeScan, first, last, prev, kind, checked, position, next_id) -> None:
    outcome, handed_back = native_chain.outcome_from(kind, checked, position, next_id, first, conn,
                                                     last)
    if outcome is None:  # a value that isn't text: hashed in Python, then C goes on after it
        before = prev if handed_back == first else conn.execute(
            "SELECT hash FROM event_log WHERE id = ?", (handed_back - 1,)).fetchone()[0]
        outcome = native_chain.check_chain(conn, handed_back, last, before)
    if not outcome.ok:
        out.chain_bad, out.chain_reason = outcome.expected, outcome.reason
    elif outcome.expected <= last:  # the rows after the last one present are missing
        after = conn.execute("SELECT min(id) FROM event_log WHERE id > ?", (last,)).fetchone()[0]
        out.chain_bad = outcome.expected
        out.chain_reason = f"position {outcome.expected} is missing (next is {after})"


def _rows(conn, positions) -> dict[int, tuple]:
    if not positions:
        return {}
    return {r[0]: r for r in conn.execute(_ROWS_AT, (json.dumps(list(positions)),))}


def _read_back(conn, out: RangeScan, candidates, noted, issues, pending, extras) -> None:
    """Turn the positions C named into what the Python scan would have recorded."""
    sends = sorted(set(candidates) | set(issues[0::2]) | set(pending))
    rows = _rows(conn, sorted(set(sends) | set(noted)))
    dec = msgspec.json.Decoder(_Sent).decode
    ident: dict[int, tuple] = {}  # position -> (pos, at, kind, company, request_id)
    for pos in sends:
        _, _, at, data = rows[pos]
        s = dec(data)
        ident[pos] = (pos, at, s.kind, s.company_number, s.request_id)
    out.candidates = [(pos, ident[pos][4], ident[pos][1]) for pos in candidates]
    out.noted = [Noted(pos, rows[pos][1], rows[pos][2], rows[pos][3]) for pos in noted]
    out.pending = [Pending(pos, ident[pos][4], _as_row(ident[pos], 0)) for pos in sorted(pending)]
    table_ids = list(issues[0::2]) + list(extras)
    table = {r[0]: r for r in conn.execute(_TABLE_AT, (json.dumps(table_ids),))} if table_ids else {}
    for pos, status in zip(issues[0::2], issues[1::2]):
        expected = _as_row(ident[pos], status)
        row = table.get(pos)
        out.table_issues.append(TableIssue("missing", pos, expected, None) if row is None else
                                TableIssue("mismatch", pos, expected, _found(row)))
    for tid in extras:
        out.table_issues.append(TableIssue("extra", tid, None, _found(table[tid])))
    out.table_issues.sort(key=lambda i: (i.id, i.kind))
