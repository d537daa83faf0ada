"""The schema's version: the migrations this code ships, the version a file is at, and the
guards that refuse a file before anything writes to it (newer than this code; somebody else's).

`connect()` runs the guards on every open, and `migrate()` applies what is missing; both need
this module, which needs neither of them.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import NamedTuple

import apsw

from eventlog.errors import DatabaseError, SchemaTooNew
from eventlog.ledger.apsw_errors import translated

__all__ = ["Migration", "available", "check_version", "current_version", "latest_version", "refuse_newer",
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


def check_version(conn: apsw.Connection, latest: int) -> int:
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
        check_version(conn, latest_version())
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
