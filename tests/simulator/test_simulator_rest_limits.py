"""The REST side's gateway: HTML 5xx pages, the IP limit's 403, and the record tests judge by."""

from __future__ import annotations

import json

import aiohttp
import pytest

from support.ch_simulator import REST, REST_KEY, STREAM, STREAM_KEY, FakeClock, auth, simulator



async def test_rest_calls_can_meet_html_gateway_pages_counted_against_the_key() -> None:
    async with simulator(rest_gateway_error_share=1.0) as (sim, session):
        number = sim.simulator.universe.numbers[0]
        for remain, path in enumerate((f"/company/{number}", f"/company/{number}/officers")):
            async with session.get(path, headers=REST) as page:
                assert page.status in {502, 503, 504}
                assert page.content_type == "text/html"
                body = await page.text()
                with pytest.raises(json.JSONDecodeError):
                    json.loads(body)
                assert f"<title>{page.status} " in body
                # the gateway counted it before the service behind it failed
                assert page.headers["X-Ratelimit-Remain"] == str(599 - remain)

    async with simulator(seed=9, rest_gateway_error_share=0.3) as (sim, session):
        number = sim.simulator.universe.numbers[0]
        for _ in range(40):
            async with session.get(f"/company/{number}", headers=REST) as response:
                await response.read()
        statuses = sim.state.statuses()
    pages = [s for s in statuses if s != 200]
    assert set(pages) <= {502, 503, 504} and 4 < len(pages) < 20


async def test_past_the_ip_limit_every_request_is_403_whatever_the_key() -> None:
    clock = FakeClock()
    async with simulator(clock, ip_limit_requests=5, ip_limit_window=10.0) as (sim, session):
        number = sim.simulator.universe.numbers[0]

        async def call(headers) -> aiohttp.ClientResponse:
            async with session.get(f"/company/{number}", headers=headers) as response:
                await response.read()
                return response

        for _ in range(4):
            assert (await call(REST)).status == 200
        assert (await call(auth("wrong"))).status == 401  # counted by the IP limit all the same
        refused = await call(REST)
        assert refused.status == 403 and refused.content_type == "text/html"
        assert "X-Ratelimit-Remain" not in refused.headers  # the key's limiter never saw it
        assert (await call(auth("wrong"))).status == 403  # before any key is looked at
        clock.advance(10.0)  # the address's window ends
        after = await call(REST)
        assert after.status == 200
        # 403s cost the key nothing: its window still holds only the 4 served + this one
        assert after.headers["X-Ratelimit-Remain"] == "595"
        # the streams are another host's: the IP limit does not apply to them
        clock.advance(-10.0)
        async with session.get("/companies", headers=STREAM) as stream:
            assert stream.status == 200
    state = sim.state
    assert state.statuses() == [200, 200, 200, 200, 401, 403, 403, 200]
    assert {r.ip for r in state.requests} == {"127.0.0.1"}
    assert state.served(403) == 2


async def test_the_record_keeps_per_key_counts_windows_and_refusals() -> None:
    clock = FakeClock()
    async with simulator(clock, rate_limit_requests=3, rate_limit_window=10.0,
                         stream_connect_min_interval=30.0) as (sim, session):
        number = sim.simulator.universe.numbers[0]
        for step in range(5):  # 3 served, then 429 until the window ends
            async with session.get(f"/company/{number}", headers=REST) as response:
                assert response.status == (200 if step < 3 else 429)
            clock.advance(1.0)
        async with session.get(f"/company/{number}", headers=STREAM) as response:
            assert response.status == 401
        for _ in range(2):
            async with session.get("/filings", headers=STREAM) as response:
                pass
        state = sim.state
    assert state.request_counts() == {REST_KEY: 5}  # 401s belong to nobody
    assert state.request_counts(exclude_401=False) == {REST_KEY: 5, STREAM_KEY: 1}
    assert state.max_in_window(10.0, REST_KEY) == 5  # what arrived, refused or not
    assert state.max_in_window(2.0) == 2
    assert (state.served(401), state.served(403), state.served(429)) == (1, 0, 3)
    assert [(s.path, s.key, s.status) for s in state.streams_on("/filings")] == [
        ("/filings", STREAM_KEY, 200), ("/filings", STREAM_KEY, 429)]
