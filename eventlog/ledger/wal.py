"""Noticing the write-ahead log deleted from under a running process.

In WAL mode every commit is first appended to `<db>-wal`, and reaches the database file only at a
checkpoint. If something deletes that file while the worker runs (a clean-up script, a careless
`rm companies.db*`), SQLite goes on writing into the deleted file through its open descriptor:
every commit still "succeeds", but no other process sees it, and a crash or a power cut loses all
of them. So the worker checks, with its disk check (every HEALTH_CHECK_INTERVAL), that the `-wal`
its connection writes is still the file of that name. When it is not, the commits are first
copied into the database file by a checkpoint (which reads them through the open descriptor),
then the worker stops with one line saying what happened: it does not go on writing blind.
"""

from __future__ import annotations

import os
from pathlib import Path

import apsw

from eventlog.errors import DatabaseError
from eventlog.ledger.apsw_errors import translated

__all__ = ["check_wal", "wal_deleted"]


def wal_deleted(conn: apsw.Connection) -> bool:
    """True when this connection's database is in WAL mode and its `-wal` is gone or replaced."""
    path = conn.filename
    if not path:
        return False
    with translated(path):
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            return False
    wal = f"{path}-wal"
    if not os.path.exists(wal):
        return True
    # Linux names a descriptor's file "(deleted)" once it is unlinked: a -wal deleted and
    # created again by someone else is not the one this process writes.
    fds = Path("/proc/self/fd")
    if fds.is_dir():
        for fd in fds.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target == f"{wal} (deleted)":
                return True
    return False


def check_wal(conn: apsw.Connection) -> None:
    """Raise DatabaseError (after saving the commits into the database file) if the -wal was deleted."""
    if not wal_deleted(conn):
        return
    with translated(conn.filename):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        # Leaving WAL mode and entering it again makes a new, visible -wal for what is still to be
        # written on the way out (`worker.stopped`); it needs no other connection open, else the
        # rest goes on into the deleted file, saved only by this connection's last checkpoint.
        try:
            conn.execute("PRAGMA journal_mode=DELETE").fetchall()
            conn.execute("PRAGMA journal_mode=WAL").fetchall()
        except apsw.BusyError:
            pass
    raise DatabaseError(f"the write-ahead log {conn.filename}-wal was deleted while the worker ran: its commits "
                        "were copied into the database file and the worker stopped; find what deletes it, "
                        "then start again")
