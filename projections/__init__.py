"""Read models rebuilt from the ledger by pure projectors.

    attach(ledger)            every append also updates every projection, in its transaction
    catch_up(conn)            apply entries beyond each projection's stored position
    check_versions(conn)      raise ProjectionsOutdated when the code is newer than the tables
    replay(conn, only, progress) -> ReplayReport    rebuild from position 0, atomically
    verify(conn, only) -> list[Difference]          rebuild into scratch tables and compare

One module per read model (`companies`, `officers`, `processing_state` with the
backfill batches and jobs, `rate_limit_log`, `request_queue`, `stream_metadata`,
`stream_events_log`), each with a NAME, a VERSION, the TABLES it owns and a pure
`apply(conn, batch)`; `registry` lists them in the order they run.
"""

from .compare import Difference
from .registry import NAMES, PROJECTORS
from .rebuild import ReplayReport, replay, verify
from .runner import attach, catch_up, check_versions

__all__ = [
    "attach",
    "catch_up",
    "check_versions",
    "replay",
    "verify",
    "ReplayReport",
    "Difference",
    "PROJECTORS",
    "NAMES",
]
