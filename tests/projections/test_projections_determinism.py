"""Live == catch-up == replay, for generated ledgers (hypothesis).

A generated ledger mixes everything the worker appends (stream events with
duplicates, out-of-order timepoints, deletes, odd payloads and unnormalised
numbers; requests, responses, officer pages, 429s, transport errors,
abandonments, completions, backfills, worker starts with different interest
predicates, stream connection events), with request ids and companies drawn
from small pools so that they collide. It is appended three ways:

- live, in small random batches, with the projection hook (the worker's path);
- without the hook, in the same batches, then `catch_up()`;
- then the live database is rebuilt from scratch with `replay()`.

Every projection table must end up identical (every row, every column; the
checksum covers all of them), `verify()` must find nothing, and replay must not
change a single row.
"""

from __future__ import annotations

import os
import tempfile

from hypothesis import HealthCheck, given, settings

import projections
from projections.replay import replay, verify
from eventlog.ledger.store import Ledger
from projections.testing import snapshot, stream_event
from support.generated_ledgers import _build, ledgers

@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ledgers())
def test_live_catch_up_and_replay_build_identical_tables(cuts):
    with tempfile.TemporaryDirectory() as d:
        live = _build(os.path.join(d, "live.db"), cuts, hook=True)
        later = _build(os.path.join(d, "later.db"), cuts, hook=False)
        assert live.execute("SELECT * FROM event_log").fetchall() == later.execute("SELECT * FROM event_log").fetchall()

        expected = snapshot(live)
        assert verify(live) == []
        projections.catch_up(later)
        assert snapshot(later) == expected
        report = replay(live)
        assert report.entries == live.execute("SELECT count(*) FROM event_log").fetchone()[0]
        assert snapshot(live) == expected
        states = live.execute("SELECT name, version, position FROM projection_state ORDER BY name").fetchall()
        assert {p for _, _, p in states} == {report.head}
        live.close()
        later.close()


def test_the_snapshot_sees_a_change_in_any_column(conn, clock):
    """The comparison above is only as good as the checksum: one changed value must show."""
    ledger = Ledger(conn, clock)
    projections.attach(ledger)
    ledger.append(stream_event("1", 1))
    before = snapshot(conn)
    conn.execute("UPDATE companies SET stream_metadata = stream_metadata || ' '")
    after = snapshot(conn)
    assert [t for t in before if before[t] != after[t]] == ["companies"]
