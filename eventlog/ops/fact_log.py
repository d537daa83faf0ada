"""Log what the ledger records: one observer of every append, so each fact is logged once.

Why an observer and not calls in the sender, limiter and stream client: every
fact the worker learns (a response, a 429, an abandonment, a stop) is appended
to the ledger anyway, by whichever task learned it. Logging it from a hook on
every append means no code path can forget to log, none can log twice, and
the line says exactly what the ledger says. The hook runs on the appender's
path, so it is cheap (attribute reads; one indexed lookup of
`company_processing_state`, and only for a line that is really going out) and
it never raises: a failure to log is counted in `failures` and swallowed, and
the appender goes on.

Correlation id: `pipeline_id(company_number)`, with no origin, so the id is the
company number. A `<company>@<position that began the pipeline>` id would need
that position at every step, and nothing cheap holds it: `event_log` has no
index on `company_number`; `company_processing_state` has one row per company
for ever (its `id` and `created_at` name the company's *first* pipeline, not the
current one, and `created_at` is a time, not a position); the request entries
carry request ids, not their origin; and "the company's latest stream event"
would change the id in the middle of a pipeline whenever a second event for the
company arrives. Storing the origin would add state outside the ledger. The
company number needs nothing: every step in every task, after a restart and
after a replay, computes it; and since a company has one row, hence at most one
pipeline under way at a time, its pipelines follow each other in time, so
filtering by the id and reading in order follows one company, pipeline by
pipeline (each begins at an `event_processed` or `request.queued` line).

Sampling: routine successes are marked `routine(...)` with the correlation id
as `sample_key`, so a company is logged end to end or not at all (its event,
its requests, its completion). The hook applies `settings.log_sample_rate` with
the same pure `kept()` as the handler's `SampleRoutine`, so the two agree and
a dropped line costs no LogRecord. Warnings and errors are never sampled.

It runs as a `Ledger.after_commit` hook: after COMMIT, so a line never
describes a fact the ledger doesn't hold (an append rolled back by a full disk
logs nothing), and the state it reads is the one the projections committed.
"""

from __future__ import annotations

import logging
from typing import Any

import apsw

from eventlog.ledger.store import Ledger, Record
from eventlog.ops.logs import kept, pipeline_id, routine
from eventlog.config.settings import Settings
from projections.projectors import processing_state

__all__ = ["LedgerLog", "attach"]

_stream = logging.getLogger("eventlog.worker.stream.client")
_sender = logging.getLogger("eventlog.worker.sender")
_policy = logging.getLogger("eventlog.worker.policy")
_worker = logging.getLogger("eventlog.worker.runtime")
_own = logging.getLogger(__name__)

DEBUG, INFO, WARNING, ERROR = logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR

class LedgerLog:
    """The `after_commit` hook: `hook(conn, records)` logs each record; never raises."""

    def __init__(self, sample_rate: float = 1.0):
        self.sample_rate = sample_rate
        self.failures = 0  # records that could not be logged (swallowed; see the docstring)

    def __call__(self, conn: apsw.Connection, records: list[Record]) -> None:
        try:
            completed: set[str] = set()  # companies whose completion this append already logged
            for r in records:
                try:
                    self._log(conn, r, completed)
                except Exception:
                    self._failed(r)
        except Exception:  # not even a bad `records` may abort the append
            self.failures += 1

    def _failed(self, r: Any) -> None:
        self.failures += 1
        try:
            _own.debug("could not log ledger entry %s", getattr(r, "position", "?"), exc_info=True)
        except Exception:
            pass

    # --- one record ------------------------------------------------------------------

    def _log(self, conn: apsw.Connection, r: Record, completed: set[str]) -> None:
        t, e, number = r.event_type, r.entry, r.company_number
        ids: dict[str, Any] = {"position": r.position}
        if number:
            ids.update(company_number=number, correlation_id=pipeline_id(number))
        key = number or r.event_id
        if t == "stream.event":
            if self._wants(_stream, INFO, key):
                state = self._state(conn, number)
                self._routine(_stream, INFO, "event_processed", key, ids, event_id=r.event_id,
                              stream=e.stream, timepoint=e.timepoint, change=e.change,
                              resource_kind=e.resource_kind, published_at=e.published_at,
                              state=state[0] if state else None)
                self._completion(state, r, "status from the stream: not of interest", ids, completed)
        elif t == "request.queued":
            if self._wants(_policy, DEBUG, key):
                self._routine(_policy, DEBUG, "request.queued", key, ids, request_id=e.request_id,
                              kind=e.kind, priority=e.priority, attempt=e.attempt,
                              not_before=e.not_before, cause=e.cause, batch_id=e.batch_id)
        elif t == "request.sent":
            if self._wants(_sender, INFO, key):
                self._routine(_sender, INFO, "request.sent", key, ids, request_id=e.request_id,
                              kind=e.kind, path=e.path, attempt=e.attempt, page_start=e.page_start)
        elif t == "response.received":
            fields = dict(request_id=e.request_id, kind=e.kind, status=e.status,
                          elapsed_ms=e.elapsed_ms, page_start=e.page_start)
            if not 200 <= e.status < 300:
                _sender.warning("response.received", extra={**ids, **fields})
            elif self._wants(_sender, INFO, key):
                self._routine(_sender, INFO, "response.received", key, ids, **fields)
                reason = "officers fetched" if e.kind == "officers" else "status fetched: not of interest"
                self._completion(self._state(conn, number), r, reason, ids, completed)
        elif t == "request.rate_limited":
            _sender.warning(t, extra={**ids, "request_id": e.request_id, "kind": e.kind,
                                      "status": e.status, "elapsed_ms": e.elapsed_ms,
                                      "cooldown_until": e.cooldown_until, "ratelimit": e.ratelimit})
        elif t == "request.transport_error":
            _sender.warning(t, extra={**ids, "request_id": e.request_id, "kind": e.kind,
                                      "error": e.error, "elapsed_ms": e.elapsed_ms})
        elif t == "request.abandoned":
            _policy.warning(t, extra={**ids, "request_id": e.request_id, "kind": e.kind,
                                      "error_code": e.error_code, "reason": e.reason})
        elif t == "company.completed":
            if number not in completed and self._wants(_policy, INFO, key):
                completed.add(number)
                self._routine(_policy, INFO, t, key, ids, reason=e.reason)
        elif t == "stream.rejected":
            _stream.warning(t, extra={**ids, "stream": e.stream, "reason": e.reason,
                                      "excerpt": e.excerpt, "length": e.length})
        elif t == "worker.emergency_stop":
            _worker.error(t, extra={**ids, "reason": e.reason, "violations": e.violations,
                                    "cooldown_until": e.cooldown_until})
        elif t == "worker.stopped":
            _worker.log(ERROR if e.exit_code else INFO, t,
                        extra={**ids, "reason": e.reason, "exit_code": e.exit_code})
        elif t == "worker.started":
            _worker.info(t, extra={**ids, "version": e.version, "pid": e.pid,
                                   "rate_limit_requests": e.rate_limit_requests,
                                   "rate_limit_window": e.rate_limit_window})
        elif t == "backfill.created":
            _worker.info(t, extra={**ids, "batch_id": e.batch_id, "name": e.name,
                                   "companies": len(e.company_numbers), "expires_at": e.expires_at})
        elif t == "bulk.snapshot":
            _worker.info(t, extra={**ids, "snapshot_date": e.snapshot_date, "files": [f.name for f in e.files],
                                   "rows_read": e.rows_read, "rows_kept": e.rows_kept, "rejected": e.rejected,
                                   "companies_recorded": e.companies_recorded, "whole": e.whole})
        elif t == "batch.cancelled":
            _worker.info(t, extra={**ids, "batch_id": e.batch_id, "reason": e.reason})
        elif t == "batch.expired":
            _worker.info(t, extra={**ids, "batch_ids": e.batch_ids})
        # stream.connected / disconnected / gap: eventlog.worker.stream.client logs them as it appends them.

    # --- helpers ---------------------------------------------------------------------

    def _wants(self, log: logging.Logger, level: int, key: object) -> bool:
        """Whether a routine line would go out: checked before any work is done for it."""
        return log.isEnabledFor(level) and kept(key, self.sample_rate)

    def _routine(self, log: logging.Logger, level: int, event: str, key: object,
                 ids: dict[str, Any], **fields: Any) -> None:
        if self.sample_rate < 1.0:
            fields["sample_rate"] = self.sample_rate  # a reader scales counts by 1/rate
        log.log(level, event, extra=routine(sample_key=key, **ids, **fields))

    @staticmethod
    def _state(conn: apsw.Connection, number: str | None) -> tuple | None:
        """The company's row as the projections left it (they run before this hook)."""
        if not number:
            return None
        try:
            return processing_state.state_of(conn, number)
        except apsw.SQLError:  # no projections table (a bare ledger): no state to report
            return None

    def _completion(self, state: tuple | None, r: Record, reason: str, ids: dict[str, Any],
                    completed: set[str]) -> None:
        """`company.completed` when this record completed the company (completed_at is its time)."""
        number = r.company_number
        if state and state[0] == "completed" and state[1] == r.received_at and number not in completed:
            completed.add(number)
            self._routine(_policy, INFO, "company.completed", number, ids, reason=reason)


def attach(ledger: Ledger, settings: Settings | None = None) -> LedgerLog:
    """Log every append through `ledger` once it has committed. Idempotent."""
    for hook in ledger.after_commit:
        if isinstance(hook, LedgerLog):
            return hook
    hook = LedgerLog(settings.log_sample_rate if settings is not None else 1.0)
    ledger.after_commit.append(hook)
    return hook
