"""Apply the numbered SQL files of `migrations/` in order, each version once.

The applied version lives in `PRAGMA user_version` (cheap to read on every
start) and each migration is also recorded in `schema_migrations` with when it
ran. All missing migrations run in one transaction: a failure leaves the file
exactly as it was.
"""

from __future__ import annotations

import apsw

from eventlog.clock import Clock, SystemClock, from_epoch
from eventlog.ledger.db import transaction, translated
from eventlog.ledger.schema import Migration, check_version, available, refuse_foreign

__all__ = ["migrate"]


def migrate(conn: apsw.Connection, clock: Clock | None = None) -> list[Migration]:
    """Bring the database up to date; return what was applied (empty if nothing)."""
    clock = clock or SystemClock()
    migrations = available()
    latest = len(migrations)
    if check_version(conn, latest) == latest:
        return []
    with translated(conn.filename), transaction(conn):
        # Read again under the write lock: two processes starting together both saw
        # the old version outside it, and only the first may apply the migrations.
        version = check_version(conn, latest)
        missing = [m for m in migrations if m.version > version]
        if not missing:
            return []
        if version == 0:
            refuse_foreign(conn, close=False)  # also in connect(); here for connections made otherwise
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        for mig in missing:
            conn.execute(mig.sql)
            conn.execute(
                "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)",
                (mig.version, mig.name, from_epoch(clock.now())),
            )
        conn.execute(f"PRAGMA user_version = {latest}")
    return missing
