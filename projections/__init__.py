"""Read models rebuilt from the ledger by pure projectors.

    attach(ledger)            every append also updates every projection, in its transaction
    catch_up(conn)            apply entries beyond each projection's stored position
    check_versions(conn)      raise ProjectionsOutdated when the code is newer than the tables

One module per read model (`companies`, `officers`, `processing_state` with the
backfill batches and jobs, `rate_limit_log`, `request_queue`, `stream_metadata`,
`stream_events_log`), each with a NAME, a VERSION, the TABLES it owns and a pure
`apply(conn, batch)`, in `projections.projectors`; `registry` lists them in the order they
run. Rebuilding them from the ledger is `projections.replay`'s job.
"""

from projections.registry import NAMES, PROJECTORS
from projections.runner import attach, catch_up, check_versions

__all__ = [
    "attach",
    "catch_up",
    "check_versions",
    "PROJECTORS",
    "NAMES",
]
