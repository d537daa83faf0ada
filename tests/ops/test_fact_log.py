"""The ledger observer logs each appended fact once: failures always, routine successes sampled."""

from __future__ import annotations

import base64
import io
import json
import logging
from typing import Iterator

import pytest

import projections
from eventlog.ledger.entries import (
    CompanyCompleted,
    EmergencyStopped,
    Entry,
    RateLimited,
    RequestAbandoned,
    RequestQueued,
    RequestSent,
    TransportError,
    WorkerStopped,
)
from eventlog.ledger.store import Ledger
from eventlog.ops.fact_log import LedgerLog, attach
from eventlog.ops.logs import REDACTED, JsonFormatter, kept, setup_logging
from eventlog.config.settings import Settings
from projections.testing import STRIKE_OFF, officer, officers_page, response, stream_event

KEY = "f3c9d2aa-5e1b-4c77-9d10-abcdef123456"
CO = "12345678"


class Lines(logging.Handler):
    """Every record under `eventlog`, kept as the JSON line production would print."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def events(self, company: str | None = None) -> list[str]:
        return [x["event"] for x in self.lines if company is None or x.get("company_number") == company]


@pytest.fixture
def lines() -> Iterator[Lines]:
    root = logging.getLogger("eventlog")
    saved = root.level
    handler = Lines()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(saved)


def settings(rate: float, **kw) -> Settings:
    return Settings(log_sample_rate=rate, **kw)


def sent(rid: str, number: str = CO, kind: str = "profile") -> RequestSent:
    return RequestSent(request_id=rid, kind=kind, company_number=number, path=f"/company/{number}")


def test_failures_are_logged_unsampled_with_level_and_correlation_id(ledger, lines):
    attach(ledger, settings(0.0))  # every routine line dropped: what remains is never sampled
    ledger.append_many([
        sent("r1"),
        response("r1", "profile", CO, status=503, elapsed_ms=40),
        RateLimited(request_id="r2", kind="profile", company_number=CO, status=429, elapsed_ms=9,
                    cooldown_until="2023-11-14T22:18:20.000000Z"),
        TransportError(request_id="r3", kind="officers", company_number=CO,
                       error="TIMEOUT: no answer in 30s", elapsed_ms=30000),
        RequestAbandoned(request_id="r4", kind="profile", company_number=CO,
                         error_code="MAX_RETRIES", reason="HTTP 503 after 10 attempt(s)"),
        EmergencyStopped(reason="3 rate-limit responses within an hour", violations=3),
        WorkerStopped(reason="EmergencyStop: emergency stop", exit_code=3),
    ])
    got = {(x["event"], x["level"]) for x in lines.lines}
    assert got == {("response.received", "WARNING"), ("request.rate_limited", "WARNING"),
                   ("request.transport_error", "WARNING"), ("request.abandoned", "WARNING"),
                   ("worker.emergency_stop", "ERROR"), ("worker.stopped", "ERROR")}
    by_event = {x["event"]: x for x in lines.lines}
    for name in ("response.received", "request.rate_limited", "request.transport_error", "request.abandoned"):
        assert by_event[name]["correlation_id"] == CO and "sample_rate" not in by_event[name]
    assert by_event["response.received"]["status"] == 503
    assert by_event["request.rate_limited"]["cooldown_until"] == "2023-11-14T22:18:20.000000Z"
    assert by_event["request.abandoned"]["error_code"] == "MAX_RETRIES"
    assert by_event["worker.stopped"]["exit_code"] == 3
    assert by_event["worker.stopped"]["module"] == "eventlog.worker.runtime"
    assert [x["position"] for x in lines.lines] == [2, 3, 4, 5, 6, 7]


def test_a_clean_stop_is_info(ledger, lines):
    attach(ledger, settings(0.0))
    ledger.append(WorkerStopped(reason="duration of 20 s reached"))
    [line] = lines.lines
    assert (line["event"], line["level"], line["exit_code"]) == ("worker.stopped", "INFO", 0)


def numbers(n: int) -> list[str]:
    return [f"{i:08d}" for i in range(1, n + 1)]


@pytest.mark.parametrize("rate", [0.3, 1.0, 0.0])
def test_routine_lines_are_sampled_by_company_the_same_way_every_time(conn, clock, lines, rate):
    ledger = Ledger(conn, clock)
    hook = attach(ledger, settings(rate))
    companies = numbers(200)
    ledger.append_many([stream_event(n, i) for i, n in enumerate(companies, 1)])
    first = [x["company_number"] for x in lines.lines]
    assert set(first) == {n for n in companies if kept(n, rate)}
    assert all(x["event"] == "event_processed" and x["correlation_id"] == x["company_number"]
               for x in lines.lines)
    if rate == 1.0:
        assert first == companies and all("sample_rate" not in x for x in lines.lines)
    elif rate == 0.0:
        assert first == []
    else:
        assert 30 <= len(first) <= 90  # about 60 of 200
        assert all(x["sample_rate"] == rate for x in lines.lines)
    lines.lines.clear()
    hook(conn, list(ledger.read()))  # the same records again: the same lines, no others
    assert [x["company_number"] for x in lines.lines] == first


def test_a_kept_company_is_logged_end_to_end(conn, clock, lines):
    ledger = Ledger(conn, clock)
    projections.attach(ledger)
    attach(ledger, settings(0.5))
    keep = next(n for n in numbers(100) if kept(n, 0.5))
    drop = next(n for n in numbers(100) if not kept(n, 0.5))
    for number in (keep, drop):
        ledger.append(stream_event(number, int(number), detail=STRIKE_OFF))
        clock.advance(1)
        ledger.append(RequestQueued(request_id=f"o-{number}", kind="officers", company_number=number,
                                    cause="of interest"))
        clock.advance(1)
        ledger.append(sent(f"o-{number}", number, "officers"))
        clock.advance(1)
        ledger.append(response(f"o-{number}", "officers", number, elapsed_ms=87,
                               body=officers_page([officer("p1")])))
        clock.advance(1)
    assert lines.events(drop) == []
    assert lines.events(keep) == ["event_processed", "request.queued", "request.sent",
                                  "response.received", "company.completed"]
    mine = [x for x in lines.lines if x["company_number"] == keep]
    assert {x["correlation_id"] for x in mine} == {keep}
    assert mine[0]["state"] == "strike_off_confirmed"
    assert mine[3]["elapsed_ms"] == 87 and mine[3]["level"] == "INFO"
    assert mine[4]["reason"] == "officers fetched" and mine[4]["module"] == "eventlog.worker.policy"
    assert all(x["sample_rate"] == 0.5 for x in mine)


def test_a_company_completed_by_its_stream_event_or_the_policy_is_logged_once(conn, clock, lines):
    ledger = Ledger(conn, clock)
    projections.attach(ledger)
    attach(ledger, settings(1.0))
    ledger.append(stream_event("00000001", 1))  # active, not of interest: completed at once
    ledger.append_many([CompanyCompleted(company_number="00000002", reason="officers still fresh"),
                        CompanyCompleted(company_number="00000002", reason="twice in one append")])
    assert lines.events("00000001") == ["event_processed", "company.completed"]
    assert lines.lines[0]["state"] == "completed"
    assert [(x["event"], x.get("reason")) for x in lines.lines if x["company_number"] == "00000002"] == [
        ("company.completed", "officers still fresh")]


def test_keys_never_reach_the_output(ledger):
    s = settings(1.0, api_key=KEY)
    out = io.StringIO()
    target = logging.getLogger("eventlog")
    saved = target.level
    handler = setup_logging("DEBUG", stream=out, json_lines=True, secrets=[s.api_key, s.stream_key],
                            sample_rate=s.log_sample_rate, logger=target)
    try:
        attach(ledger, s)
        basic = base64.b64encode(f"{KEY}:".encode()).decode()
        ledger.append_many([
            RequestSent(request_id="r1", kind="profile", company_number=CO, path=f"/company/{CO}?k={KEY}"),
            TransportError(request_id="r1", kind="profile", company_number=CO, elapsed_ms=3,
                           error=f"ClientConnectorError: http://{KEY}:@127.0.0.1:1/"),
            RequestAbandoned(request_id="r1", kind="profile", company_number=CO, error_code="HTTP_ERROR",
                             reason=f"server echoed Authorization: Basic {basic}"),
        ])
    finally:
        target.removeHandler(handler)
        target.setLevel(saved)
        logging.captureWarnings(False)
    text = out.getvalue()
    assert [json.loads(x)["event"] for x in text.splitlines()] == [
        "request.sent", "request.transport_error", "request.abandoned"]
    assert KEY not in text and basic not in text
    assert text.count(REDACTED) == 3


class Truncated(Entry, frozen=True, tag="response.received"):
    """Claims to be a response but has none of a response's fields but two."""

    request_id: str
    company_number: str


def test_an_entry_the_hook_cannot_read_is_still_appended(ledger, lines):
    hook = attach(ledger, settings(1.0))
    appended = ledger.append_many([Truncated(request_id="r1", company_number=CO),
                                   response("r2", "profile", CO, status=502)])
    assert hook.failures == 1
    rows = ledger.conn.execute("SELECT id, event_type FROM event_log ORDER BY id").fetchall()
    assert rows == [(appended[0].position, "response.received"), (appended[1].position, "response.received")]
    failure, logged = lines.lines  # the failure itself shows at DEBUG; the next record is still logged
    assert failure["level"] == "DEBUG" and "AttributeError" in failure["exception"]
    assert (logged["event"], logged["status"], logged["level"]) == ("response.received", 502, "WARNING")


def test_a_logging_failure_does_not_abort_the_append(ledger, lines):
    class Broken(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            raise RuntimeError("a broken log pipeline")

    hook = attach(ledger, settings(1.0))
    sender = logging.getLogger("eventlog.worker.sender")
    broken = Broken()
    sender.addFilter(broken)
    try:
        position = ledger.append(response("r1", "profile", CO, status=503)).position
    finally:
        sender.removeFilter(broken)
    assert hook.failures == 1
    assert ledger.get(ledger.conn.execute("SELECT event_id FROM event_log WHERE id = ?",
                                          (position,)).fetchone()[0]).entry.status == 503


def test_attach_is_idempotent_and_runs_after_commit(ledger, caplog):
    first = attach(ledger, settings(0.1))
    projections.attach(ledger)
    assert attach(ledger, settings(0.1)) is first
    assert ledger.after_commit == [first] and first.sample_rate == 0.1
    assert not any(isinstance(h, LedgerLog) for h in ledger.on_append)


def test_an_append_that_rolls_back_logs_nothing(ledger, caplog):
    """The lines describe only what the ledger holds: a transaction that fails to commit logs nothing."""
    attach(ledger, settings(1.0))
    caplog.set_level(logging.DEBUG)

    def boom(conn, records):  # the last step before COMMIT fails, as a full disk would
        raise RuntimeError("the commit never happens")

    ledger.on_append.append(boom)
    with pytest.raises(RuntimeError):
        ledger.append(RequestQueued(request_id="r-gone", kind="profile", company_number="00000001"))
    ledger.on_append.remove(boom)
    assert ledger.head() == 0
    assert not [r for r in caplog.records if r.name.startswith("eventlog.") and "r-gone" in str(r.__dict__)]
    ledger.append(RequestQueued(request_id="r-kept", kind="profile", company_number="00000001"))
    assert [r for r in caplog.records if "r-kept" in str(r.__dict__)]
