"""What the range scans hand back, settled: orphans, unanswered sends, cooldowns.

Each function here sees the whole ledger, so it is where a fact that crosses a range boundary
(a request queued in one range and sent in the next, a send answered after its range ends, a
429 whose cooldown outlasts its range) is decided. They touch few rows: candidates, pending
sends and 429s are rare next to the sends themselves.
"""

from __future__ import annotations

import json
from array import array
from bisect import bisect_left, bisect_right
from typing import Iterable

import apsw
import msgspec

from eventlog.audit.scan import ANSWERS, SENT, TABLE_COLUMNS, Pending, TableIssue
from eventlog.audit.timestamps import to_us

__all__ = ["Cooldown", "Breach", "resolve_orphans", "settle_pending", "check_cooldowns"]

_NATURAL_QUEUED = ("SELECT id FROM event_log WHERE event_id = ? AND event_type = 'request.queued' "
                   "AND json_extract(event_data, '$.request_id') = ?")
_ANY_QUEUED = ("SELECT json_extract(event_data, '$.request_id') AS rid, min(id) FROM event_log "
               "WHERE event_type = 'request.queued' AND rid IN (SELECT value FROM json_each(?)) "
               "GROUP BY rid")
_LATER_FOR_REQUEST = (
    "SELECT event_type, json_extract(event_data, '$.status') FROM event_log "
    f"WHERE id > ? AND event_type IN ({', '.join(repr(t) for t in sorted(ANSWERS | {SENT}))}) "
    "AND json_extract(event_data, '$.request_id') = ? ORDER BY id"
)
_TABLE_ROW = f"SELECT {', '.join(TABLE_COLUMNS)} FROM api_rate_limit_log WHERE id = ?"


def resolve_orphans(conn: apsw.Connection, candidates: Iterable[tuple[int, str, str]]
                    ) -> list[tuple[int, str, str]]:
    """The candidates (position, request_id, received_at) with no earlier `request.queued`.

    The natural event id `queued:<request_id>` finds almost every one through the unique index;
    the rest (queued under another id, or never) are looked up in one scan of the queued entries.
    """
    unsettled: dict[str, list[tuple[int, str, str]]] = {}
    for cand in candidates:
        pos, rid, _ = cand
        row = conn.execute(_NATURAL_QUEUED, (f"queued:{rid}", rid)).fetchone()
        if row is None or row[0] > pos:
            unsettled.setdefault(rid, []).append(cand)
    if not unsettled:
        return []
    first_queued = dict(conn.execute(_ANY_QUEUED, (json.dumps(list(unsettled)),)).fetchall())
    orphans = [c for rid, cands in unsettled.items() for c in cands
               if first_queued.get(rid) is None or first_queued[rid] > c[0]]
    return sorted(orphans)


def _answer_status(conn: apsw.Connection, position: int, request_id: str) -> int:
    """The status the send at `position` ends with, by the projection's rule: an answer goes to
    the newest waiting send of its request_id, so later sends of it are answered first."""
    above = 0
    for event_type, status in conn.execute(_LATER_FOR_REQUEST, (position, request_id)):
        if event_type == SENT:
            above += 1
        elif above:
            above -= 1
        else:
            return int(status or 0)  # a transport error has no status: 0
    return 0


def settle_pending(conn: apsw.Connection, pending: Iterable[Pending]) -> tuple[int, list[TableIssue]]:
    """Compare the rows of sends still waiting at the end of their range, in one snapshot.

    Their answer, if any, lies further on (often in the next range, or appended while the audit
    ran); the row is re-read in the same snapshot, so both sides agree. Each lookup stops at the
    answer, which normally follows within a few entries.
    """
    issues: list[TableIssue] = []
    checked = 0
    conn.execute("BEGIN")
    try:
        for p in pending:
            checked += 1
            status = _answer_status(conn, p.position, p.request_id)
            expected = p.expected[:3] + (status,) + p.expected[4:]
            found = conn.execute(_TABLE_ROW, (p.position,)).fetchone()
            if found is None:
                issues.append(TableIssue("missing", p.position, expected, None))
            elif tuple(found) != expected:
                issues.append(TableIssue("mismatch", p.position, expected, tuple(found)))
    finally:
        conn.execute("COMMIT")
    return checked, issues


class _RateLimited(msgspec.Struct):
    request_id: str = ""
    status: int = 0
    cooldown_until: str = ""


class Breach(msgspec.Struct, frozen=True):
    """A send during a cooldown: its position and time (µs)."""

    position: int
    at: int


class Cooldown(msgspec.Struct, frozen=True):
    """One 429/403, the sends around it, and whether its cooldown was honoured (times in µs)."""

    position: int
    at: int
    status: int
    request_id: str
    until: int
    sends_in_window_before: int
    last_send_before: tuple[int, int] | None  # (position, at)
    first_send_after: tuple[int, int] | None
    breaches: list[Breach]

    @property
    def honoured(self) -> bool:
        return not self.breaches


def check_cooldowns(rate_limited: Iterable[tuple[int, int, str]], positions: array, times: array,
                    span: int, *, in_order: bool) -> list[Cooldown]:
    """Judge each 429/403 `(position, at µs, entry JSON)` against the sends.

    `positions` ascend; `times` are the sends' times in the same (ledger) order, and `in_order`
    says they ascend too, as they do when one clock stamps the ledger, which lets both looks be
    binary searches; otherwise the sends after the 429 are all examined.
    """
    out: list[Cooldown] = []
    n = len(positions)
    for pos, at, data in rate_limited:
        entry = msgspec.json.decode(data, type=_RateLimited)
        until = to_us(entry.cooldown_until) if entry.cooldown_until else at
        k = bisect_right(positions, pos)
        if in_order:
            end = bisect_left(times, until, k)
            breaches = [Breach(positions[j], times[j]) for j in range(k, end)]
            before = k - min(k, bisect_right(times, at - span, 0, k))
        else:
            breaches = [Breach(positions[j], times[j]) for j in range(k, n) if times[j] < until]
            before = sum(1 for j in range(k) if at - span < times[j] <= at)
        out.append(Cooldown(
            position=pos, at=at, status=entry.status, request_id=entry.request_id, until=until,
            sends_in_window_before=before,
            last_send_before=(positions[k - 1], times[k - 1]) if k else None,
            first_send_after=(positions[k], times[k]) if k < n else None,
            breaches=breaches,
        ))
    return out
