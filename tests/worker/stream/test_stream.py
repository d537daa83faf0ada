"""The stream client against purpose-built servers on loopback, one fault at a time.

Each test scripts what the server does on each connection (write these bytes,
pause, drop the socket, answer a status), so a line can be cut at an exact byte
and a 416 or a 429 arrives exactly when wanted. Sleeps between reconnections go
through an injected function that records the delay and returns at once.
"""

from __future__ import annotations

import asyncio
import base64
import random
from typing import Any, Callable

import msgspec
import pytest
from aiohttp import web

from eventlog.clock import FixedClock
from eventlog.ledger.db import connect
from eventlog.ledger.entries import (StreamConnected, StreamDisconnected, StreamEvent, StreamGap,
                              StreamLineRejected)
from eventlog.errors import StreamGone, Unauthorized
from eventlog.ledger.store import Ledger
from eventlog.ledger.migrate import migrate
from eventlog.config.settings import Settings
from eventlog.worker.stream.client import BREAKER_COOLDOWN, StreamClient, last_recorded_timepoint, run_streams

KEY = "test-stream-key-0123456789"


def event_line(tp: int, number: str = "01234567", name: str = "ACME LTD") -> bytes:
    return msgspec.json.encode({
        "resource_kind": "company-profile",
        "resource_uri": f"/company/{number}",
        "resource_id": number,
        "data": {"company_name": name, "company_number": number,
                 "company_status": "active",
                 "company_status_detail": "active-proposal-to-strike-off"},
        "event": {"timepoint": tp, "published_at": "2023-11-04T14:33:29", "type": "changed"},
    }) + b"\n"


class Drop:
    """Close the socket without ending the chunked body: the client sees a reset."""


class Hang:
    """Say nothing more until the client goes away."""


class Script:
    """Per-connection plans: a status int, or a list of bytes / float pauses / Drop / Hang.

    Connections beyond the plans get the last plan again. Every request is recorded."""

    def __init__(self, *plans: Any) -> None:
        self.plans = list(plans)
        self.requests: list[dict[str, Any]] = []

    async def handler(self, request: web.Request) -> web.StreamResponse:
        self.requests.append({"path": request.path, "query": dict(request.query),
                              "auth": request.headers.get("Authorization")})
        plan = self.plans[min(len(self.requests), len(self.plans)) - 1]
        if isinstance(plan, int):
            headers = {"Retry-After": "120"} if plan == 4291 else {}
            return web.Response(status=429 if plan == 4291 else plan, headers=headers)
        if callable(plan):
            plan = plan(request)
        response = web.StreamResponse()
        await response.prepare(request)
        for step in plan:
            if isinstance(step, bytes):
                await response.write(step)
                await asyncio.sleep(0.005)  # keep separate writes in separate reads
            elif isinstance(step, float):
                await asyncio.sleep(step)
            elif step is Drop:
                request.transport.close()
                return response
            elif callable(step) and not isinstance(step, type):
                step()  # a probe the test runs at this point of the conversation
            elif step is Hang:
                while request.transport is not None and not request.transport.is_closing():
                    await asyncio.sleep(0.02)
                return response
        await response.write_eof()
        return response

    def timepoints_requested(self) -> list[str | None]:
        return [r["query"].get("timepoint") for r in self.requests]


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    conn = connect(tmp_path / "stream.db")
    migrate(conn)
    return Ledger(conn, FixedClock())


@pytest.fixture
async def serve(aiohttp_server):
    async def start(script: Script, path: str = "/companies") -> str:
        app = web.Application()
        app.router.add_get(path, script.handler)
        server = await aiohttp_server(app)
        return str(server.make_url(path))
    return start


def make_settings(url: str, **overrides: Any) -> Settings:
    values = dict(stream_key=KEY, streaming_api_url=url, initial_retry_delay=1.0,
                  max_retry_delay=300.0, max_retries=10, read_timeout=2.0,
                  connection_timeout=2.0, batch_size=100, flush_interval=0.05, stream_connect_spacing=0.0)
    values.update(overrides)
    return Settings(**values)


class Sleeps:
    """The injected sleep: records each delay, returns at once.

    With `limit`, the sleep after that many delays never returns (the test then stops the
    client there), so what happened up to that point is exactly what the test sees."""

    def __init__(self, limit: int | None = None) -> None:
        self.delays: list[float] = []
        self.limit = limit

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.limit is not None and len(self.delays) >= self.limit:
            await asyncio.Event().wait()
        await asyncio.sleep(0)


def entries(ledger: Ledger, kind: type | None = None) -> list[Any]:
    return [r.entry for r in ledger.read() if kind is None or isinstance(r.entry, kind)]


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def follow(client: StreamClient, check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Run the client until `check` holds, then stop it cleanly."""
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    try:
        await until(lambda: check() or task.done(), timeout)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def timepoints(ledger: Ledger) -> list[int]:
    return [e.timepoint for e in entries(ledger, StreamEvent)]


# --- lines and chunks -----------------------------------------------------------------------


async def test_lines_split_across_chunks_at_exact_bytes(serve, ledger) -> None:
    a, b, c = event_line(1, name="ÉCOLE LTD"), event_line(2), event_line(3)
    cut = a.index("É".encode()) + 1  # inside the two-byte character
    body = a + b + c
    plan = [body[:cut], body[cut:len(a) + 7], body[len(a) + 7:len(a) + len(b) - 1],
            body[len(a) + len(b) - 1:len(a) + len(b)], body[len(a) + len(b):], Hang]
    script = Script(plan)
    url = await serve(script)
    client = StreamClient(make_settings(url), ledger, url=url, sleep=Sleeps())
    await follow(client, lambda: len(timepoints(ledger)) == 3)
    events = entries(ledger, StreamEvent)
    assert [e.timepoint for e in events] == [1, 2, 3]
    assert msgspec.json.decode(events[0].data)["company_name"] == "ÉCOLE LTD"
    assert entries(ledger, StreamLineRejected) == []
    assert client.stats.attempts == 1


async def test_several_lines_per_chunk_and_heartbeats_keep_a_quiet_stream_alive(serve, ledger) -> None:
    # read_timeout 0.2 s; heartbeats every 0.05 s for 0.5 s: silence never lasts long enough.
    heartbeats: list[Any] = []
    for _ in range(10):
        heartbeats += [b"\n", 0.05]
    script = Script([event_line(1) + b"\n" + event_line(2) + event_line(3), *heartbeats,
                     event_line(4), Hang])
    url = await serve(script)
    client = StreamClient(make_settings(url, read_timeout=0.2), ledger, url=url, sleep=Sleeps())
    await follow(client, lambda: len(timepoints(ledger)) == 4)
    assert timepoints(ledger) == [1, 2, 3, 4]
    assert client.stats.heartbeats >= 10
    assert len(script.requests) == 1  # never reconnected
    disconnections = entries(ledger, StreamDisconnected)
    assert [d.reason for d in disconnections] == ["stopped"]


async def test_quiet_stream_event_is_in_the_ledger_within_the_flush_interval(serve, ledger) -> None:
    script = Script([event_line(1), Hang])
    url = await serve(script)
    client = StreamClient(make_settings(url, flush_interval=0.1, batch_size=1000), ledger,
                          url=url, sleep=Sleeps())
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    await until(lambda: bool(script.requests))
    start = asyncio.get_running_loop().time()
    await until(lambda: timepoints(ledger) == [1], timeout=1.0)
    assert asyncio.get_running_loop().time() - start < 0.5
    assert client.stats.connected  # flushed while the connection is still open
    stop.set()
    await task


async def test_stop_flushes_the_pending_batch_and_records_why(serve, ledger) -> None:
    script = Script([event_line(1) + event_line(2), Hang])
    url = await serve(script)
    client = StreamClient(make_settings(url, flush_interval=60.0), ledger, url=url,
                          sleep=Sleeps())
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    await until(lambda: client.stats.connected)
    await asyncio.sleep(0.1)
    assert timepoints(ledger) == []  # still batched: flush_interval is a minute
    stop.set()
    await task
    assert timepoints(ledger) == [1, 2]
    assert entries(ledger, StreamDisconnected)[-1].reason == "stopped"
    assert not client.stats.connected


async def test_final_partial_line_is_dropped_and_resent_on_resume(serve, ledger) -> None:
    two = event_line(2)
    script = Script([event_line(1) + two[:40], Drop], [two + event_line(3), Hang])
    url = await serve(script)
    sleeps = Sleeps()
    client = StreamClient(make_settings(url), ledger, url=url, sleep=sleeps,
                          rng=random.Random(3))
    await follow(client, lambda: len(timepoints(ledger)) == 3)
    assert timepoints(ledger) == [1, 2, 3]
    assert entries(ledger, StreamLineRejected) == []
    assert script.timepoints_requested() == [None, "2"]
    assert client.stats.partial_lines == 1
    first = entries(ledger, StreamDisconnected)[0]
    assert first.reason.startswith("connection reset") and first.retry_in == sleeps.delays[0]
    assert [c.from_timepoint for c in entries(ledger, StreamConnected)] == [None, 2]


async def test_duplicates_after_reconnect_are_dropped_by_the_ledger(serve, ledger) -> None:
    # The second connection ignores ?timepoint= and replays 1 and 2.
    script = Script([event_line(1) + event_line(2)],
                    [event_line(1) + event_line(2) + event_line(3), Hang])
    url = await serve(script)
    client = StreamClient(make_settings(url), ledger, url=url, sleep=Sleeps())
    await follow(client, lambda: client.stats.events == 3)
    assert timepoints(ledger) == [1, 2, 3]
    assert client.stats.duplicates == 2
    assert entries(ledger, StreamDisconnected)[0].reason == "closed by server"


async def test_resume_after_restart_asks_for_last_timepoint_plus_one(serve, ledger) -> None:
    script = Script([event_line(10) + event_line(12), Hang], [event_line(13), Hang])
    url = await serve(script)
    first = StreamClient(make_settings(url), ledger, url=url, sleep=Sleeps())
    await follow(first, lambda: len(timepoints(ledger)) == 2)
    # A new process: new client, same database; nothing carried over in memory.
    restarted = Ledger(ledger.conn, FixedClock())
    assert last_recorded_timepoint(restarted, "companies") == 12
    second = StreamClient(make_settings(url), restarted, url=url, sleep=Sleeps())
    await follow(second, lambda: len(timepoints(restarted)) == 3)
    assert script.timepoints_requested() == [None, "13"]
    assert timepoints(restarted) == [10, 12, 13]


# --- refusals -------------------------------------------------------------------------------


async def test_416_records_a_gap_and_reconnects_live_without_waiting(serve, ledger) -> None:
    ledger.append(StreamEvent(stream="companies", timepoint=100, published_at="x",
                              change="changed", resource_kind="company-profile",
                              resource_id="1", resource_uri="/company/00000001"))
    script = Script(416, [event_line(5000), Hang])
    url = await serve(script)
    sleeps = Sleeps()
    client = StreamClient(make_settings(url), ledger, url=url, sleep=sleeps)
    await follow(client, lambda: 5000 in timepoints(ledger))
    assert script.timepoints_requested() == ["101", None]
    gap, = entries(ledger, StreamGap)
    assert gap.requested_timepoint == 101 and "416" in gap.reason
    assert sleeps.delays == []
    assert client.stats.gaps == 1


@pytest.mark.parametrize("status", [401, 403])
async def test_unauthorized_stops_with_an_error_naming_the_setting(serve, ledger, status) -> None:
    script = Script(status)
    url = await serve(script)
    client = StreamClient(make_settings(url), ledger, url=url, sleep=Sleeps())
    with pytest.raises(Unauthorized) as raised:
        await asyncio.wait_for(client.run(asyncio.Event()), 5)
    message = str(raised.value)
    assert "COMPANIES_HOUSE_STREAM_KEY" in message and "COMPANIES_HOUSE_API_KEY" in message
    assert "\n" not in message and KEY not in message
    last, = entries(ledger, StreamDisconnected)
    assert (last.fatal, last.status) == (True, status)
    assert len(script.requests) == 1  # no retries with a bad key
    # Basic auth: the key as user name, an empty password.
    assert script.requests[0]["auth"] == "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
    stored = b"".join(r[4].encode() for r in ledger.read_rows())
    assert KEY.encode() not in stored


async def test_429_on_connect_backs_off_for_minutes(serve, ledger) -> None:
    script = Script(429, 4291, [event_line(1), Hang])
    url = await serve(script)
    sleeps = Sleeps()
    client = StreamClient(make_settings(url), ledger, url=url, sleep=sleeps)
    await follow(client, lambda: timepoints(ledger) == [1])
    assert len(sleeps.delays) == 2
    assert sleeps.delays[0] >= 60.0
    assert sleeps.delays[1] >= 120.0  # Retry-After: 120 is honoured when longer
    limited = entries(ledger, StreamDisconnected)[:2]
    assert [d.status for d in limited] == [429, 429]
    assert [d.retry_in for d in limited] == sleeps.delays


# --- dead connections, retries, the breaker ---------------------------------------------------


async def test_silence_watchdog_reconnects_a_dead_connection(serve, ledger) -> None:
    script = Script([event_line(1), Hang], [event_line(2), Hang])
    url = await serve(script)
    client = StreamClient(make_settings(url, read_timeout=0.2), ledger, url=url, sleep=Sleeps())
    loop = asyncio.get_running_loop()
    start = loop.time()
    await follow(client, lambda: timepoints(ledger) == [1, 2])
    assert loop.time() - start < 2.0
    watchdog = entries(ledger, StreamDisconnected)[0]
    assert watchdog.reason.startswith("watchdog")
    assert script.timepoints_requested() == [None, "2"]


async def test_malformed_lines_are_recorded_and_the_stream_goes_on(serve, ledger) -> None:
    bad = [b'{"resource_kind":"company-profile","resource_uri":"/comp\n',
           b"<html>502</html>\n",
           event_line(2).replace(b'"timepoint":2,', b""),
           b'{"pad":"' + b"x" * 3000 + b'"}\n']
    script = Script([event_line(1), *bad, event_line(3), Hang])
    url = await serve(script)
    client = StreamClient(make_settings(url), ledger, url=url, sleep=Sleeps(), max_line=2048)
    await follow(client, lambda: 3 in timepoints(ledger))
    assert timepoints(ledger) == [1, 3]
    rejected = entries(ledger, StreamLineRejected)
    assert len(rejected) == 4 and client.stats.rejected == 4
    assert "invalid JSON" in rejected[0].reason
    assert "timepoint" in rejected[2].reason
    assert "size cap" in rejected[3].reason and rejected[3].length == 3010
    assert all(len(r.excerpt) <= 200 for r in rejected)
    assert len(script.requests) == 1  # no reconnect for a bad line


async def test_backoff_delays_are_full_jitter_draws_and_retries_are_bounded(serve, ledger) -> None:
    script = Script(503)
    url = await serve(script)
    sleeps = Sleeps()
    settings = make_settings(url, initial_retry_delay=2.0, max_retry_delay=20.0, max_retries=6)
    client = StreamClient(settings, ledger, url=url, sleep=sleeps, rng=random.Random(42),
                          breaker_threshold=100)
    with pytest.raises(StreamGone) as raised:
        await asyncio.wait_for(client.run(asyncio.Event()), 5)
    assert "MAX_RETRIES=6" in str(raised.value)
    twin = random.Random(42)
    expected = [twin.uniform(0.0, min(20.0, 2.0 * 2 ** n)) for n in range(6)]
    assert sleeps.delays == expected
    assert all(0.0 <= d <= min(20.0, 2.0 * 2 ** n) for n, d in enumerate(sleeps.delays))
    assert len(script.requests) == 7  # the first attempt and six retries
    records = entries(ledger, StreamDisconnected)
    assert [r.status for r in records] == [503] * 7
    assert [r.retry_in for r in records[:-1]] == sleeps.delays
    assert records[-1].fatal and records[-1].retry_in is None


async def test_circuit_breaker_opens_then_a_healthy_connection_resets_it(serve, ledger) -> None:
    script = Script(500, 500, 500, 500, [event_line(1)], 500)
    url = await serve(script)
    sleeps = Sleeps(limit=6)
    settings = make_settings(url, initial_retry_delay=1.0, max_retry_delay=300.0, max_retries=10)
    client = StreamClient(settings, ledger, url=url, sleep=sleeps, rng=random.Random(1),
                          clock=FixedClock(), breaker_threshold=3)
    await follow(client, lambda: len(sleeps.delays) == 6)
    assert sleeps.delays[6:] == []
    # Failures 1-2 draw from [0, 1] and [0, 2]; the third opens the breaker: a full cooldown,
    # BREAKER_COOLDOWN rather than MAX_RETRY_DELAY, so a blip doesn't cost five minutes of stream.
    assert sleeps.delays[0] <= 1.0 and sleeps.delays[1] <= 2.0
    # The probe after it failed too: twice as long (up to MAX_RETRY_DELAY).
    assert sleeps.delays[2] == BREAKER_COOLDOWN == 30.0 and sleeps.delays[3] == 60.0
    # Connection 5 delivered an event and closed cleanly: the series starts again.
    assert sleeps.delays[4] <= 1.0 and sleeps.delays[5] <= 2.0
    assert client.breaker.times_opened == 2


async def test_connection_refused_counts_as_a_failure(ledger) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    url = f"http://127.0.0.1:{port}/companies"
    sleeps = Sleeps()
    client = StreamClient(make_settings(url, max_retries=2), ledger, url=url, sleep=sleeps)
    with pytest.raises(StreamGone):
        await asyncio.wait_for(client.run(asyncio.Event()), 5)
    reasons = [d.reason for d in entries(ledger, StreamDisconnected)]
    assert len(reasons) == 3 and all(r.startswith("connect error") for r in reasons)


async def test_run_streams_follows_every_url_with_its_own_resume_point(aiohttp_server, ledger) -> None:
    companies = Script([event_line(7), Hang])
    officers = Script([event_line(7, number="SC000001"), event_line(8), Hang])
    app = web.Application()
    app.router.add_get("/companies", companies.handler)
    app.router.add_get("/officers", officers.handler)
    server = await aiohttp_server(app)
    urls = f"{server.make_url('/companies')},{server.make_url('/officers')}"
    stop = asyncio.Event()
    task = asyncio.create_task(run_streams(make_settings(urls), ledger, stop, sleep=Sleeps()))
    await until(lambda: len(timepoints(ledger)) == 3)
    stop.set()
    await asyncio.wait_for(task, 5)
    ids = sorted(r.event_id for r in ledger.read() if r.event_type == "stream.event")
    assert ids == ["companies:7", "officers:7", "officers:8"]
    assert last_recorded_timepoint(ledger, "companies") == 7
    assert last_recorded_timepoint(ledger, "officers") == 8


async def test_a_burst_is_written_in_big_batches_a_trickle_in_small_ones(serve, ledger) -> None:
    burst = b"".join(event_line(tp) for tp in range(1, 2001))
    recorded_before_next: list[bool] = []
    trickle: list[Any] = []
    for tp in range(2001, 2006):
        trickle += [event_line(tp), 0.15,
                    lambda tp=tp: recorded_before_next.append(tp in timepoints(ledger))]
    script = Script([burst, *trickle, Hang])
    url = await serve(script)
    settings = make_settings(url, batch_size=10, buffer_size=1000, flush_interval=0.02)
    client = StreamClient(settings, ledger, url=url, sleep=Sleeps())
    await follow(client, lambda: len(recorded_before_next) == 5)
    assert timepoints(ledger) == list(range(1, 2006))
    # 2000 events at once: far fewer commits than one per BATCH_SIZE (200) ...
    assert client.stats.batches - 5 < 60
    # ... while each trickled event was in the ledger before the server sent the next.
    assert recorded_before_next == [True] * 5


async def test_a_session_with_a_total_timeout_does_not_cut_the_stream(serve, ledger) -> None:
    import aiohttp

    script = Script([event_line(1), 0.4, event_line(2), Hang])
    url = await serve(script)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.2)) as session:
        client = StreamClient(make_settings(url), ledger, url=url, session=session,
                              sleep=Sleeps())
        await follow(client, lambda: timepoints(ledger) == [1, 2])
    assert len(script.requests) == 1


@pytest.mark.parametrize("body, healthy_after, quiet_after, gives_up", [
    ([b"\n", 0.1, b"\n", 0.1], 0.1, 10.0, False),  # up longer than healthy_after
    ([b"\n", 0.1, b"\n", 0.1], 60.0, 0.1, False),  # short, but it spoke for a while, then closed cleanly
    ([b"\n"], 60.0, 10.0, True),  # one byte and an instant hang-up: a failure, or we'd reconnect forever
    ([0.2], 60.0, 0.1, True),  # silent: a 200 that never said anything is a failure
])
async def test_a_quiet_connection_that_spoke_or_lasted_counts_as_healthy(serve, ledger, body, healthy_after,
                                                                         quiet_after, gives_up) -> None:
    # Each connection: heartbeats (or nothing) for a moment, no events, then a clean close.
    script = Script(body)
    url = await serve(script)
    client = StreamClient(make_settings(url, max_retries=2), ledger, url=url, sleep=Sleeps(),
                          healthy_after=healthy_after, quiet_healthy_after=quiet_after)
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    await until(lambda: len(script.requests) >= 5 or task.done())
    stop.set()
    if gives_up:
        with pytest.raises(StreamGone):
            await task
        assert len(script.requests) == 3
    else:
        await task
        assert client.snapshot()["consecutive_failures"] <= 1
        assert client.snapshot()["circuit"] == "closed"
