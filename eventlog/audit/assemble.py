"""Judge what the audit found (`Findings`) and build the `Report` from it, verdict included.

Pure: no database, no clock, no output. Every violation is named here with its time and
position, so a reader of the summary can go straight to the ledger row.
"""

from __future__ import annotations

import msgspec

from eventlog.audit.findings import Findings
from eventlog.audit.report import (
    MAX_LISTED,
    ChainOut,
    GapOut,
    LimitInfo,
    OrphanOut,
    OverLimitOut,
    RateLimitedOut,
    RepeatedStartOut,
    Report,
    Requests,
    SendRef,
    SnovOut,
    SnovRateLimitedOut,
    StopOut,
    TableIssueOut,
    TableOut,
    Violation,
    WindowOut,
    Windows,
)
from eventlog.audit.scan import TABLE_COLUMNS
from eventlog.audit.timestamps import from_us

__all__ = ["build_report"]


class _Stop(msgspec.Struct):
    reason: str = ""
    violations: int = 0
    cooldown_until: str | None = None


class _Gap(msgspec.Struct):
    stream: str = ""
    requested_timepoint: int | None = None
    reason: str = ""


def _window(start: int, span: int, count: int) -> WindowOut:
    return WindowOut(start=from_us(start), end=from_us(start + span), count=count)


def _row(values: tuple | None) -> dict | None:
    return None if values is None else dict(zip(TABLE_COLUMNS, values))


def _chain(findings: Findings) -> ChainOut:
    bad = [(s.chain_bad, s.chain_reason) for s in findings.scans if s.chain_bad is not None]
    if not bad:
        return ChainOut(ok=True, checked=findings.head, head=findings.head, bad_position=None,
                        reason="")
    pos, reason = min(bad)
    return ChainOut(ok=False, checked=pos - 1, head=findings.head, bad_position=pos, reason=reason)


def _table(findings: Findings) -> TableOut:
    issues = sorted([i for s in findings.scans for i in s.table_issues]
                    + list(findings.pending_issues), key=lambda i: (i.id, i.kind))
    counts = {k: sum(1 for i in issues if i.kind == k) for k in ("missing", "extra", "mismatch")}
    checked = sum(s.table_checked for s in findings.scans)
    return TableOut(
        ok=not issues, checked=checked, missing_count=counts["missing"],
        extra_count=counts["extra"], mismatch_count=counts["mismatch"],
        issues=[TableIssueOut(kind=i.kind, id=i.id, expected=_row(i.expected), found=_row(i.found))
                for i in issues[:MAX_LISTED]],
    )


def _table_message(issue: TableIssueOut) -> str:
    if issue.kind == "missing":
        return f"api_rate_limit_log has no row {issue.id} for the request.sent at that position"
    if issue.kind == "extra":
        return f"api_rate_limit_log row {issue.id} matches no request.sent"
    diff = [k for k in TABLE_COLUMNS if (issue.expected or {}).get(k) != (issue.found or {}).get(k)]
    shown = ", ".join(f"{k} {issue.found[k]!r} (ledger: {issue.expected[k]!r})" for k in diff)
    return f"api_rate_limit_log row {issue.id} differs from the ledger: {shown}"


def build_report(findings: Findings) -> Report:
    span = round(findings.window * 1_000_000)
    stats = findings.stats
    limit = findings.limit
    violations: list[Violation] = []
    counts = {"window": 0, "rate_limited": 0, "cooldown": 0, "orphan": 0, "chain": 0, "malformed": 0,
              "table": 0, "snov_window": 0, "snov_rate_limited": 0, "snov_cooldown": 0,
              "snov_repeated_start": 0, "snov_malformed": 0}

    def violate(kind: str, at: str | None, position: int | None, message: str) -> None:
        counts[kind] += 1
        if len(violations) < MAX_LISTED:
            violations.append(Violation(kind=kind, at=at, position=position, message=message))

    over = []
    for run in stats.over_limit:
        peak = _window(run.peak.start, span, run.peak.count)
        over.append(OverLimitOut(start=from_us(run.first_start), end=from_us(run.last_start + span),
                                 peak=peak, excess=run.peak.count - limit, windows=run.windows))
        violate("window", peak.start, None,
                f"{peak.count} requests in the window [{peak.start}, {peak.end}), over the limit "
                f"of {limit} by {peak.count - limit}" + (
                    f" ({run.windows} over-limit windows from {from_us(run.first_start)} to "
                    f"{from_us(run.last_start + span)})" if run.windows > 1 else ""))
    windows = Windows(
        max=_window(stats.max.start, span, stats.max.count) if stats.max else None,
        headroom=limit - stats.max.count if stats.max else None,
        busiest=[_window(w.start, span, w.count) for w in stats.busiest],
        over_limit=over,
    )

    limited = []
    for c in findings.cooldowns:
        ref = lambda pair: SendRef(position=pair[0], at=from_us(pair[1])) if pair else None  # noqa: E731
        limited.append(RateLimitedOut(
            position=c.position, at=from_us(c.at), status=c.status, request_id=c.request_id,
            cooldown_until=from_us(c.until), honoured=c.honoured, sends_in_cooldown=len(c.breaches),
            sends_in_window_before=c.sends_in_window_before, last_send_before=ref(c.last_send_before),
            first_send_after=ref(c.first_send_after),
            breaches=[SendRef(position=b.position, at=from_us(b.at)) for b in c.breaches[:MAX_LISTED]],
        ))
        # A 429/403 is a violation even when its cooldown was honoured: whatever our own
        # window count says, the server refused a request on this key, and repeated refusals
        # get a key banned.
        violate("rate_limited", from_us(c.at), c.position,
                f"Companies House answered {c.status} at {from_us(c.at)} (position {c.position}) "
                f"to {c.request_id}" + (", cooldown honoured" if c.honoured else ""))
        for b in c.breaches:
            violate("cooldown", from_us(b.at), b.position,
                    f"request sent at {from_us(b.at)} (position {b.position}) inside the cooldown "
                    f"of the {c.status} at {from_us(c.at)}, which lasted until {from_us(c.until)}")

    for pos, rid, at in findings.orphans:
        violate("orphan", at, pos, f"request {rid} sent at {at} (position {pos}) was never queued: "
                                   "a direct call")
    chain = _chain(findings)
    if not chain.ok:
        violate("chain", None, chain.bad_position, f"hash chain broken: {chain.reason}")
    for scan in findings.scans:
        for pos, event_type, error in scan.malformed:
            violate("malformed", None, pos, f"entry {pos} ({event_type}) does not decode: {error}")
    table = _table(findings)
    for issue in table.issues:
        violate("table", None, issue.id, _table_message(issue))
    counts["table"] = table.missing_count + table.extra_count + table.mismatch_count

    stops, gaps = [], []
    lo, hi = findings.since or "", findings.until or "\uffff"
    for scan in findings.scans:
        for n in scan.noted:
            if not lo <= n.received_at < hi:
                continue
            if n.event_type == "worker.emergency_stop":
                s = msgspec.json.decode(n.data, type=_Stop)
                stops.append(StopOut(position=n.position, at=n.received_at, reason=s.reason,
                                     violations=s.violations, cooldown_until=s.cooldown_until))
            elif n.event_type == "stream.gap":
                g = msgspec.json.decode(n.data, type=_Gap)
                by = findings.gap_reconciled_by.get(n.position)
                gaps.append(GapOut(position=n.position, at=n.received_at, stream=g.stream,
                                   requested_timepoint=g.requested_timepoint, reason=g.reason,
                                   reconciled=by is not None, reconciled_by=by))

    snov = _snov(findings, violate)
    times = findings.times
    code = 1 if any(counts.values()) else 0
    return Report(
        database=findings.database,
        verdict="violation" if code else "compliant",
        exit_code=code,
        since=findings.since,
        until=findings.until,
        limit=LimitInfo(requests=limit, window_seconds=findings.window,
                        source=findings.limit_source),
        requests=Requests(
            sent=len(times), sent_total=sum(s.sends for s in findings.scans),
            queued_total=sum(s.queued for s in findings.scans),
            answered_total=sum(s.answers for s in findings.scans),
            first_sent=from_us(times[0] if findings.in_order else min(times)) if times else None,
            last_sent=from_us(times[-1] if findings.in_order else max(times)) if times else None,
        ),
        windows=windows,
        rate_limited=limited[:MAX_LISTED],
        rate_limited_count=len(limited),
        orphans=[OrphanOut(position=p, at=a, request_id=r) for p, r, a in findings.orphans[:MAX_LISTED]],
        orphan_count=len(findings.orphans),
        chain=chain,
        chain_engine=findings.chain_engine,
        chain_engine_reason=findings.chain_engine_reason,
        table=table,
        emergency_stops=stops[:MAX_LISTED],
        gaps=gaps[:MAX_LISTED],
        violations=violations,
        violation_counts=counts,
        snov=snov,
    )


def _windows(stats, span: int, limit: int) -> tuple[Windows, list[OverLimitOut]]:
    over = []
    for run in stats.over_limit:
        peak = _window(run.peak.start, span, run.peak.count)
        over.append(OverLimitOut(start=from_us(run.first_start), end=from_us(run.last_start + span),
                                 peak=peak, excess=run.peak.count - limit, windows=run.windows))
    return Windows(
        max=_window(stats.max.start, span, stats.max.count) if stats.max else None,
        headroom=limit - stats.max.count if stats.max else None,
        busiest=[_window(w.start, span, w.count) for w in stats.busiest],
        over_limit=over,
    ), over


def _snov(findings: Findings, violate) -> SnovOut | None:
    """Snov.io's section and its violations (eventlog/audit/snov.py says what each check means)."""
    n = findings.snov
    if n is None:
        return None
    span = round(n.window * 1_000_000)
    windows, over = _windows(n.stats, span, n.limit)
    for run in over:
        violate("snov_window", run.peak.start, None,
                f"{run.peak.count} Snov.io requests in the window [{run.peak.start}, {run.peak.end}), over "
                f"its limit of {n.limit} by {run.excess}")
    limited = []
    for r in n.refusals:
        refs = [SendRef(position=p, at=at) for p, at in r.breaches]
        limited.append(SnovRateLimitedOut(position=r.position, at=r.at, call=r.call,
                                          cooldown_until=r.cooldown_until, honoured=not refs,
                                          breaches=refs[:MAX_LISTED]))
        violate("snov_rate_limited", r.at, r.position,
                f"Snov.io answered 429 at {r.at} (position {r.position}) to a {r.call} request"
                + (", cooldown honoured" if not refs else ""))
        for ref in refs:
            violate("snov_cooldown", ref.at, ref.position,
                    f"Snov.io request sent at {ref.at} (position {ref.position}) inside the cooldown of the "
                    f"429 at {r.at}, which lasted until {r.cooldown_until}")
    for rep in n.repeated:
        violate("snov_repeated_start", rep.at, rep.position,
                f"Snov.io lookup {rep.lookup} started again at {rep.at} (position {rep.position}) while the "
                f"start at position {rep.first_position} still held it: paid twice")
    for pos, event_type, error in n.malformed:
        violate("snov_malformed", None, pos, f"entry {pos} ({event_type}) does not decode: {error}")
    return SnovOut(
        limit=LimitInfo(requests=n.limit, window_seconds=n.window, source=n.limit_source),
        sent=len(n.times), entries=n.entries, windows=windows, rate_limited=limited[:MAX_LISTED],
        rate_limited_count=len(limited),
        repeated_starts=[RepeatedStartOut(position=r.position, at=r.at, lookup=r.lookup,
                                          first_position=r.first_position) for r in n.repeated[:MAX_LISTED]],
        repeated_start_count=len(n.repeated),
    )
