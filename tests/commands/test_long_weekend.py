"""Easter in compressed time: BUSINESS_HOURS on, the stream followed all the time, no 416.

The real `python cli.py ingest` in a subprocess and the simulator in this test share one
compressed clock (`CHLEDGER_COMPRESSED_TIME`, 30,000 simulated seconds a real one: about 8 hours
a second): from Thursday noon to Tuesday 09:00 London time (the 111 hours Easter closes the office,
past the simulator's 3 days of retention), with the simulator's nightly drops and 24 h connection
cap. Closing the stream with the office, as the worker once did, would meet a 416 on Tuesday and
lose every event of the weekend; now only the REST calls pause, and every timepoint is recorded.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import apsw

from eventlog.clock import CompressedClock
from eventlog.simulator import SimulatorConfig, running_simulator

from test_ingest_e2e import finish, start_worker, worker_env

RATE = 30_000.0  # simulated seconds per real second
START = datetime(2025, 4, 17, 11, 0, tzinfo=timezone.utc).timestamp()  # Thu 12:00 BST (0.6 s real before closing)
CLOSES = datetime(2025, 4, 17, 16, 30, tzinfo=timezone.utc).timestamp()  # Thu 17:30 BST
OPENS = datetime(2025, 4, 22, 7, 30, tzinfo=timezone.utc).timestamp()  # Tue 08:30 BST (Easter Monday off)
END = datetime(2025, 4, 22, 8, 0, tzinfo=timezone.utc).timestamp()
EDGE = 3600.0  # simulated seconds of scheduling jitter allowed at each edge (0.12 s real)


async def test_easter_with_business_hours_loses_no_timepoint_and_meets_no_416(tmp_path) -> None:
    clock = CompressedClock(START, time.time(), RATE)
    config = SimulatorConfig(backlog_events=50, events_per_second=0.005, gap_share=0.0, strike_off_share=0.05,
                             deleted_share=0.0, company_count=500)
    db = tmp_path / "easter.db"
    async with running_simulator(config, clock=clock.now) as sim:
        env = worker_env(sim.base_url, db, BUSINESS_HOURS="true", STREAM_CONNECT_SPACING="0.05",
                         INITIAL_RETRY_DELAY="0.05", MAX_RETRY_DELAY="0.5", HEALTH_CHECK_INTERVAL="3600",
                         RATE_LIMIT_REQUESTS="600", RATE_LIMIT_WINDOW="300", RATE_LIMIT_SLACK="2",
                         CHLEDGER_COMPRESSED_TIME=f"{clock.start},{clock.origin},{clock.rate}")
        proc = await start_worker(env, "--duration", f"{(END - clock.now()) / RATE:.3f}")
        code, err = await finish(proc, timeout=60)
        head = sim.simulator.timeline.head_timepoint(END - 2 * EDGE)  # published two hours before the end
        connects = list(sim.state.streams)
        requests = list(sim.state.requests)
    lines = err.splitlines()
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    assert code == 0, err[-2000:]
    assert [c.status for c in connects if c.status != 200] == []  # no 416, no 429
    # the server dropped the connection night after night (the nightly drop, or the 24 h cap when a
    # connection opened after that night's drop), and each time the worker resumed where it was
    ends = [c.end for c in connects]
    assert sum(e in ("nightly", "max_age") for e in ends) >= 3 and "nightly" in ends, ends
    points = [tp for (tp,) in conn.execute(
        "SELECT CAST(substr(event_id, 11) AS INTEGER) FROM event_log "
        "WHERE event_type = 'stream.event' AND event_id LIKE 'companies:%' ORDER BY 1")]
    assert points == list(range(points[0], points[-1] + 1)), "a timepoint was lost"
    assert len(points) > 0.9 * (50 + config.events_per_second * (END - START))
    assert points[-1] >= head  # caught up to the live head, not left behind
    assert conn.execute("SELECT count(*) FROM event_log WHERE event_type = 'stream.gap'").fetchone()[0] == 0
    # the REST calls paused with the office and resumed with it
    closed = [r for r in requests if CLOSES + EDGE < r.time < OPENS - EDGE]
    assert closed == [], f"{len(closed)} REST calls while closed"
    assert any(r.time < CLOSES + EDGE for r in requests) or any(r.time > OPENS for r in requests)
    assert any("REST calls paused" in line for line in lines)
    assert any("REST calls resumed" in line for line in lines)
    conn.close()
