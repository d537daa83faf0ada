"""`audit`: prove from the database alone that the key kept to its rate limit.

`audit(db_path, ...)` returns the `Report` (`report.py`): its `verdict` and `exit_code` are
"compliant"/0 or "violation"/1, each violation listed. When no verdict can be given it raises
`AuditError` (exit 2) instead, with one line saying why: a missing, non-SQLite, corrupt or
unmigrated file, a `since`/`until` that is not an ISO time or not in order, or a `plot` it can't
draw (`PlotUnavailable`, checked before the work starts). Nothing here prints: `python cli.py
audit` renders the report (`report.summary`, or `report.to_json` for `--json`; the JSON keys are
listed in `report.py`'s docstring and explained in `eventlog/audit/report.md`) and exits with
its code.

Violations: a window `[t, t+S)` holding more than the limit of `request.sent` entries (exact,
every window, see `windows.py`); a send while a 429/403 cooldown was in force; a send with no
earlier `request.queued` of its request_id (a direct call); a broken hash chain; an entry that
does not decode (malformed); an `api_rate_limit_log` that disagrees with the ledger (missing,
extra or changed rows); and each 429/403 itself, listed with whether its cooldown was honoured:
whatever our own count says, the server refused a request on this key, and repeated refusals
get a key banned.

The work, module by module: `scan.py` (in Python) or `native_scan.py` (in C) reads one range of
positions once, checking the chain and gathering the facts; `settle.py` decides what crosses
range boundaries (orphans, sends answered later, cooldowns); `windows.py` counts the windows;
`collect` here merges it all into `Findings` (`findings.py`); `assemble.py` judges them into the
`Report`; `plot.py` draws them.

Two engines, one result: with the chain extension built (`eventlog.ledger.native`), each range
of positions is scanned once by C inside SQLite, ranges in threads; without it, in Python,
ranges in processes. The report's `chain_engine` says which ran, and `chain_engine_reason` why
not C.

`since`/`until` (ISO, `until` exclusive) restrict the requests, windows, 429s, orphans, stops
and gaps to that span; the chain and the table are always checked whole.
"""

from __future__ import annotations

import multiprocessing
import os
from array import array
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import apsw
import msgspec

from eventlog.ledger import native as native_chain
from eventlog.ledger.integrity import FULL, check_integrity
from eventlog.audit.assemble import build_report
from eventlog.audit.findings import Findings
from eventlog.audit.native_scan import NativeUnavailable, scan_range_native
from eventlog.audit.plot import PROFILE_BINS, check_plot_path, write_plot
from eventlog.audit.report import Report
from eventlog.audit.scan import RangeScan, scan_range
from eventlog.audit.settle import check_cooldowns, resolve_orphans, settle_pending
from eventlog.audit.gaps import reconciled_by_position
from eventlog.audit.snov import scan_snov
from eventlog.audit.timestamps import canonical, to_us
from eventlog.audit.windows import is_sorted, window_stats
from eventlog.ledger.db import connect, translated
from eventlog.errors import AuditError, ChledgerError, DatabaseError

__all__ = ["audit", "collect", "DEFAULT_LIMIT", "DEFAULT_WINDOW"]

DEFAULT_LIMIT = 600
DEFAULT_WINDOW = 300.0
PARALLEL_MIN_ROWS = 200_000  # below this, forking costs more than it saves
NATIVE_PARALLEL_MIN_ROWS = 20_000  # threads start in microseconds: split even small ledgers
NATIVE_RANGES_PER_JOB = 2  # more ranges than threads, so a slowed thread leaves work to the other


class _Started(msgspec.Struct):
    rate_limit_requests: int
    rate_limit_window: float


def _jobs(jobs: int | None) -> int:
    if jobs is not None:
        return max(1, jobs)
    try:
        return max(1, min(4, len(os.sched_getaffinity(0))))
    except AttributeError:  # not Linux
        return max(1, min(4, os.cpu_count() or 1))


def _ranges(head: int, parts: int) -> list[tuple[int, int]]:
    step = -(-head // parts)
    return [(a, min(head, a + step - 1)) for a in range(1, head + 1, step)]


def _scan_all(db_path: str, head: int, since: str, until: str, jobs: int,
              engine: str) -> tuple[list[RangeScan], str]:
    """Scan 1..head in ranges; returns the scans and the engine that did them ("c" in threads,
    else "python" in processes)."""
    if engine == "c":
        try:
            return _scan_threads(db_path, head, since, until, jobs), "c"
        except NativeUnavailable:
            pass  # the extension loaded for the check but not in a worker: do it all in Python
    return _scan_processes(db_path, head, since, until, jobs), "python"


_LOW = -(1 << 62)  # the first range also owns table rows with impossible ids


def _scan_threads(db_path: str, head: int, since: str, until: str, jobs: int) -> list[RangeScan]:
    """Ranges scanned by `chledger_audit` in threads: each runs inside one sqlite3_step with the
    GIL released, so they really run in parallel, with no process to start."""
    parts = 1 if jobs <= 1 or head < NATIVE_PARALLEL_MIN_ROWS else jobs * NATIVE_RANGES_PER_JOB
    bounds = _ranges(head, parts) if head else [(1, 0)]
    if len(bounds) == 1:
        return [scan_range_native(db_path, *bounds[0], since=since, until=until, table_from=_LOW)]
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="audit") as pool:
        futures = [pool.submit(scan_range_native, db_path, a, b, since=since, until=until,
                               table_from=_LOW if i == 0 else None)
                   for i, (a, b) in enumerate(bounds)]
        return [f.result() for f in futures]


def _scan_processes(db_path: str, head: int, since: str, until: str, jobs: int) -> list[RangeScan]:
    """Scan 1..head in `jobs` ranges, one in this process and the rest in worker processes."""
    low = _LOW
    if head == 0:
        return [scan_range(db_path, 1, 0, since=since, until=until, table_from=low)]
    if jobs <= 1 or head < PARALLEL_MIN_ROWS:
        return [scan_range(db_path, 1, head, since=since, until=until, table_from=low)]
    bounds = _ranges(head, jobs)
    # forkserver, not fork: the caller may have threads (an event loop, a server in a test),
    # and forking a threaded process can deadlock the child. Its start-up (~0.2 s) is small
    # next to a scan big enough to be split.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=len(bounds) - 1, mp_context=ctx) as pool:
        futures = [pool.submit(scan_range, db_path, a, b, since=since, until=until)
                   for a, b in bounds[1:]]
        first = scan_range(db_path, *bounds[0], since=since, until=until, table_from=low)
        return [first] + [f.result() for f in futures]


def _open(db_path: str) -> apsw.Connection:
    if not os.path.exists(db_path):
        raise DatabaseError(f"no database at {db_path}")
    conn = connect(db_path, readonly=True)
    with translated(db_path):
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for name in ("event_log", "api_rate_limit_log"):
        if name not in tables:
            conn.close()
            raise DatabaseError(f"{db_path} has no {name} table: not a chledger database "
                                "(or not migrated: run `python cli.py migrate`)")
    return conn


def _default_limit(scans: list[RangeScan], until: str) -> tuple[int, float] | None:
    for scan in reversed(scans):
        for n in reversed(scan.noted):
            if n.event_type == "worker.started" and n.received_at < until:
                try:
                    s = msgspec.json.decode(n.data, type=_Started)
                except (msgspec.ValidationError, msgspec.DecodeError):
                    continue  # a tampered start can't set the limit; the chain check reports it
                return s.rate_limit_requests, s.rate_limit_window
    return None


def collect(db_path: str, *, since: str | None = None, until: str | None = None,
            limit: int | None = None, window: float | None = None,
            jobs: int | None = None, profile_bins: int = 0) -> Findings:
    """Measure everything the report needs; raises `ChledgerError` (or `ValueError`) when it
    can't. `profile_bins` > 0 also keeps the per-window curve a plot draws."""
    since = canonical(since) if since else None
    until = canonical(until) if until else None
    lo, hi = since or "", until or "\uffff"
    conn = _open(db_path)
    try:
        # Damaged pages can hide rows from the scan: a verdict on them would be a guess.
        check_integrity(conn, FULL)
        with translated(db_path):
            head = int(conn.execute("SELECT coalesce(max(id), 0) FROM event_log").fetchone()[0])
            wanted = "c" if native_chain.usable(conn) else "python"
        scans, engine = _scan_all(db_path, head, lo, hi, _jobs(jobs), wanted)
        with translated(db_path):
            orphans = [o for o in resolve_orphans(conn, (c for s in scans for c in s.candidates))
                       if lo <= o[2] < hi]
            checked, issues = settle_pending(conn, (p for s in scans for p in s.pending))
            snov = scan_snov(conn, since=lo, until=hi)
            reconciled = reconciled_by_position(conn)
    finally:
        conn.close()
    found = _default_limit(scans, hi)
    if limit is not None or window is not None:
        source = "option"
    else:
        source = "worker.started" if found else "default"
    limit = limit if limit is not None else (found[0] if found else DEFAULT_LIMIT)
    window = window if window is not None else (found[1] if found else DEFAULT_WINDOW)
    if limit < 1 or window <= 0:
        raise ChledgerError(f"the limit must be at least 1 and the window positive "
                            f"(got {limit} per {window} s)")
    times, positions = scans[0].times, scans[0].positions  # extended in place: no second copy
    for s in scans[1:]:
        times.extend(s.times)
        positions.extend(s.positions)
        s.times = s.positions = array("q")  # free as we go
    span = round(window * 1_000_000)
    # In C the window counts come with the answer to "do the times ascend?" (they do when one
    # clock stamps the ledger); otherwise Python asks, and counts.
    counts = native_chain.window_counts(times, span) if engine == "c" else None
    in_order = counts is not None or is_sorted(times)
    limited = [(n.position, to_us(n.received_at), n.data) for s in scans for n in s.noted
               if n.event_type == "request.rate_limited" and lo <= n.received_at < hi]
    cooldowns = check_cooldowns(limited, positions, times, span, in_order=in_order)
    stats = window_stats(times, span, limit, profile_bins=profile_bins, presorted=in_order,
                         counts=counts)
    reason = None if engine == "c" else (native_chain.unavailable_reason()
                                         or "the chain extension can't read this database")
    return Findings(db_path, since, until, limit, window, source, scans, head, times, positions,
                    orphans, cooldowns, checked, issues, stats, engine, reason, in_order,
                    snov if snov.entries else None, reconciled)


def _check_span(since: str | None, until: str | None) -> None:
    """Refuse a `since`/`until` that is not a time, or a span that can hold no request, naming
    the option as the user typed it."""
    bounds = {}
    for option, text in (("--since", since), ("--until", until)):
        if text is not None:
            try:
                bounds[option] = to_us(text)
            except (TypeError, ValueError):
                raise AuditError(f"{option} {text!r} is not an ISO 8601 time "
                                 "(e.g. 2026-11-23T08:30:00Z; UTC when no offset is given)") from None
    if len(bounds) == 2 and bounds["--since"] >= bounds["--until"]:
        raise AuditError(f"--since {since} is not before --until {until}: "
                         "no request could be in between")


def audit(db_path: str, *, since: str | None = None, until: str | None = None,
          limit: int | None = None, window: float | None = None, jobs: int | None = None,
          plot: str | None = None) -> Report:
    """The whole report for `db_path` (see the module docstring for what it holds); with `plot`,
    also draws the windows to that .png/.svg file.

    `limit`/`window` override the last `worker.started`'s; `jobs` caps the ranges scanned side
    by side. Raises `AuditError` (exit 2) when it can't give a verdict.
    """
    if plot:
        check_plot_path(plot)  # first: a plot we can't draw should not cost an audit
    _check_span(since, until)
    try:
        findings = collect(db_path, since=since, until=until, limit=limit, window=window,
                           jobs=jobs, profile_bins=PROFILE_BINS if plot else 0)
    except (ChledgerError, ValueError) as exc:
        raise AuditError(f"could not check: {exc}") from exc
    report = build_report(findings)
    if plot:
        write_plot(plot, findings)
    return report
