"""Rebuilding projections from the ledger: whole, atomically, optionally in parallel processes.

    replay(conn, only, progress, jobs) -> ReplayReport   rebuild from position 0 and swap in
    verify(conn, only) -> list[Difference]                rebuild into scratch tables and compare

The projectors themselves (`projections.projectors`) know nothing of this package: replay runs
the same `apply` that runs live, so a replay equals the live run.
"""

from projections.replay.compare import Difference
from projections.replay.rebuild import ReplayReport, replay, verify

__all__ = ["replay", "verify", "ReplayReport", "Difference"]
