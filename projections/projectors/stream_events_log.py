"""`stream_events_log` (the original stream log's shape): a view over the ledger, not a table.

Every stream event is already in `event_log` exactly once (its event_id is the
original `<stream>:<timepoint>` key), and projections run inside the append
transaction, so an event is processed the moment it is received: the view
(migration 0003) shows stream events as `processed` with `processed_at =
received_at`, and rejected lines as `failed` with their reason. There is
nothing to rebuild; the projector exists so the view is listed, versioned and
named by `replay --only` like every other read model.
"""

from __future__ import annotations

import apsw

from projections.records import Batch

NAME = "stream_events_log"
VERSION = 1
TABLES: tuple[str, ...] = ()
VIEWS = ("stream_events_log",)
LOOKUP_INDEXES: tuple[str, ...] = ()


def apply(conn: apsw.Connection, batch: Batch) -> None:
    """Nothing to write: the view reads the ledger itself."""
