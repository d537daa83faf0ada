"""The processing state machine, every transition, through the live hook, replay and catch-up.

Each test appends what the worker would append (the policy's decisions
included, as entries) and reads `company_processing_state` and its neighbours
back. The `world` fixture runs every test three times: projections built by the
append hook, by `replay()` and by `catch_up()`; the three must agree.
"""

from __future__ import annotations

import random

import pytest

from eventlog.ledger.entries import (
    BackfillCreated,
    CompanyCompleted,
    Interest,
    RateLimited,
    RequestAbandoned,
    RequestQueued,
    RequestSent,
    TransportError,
    WorkerStarted,
)
from eventlog.config.settings import Settings
from projections.testing import STRIKE_OFF, World, officer, officers_page, profile, response, stream_event

N = "00000123"


@pytest.fixture(params=["live", "replay", "catch_up"])
def world(request, conn, clock) -> World:
    return World(conn, clock, request.param)


def queued(rid: str, kind: str = "profile", number: str = N, attempt: int = 1, **kw) -> RequestQueued:
    return RequestQueued(request_id=rid, kind=kind, company_number=number, attempt=attempt, **kw)


def sent(rid: str, kind: str = "profile", number: str = N, page_start: int = 0) -> RequestSent:
    return RequestSent(request_id=rid, kind=kind, company_number=number, path=f"/company/{number}",
                       page_start=page_start)


def test_a_stream_event_without_a_status_leaves_the_company_detected(world):
    world.add(stream_event("123", 1, status=None))
    s = world.state(N)
    assert s["processing_state"] == "detected"
    assert s["status_fetched_at"] is None and s["created_at"] == s["updated_at"]
    assert world.company(N)["data_source"] == "stream"


def test_a_company_not_of_interest_completes_without_any_request(world):
    [pos] = world.add(stream_event(N, 1, status="active"))
    s = world.state(N)
    assert s["processing_state"] == "completed"
    assert s["status_fetched_at"] == s["completed_at"] == s["created_at"]
    assert s["status_request_id"] is None and s["officers_queued_at"] is None
    assert world.rows("request_queue") == [] and world.rows("api_rate_limit_log") == []


def test_a_strike_off_status_on_the_stream_counts_as_the_status_fetch(world):
    world.add(stream_event(N, 1, detail=STRIKE_OFF))
    s = world.state(N)
    assert s["processing_state"] == "strike_off_confirmed"
    assert s["status_fetched_at"] is not None and s["status_queued_at"] is None


def test_every_transition_from_detected_to_completed_through_the_rest_api(world):
    world.add(stream_event(N, 1, status=None))
    world.add(queued("p1"))
    s = world.state(N)
    assert (s["processing_state"], s["status_request_id"], s["status_retry_count"]) == ("status_queued", "p1", 0)
    assert world.row("request_queue", "")["status"] == "queued"

    world.add(sent("p1"))
    assert world.row("request_queue", "")["status"] == "in_flight"
    assert world.row("api_rate_limit_log", "")["response_status"] == 0  # counted, not answered yet

    world.add(response("p1", "profile", N, body=profile(N, detail=STRIKE_OFF)))
    s = world.state(N)
    assert s["processing_state"] == "strike_off_confirmed" and s["status_fetched_at"] is not None
    assert world.rows("request_queue") == []
    assert world.company(N)["company_status_detail"] == STRIKE_OFF

    world.add(queued("o1", "officers"))
    s = world.state(N)
    assert (s["processing_state"], s["officers_request_id"]) == ("officers_queued", "o1")

    world.add(sent("o1", "officers"))
    world.add(response("o1", "officers", N, body=officers_page([officer("a"), officer("b")], total=3)))
    assert world.state(N)["processing_state"] == "officers_queued"  # one page still to come
    assert world.row("request_queue", "")["status"] == "in_flight"

    world.add(sent("o1", "officers", page_start=2))
    world.add(response("o1", "officers", N, page_start=2, body=officers_page([officer("c")], total=3, start=2)))
    s = world.state(N)
    assert s["processing_state"] == "completed"
    assert s["officers_fetched_at"] == s["completed_at"] == s["updated_at"]
    assert world.rows("request_queue") == []
    assert sorted(o["officer_id"] for o in world.rows("officers")) == ["a", "b", "c"]
    log = world.rows("api_rate_limit_log", "ORDER BY id")
    assert [(r["request_type"], r["response_status"]) for r in log] == [
        ("profile", 200), ("officers", 200), ("officers", 200)]


def test_a_rest_profile_not_of_interest_completes_without_an_officers_request(world):
    world.add(stream_event(N, 1, status=None))
    world.add(queued("p1"), sent("p1"))
    world.add(response("p1", "profile", N, body=profile(N, status="active")))
    s = world.state(N)
    assert s["processing_state"] == "completed" and s["officers_queued_at"] is None


def test_retries_up_to_max_retries_then_failed(world):
    """What the policy appends after each timeout: the retry (a new request id, attempt + 1),
    and after MAX_RETRIES attempts the abandonment."""
    max_retries = 3
    world.add(stream_event(N, 1, status=None))
    world.add(queued("p1"))
    for attempt in range(1, max_retries + 1):
        rid = f"p{attempt}"
        world.add(sent(rid))
        s = world.state(N)
        assert (s["processing_state"], s["status_request_id"], s["status_retry_count"]) == (
            "status_queued", rid, attempt - 1)
        failure = TransportError(request_id=rid, kind="profile", company_number=N,
                                 error="TIMEOUT: request timed out", elapsed_ms=30000)
        if attempt < max_retries:
            world.add(failure, queued(f"p{attempt + 1}", attempt=attempt + 1))
            assert world.state(N)["last_error"] == "TIMEOUT: request timed out"
        else:
            world.add(failure, RequestAbandoned(request_id=rid, kind="profile", company_number=N,
                                                error_code="MAX_RETRIES", reason="timed out after 3 attempts"))
    s = world.state(N)
    assert s["processing_state"] == "failed"
    assert s["last_error"] == "MAX_RETRIES: timed out after 3 attempts"
    assert s["status_retry_count"] == max_retries - 1
    assert world.rows("request_queue") == []
    log = world.rows("api_rate_limit_log")
    assert len(log) == 3 and {r["response_status"] for r in log} == {0}  # no HTTP answer, ever
    assert {r["processing_time_ms"] for r in log} == {30000}


def test_a_404_ends_failed_with_not_found_and_no_retry(world):
    world.add(stream_event(N, 1, status=None))
    world.add(queued("p1"), sent("p1"))
    world.add(response("p1", "profile", N, status=404),
              RequestAbandoned(request_id="p1", kind="profile", company_number=N, error_code="NOT_FOUND",
                               reason="404 from Companies House"))
    s = world.state(N)
    assert s["processing_state"] == "failed"
    assert s["last_error"].startswith("NOT_FOUND")
    assert s["status_retry_count"] == 0
    assert world.rows("request_queue") == []
    assert [r["response_status"] for r in world.rows("api_rate_limit_log")] == [404]


def test_a_429_records_the_violation_and_requeues_the_same_request_after_the_cooldown(world):
    world.add(stream_event(N, 1, status=None))
    world.add(queued("p1"), sent("p1"))
    world.add(RateLimited(request_id="p1", kind="profile", company_number=N, status=429, elapsed_ms=35,
                          cooldown_until="2023-11-14T22:20:00.000000Z"))
    s = world.state(N)
    assert s["processing_state"] == "status_queued"
    assert s["rate_limit_violations"] == 1 and s["last_error"] == "RATE_LIMIT"
    assert s["last_429_response_at"] == s["updated_at"]
    q = world.row("request_queue", "")
    assert (q["request_id"], q["status"], q["not_before"]) == ("p1", "queued", "2023-11-14T22:20:00.000000Z")
    world.add(sent("p1"))
    world.add(response("p1", "profile", N, body=profile(N)))
    log = world.rows("api_rate_limit_log", "ORDER BY id")
    assert [(r["request_id"], r["response_status"], r["processing_time_ms"]) for r in log] == [
        ("p1", 429, 35), ("p1", 200, 120)]
    assert world.state(N)["processing_state"] == "completed"


def test_a_response_to_a_replaced_request_moves_nothing(world):
    world.add(stream_event(N, 1, status=None))
    world.add(queued("p1"), sent("p1"))
    world.add(TransportError(request_id="p1", kind="profile", company_number=N, error="interrupted: worker restarted",
                             elapsed_ms=0), queued("p2", attempt=1))
    world.add(response("p1", "profile", N, body=profile(N, detail=STRIKE_OFF)))
    s = world.state(N)
    assert (s["processing_state"], s["status_request_id"]) == ("status_queued", "p2")


def test_a_company_in_flight_is_not_disturbed_by_a_stream_event(world):
    world.add(stream_event(N, 1, status=None))
    world.add(queued("p1"))
    world.add(stream_event(N, 2, detail=STRIKE_OFF))
    s = world.state(N)
    assert s["processing_state"] == "status_queued"
    assert s["status_fetched_at"] is not None  # the status is known, the request still runs


def test_a_completed_company_that_becomes_interesting_is_reopened(world):
    world.add(stream_event(N, 1, status="active"))
    assert world.state(N)["processing_state"] == "completed"
    world.add(stream_event(N, 2, detail=STRIKE_OFF))
    assert world.state(N)["processing_state"] == "strike_off_confirmed"


def test_a_failed_company_stays_failed_unless_it_becomes_interesting(world):
    world.add(stream_event(N, 1, status=None))
    world.add(RequestAbandoned(request_id="bad", kind="profile", company_number=N, error_code="BAD_COMPANY_NUMBER"))
    assert world.state(N)["processing_state"] == "failed"
    world.add(stream_event(N, 2, status="active"))
    assert world.state(N)["processing_state"] == "failed"
    world.add(stream_event(N, 3, detail=STRIKE_OFF))
    assert world.state(N)["processing_state"] == "strike_off_confirmed"


def test_the_policy_can_complete_a_company_without_a_call(world):
    world.add(stream_event(N, 1, detail=STRIKE_OFF))
    world.add(CompanyCompleted(company_number=N, reason="officers fetched recently"))
    s = world.state(N)
    assert s["processing_state"] == "completed" and s["officers_queued_at"] is None


def test_the_interest_predicate_is_the_latest_worker_started(world):
    liquidation = Interest(field="company_status", values=("liquidation",))
    world.add(WorkerStarted(version="t", pid=1, rate_limit_requests=600, rate_limit_window=300.0,
                            interest=liquidation))
    world.add(stream_event("1", 1, status="liquidation"))
    world.add(stream_event("2", 2, status="active", detail=STRIKE_OFF))
    assert world.state("00000001")["processing_state"] == "strike_off_confirmed"
    assert world.state("00000002")["processing_state"] == "completed"
    world.add(WorkerStarted(version="t", pid=2, rate_limit_requests=600, rate_limit_window=300.0))
    world.add(stream_event("3", 3, detail=STRIKE_OFF))
    assert world.state("00000003")["processing_state"] == "strike_off_confirmed"


def test_backfill_jobs_follow_their_companies(world):
    world.add(stream_event("789", 1, status="active"))  # already completed from the stream
    [created] = world.add(BackfillCreated(batch_id="b1", name="import", expires_at="2030-01-01T00:00:00.000000Z",
                                          company_numbers=["123", "456", " 123", "789"]))
    batch = world.row("processing_batches", "")
    assert (batch["total_jobs"], batch["completed_jobs"], batch["status"]) == (3, 1, "processing")
    jobs = {j["company_number"]: j for j in world.rows("batch_jobs")}
    assert jobs["00000789"]["status"] == "completed"
    assert jobs["00000123"]["status"] == jobs["00000456"]["status"] == "pending"
    assert world.company("00000456")["data_source"] == "bulk"
    assert world.state("00000456")["processing_state"] == "detected"

    world.add(queued("p1", number="00000123", priority=1, batch_id="b1"),
              queued("p2", number="00000456", priority=1, batch_id="b1"))
    world.add(sent("p1", number="00000123"))
    world.add(RateLimited(request_id="p1", kind="profile", company_number="00000123", status=429,
                          elapsed_ms=10, cooldown_until="2023-11-14T22:20:00.000000Z"))
    job = world.row("batch_jobs", "WHERE company_number = '00000123'")
    assert (job["status"], job["stage"], job["error_code"]) == ("processing", "status", "RATE_LIMIT")
    world.add(sent("p1", number="00000123"))
    world.add(response("p1", "profile", "00000123", body=profile("00000123", status="active")))
    world.add(sent("p2", number="00000456"))
    last = world.add(response("p2", "profile", "00000456", status=404),
                     RequestAbandoned(request_id="p2", kind="profile", company_number="00000456",
                                      error_code="NOT_FOUND"))[-1]
    jobs = {j["company_number"]: j for j in world.rows("batch_jobs")}
    assert (jobs["00000123"]["status"], jobs["00000123"]["stage"]) == ("completed", "done")
    assert (jobs["00000456"]["status"], jobs["00000456"]["error_code"]) == ("failed", "NOT_FOUND")
    batch = world.row("processing_batches", "")
    assert (batch["completed_jobs"], batch["failed_jobs"], batch["status"]) == (2, 1, "partial")
    assert batch["last_event_id"] == last and batch["completed_at"] is not None
    world.add(stream_event("456", 5, status="dissolved"))
    assert world.company("00000456")["data_source"] == "both"


def test_the_workers_own_policy_drives_the_machine_to_failed_after_max_retries(world):
    """The lead's policy (eventlog.worker.policy) reads these projections: its sweep queues the status
    request, its retry_or_abandon retries with new request ids and gives up at MAX_RETRIES."""
    from eventlog.worker.policy import retry_or_abandon, sweep
    from projections.projectors.request_queue import next_item

    settings = Settings(max_retries=3, initial_retry_delay=0.0, max_retry_delay=0.0)
    world.add(stream_event(N, 1, status=None))
    world.settle()
    world.add(*sweep(world.conn, settings, world.clock.now()))
    assert world.state(N)["processing_state"] == "status_queued"
    assert sweep(world.conn, settings, world.clock.now()) == []  # idempotent: already queued
    rng = random.Random(0)
    for _ in range(settings.max_retries):
        world.settle()
        item = next_item(world.conn, world.clock.now() + 1)
        assert item is not None and item.company_number == N
        world.add(sent(item.request_id))
        world.add(TransportError(request_id=item.request_id, kind="profile", company_number=N,
                                 error="TIMEOUT: request timed out", elapsed_ms=5),
                  retry_or_abandon(item, "TIMEOUT", "request timed out", settings, world.clock.now(), rng))
    s = world.state(N)
    assert s["processing_state"] == "failed" and s["last_error"].startswith("TIMEOUT")
    assert s["status_retry_count"] == settings.max_retries - 1
    assert sweep(world.conn, settings, world.clock.now()) == []
