"""`bulk_snapshots`: one row per imported snapshot file, keyed by its SHA-256.

A `bulk.snapshot` entry is appended only once a snapshot was read to its end, so a file listed
here was imported whole: `bulk` asks `imported()` before reading and imports nothing new for a
file it finds. A file named in two entries (imported again under another set of parts) keeps
its first row: that is when it was imported.
"""

from __future__ import annotations

import apsw
import msgspec

from projections.records import Batch
from projections.rows import Statements

NAME = "bulk_snapshots"
VERSION = 1
TABLES = ("bulk_snapshots",)
LOOKUP_INDEXES: tuple[str, ...] = ()

_ADD = ("INSERT INTO bulk_snapshots(sha256, file_name, snapshot_date, part, parts, rows_read, rows_kept, "
        "position, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(sha256) DO NOTHING")


def apply(conn: apsw.Connection, batch: Batch) -> None:
    sql = Statements()
    for r in batch.records:
        if r.event_type != "bulk.snapshot":
            continue
        e = r.entry
        for f in e.files:  # type: ignore[attr-defined]
            sql.add(_ADD, (f.sha256, f.name, e.snapshot_date, f.part, f.parts, f.rows_read,  # type: ignore[attr-defined]
                           f.rows_kept, r.position, r.received_at))
    sql.run(conn)


# --- reads ---------------------------------------------------------------------------------------


class ImportedFile(msgspec.Struct, frozen=True):
    sha256: str
    file_name: str
    snapshot_date: str | None
    position: int
    imported_at: str


def imported(conn: apsw.Connection, sha256s: list[str]) -> dict[str, ImportedFile]:
    """The files among these SHA-256s that an earlier import read whole, by SHA-256."""
    return {row[0]: ImportedFile(*row) for row in conn.execute(
        "SELECT sha256, file_name, snapshot_date, position, imported_at FROM bulk_snapshots "
        "WHERE sha256 IN (SELECT value FROM json_each(?))", (msgspec.json.encode(sha256s).decode(),))}


def latest_snapshot_date(conn: apsw.Connection) -> str | None:
    """The newest snapshot date imported (None before the first import)."""
    return conn.execute("SELECT max(snapshot_date) FROM bulk_snapshots").fetchone()[0]
