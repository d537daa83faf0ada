"""Easter in compressed time: BUSINESS_HOURS on, the stream followed all the time, no 416.

The ingest command's session runner (`_sessions`, what `python cli.py ingest` runs after start-up)
and the simulator share one compressed clock (about 8 hours a second): from Thursday 16:00 to
Tuesday 09:00 London time (the 111 hours Easter closes the office, past the simulator's 3 days
of retention), with the simulator's nightly drops and 24 h connection cap. Closing the stream
with the office, as the worker once did, would meet a 416 on Tuesday and lose every event of the
weekend; now only the REST calls pause, and every timepoint is recorded.
"""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import datetime, timezone

from eventlog.commands.ingest import _sessions
from eventlog.config.settings import Settings
from eventlog.simulator import SimulatorConfig, running_simulator

RATE = 30_000.0  # simulated seconds per real second
START = datetime(2025, 4, 17, 15, 0, tzinfo=timezone.utc).timestamp()  # Thu 16:00 BST
CLOSES = datetime(2025, 4, 17, 16, 30, tzinfo=timezone.utc).timestamp()  # Thu 17:30 BST
OPENS = datetime(2025, 4, 22, 7, 30, tzinfo=timezone.utc).timestamp()  # Tue 08:30 BST (Easter Monday off)
END = datetime(2025, 4, 22, 8, 0, tzinfo=timezone.utc).timestamp()
EDGE = 3600.0  # simulated seconds of scheduling jitter allowed at each edge (0.12 s real)


class Compressed:
    """Epoch seconds running RATE times faster than the wall clock, from START."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def now(self) -> float:
        return START + (time.monotonic() - self.t0) * RATE


async def test_easter_with_business_hours_loses_no_timepoint_and_meets_no_416(conn) -> None:
    clock = Compressed()
    config = SimulatorConfig(backlog_events=50, events_per_second=0.005, gap_share=0.0, strike_off_share=0.05,
                             deleted_share=0.0, company_count=500)
    async with running_simulator(config, clock=clock.now) as sim:
        settings = Settings(api_key=config.api_key, stream_key=config.stream_key, api_url=sim.base_url,
                            streaming_api_url=f"{sim.base_url}/companies", business_hours=True,
                            stream_connect_spacing=0.05, initial_retry_delay=0.05, max_retry_delay=0.5,
                            health_check_interval=3600.0)
        lines: list[str] = []
        before = signal.getsignal(signal.SIGTERM)
        try:
            code = await _sessions(settings, conn, (END - START) / RATE, lines.append, 3600.0,
                                   clock=clock, sleep=lambda s: asyncio.sleep(s / RATE))
        finally:
            signal.signal(signal.SIGTERM, before)
        head = sim.simulator.timeline.head_timepoint(END - EDGE)  # published an hour before the end
        connects = list(sim.state.streams)
        requests = list(sim.state.requests)
    assert code == 0
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
