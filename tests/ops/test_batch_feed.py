"""`/batches/{id}/events` on the worker's server: a real aiohttp client on loopback, a real ledger.

The projections are attached, so the batch tables fill as the worker's would. The client reads
one batch's events, goes away, misses some, comes back with `Last-Event-ID` and gets exactly
those, in order, and nothing about other companies; the stream ends once the batch is finished.
"""

from __future__ import annotations

import asyncio

import aiohttp
import msgspec
import pytest

import projections
from eventlog.ledger.entries import BackfillCreated, RequestQueued, RequestSent
from eventlog.ledger.store import Ledger
from eventlog.ops.server import HealthServer
from projections.testing import officer, officers_page, response
from support.obs import FakeView, live_stats

BATCH = "ab" * 16
A, B, C, OTHER = "00000001", "00000002", "00000003", "00000099"


@pytest.fixture
def live(conn, clock) -> Ledger:
    ledger = Ledger(conn, clock)
    projections.attach(ledger)
    ledger.append(BackfillCreated(batch_id=BATCH, name="bulk snapshot 2023-11-01", company_numbers=[A, B, C],
                                  expires_at="2023-12-14T22:13:20.000000Z", of_interest_as_of="2023-11-01"))
    return ledger


@pytest.fixture
async def server(conn, clock, live):
    view = FakeView(conn, clock, streams=[live_stats("companies", clock.now())])
    async with HealthServer(view, memory_limit_mb=100_000, poll_interval=0.02, snapshot_interval=0.2,
                            retry_ms=50) as srv:
        yield srv


async def read_events(response: aiohttp.ClientResponse, *, jobs: int = 0, until: str | None = None,
                      timeout: float = 5.0) -> list[dict]:
    """Parse SSE until `jobs` job events arrived (or an `until` event)."""
    events: list[dict] = []
    current: dict[str, str] = {}
    async with asyncio.timeout(timeout):
        while True:
            raw = await response.content.readline()
            if not raw:
                return events
            text = raw.decode().rstrip("\r\n")
            if text == "":
                if current:
                    events.append(current)
                    done = sum(e.get("event") == "job" for e in events) >= jobs
                    if (until is None and done) or current.get("event") == until:
                        return events
                current = {}
            elif not text.startswith(":"):
                key, _, value = text.partition(":")
                current[key] = current.get(key, "") + value.removeprefix(" ")


def jobs(events: list[dict]) -> list[tuple[int, str, str]]:
    out = []
    for e in events:
        if e.get("event") == "job":
            data = msgspec.json.decode(e["data"])
            assert int(e["id"]) == data["position"]
            out.append((data["position"], data["event_type"], data["company_number"]))
    return out


def queue(number: str, batch: str | None = BATCH) -> RequestQueued:
    return RequestQueued(request_id=f"o-{number}", kind="officers", company_number=number, priority=1,
                         batch_id=batch)


async def test_a_reconnecting_client_misses_nothing_of_its_batch(server, live):
    url = f"{server.url}/batches/{BATCH}/events"
    async with aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            assert r.headers["Content-Type"] == "text/event-stream"
            first = await read_events(r, until="batch")
            counts = msgspec.json.decode(first[0]["data"])
            assert first[0].get("id") is None and first[0]["retry"] == "50"
            assert (counts["total_jobs"], counts["open_jobs"], counts["finished"]) == (3, 3, False)
            [pos_a, _] = [a.position for a in live.append_many([queue(A), queue(OTHER, None)])]
            got = await read_events(r, jobs=1)
        assert jobs(got) == [(pos_a, "request.queued", A)]
        job = msgspec.json.decode(next(e for e in got if e.get("event") == "job")["data"])["job"]
        assert (job["status"], job["stage"]) == ("processing", "officers")

        # away: B and C move on, the other company too
        missed = live.append_many([queue(B), RequestSent(request_id=f"o-{A}", kind="officers", company_number=A,
                                                         path="/x"), queue(C), queue("00000098", None)])
        expected = [(missed[0].position, "request.queued", B), (missed[1].position, "request.sent", A),
                    (missed[2].position, "request.queued", C)]
        async with s.get(url, headers={"Last-Event-ID": str(pos_a)}) as r:
            resumed = await read_events(r, jobs=3)
            assert jobs(resumed) == expected
            # the batch finishes live: every company's officers arrive, and the stream ends
            page = officers_page([officer("p1")])
            done = live.append_many([response(f"o-{A}", "officers", A, body=page)])
            live.append_many([RequestSent(request_id=f"o-{n}", kind="officers", company_number=n, path="/x")
                              for n in (B, C)])
            live.append_many([response(f"o-{n}", "officers", n, body=page) for n in (B, C)])
            rest = await read_events(r, until="end")
            assert await r.content.read() == b""  # closed
        assert jobs(rest)[0] == (done[0].position, "response.received", A) and len(jobs(rest)) == 5
        end = msgspec.json.decode(rest[-1]["data"])
        assert rest[-1]["event"] == "end" and end["finished"] and end["completed_jobs"] == 3
        final_job = msgspec.json.decode([e for e in rest if e.get("event") == "job"][-1]["data"])["job"]
        assert final_job["status"] == "completed"

        # `?after=` for clients that can't set headers; a finished batch ends after the backlog
        async with s.get(url + f"?after={missed[2].position}") as r:
            tail = await read_events(r, until="end")
        assert [p for p, _, _ in jobs(tail)] == [p for p, _, _ in jobs(rest)]


async def test_an_unknown_batch_is_a_404(server):
    async with aiohttp.ClientSession() as s, s.get(f"{server.url}/batches/{'cd' * 16}/events") as r:
        assert r.status == 404
        assert "no batch" in (await r.json())["error"]
