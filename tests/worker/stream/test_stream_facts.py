"""The stream facts of the real Companies House, each against the simulator with its knob on:
data-less deletions, stripped nulls, the three `published_at` forms, HTML gateway pages on
connect, the REST key refused by the stream."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

import projections
from eventlog.clock import FixedClock, SystemClock, published_epoch, to_epoch
from eventlog.config.settings import Settings
from eventlog.errors import Unauthorized
from eventlog.ledger.db import connect
from eventlog.ledger.entries import StreamEvent
from eventlog.ledger.migrate import migrate
from eventlog.ledger.store import Ledger
from eventlog.simulator import SimulatorConfig, running_simulator
from eventlog.worker.stream.client import StreamClient
from support.ch_simulator import FakeClock

AFTERNOON = datetime(2025, 1, 6, 15, 0, tzinfo=timezone.utc).timestamp()  # inside the 12-hour era


async def _no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


async def follow(conn, config: SimulatorConfig, *, events: int, clock=None, sim_clock=None,
                 key: str | None = None) -> tuple[Ledger, StreamClient, object]:
    """Follow /companies from its first timepoint until `events` events are recorded (the ledger
    is seeded with a data-less deletion just before it, so the client resumes into the backlog)."""
    ledger = Ledger(conn, clock or SystemClock())
    projections.attach(ledger)
    ledger.append(StreamEvent(stream="companies", timepoint=config.first_timepoint - 1,
                              published_at="2025-01-06T14:59:00", change="deleted",
                              resource_kind="company-profile", resource_id="00000000",
                              resource_uri="/company/00000000", company_number="00000000"))
    async with running_simulator(config, **({"clock": sim_clock} if sim_clock else {})) as sim:
        settings = Settings(stream_key=key or config.stream_key, streaming_api_url=f"{sim.base_url}/companies",
                            stream_connect_spacing=0.0, read_timeout=5.0, max_retries=50)
        client = StreamClient(settings, ledger, url=settings.streaming_api_url, sleep=_no_wait)
        stop = asyncio.Event()
        task = asyncio.create_task(client.run(stop))
        for _ in range(1000):
            if client.stats.events_seen >= events or task.done():
                break
            await asyncio.sleep(0.01)
        stop.set()
        await task
        return ledger, client, sim


def rows(conn, sql: str, *args) -> list[tuple]:
    return conn.execute(sql, args).fetchall()


async def test_deleted_events_without_data_are_recorded_not_rejected(conn) -> None:
    config = SimulatorConfig(deleted_share=1.0, deleted_without_data_share=1.0, backlog_events=50)
    await follow(conn, config, events=50)
    changes = rows(conn, "SELECT json_extract(event_data, '$.change'), json_extract(event_data, '$.data') "
                         "FROM event_log WHERE event_type = 'stream.event'")
    assert len(changes) >= 50 and {c for c, _ in changes} == {"deleted"} and {d for _, d in changes} == {None}
    assert rows(conn, "SELECT count(*) FROM event_log WHERE event_type = 'stream.rejected'") == [(0,)]
    # the companies are marked deleted, and none entered the pipeline
    assert rows(conn, "SELECT count(*) FROM companies WHERE deleted = 0") == [(0,)]
    assert rows(conn, "SELECT count(*) FROM company_processing_state") == [(0,)]


async def test_stripped_nulls_read_the_same_as_explicit_nulls(conn, tmp_path) -> None:
    """Since 2025 the stream leaves null fields out: absent must read as null did."""
    other = connect(tmp_path / "nulls.db")
    migrate(other)
    try:
        await follow(conn, SimulatorConfig(seed=5, null_fields=False, backlog_events=150, deleted_share=0.0),
                     events=150)
        await follow(other, SimulatorConfig(seed=5, null_fields=True, backlog_events=150, deleted_share=0.0),
                     events=150)
        sql = ("SELECT company_number, company_name, company_status, company_status_detail, company_type, "
               "date_of_creation FROM companies ORDER BY 1")
        stripped, explicit = rows(conn, sql), rows(other, sql)
        assert len(stripped) > 50 and stripped == explicit
        assert any(r[3] is None for r in stripped)  # an absent company_status_detail is a null one
        state = "SELECT company_number, processing_state FROM company_processing_state ORDER BY 1"
        assert rows(conn, state) == rows(other, state)
    finally:
        other.close()


async def test_all_three_published_at_forms_are_read_as_utc(conn) -> None:
    config = SimulatorConfig(published_at_fraction_share=0.3, published_at_12h_share=0.5, backlog_events=300,
                             events_per_second=0.5)
    received = FixedClock(AFTERNOON)
    await follow(conn, config, events=300, clock=received, sim_clock=FakeClock(AFTERNOON))
    stamps = [p for (p,) in rows(conn, "SELECT json_extract(event_data, '$.published_at') FROM event_log "
                                       "WHERE event_type = 'stream.event'")]
    assert len(stamps) >= 300
    assert any(s.endswith("Z") for s in stamps) and any(s[11:13] in ("02", "03") for s in stamps)
    # the backlog was published over the 10 minutes before 15:00 UTC; every form reads so
    for s in stamps:
        t = published_epoch(s, AFTERNOON)
        assert AFTERNOON - 3600 < t <= AFTERNOON + 1, s
    naive = [s for s in stamps if not AFTERNOON - 3600 < to_epoch(s) <= AFTERNOON + 1]
    assert naive, "the 12-hour stamps must differ from a naive reading, or this test proves nothing"


def test_published_at_reads_midnight_and_morning_right() -> None:
    midnight = datetime(2025, 1, 6, 0, 15, tzinfo=timezone.utc).timestamp()
    assert published_epoch("2025-01-06T12:15:00", midnight + 60) == midnight  # 12-hour midnight
    noon = midnight + 12 * 3600
    assert published_epoch("2025-01-06T12:15:00", noon + 60) == noon
    morning = midnight + 5 * 3600
    assert published_epoch("2025-01-06T05:15:00", morning + 60) == morning  # live morning: as written
    assert published_epoch("2025-01-06T17:15:00", noon + 6 * 3600) == noon + 5 * 3600
    assert published_epoch("2023-11-04T14:33:29.123Z", 0) == to_epoch("2023-11-04T14:33:29.123Z")


async def test_gateway_html_pages_on_connect_are_retried_never_read_as_events(conn) -> None:
    config = SimulatorConfig(stream_gateway_error_share=0.6, backlog_events=40, seed=2)
    _, client, sim = await follow(conn, config, events=40)
    statuses = [c.status for c in sim.state.streams]
    assert {502, 503, 504} & set(statuses) and 200 in statuses
    assert client.stats.events_seen >= 40
    assert rows(conn, "SELECT count(*) FROM event_log WHERE event_type = 'stream.rejected'") == [(0,)]
    failed = rows(conn, "SELECT json_extract(event_data, '$.status') FROM event_log "
                        "WHERE event_type = 'stream.disconnected' AND json_extract(event_data, '$.status') IS NOT NULL")
    assert failed and {s for (s,) in failed} <= {502, 503, 504}


async def test_the_stream_refuses_the_rest_key(conn) -> None:
    config = SimulatorConfig(backlog_events=5)
    with pytest.raises(Unauthorized, match="COMPANIES_HOUSE_STREAM_KEY"):
        await follow(conn, config, events=5, key=config.api_key)
