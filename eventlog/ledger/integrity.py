"""SQLite's own integrity checks, where chledger relies on them.

A damaged page does not always make SQLite fail: a broken interior page can hide a whole run of
ledger rows from a range scan, and a damaged `UNIQUE(event_id)` index lets the same stream event
be appended twice (the ledger's idempotency rests on it). So the commands that trust the file
check it first:
- `ingest` and `replay` run `PRAGMA quick_check` (pages, cells and the b-trees' shape; it does not
  compare indexes with their tables), about a second per GB here (benchmarks/README.md);
- `audit` runs the full `PRAGMA integrity_check` (also every index against its table), because
  its verdict must not rest on damaged pages, and a verdict on a damaged file is "could not check".
Both read the whole file; neither writes.
"""

from __future__ import annotations

import apsw

from eventlog.errors import LedgerDamaged
from eventlog.ledger.apsw_errors import translated

__all__ = ["check_integrity", "QUICK", "FULL"]

QUICK = "quick_check"
FULL = "integrity_check"
_SHOWN = 3  # problems quoted in the message; SQLite may list up to 100


def check_integrity(conn: apsw.Connection, kind: str = QUICK) -> None:
    """Raise LedgerDamaged (one line, the first problems SQLite names) unless the check says ok."""
    with translated(conn.filename):
        rows = [str(r[0]) for r in conn.execute(f"PRAGMA {kind}({_SHOWN + 1})")]
    if rows == ["ok"]:
        return
    lines = [line.strip() for r in rows for line in r.splitlines()
             if line.strip() and not line.startswith("*** in database")]
    problems = "; ".join(lines[:_SHOWN])
    more = " (and more)" if len(lines) > _SHOWN else ""
    raise LedgerDamaged(f"the database {conn.filename} is damaged (PRAGMA {kind}: {problems}{more}): "
                        "restore it from a backup; nothing was changed")
