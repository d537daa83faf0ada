"""Hand-built ledgers for the audit tests, and checks that the builder itself tells the truth.

`AuditLedger` appends real typed entries through `Ledger` with a `FixedClock` the test moves,
into a real migrated SQLite file, and keeps `api_rate_limit_log` by the projection's rules
(a row per `request.sent`: id = its position, status 0 until an answer fills the newest row of
its request id still waiting, with the answer's status and elapsed_ms; a transport error leaves
status 0) without using the projection code, so the audit is checked against an independent
reading of those rules. With `projections=True` the real projections write the tables instead,
which checks that the audit and the projection agree.
"""

from __future__ import annotations

from pathlib import Path

import apsw

from eventlog.audit.timestamps import from_us, to_us
from eventlog.clock import FixedClock, from_epoch
from eventlog.ledger.db import connect
from eventlog.ledger.entries import (
    EmergencyStopped,
    RateLimited,
    RequestQueued,
    RequestSent,
    ResponseReceived,
    StreamGap,
    TransportError,
    WorkerStarted,
)
from eventlog.ledger.store import Ledger
from eventlog.ledger.migrate import migrate

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class AuditLedger:
    """A ledger written entry by entry at times the test chooses (seconds after START)."""

    def __init__(self, path: Path | str, start: float = START, *, projections: bool = False):
        """`projections=True` lets the real projections keep the tables (a contract check);
        otherwise this class writes `api_rate_limit_log` itself, by the rule in the docstring."""
        self.path = str(path)
        self.start = start
        self.conn = connect(self.path)
        # Hundreds of one-entry appends: fsync per commit would make a test take seconds, and
        # nothing here needs to survive a power cut.
        self.conn.execute("PRAGMA synchronous=OFF")
        migrate(self.conn)
        self.clock = FixedClock(start)
        self.ledger = Ledger(self.conn, self.clock)
        self.projections = projections
        if projections:
            from projections.runner import attach

            attach(self.ledger)

    def at(self, seconds: float) -> "AuditLedger":
        self.clock.set(self.start + seconds)
        return self

    def iso(self, seconds: float) -> str:
        return from_epoch(self.start + seconds)

    def _append(self, entry, event_id: str | None = None) -> int:
        return self.ledger.append(entry, event_id).position

    # --- requests ---------------------------------------------------------------

    def queue(self, rid: str, company: str = "00000001", kind: str = "profile") -> int:
        return self._append(RequestQueued(request_id=rid, kind=kind, company_number=company))

    def send(self, rid: str, company: str = "00000001", kind: str = "profile", page_start: int = 0,
             *, table: bool = True) -> int:
        pos = self._append(RequestSent(request_id=rid, kind=kind, company_number=company,
                                       path=f"/company/{company}", page_start=page_start))
        if table and not self.projections:
            self.conn.execute(
                "INSERT INTO api_rate_limit_log(id, timestamp, request_type, response_status, "
                "company_number, request_id, processing_time_ms) VALUES (?, ?, ?, 0, ?, ?, NULL)",
                (pos, from_epoch(self.clock.now()), kind, company, rid))
        return pos

    def _answered(self, rid: str, page_start: int, status: int, elapsed: int) -> None:
        """The answer fills the newest row of its request id still waiting (status 0, no time)."""
        if self.projections:
            return
        self.conn.execute(
            "UPDATE api_rate_limit_log SET response_status = ?, processing_time_ms = ? WHERE id = "
            "(SELECT max(id) FROM api_rate_limit_log WHERE request_id = ? AND response_status = 0 "
            "AND processing_time_ms IS NULL)", (status, elapsed, rid))

    def answer(self, rid: str, status: int = 200, company: str = "00000001", kind: str = "profile",
               page_start: int = 0, elapsed: int = 120) -> int:
        pos = self._append(ResponseReceived(request_id=rid, kind=kind, company_number=company,
                                            status=status, elapsed_ms=elapsed, page_start=page_start))
        self._answered(rid, page_start, status, elapsed)
        return pos

    def rate_limited(self, rid: str, cooldown: float, status: int = 429, company: str = "00000001",
                     kind: str = "profile") -> int:
        until = from_epoch(self.clock.now() + cooldown)
        pos = self._append(RateLimited(request_id=rid, kind=kind, company_number=company,
                                       status=status, elapsed_ms=80, cooldown_until=until))
        self._answered(rid, 0, status, 80)
        return pos

    def transport_error(self, rid: str, company: str = "00000001", kind: str = "profile") -> int:
        pos = self._append(TransportError(request_id=rid, kind=kind, company_number=company,
                                          error="timeout", elapsed_ms=30_000))
        self._answered(rid, 0, 0, 30_000)
        return pos

    def request(self, rid: str, at: float, status: int = 200, company: str = "00000001") -> int:
        """Queue (a second earlier), send at `at`, answer 100 ms later; returns the send's position."""
        self.at(at - 1).queue(rid, company)
        pos = self.at(at).send(rid, company)
        self.at(at + 0.1).answer(rid, status, company)
        return pos

    def sends(self, times: list[float], prefix: str = "r") -> list[int]:
        """A queued+sent+answered request at each time (answers at the same instant, so the
        clock never runs backwards however close the times are)."""
        out = []
        for i, t in enumerate(times):
            rid = f"{prefix}{i}"
            self.at(t).queue(rid)
            out.append(self.send(rid))
            self.answer(rid)
        return out

    # --- the worker and the stream --------------------------------------------------

    def worker_started(self, limit: int = 600, window: float = 300.0) -> int:
        return self._append(WorkerStarted(version="test", pid=1, rate_limit_requests=limit,
                                          rate_limit_window=window))

    def emergency_stop(self, reason: str = "3 consecutive 429s", violations: int = 3) -> int:
        return self._append(EmergencyStopped(reason=reason, violations=violations))

    def gap(self, requested: int = 1000) -> int:
        return self._append(StreamGap(stream="companies", requested_timepoint=requested, reason="416"))

    # --- tampering ----------------------------------------------------------------

    def drop_triggers(self) -> None:
        self.conn.execute("DROP TRIGGER event_log_no_update; DROP TRIGGER event_log_no_delete")

    def execute(self, sql: str, params: tuple = ()) -> None:
        self.conn.execute(sql, params)

    def close(self) -> None:
        self.conn.close()


def table_rows(path: str) -> list[tuple]:
    conn = apsw.Connection(path)
    try:
        return conn.execute("SELECT id, timestamp, request_type, response_status, company_number, "
                            "request_id, processing_time_ms FROM api_rate_limit_log ORDER BY id").fetchall()
    finally:
        conn.close()


# --- the builder's own checks ---------------------------------------------------------


def test_builder_writes_a_chain_that_verifies_and_one_row_per_send(tmp_path):
    b = AuditLedger(tmp_path / "a.db")
    b.at(0).worker_started()
    sent = b.request("x", at=5)
    b.at(10).queue("y")
    b.at(11).send("y")
    b.at(11.2).rate_limited("y", cooldown=60)
    assert Ledger(b.conn).verify().ok
    rows = table_rows(b.path)
    assert [(r[0], r[3], r[5]) for r in rows] == [(sent, 200, "x"), (sent + 3, 429, "y")]
    assert rows[0][1] == b.iso(5)


def test_microsecond_times_round_trip_exactly():
    for s in ("2026-01-01T00:00:00.000000Z", "2026-11-23T00:17:36.123456Z", "1999-12-31T23:59:59.999999Z"):
        assert from_us(to_us(s)) == s
    assert to_us("2026-01-01T00:00:01.000000Z") - to_us("2026-01-01T00:00:00.999999Z") == 1
    assert to_us("2026-01-01T01:00:00+01:00") == to_us("2026-01-01T00:00:00.000000Z")
