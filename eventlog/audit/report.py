"""The audit report: its types, and the two ways it is rendered (`to_json`, `summary`).

`assemble.build_report` fills it; `python cli.py audit` prints `summary(report)`, or
`to_json(report)` with `--json`. Times are canonical ISO strings, positions are ledger ids. Long
lists are cut at `MAX_LISTED` items; the `*_count` fields and `violation_counts` always give the
full numbers.

The JSON keys (`eventlog/audit/report.md` says what each means). They are stable: renaming one
is a breaking change, so `version` (`REPORT_VERSION`) changes when one does.
  version, database, verdict ("compliant"|"violation"), exit_code, since, until,
  limit {requests, window_seconds, source ("option"|"worker.started"|"default")},
  requests {sent, sent_total, queued_total, answered_total, first_sent, last_sent},
  windows {max {start, end, count}, headroom, busiest [{start, end, count}],
           over_limit [{start, end, peak {start, end, count}, excess, windows}]},
  rate_limited [{position, at, status, request_id, cooldown_until, honoured, sends_in_cooldown,
                 sends_in_window_before, last_send_before {position, at}, first_send_after
                 {position, at}, breaches [{position, at}]}], rate_limited_count,
  orphans [{position, at, request_id}], orphan_count,
  chain {ok, checked, head, bad_position, reason}, chain_engine ("c"|"python"),
  chain_engine_reason (why Python, or null),
  table {ok, checked, missing_count, extra_count, mismatch_count,
         issues [{kind ("missing"|"extra"|"mismatch"), id, expected, found}]},
  emergency_stops [{position, at, reason, violations, cooldown_until}],
  gaps [{position, at, stream, requested_timepoint, reason, reconciled, reconciled_by}],
  violations [{kind ("window"|"rate_limited"|"cooldown"|"orphan"|"chain"|"malformed"|"table"),
               at, position, message}],
  violation_counts {kind: n},
  snov {limit {requests, window_seconds, source ("snov.started"|"default")}, sent, entries,
        windows {max, headroom, busiest, over_limit}, rate_limited [{position, at, call,
        cooldown_until, honoured, breaches [{position, at}]}], rate_limited_count,
        repeated_starts [{position, at, lookup, first_position}], repeated_start_count}.
  Violation kinds of Snov.io: snov_window, snov_rate_limited, snov_cooldown, snov_repeated_start,
  snov_malformed.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "REPORT_VERSION", "MAX_LISTED", "Report", "LimitInfo", "Requests", "WindowOut", "OverLimitOut",
    "Windows", "SendRef", "RateLimitedOut", "OrphanOut", "ChainOut", "TableOut", "TableIssueOut",
    "StopOut", "GapOut", "Violation", "SnovOut", "SnovRateLimitedOut", "RepeatedStartOut", "to_json", "summary",
]

REPORT_VERSION = 1
MAX_LISTED = 1000


class _S(msgspec.Struct, frozen=True, kw_only=True):
    pass


class LimitInfo(_S):
    requests: int
    window_seconds: float
    source: str  # "option", "worker.started" or "default"


class Requests(_S):
    sent: int  # request.sent within --since/--until
    sent_total: int  # in the whole ledger
    queued_total: int
    answered_total: int
    first_sent: str | None
    last_sent: str | None


class WindowOut(_S):
    start: str
    end: str
    count: int


class OverLimitOut(_S):
    start: str  # the first over-limit window's start
    end: str  # the last over-limit window's end
    peak: WindowOut
    excess: int  # peak.count - limit
    windows: int  # how many sends start an over-limit window in this run


class Windows(_S):
    max: WindowOut | None
    headroom: int | None  # limit - max.count (negative when over)
    busiest: list[WindowOut]
    over_limit: list[OverLimitOut]


class SendRef(_S):
    position: int
    at: str


class RateLimitedOut(_S):
    position: int
    at: str
    status: int
    request_id: str
    cooldown_until: str
    honoured: bool
    sends_in_cooldown: int
    sends_in_window_before: int
    last_send_before: SendRef | None
    first_send_after: SendRef | None
    breaches: list[SendRef]


class OrphanOut(_S):
    position: int
    at: str
    request_id: str


class ChainOut(_S):
    ok: bool
    checked: int
    head: int
    bad_position: int | None
    reason: str


class TableIssueOut(_S):
    kind: str  # "missing", "extra" or "mismatch"
    id: int
    expected: dict | None
    found: dict | None


class TableOut(_S):
    ok: bool
    checked: int
    missing_count: int
    extra_count: int
    mismatch_count: int
    issues: list[TableIssueOut]


class StopOut(_S):
    position: int
    at: str
    reason: str
    violations: int
    cooldown_until: str | None


class GapOut(_S):
    position: int
    at: str
    stream: str
    requested_timepoint: int | None
    reason: str
    reconciled: bool = False  # a bulk snapshot newer than the gap reconciled it (stream_gaps)
    reconciled_by: str | None = None


class Violation(_S):
    kind: str  # "window", "rate_limited", "cooldown", "orphan", "chain", "malformed" or "table"
    at: str | None
    position: int | None
    message: str


class SnovRateLimitedOut(_S):
    position: int
    at: str
    call: str
    cooldown_until: str | None
    honoured: bool
    breaches: list[SendRef]


class RepeatedStartOut(_S):
    position: int
    at: str
    lookup: str  # domain:<company name as compared> or email:<officer id>|<domain>
    first_position: int  # the earlier start that took it


class SnovOut(_S):
    """Snov.io's section: its own limit, 429s and starts (eventlog/audit/snov.py)."""

    limit: LimitInfo
    sent: int  # snov.sent within --since/--until
    entries: int  # snov.* entries in the whole ledger
    windows: Windows
    rate_limited: list[SnovRateLimitedOut]
    rate_limited_count: int
    repeated_starts: list[RepeatedStartOut]
    repeated_start_count: int


class Report(_S, kw_only=True):
    version: int = REPORT_VERSION
    database: str
    verdict: str  # "compliant" or "violation"
    exit_code: int
    since: str | None
    until: str | None
    limit: LimitInfo
    requests: Requests
    windows: Windows
    rate_limited: list[RateLimitedOut]
    rate_limited_count: int
    orphans: list[OrphanOut]
    orphan_count: int
    chain: ChainOut
    chain_engine: str  # "c" (the compiled chain extension) or "python"
    chain_engine_reason: str | None  # why the chain was checked in Python (None when in C)
    table: TableOut
    emergency_stops: list[StopOut]
    gaps: list[GapOut]
    violations: list[Violation]
    violation_counts: dict[str, int]
    snov: SnovOut | None = None  # None: the ledger has no Snov.io entry


def to_json(report: Report) -> str:
    """The whole report as indented JSON, keys in the order above."""
    return msgspec.json.format(msgspec.json.encode(report).decode(), indent=2)


def _n(x: int) -> str:
    return f"{x:,}"


def _window_line(w: WindowOut) -> str:
    return f"{w.count} from {w.start}"


def summary(r: Report, *, shown: int = 10) -> str:
    """A short human summary: one line per check, then the verdict with each violation."""
    lim = r.limit
    lines = [f"audit of {r.database}" + (f" from {r.since}" if r.since else "")
             + (f" until {r.until}" if r.until else "")]
    q = r.requests
    span = f" ({q.first_sent} .. {q.last_sent})" if q.first_sent else ""
    lines.append(f"  requests   {_n(q.sent)} sent{span}")
    lines.append(f"  limit      {lim.requests} per {lim.window_seconds:g} s (from {lim.source})")
    w = r.windows
    if w.max is None:
        lines.append("  windows    no requests sent")
    else:
        lines.append(f"  windows    max {w.max.count} in any {lim.window_seconds:g} s window, "
                     f"from {w.max.start} (headroom {w.headroom})")
        lines.append("  busiest    " + "; ".join(_window_line(b) for b in w.busiest[:5]))
        if w.over_limit:
            lines.append(f"  over limit {len(w.over_limit)} run(s) of windows over {lim.requests}")
    breached = [x for x in r.rate_limited if not x.honoured]
    if not r.rate_limited_count:
        lines.append("  429/403    none")
    else:
        state = "all cooldowns honoured" if not breached else f"{len(breached)} cooldown(s) breached"
        lines.append(f"  429/403    {r.rate_limited_count} ({state})")
        for x in r.rate_limited[:shown]:
            lines.append(f"             {x.status} at {x.at}, cooldown until {x.cooldown_until}: "
                         + ("honoured" if x.honoured else f"{x.sends_in_cooldown} sent inside"))
    lines.append("  queued     " + ("every send traced to its request.queued" if not r.orphan_count
                                    else f"{r.orphan_count} send(s) never queued (direct calls)"))
    c = r.chain
    how = ("checked in C" if r.chain_engine == "c"
           else f"checked in Python: {r.chain_engine_reason}" if r.chain_engine_reason
           else "checked in Python")
    lines.append("  chain      " + (f"intact ({_n(c.checked)} entries, {how})" if c.ok
                                    else f"BROKEN: {c.reason} ({how})"))
    t = r.table
    lines.append("  table      " + (f"api_rate_limit_log matches the ledger ({_n(t.checked)} rows)"
                                    if t.ok else f"api_rate_limit_log differs: {t.missing_count} "
                                    f"missing, {t.extra_count} extra, {t.mismatch_count} changed"))
    lines.append("  stops      " + (", ".join(f"{s.at} ({s.reason})" for s in r.emergency_stops[:shown])
                                    or "none"))
    lines.append("  gaps       " + (", ".join(
        f"{g.at} ({g.stream}: {g.reason}; "
        + (f"reconciled by {g.reconciled_by})" if g.reconciled else "UNRESOLVED: import a newer bulk snapshot)")
        for g in r.gaps[:shown]) or "none"))
    lines.extend(_snov_lines(r.snov, shown))
    if r.exit_code == 0:
        lines.append("verdict: COMPLIANT")
    else:
        total = sum(r.violation_counts.values())
        lines.append(f"verdict: VIOLATION ({total})")
        for v in r.violations[:shown]:
            lines.append(f"  - {v.kind}: {v.message}")
        if total > shown:
            lines.append(f"  … and {total - shown} more (see --json)")
    return "\n".join(lines)


def _snov_lines(n: SnovOut | None, shown: int) -> list[str]:
    if n is None:
        return ["  snov.io    not used"]
    w, lim = n.windows, n.limit
    lines = [f"  snov.io    {_n(n.sent)} requests, limit {lim.requests} per {lim.window_seconds:g} s "
             f"(from {lim.source})"]
    if w.max is not None:
        lines.append(f"             max {w.max.count} in any {lim.window_seconds:g} s window, from {w.max.start} "
                     f"(headroom {w.headroom})" + (f"; {len(w.over_limit)} run(s) over" if w.over_limit else ""))
    breached = [x for x in n.rate_limited if not x.honoured]
    lines.append("             429s " + (f"{n.rate_limited_count} ("
                                         + ("all cooldowns honoured" if not breached else f"{len(breached)} breached")
                                         + ")" if n.rate_limited_count else "none"))
    lines.append("             starts " + ("none repeated" if not n.repeated_start_count
                                           else f"{n.repeated_start_count} lookup(s) started twice"))
    return lines
