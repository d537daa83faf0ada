"""Apply the numbered SQL files of `migrations/` in order, each version once.

The applied version lives in `PRAGMA user_version` (cheap to read on every
start) and each migration is also recorded in `schema_migrations` with when it
ran. All missing migrations run in one transaction: a failure leaves the file
exactly as it was.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import NamedTuple

import apsw

from eventlog.clock import Clock, SystemClock, from_epoch
from eventlog.ledger.db import transaction, translated
from eventlog.errors import DatabaseError, SchemaTooNew

__all__ = ["Migration", "available", "current_version", "migrate", "latest_version", "refuse_newer",
           "refuse_foreign"]

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class Migration(NamedTuple):
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    found = []
    for item in resources.files("migrations").iterdir():
        m = _NAME.match(item.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), item.read_text(encoding="utf-8")))
    found.sort()
    for expected, mig in enumerate(found, start=1):
        if mig.version != expected:
            raise DatabaseError(f"migrations are not numbered 1..n: expected {expected:04d}, found {mig.version:04d}")
    return found


def latest_version() -> int:
    return len(available())


def current_version(conn: apsw.Connection) -> int:
    with translated(conn.filename):
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _check_version(conn: apsw.Connection, latest: int) -> int:
    version = current_version(conn)
    if version > latest:
        raise SchemaTooNew(
            f"database {conn.filename} is at schema version {version}, newer than this "
            f"chledger knows ({latest}): upgrade chledger, or use a copy made by this version"
        )
    return version


def refuse_newer(conn: apsw.Connection) -> None:
    """Raise SchemaTooNew (closing the connection) before anything writes to a newer file."""
    try:
        _check_version(conn, latest_version())
    except SchemaTooNew:
        conn.close()
        raise


def refuse_foreign(conn: apsw.Connection, *, close: bool = True) -> None:
    """Version 0 with tables of its own is somebody else's database: adding ours would mix the two.

    Raises DatabaseError before anything writes to it (closing the connection, unless told not to).
    """
    if current_version(conn) != 0:
        return
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name LIMIT 4")]
    if names:
        shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
        error = DatabaseError(f"{conn.filename} is a SQLite database of something else (it has {shown} and no "
                              "chledger schema): refusing to add chledger's tables to it; give a new file's path")
        if close:
            conn.close()
        raise error


def migrate(conn: apsw.Connection, clock: Clock | None = None) -> list[Migration]:
    """Bring the database up to date; return what was applied (empty if nothing)."""
    clock = clock or SystemClock()
    migrations = available()
    latest = len(migrations)
    if _check_version(conn, latest) == latest:
        return []
    with translated(conn.filename), transaction(conn):
        # Read again under the write lock: two processes starting together both saw
        # the old version outside it, and only the first may apply the migrations.
        version = _check_version(conn, latest)
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
