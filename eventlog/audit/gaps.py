"""The audit's gaps section: which 416 gaps a bulk snapshot has reconciled, from the ledger alone.

A `stream.gaps_reconciled` entry (appended by `bulk` for a whole snapshot) reconciles every gap
of its stream (every stream when it names none) recorded before the snapshot's date; a gap no
such entry covers is UNRESOLVED: the events it lost are lost until a newer snapshot comes. The
same rule as the `stream_gaps` projection, recomputed here because the audit trusts no projection.
"""

from __future__ import annotations

import apsw
import msgspec

__all__ = ["reconciled_by_position"]

# The same WHERE as migration 0008's partial index, so the read uses it.
_READ = ("SELECT id, event_type, received_at, event_data FROM event_log "
         "WHERE event_type IN ('stream.gap', 'stream.gaps_reconciled') ORDER BY id")


class _Gap(msgspec.Struct):
    stream: str = ""


class _Reconciled(msgspec.Struct):
    snapshot_date: str = ""
    snapshot: str = ""
    stream: str | None = None


def reconciled_by_position(conn: apsw.Connection) -> dict[int, str | None]:
    """Each gap's ledger position and the snapshot(s) that reconciled it (None: unresolved)."""
    out: dict[int, str | None] = {}
    open_gaps: dict[int, tuple[str, str]] = {}  # position -> (stream, day recorded)
    for position, event_type, received_at, data in conn.execute(_READ):
        try:
            if event_type == "stream.gap":
                g = msgspec.json.decode(data, type=_Gap)
                out[position] = None
                open_gaps[position] = (g.stream, received_at[:10])
                continue
            r = msgspec.json.decode(data, type=_Reconciled)
        except msgspec.DecodeError:
            continue  # the scan reports entries that don't decode
        for pos, (stream, day) in list(open_gaps.items()):
            if day < r.snapshot_date and (r.stream is None or r.stream == stream):
                out[pos] = r.snapshot
                del open_gaps[pos]
    return out
