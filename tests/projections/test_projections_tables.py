"""What each read model holds: companies, officers, the rate-limit log, the queue, stream metadata,
the stream_events_log view. Every test runs live, through replay and through catch-up."""

from __future__ import annotations

import json

import pytest

from eventlog.ledger.entries import (
    RateLimited,
    RequestQueued,
    RequestSent,
    StreamConnected,
    StreamDisconnected,
    StreamGap,
    StreamLineRejected,
    TransportError,
)
from projections.testing import STRIKE_OFF, World, officer, officers_page, profile, response, stream_event


@pytest.fixture(params=["live", "replay", "catch_up"])
def world(request, conn, clock) -> World:
    return World(conn, clock, request.param)


# --- companies -------------------------------------------------------------------------


def test_a_stream_event_fills_the_company_row(world):
    world.add(stream_event("5954546", 68805561, fields_changed=["company_status"]))
    c = world.company("05954546")
    assert c["company_name"] == "COMPANY 5954546 LTD" and c["company_status"] == "active"
    assert c["company_type"] == "ltd" and c["jurisdiction"] == "england-wales"
    assert json.loads(c["registered_office_address"])["postal_code"] == "NR16 2HS"
    assert json.loads(c["sic_codes"]) == ["45200"]
    assert (c["stream_timepoint"], c["stream_event_id"], c["stream_event_type"]) == (
        68805561, "companies:68805561", "changed")
    assert c["stream_last_updated"] == "2023-11-04T14:33:29"
    assert c["stream_processing_status"] == "processed" and c["data_source"] == "stream"
    assert json.loads(c["stream_metadata"])["fields_changed"] == ["company_status"]
    assert c["deleted"] == 0


def test_an_older_event_never_overwrites_newer_data(world):
    world.add(stream_event("1", 20, name="NEW NAME LTD", detail=STRIKE_OFF))
    world.add(stream_event("1", 10, name="OLD NAME LTD"))
    c = world.company("00000001")
    assert (c["company_name"], c["stream_timepoint"], c["company_status_detail"]) == ("NEW NAME LTD", 20, STRIKE_OFF)
    assert c["stream_event_id"] == "companies:20" and c["last_stream_event_id"] == "companies:10"
    world.add(stream_event("1", 30, name="NEWEST LTD"))
    assert world.company("00000001")["company_name"] == "NEWEST LTD"


def test_a_duplicate_event_is_appended_once(world):
    world.add(stream_event("1", 5))
    world.add(stream_event("1", 5), stream_event("1", 5))
    assert len(world.rows("event_log")) == 1
    assert world.company("00000001")["stream_timepoint"] == 5


def test_deleted_events_mark_the_company_deleted_and_a_newer_change_restores_it(world):
    world.add(stream_event("1", 1))
    world.add(stream_event("1", 2, change="deleted"))
    c = world.company("00000001")
    assert (c["deleted"], c["stream_status"], c["stream_event_type"]) == (1, "deleted", "deleted")
    assert world.state("00000001")["processing_state"] == "completed"  # a delete moves no state
    world.add(stream_event("1", 1, change="changed"))  # older than the delete
    assert world.company("00000001")["deleted"] == 1
    world.add(stream_event("1", 3))
    assert world.company("00000001")["deleted"] == 0


def test_a_delete_for_an_unknown_company_records_it_without_processing_it(world):
    world.add(stream_event("9", 1, change="deleted", data=b"null"))
    c = world.company("00000009")
    assert c["deleted"] == 1 and c["company_name"] is None
    assert world.state("00000009") is None


def test_company_numbers_are_normalised_to_eight_characters(world):
    world.add(stream_event("5954546", 1), stream_event(" sc012345 ", 2))
    assert {c["company_number"] for c in world.rows("companies")} == {"05954546", "SC012345"}
    assert {s["company_number"] for s in world.rows("company_processing_state")} == {"05954546", "SC012345"}


def test_a_rest_profile_updates_the_row_and_keeps_the_stream_columns(world):
    world.add(stream_event("1", 7, name="OLD LTD"))
    world.add(RequestQueued(request_id="p", kind="profile", company_number="00000001"))
    [pos] = world.add(response("p", "profile", "00000001", body=profile("00000001", name="FRESH LTD")))
    c = world.company("00000001")
    assert c["company_name"] == "FRESH LTD" and c["rest_fetched_at"] == c["updated_at"]
    assert (c["stream_timepoint"], c["data_source"]) == (7, "stream")


def test_payloads_of_unexpected_shapes_are_stored_not_fatal(world):
    odd = json.dumps({"company_name": 42, "company_status": "active", "sic_codes": "62020",
                      "registered_office_address": None}).encode()
    world.add(stream_event("1", 1, data=odd))
    c = world.company("00000001")
    assert (c["company_name"], c["sic_codes"], c["registered_office_address"]) == ("42", '"62020"', None)
    world.add(stream_event("2", 2, data=b"[1, 2]"), stream_event("3", 3, data=b'"text"'))
    assert world.state("00000002")["processing_state"] == "detected"  # no status known


# --- officers ---------------------------------------------------------------------------


def _officers_fetch(world: World, rid: str, pages: list[list[dict]]) -> None:
    total = sum(len(p) for p in pages)
    world.add(RequestQueued(request_id=rid, kind="officers", company_number="00000001"))
    start = 0
    for items in pages:
        world.add(RequestSent(request_id=rid, kind="officers", company_number="00000001", path="/o",
                              page_start=start))
        world.add(response(rid, "officers", "00000001", page_start=start,
                           body=officers_page(items, total=total, start=start)))
        start += len(items)


def test_all_pages_of_a_fetch_are_merged(world):
    world.add(stream_event("1", 1, detail=STRIKE_OFF))
    _officers_fetch(world, "o1", [[officer(f"p{i}") for i in range(3)], [officer("p3")]])
    rows = world.rows("officers", "ORDER BY id")
    assert [r["officer_id"] for r in rows] == ["p0", "p1", "p2", "p3"]
    r = rows[0]
    assert (r["name"], r["officer_role"], r["date_of_birth_month"], r["date_of_birth_year"]) == (
        "SMITH, Jane", "director", 4, 1971)
    assert json.loads(r["address"])["postal_code"] == "NR1 1AA" and r["request_id"] == "o1"


def test_a_later_fetch_replaces_the_appointments_without_stale_rows(world):
    world.add(stream_event("1", 1, detail=STRIKE_OFF))
    _officers_fetch(world, "o1", [[officer("gone"), officer("stays")]])
    _officers_fetch(world, "o2", [[officer("stays")], [officer("new")]])
    rows = world.rows("officers", "ORDER BY id")
    assert [(r["officer_id"], r["request_id"]) for r in rows] == [("stays", "o2"), ("new", "o2")]


def test_an_officer_list_body_that_is_not_a_list_changes_nothing(world):
    world.add(stream_event("1", 1, detail=STRIKE_OFF))
    world.add(RequestQueued(request_id="o1", kind="officers", company_number="00000001"))
    world.add(response("o1", "officers", "00000001", body=b'{"items": "nope"}'))
    assert world.rows("officers") == []
    assert world.state("00000001")["last_error"].startswith("BAD_RESPONSE")


# --- the rate-limit log and the queue --------------------------------------------------


def test_the_rate_limit_log_row_exists_from_the_send_with_the_placeholder_status(world):
    world.add(RequestQueued(request_id="r", kind="profile", company_number="1"))
    [pos] = world.add(RequestSent(request_id="r", kind="profile", company_number="1", path="/company/00000001"))
    row = world.row("api_rate_limit_log", "")
    assert row == {"id": pos, "timestamp": row["timestamp"], "request_type": "profile", "response_status": 0,
                   "company_number": "00000001", "request_id": "r", "processing_time_ms": None}
    assert row["timestamp"] == world.row("event_log", "WHERE id = ?", (pos,))["received_at"]


def test_a_transport_error_keeps_status_zero_and_records_the_time(world):
    world.add(RequestQueued(request_id="r", kind="profile", company_number="1"))
    world.add(RequestSent(request_id="r", kind="profile", company_number="1", path="/x"))
    world.add(TransportError(request_id="r", kind="profile", company_number="1", error="NETWORK_ERROR: reset",
                             elapsed_ms=77))
    row = world.row("api_rate_limit_log", "")
    assert (row["response_status"], row["processing_time_ms"]) == (0, 77)
    assert world.rows("request_queue") == []


def test_the_queue_keeps_priority_position_and_not_before(world):
    positions = world.add(
        RequestQueued(request_id="low", kind="profile", company_number="1", priority=1, batch_id="b"),
        RequestQueued(request_id="high", kind="officers", company_number="2", priority=0, attempt=3,
                      not_before="2023-11-14T23:00:00.000000Z", cause="retry"))
    rows = {r["request_id"]: r for r in world.rows("request_queue")}
    assert rows["low"]["queued_position"] == positions[0] and rows["low"]["batch_id"] == "b"
    h = rows["high"]
    assert (h["priority"], h["attempt"], h["not_before"], h["cause"], h["status"]) == (
        0, 3, "2023-11-14T23:00:00.000000Z", "retry", "queued")


def test_a_429_puts_the_request_back_in_the_queue(world):
    world.add(RequestQueued(request_id="r", kind="profile", company_number="1"))
    world.add(RequestSent(request_id="r", kind="profile", company_number="1", path="/x"))
    world.add(RateLimited(request_id="r", kind="profile", company_number="1", status=403, elapsed_ms=3,
                          cooldown_until="2023-11-14T22:30:00.000000Z"))
    q = world.row("request_queue", "")
    assert (q["status"], q["not_before"]) == ("queued", "2023-11-14T22:30:00.000000Z")
    assert world.row("api_rate_limit_log", "")["response_status"] == 403


def test_a_non_200_officers_page_ends_the_request(world):
    world.add(RequestQueued(request_id="o", kind="officers", company_number="1"))
    world.add(RequestSent(request_id="o", kind="officers", company_number="1", path="/x"))
    world.add(response("o", "officers", "00000001", status=503))
    assert world.rows("request_queue") == []


# --- the stream -------------------------------------------------------------------------


def test_stream_metadata_counts_connections_errors_and_gaps(world):
    world.add(StreamConnected(stream="companies"))
    world.add(stream_event("1", 100), stream_event("2", 90))
    world.add(StreamLineRejected(stream="companies", reason="bad JSON", excerpt="{", length=1))
    world.add(StreamDisconnected(stream="companies", reason="closed by server"))
    world.add(StreamConnected(stream="companies", from_timepoint=101))
    world.add(StreamGap(stream="companies", requested_timepoint=101, reason="416"))
    world.add(StreamDisconnected(stream="companies", reason="unauthorised", status=401, fatal=True))
    m = world.row("stream_metadata", "")
    assert (m["stream_type"], m["last_timepoint"], m["last_event_id"]) == ("companies", 100, "companies:100")
    assert (m["connection_status"], m["error_count"], m["reconnect_count"], m["gap_count"]) == ("error", 2, 1, 1)
    assert m["last_error"] == "HTTP 401: unauthorised"
    assert m["created_at"] < m["updated_at"]


def test_the_stream_events_log_view_shows_events_processed_and_bad_lines_failed(world):
    world.add(stream_event("1", 1))
    world.add(StreamLineRejected(stream="companies", reason="not JSON", excerpt="xx", length=2))
    rows = world.rows("stream_events_log", "ORDER BY id")
    assert [(r["event_id"], r["processing_status"], r["error_message"]) for r in rows] == [
        ("companies:1", "processed", None), (rows[1]["event_id"], "failed", "not JSON")]
    assert rows[0]["processed_at"] == rows[0]["received_at"]
