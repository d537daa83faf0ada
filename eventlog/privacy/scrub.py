"""Making deleted bytes really gone: freed space, stale copies, the WAL's old frames.

A DELETE or UPDATE in SQLite normally leaves the old bytes behind: in the free space of the
b-tree page, on pages moved to the freelist (later reused by *any* table, whose unused space
then carries them: an officer's old row can end up inside a ledger page), and, when a page
splits or merges, as stale copies of cells that moved. The WAL keeps earlier versions of every
page it has seen, and a backup copies free pages too. Measured on SQLite 3.54: 20,000 keys
inserted with secure_delete off left a second copy of 1,644 of them in the file; with it on
(or FAST), none.

So a person's bytes are gone for good only when:
- every connection that wrote them had `PRAGMA secure_delete` on, from the day the file was
  created (or since its last VACUUM): then deletes, rewrites and page moves zero what they free,
  and only the WAL's old frames are left; or
- the file is rebuilt by `VACUUM` after the key was deleted and the rows rewritten: a fresh file
  from the live rows alone.

`scrub(vacuum=True)` (the default) runs VACUUM and then the checkpoint; `vacuum=False` runs the
checkpoint only, which is enough exactly when the first condition holds (the tests show both).
`PRAGMA wal_checkpoint(TRUNCATE)` copies the newest pages into the file and truncates the WAL to
zero bytes. It can't while another connection reads an older snapshot (a running export, say),
nor can VACUUM run while another connection writes: the report then says what is left, and
`scrub` (or `forget` again) should run once that connection is done. Nothing is lost meanwhile:
the key is already gone, so nothing can decrypt the sealed fields.

What it can't reach: copies outside this file (backups and exports made before, the temporary
file VACUUM writes and deletes, the filesystem's freed blocks, a disk's remapped sectors), in
docs/data-protection.md.
"""

from __future__ import annotations

import os

import apsw
import msgspec

from eventlog.ledger.db import transaction, translated
from eventlog.privacy.errors import TransactionNeeded

__all__ = ["ScrubReport", "scrub", "checkpoint_truncate", "secure_delete_on", "strip_keys"]


class ScrubReport(msgspec.Struct, frozen=True, kw_only=True):
    """What was overwritten and what is left; counts and flags, never data."""

    vacuumed: bool  # the file was rebuilt from its live rows
    vacuum_blocked: bool = False  # asked for, but another connection held the write lock
    wal_truncated: bool  # False: a reader held an old snapshot; run again when it is done
    wal_bytes: int  # size of the -wal file after the checkpoint (0 when truncated)

    @property
    def complete(self) -> bool:
        return self.wal_truncated and not self.vacuum_blocked


def secure_delete_on(conn: apsw.Connection) -> None:
    """`PRAGMA secure_delete = ON` for this connection: what it deletes, rewrites or moves is zeroed.

    Left on: whatever the connection writes next (a projector's row rewrite in the same
    transaction, the next key) must free its bytes the same way. It belongs on every connection
    that writes a database holding personal data."""
    conn.execute("PRAGMA secure_delete = ON")


def scrub(conn: apsw.Connection, *, vacuum: bool = True) -> ScrubReport:
    """VACUUM (unless told not to), then truncate the WAL (module doc). Outside any transaction."""
    if not conn.getautocommit():
        raise TransactionNeeded("scrub runs between transactions: VACUUM and a WAL checkpoint can't run "
                                "inside one")
    vacuumed = blocked = False
    with translated(conn.filename):
        secure_delete_on(conn)
        if vacuum:
            try:
                conn.execute("VACUUM")
                vacuumed = True
            except (apsw.BusyError, apsw.LockedError):  # a writer held the lock past the busy timeout
                blocked = True
        truncated, wal_bytes = checkpoint_truncate(conn)
    return ScrubReport(vacuumed=vacuumed, vacuum_blocked=blocked, wal_truncated=truncated, wal_bytes=wal_bytes)


def checkpoint_truncate(conn: apsw.Connection) -> tuple[bool, int]:
    """Checkpoint the WAL and truncate it to zero bytes: (done, bytes left in the -wal file)."""
    with translated(conn.filename):
        busy, log, _ = conn.execute("PRAGMA main.wal_checkpoint(TRUNCATE)").fetchone()
    wal = f"{conn.filename}-wal"
    size = os.path.getsize(wal) if conn.filename and os.path.exists(wal) else 0
    if log == -1:  # not in WAL mode: there are no frames to drop
        return True, size
    return busy == 0 and size == 0, size


def strip_keys(conn: apsw.Connection) -> int:
    """Delete every key from a *copy* handed to someone else (a SQLite export), then VACUUM it: its
    sealed ledger entries open as erased, so a later `forget` here needs nothing from the
    recipient for them. Returns the keys removed. Never run it on the live database."""
    with translated(conn.filename):
        secure_delete_on(conn)
        with transaction(conn):
            conn.execute("DELETE FROM person_keys")
            removed = conn.changes()
        conn.execute("VACUUM")
        checkpoint_truncate(conn)
    return removed
