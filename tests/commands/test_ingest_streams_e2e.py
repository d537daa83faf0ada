"""The real worker process following /companies and /filings together, judged from the simulator.

A first Gazette notice (GAZ1 / GAZ1(A)) on /filings detects a company proposed for strike-off,
often before, and for some companies instead of, its /companies event. Whichever stream spoke
first, each company gets its officers exactly once, with no status call (both streams carry the
status), the limit is never breached, and connects are paced so the simulator's
429-on-frequent-connects knob is never hit.
"""

from __future__ import annotations

import re
from collections import Counter

from eventlog.simulator import max_in_any_window, running_simulator

from test_ingest_e2e import LIMIT, WINDOW, finish, query, sim_config, start_worker, worker_env

_OFFICERS = re.compile(r"^/company/([A-Z0-9]{8})/officers\?.*start_index=0")


async def test_both_streams_every_strike_off_company_gets_its_officers_exactly_once(tmp_path):
    db = tmp_path / "both.db"
    config = sim_config(backlog_events=60, events_per_second=5.0, filings_backlog_events=200,
                        filings_events_per_second=10.0, gazette_share=0.3, filings_only_share=0.5,
                        stream_connect_min_interval=1.0, rate_limit_requests=40, company_count=400)
    async with running_simulator(config) as sim:
        env = worker_env(sim.base_url, db, STREAMING_API_URL=f"{sim.base_url}/companies,{sim.base_url}/filings",
                         RATE_LIMIT_REQUESTS="40", STREAM_CONNECT_SPACING="1.2")
        code, err = await finish(await start_worker(env, "--duration", "9"))
        records = list(sim.state.requests)
        connects = list(sim.state.streams)
        times = sim.state.times("sim-key")
        filings_only = sim.simulator.universe.filings_only
    assert code == 0, err
    # both streams followed, each from its own timepoints, and never refused for connecting too often
    assert {c.path for c in connects if c.status == 200} == {"/companies", "/filings"}
    assert all(c.status != 429 for c in connects), [(c.path, c.status) for c in connects]
    rows = dict(query(db, "SELECT stream_type, last_timepoint FROM stream_metadata"))
    assert set(rows) == {"companies", "filings"} and rows["filings"] >= 1_000_000 > rows["companies"]
    # every company the projections confirmed (from either stream) had its officers asked once
    asked = Counter(m.group(1) for r in records if (m := _OFFICERS.match(r.path)))
    assert asked and max(asked.values()) == 1, [n for n, k in asked.items() if k > 1]
    detected = {n for (n,) in query(db, "SELECT company_number FROM company_processing_state "
                                        "WHERE officers_request_id IS NOT NULL")}
    assert set(asked) == detected
    gazette = {n for (n,) in query(db, "SELECT DISTINCT company_number FROM event_log WHERE event_type = "
                                       "'stream.event' AND event_id LIKE 'filings:%' AND "
                                       "json_extract(event_data, '$.data.type') LIKE 'GAZ1%'")}
    assert gazette & filings_only, "no company was detected by /filings alone"
    done = {n for (n,) in query(db, "SELECT company_number FROM company_processing_state "
                                    "WHERE processing_state = 'completed' AND officers_fetched_at IS NOT NULL")}
    assert gazette & filings_only & done  # ... and got its officers
    # no status call: both streams carry the status, so no profile request was needed
    assert not [r.path for r in records if re.fullmatch(r"/company/[A-Z0-9]{8}", r.path)]
    assert max_in_any_window(times, WINDOW) <= 40
    assert query(db, "SELECT count(*) FROM event_log WHERE event_type = 'stream.gap'")[0][0] == 0
