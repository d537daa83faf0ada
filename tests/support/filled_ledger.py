"""A database with a projected ledger, for the tests that damage, fill or lock one."""

from __future__ import annotations

from pathlib import Path

import apsw

import projections
from eventlog.clock import Clock
from eventlog.ledger.db import connect
from eventlog.ledger.migrate import migrate
from eventlog.ledger.store import Ledger
from projections.testing import stream_event


def projected(path: Path, clock: Clock) -> tuple[apsw.Connection, Ledger]:
    """A migrated database at `path` and its ledger, every projection attached."""
    conn = connect(path)
    migrate(conn, clock)
    ledger = Ledger(conn, clock)
    projections.check_versions(conn)
    projections.attach(ledger)
    return conn, ledger


def filled(path: Path, clock: Clock, n: int = 1500) -> None:
    """`n` stream events about 700 companies, in appends of 100, checkpointed into the file."""
    conn, ledger = projected(path, clock)
    for start in range(0, n, 100):
        ledger.append_many([stream_event(f"{i % 700:08d}", 1000 + i) for i in range(start, start + 100)])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    conn.close()
