"""The health server on loopback over a real migrated database and a hand-built worker view.

`/health` is driven through each of its four checks; `/metrics` is read
back with prometheus_client's own parser; `/events` is read as raw SSE, cut,
and resumed with `Last-Event-ID`.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from eventlog.clock import from_epoch
from eventlog.ledger.entries import RequestSent, StreamEvent, TransportError, WorkerStarted
from eventlog.errors import ConfigError
from eventlog.ops.server import HealthServer
from eventlog.ledger.store import Ledger
import projections
from support.obs import FakeView, add_company, add_queued, add_request, live_stats

NOW = 1_700_000_000.0


@pytest.fixture
def view(conn, clock):
    return FakeView(conn, clock, streams=[live_stats("companies", clock.now(), events=7,
                                                     rejected=1, duplicates=2, connections=3)])


@pytest.fixture
async def server(view):
    async with HealthServer(view, "127.0.0.1", None, memory_limit_mb=100_000,
                            poll_interval=0.02, snapshot_interval=0.2, retry_ms=50) as srv:
        yield srv


async def get_json(url: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, msgspec.json.decode(await r.read())


# --- /health ---------------------------------------------------------------------------


async def test_health_is_200_when_every_check_passes(server):
    assert server.port and server.port > 0
    status, body = await get_json(server.url + "/health")
    assert status == 200, body
    assert body["status"] == "healthy" and body["failed"] == []
    assert set(body["checks"]) == {"connection", "processing", "database", "memory", "disk", "horizon"}
    assert "companies: connected" in body["checks"]["connection"]["detail"]
    assert body["checks"]["database"]["detail"].startswith("SELECT 1 in")


async def test_health_is_503_when_the_stream_is_disconnected(server, view):
    view.streams[0].connected = False
    status, body = await get_json(server.url + "/health")
    assert status == 503
    assert body["status"] == "unhealthy" and body["failed"] == ["connection"]
    assert body["checks"]["connection"] == {"ok": False, "detail": "companies: disconnected"}


async def test_health_is_503_when_the_stream_is_silent_beyond_read_timeout(server, view, clock):
    clock.advance(89)  # READ_TIMEOUT is 90 s: still fine
    assert (await get_json(server.url + "/health"))[0] == 200
    clock.advance(2)
    status, body = await get_json(server.url + "/health")
    assert status == 503 and body["failed"] == ["connection"]
    assert "last heard 91 s ago (READ_TIMEOUT 90 s)" in body["checks"]["connection"]["detail"]
    view.streams[0].last_byte_at = clock.now()  # a heartbeat arrives
    assert (await get_json(server.url + "/health"))[0] == 200


async def test_a_deliberate_pause_is_not_a_failure(server, view):
    view.streams[0].connected = False
    view.stream_paused = "outside business hours"
    status, body = await get_json(server.url + "/health")
    assert status == 200
    assert body["checks"]["connection"]["detail"] == "paused on purpose: outside business hours"


async def test_health_is_503_without_any_stream_client(server, view):
    view.streams.clear()
    status, body = await get_json(server.url + "/health")
    assert status == 503 and body["checks"]["connection"]["detail"] == "no stream client is running"


async def test_processing_check_catches_a_stuck_queue(server, view, conn, clock):
    add_queued(conn, "q-1", 0, at=clock.now())
    assert (await get_json(server.url + "/health"))[0] == 200  # just queued
    clock.advance(121)  # the default stuck_after is 120 s; the stream stays heard
    view.streams[0].last_byte_at = clock.now()
    status, body = await get_json(server.url + "/health")
    assert status == 503 and body["failed"] == ["processing"]
    assert body["checks"]["processing"]["detail"].startswith("stuck: 1 due, window 0/600")
    add_request(conn, clock.now() - 1, 200)  # the sender moves again
    assert (await get_json(server.url + "/health"))[0] == 200


async def test_processing_check_accepts_a_full_window(conn, clock):
    view = FakeView(conn, clock, streams=[live_stats("companies", clock.now())])
    view.limiter.limit = 3
    add_queued(conn, "q-1", 0, at=clock.now())
    for i in range(3):
        add_request(conn, clock.now() - 100 - i, 200)
    clock.advance(150)  # nothing sent for 250 s, but the window holds 3 of 3: waiting is right
    view.streams[0].last_byte_at = clock.now()
    async with HealthServer(view, memory_limit_mb=100_000) as srv:
        status, body = await get_json(srv.url + "/health")
    assert status == 200, body
    assert body["checks"]["processing"]["detail"] == "1 due, window 3/3"


async def test_processing_check_catches_a_request_that_never_got_its_answer(server, view, conn, clock):
    add_request(conn, clock.now() - 30 - 121, 0)  # REQUEST_TIMEOUT 30 s + 120 s, still 0
    status, body = await get_json(server.url + "/health")
    assert status == 503 and body["failed"] == ["processing"]
    assert "still have no response" in body["checks"]["processing"]["detail"]


async def test_processing_recovers_after_a_request_that_timed_out(server, view, conn, clock):
    """A timed-out request is finished (status 0 and its time): it must not read as waiting for
    ever. The probe once counted every status-0 row as unanswered, so one timeout kept /health
    at 503 from then on."""
    add_request(conn, clock.now() - 30 - 121, 0, elapsed_ms=30_000, request_id="timed-out")
    status, body = await get_json(server.url + "/health")
    assert status == 200, body
    assert "still have no response" not in body["checks"]["processing"]["detail"]


async def test_processing_recovers_after_a_timeout_recorded_through_the_ledger(server, view, conn, clock):
    """The same through the real path: request.sent then request.transport_error appended to the
    ledger, the projection writing the row, the probe reading it."""
    ledger = Ledger(conn, clock)
    projections.attach(ledger)
    ledger.append(RequestSent(request_id="r-1", kind="profile", company_number="00000001",
                              path="/company/00000001"))
    clock.advance(30)
    ledger.append(TransportError(request_id="r-1", kind="profile", company_number="00000001",
                                 error="TIMEOUT: request timed out", elapsed_ms=30_000))
    clock.advance(200)
    view.streams[0].last_byte_at = clock.now()
    status, body = await get_json(server.url + "/health")
    assert status == 200, body


async def test_memory_check_fails_over_the_threshold(view):
    async with HealthServer(view, memory_limit_mb=1) as srv:
        status, body = await get_json(srv.url + "/health")
    assert status == 503 and body["failed"] == ["memory"]
    assert body["checks"]["memory"]["detail"].endswith("of 1 MB allowed")


async def test_database_check_fails_when_its_connection_is_gone(server):
    server.probe.conn.close()
    status, body = await get_json(server.url + "/health")
    assert status == 503 and "database" in body["failed"]
    assert "SELECT 1 failed" in body["checks"]["database"]["detail"]


async def test_reads_never_wait_on_the_workers_write_transaction(server, conn):
    """The server's own read-only connection reads past the worker's BEGIN IMMEDIATE."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        add_queued(conn, "q-uncommitted", 0, at=NOW)
        async with asyncio.timeout(2):
            status, body = await get_json(server.url + "/health")
            async with aiohttp.ClientSession() as s, s.get(server.url + "/metrics") as r:
                metrics = await r.text()
    finally:
        conn.execute("ROLLBACK")
    assert status == 200, body
    assert 'chledger_queue_depth{priority="HIGH"} 0.0' in metrics  # uncommitted: not seen


async def test_a_port_in_use_is_one_clear_error(server, view):
    with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{server.port}"):
        await HealthServer(view, "127.0.0.1", server.port).start()


# --- /metrics --------------------------------------------------------------------------


def sample(families: dict, name: str, **labels: str) -> float:
    for s in families[name].samples:
        if s.name in (name, name + "_total") and s.labels == labels:
            return s.value
    raise KeyError((name, labels))


async def test_metrics_parse_with_prometheus_own_parser(server, conn, clock):
    ledger = Ledger(conn, clock)
    ledger.append(WorkerStarted(version="t", pid=1, rate_limit_requests=600, rate_limit_window=300))
    for k in range(1, 11):  # published k seconds before they were received: latencies 1..10 s
        ledger.append(StreamEvent(stream="companies", timepoint=k,
                                  published_at=from_epoch(NOW - k)[:19], change="changed",
                                  resource_kind="company-profile", resource_id=f"{k:08d}",
                                  resource_uri=f"/company/{k:08d}", company_number=f"{k:08d}"))
    for i, status in enumerate([200, 200, 404, 429, 200]):
        add_request(conn, NOW - 10 - i, status)
    add_request(conn, NOW - 400, 403)
    add_queued(conn, "q-h", 0, at=NOW)
    for i in range(4):
        add_queued(conn, f"q-l{i}", 1, at=NOW, position=5 + i)
    add_company(conn, "00000001", "completed")
    add_company(conn, "00000002", "failed")

    async with aiohttp.ClientSession() as s, s.get(server.url + "/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=")  # the exposition format
        text = await r.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {"chledger_stream_events_received", "chledger_stream_events_processed",
            "chledger_processing_latency_seconds", "chledger_stream_error_ratio",
            "chledger_request_error_ratio", "chledger_rate_limit_window_used",
            "chledger_rate_limit_window_limit", "chledger_queue_depth",
            "chledger_rate_limited_responses", "chledger_stream_reconnects"} <= set(families)
    assert families["chledger_stream_events_received"].type == "counter"
    assert sample(families, "chledger_stream_events_received", stream="companies") == 10  # 7+2+1
    assert sample(families, "chledger_stream_events_processed", stream="companies") == 7
    assert sample(families, "chledger_stream_reconnects", stream="companies") == 2
    assert sample(families, "chledger_stream_connected", stream="companies") == 1
    assert sample(families, "chledger_stream_error_ratio", stream="companies") == pytest.approx(0.1)
    assert sample(families, "chledger_processing_latency_seconds", quantile="0.5") == 5
    assert sample(families, "chledger_processing_latency_seconds", quantile="0.95") == 10
    assert sample(families, "chledger_processing_latency_seconds", quantile="0.99") == 10
    assert sample(families, "chledger_rate_limit_window_used") == 5
    assert sample(families, "chledger_rate_limit_window_limit") == 600
    assert sample(families, "chledger_request_error_ratio") == pytest.approx(0.2)  # the 429
    assert sample(families, "chledger_rate_limited_responses", status="429") == 1
    assert sample(families, "chledger_rate_limited_responses", status="403") == 1
    assert sample(families, "chledger_queue_depth", priority="HIGH") == 1
    assert sample(families, "chledger_queue_depth", priority="LOW") == 4
    assert sample(families, "chledger_companies", state="failed") == 1
    assert sample(families, "chledger_ledger_head") == 11
    assert sample(families, "chledger_memory_rss_bytes") > 1e6


# --- /events ---------------------------------------------------------------------------


async def read_events(response: aiohttp.ClientResponse, *, entries: int = 0, statuses: int = 0,
                      timeout: float = 5.0) -> list[dict]:
    """Parse SSE until `entries` entry events and `statuses` status events arrived."""
    events: list[dict] = []
    current: dict[str, str] = {}
    count = {"entry": 0, "status": 0}
    async with asyncio.timeout(timeout):
        while count["entry"] < entries or count["status"] < statuses:
            line = (await response.content.readline()).decode().rstrip("\r\n")
            if line == "":
                if current:
                    events.append(current)
                    if current.get("event") in count:
                        count[current["event"]] += 1
                current = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(":")
                current[key] = current.get(key, "") + value.removeprefix(" ")
    return events


def positions(events: list[dict]) -> list[int]:
    return [int(e["id"]) for e in events if e.get("event") == "entry"]


def append_entries(ledger: Ledger, n: int) -> None:
    for _ in range(n):
        ledger.append(WorkerStarted(version="t", pid=1, rate_limit_requests=600, rate_limit_window=300))


async def test_sse_resumes_from_last_event_id(server, ledger):
    append_entries(ledger, 10)
    url = server.url + "/events"
    async with aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            assert r.headers["Content-Type"] == "text/event-stream"
            first = await read_events(r, entries=4)
        assert first[0]["event"] == "status" and "id" not in first[0] and first[0]["retry"] == "50"
        assert positions(first) == [1, 2, 3, 4]
        entry = msgspec.json.decode(first[1]["data"])
        assert entry["position"] == 1 and entry["event_type"] == "worker.started"
        assert "rate_limit_requests=600" in entry["summary"]

        append_entries(ledger, 2)  # arrives while the client is away
        async with s.get(url, headers={"Last-Event-ID": "4"}) as r:
            resumed = await read_events(r, entries=8)
            append_entries(ledger, 3)  # and live, after the catch-up
            live = await read_events(r, entries=3)
        assert positions(resumed) == list(range(5, 13))
        assert positions(live) == [13, 14, 15]
        assert list(server.feed.resumed_from) == [4]

        async with s.get(url + "?after=13") as r:  # for clients that can't set headers
            assert positions(await read_events(r, entries=2)) == [14, 15]


async def test_sse_fresh_client_gets_only_the_recent_entries(view, ledger):
    append_entries(ledger, 30)
    async with HealthServer(view, recent=5, poll_interval=0.02) as srv:
        async with aiohttp.ClientSession() as s, s.get(srv.url + "/events") as r:
            assert positions(await read_events(r, entries=5)) == [26, 27, 28, 29, 30]


async def test_sse_sends_status_snapshots_without_ids(server, conn):
    async with aiohttp.ClientSession() as s, s.get(server.url + "/events") as r:
        first = await read_events(r, statuses=1)
        add_request(conn, NOW - 1, 200)  # the next snapshot (0.2 s later) sees it
        later = await read_events(r, statuses=2)
    snaps = [e for e in first + later if e.get("event") == "status"]
    assert all("id" not in e for e in snaps)
    before, after = (msgspec.json.decode(e["data"]) for e in (snaps[0], snaps[-1]))
    assert before["status"]["window_used"] == 0 and after["status"]["window_used"] == 1
    assert after["status"]["window_limit"] == 600
    assert after["health"]["status"] == "healthy"
    assert after["streams"][0]["stream"] == "companies"


async def test_stop_returns_promptly_with_a_client_attached(view, ledger):
    srv = HealthServer(view, poll_interval=0.02)
    await srv.start()
    async with aiohttp.ClientSession() as s, s.get(srv.url + "/events") as r:
        await read_events(r, statuses=1)
        started = time.monotonic()
        await srv.stop()
        assert time.monotonic() - started < 1.5
        async with asyncio.timeout(2):  # the stream ended: reading to the end doesn't hang
            await r.content.read()
        assert r.content.at_eof()
