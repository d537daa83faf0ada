"""Making deleted bytes really gone: freed space, rebuilt tables, the WAL's old frames.

A DELETE or UPDATE in SQLite normally leaves the old bytes where they were: in the free space of
the b-tree page, on a page moved to the freelist, and in earlier frames of the write-ahead log.
A backup copies freed pages too. So after the key is deleted and the rows rewritten (under
`PRAGMA secure_delete = ON`, which zeroes what *that* connection frees), `scrub` deals with what
earlier writes, made without it, may have left:

1. tables that held personal plaintext (`rebuild`, e.g. `officers`) are copied aside, emptied
   and refilled in one transaction. Emptying under secure_delete zeroes every page they had,
   old free space included; the copy is itself a table in the same file, dropped (and zeroed)
   at the end, so nothing goes to a temporary file;
2. the freelist is overwritten: a scratch table of zero-filled blobs takes every free page (the
   allocator uses free pages before growing the file), and is dropped again;
3. or, instead of 1 and 2, `vacuum=True` rewrites the whole file (slower: it copies the ledger
   too, and holds the write lock for all of it);
4. `PRAGMA wal_checkpoint(TRUNCATE)` copies the newest pages into the file and truncates the
   WAL to zero bytes, so no old frame survives. It can't while another connection reads an
   older snapshot (a running export, say): the report then says `wal_truncated=False`, and
   `scrub` (or `checkpoint_truncate`) should run again once that reader is done.

What it can't reach: copies outside this file (backups and exports made before, the
filesystem's own freed blocks, a disk's remapped sectors), said in docs/data-protection.md.
"""

from __future__ import annotations

import os
from typing import Sequence

import apsw
import msgspec

from ..db import transaction, translated
from .errors import ScrubRefused, TransactionNeeded

__all__ = ["ScrubReport", "scrub", "checkpoint_truncate", "secure_delete_on", "strip_keys",
           "NEVER_REBUILT"]

NEVER_REBUILT = frozenset({"event_log", "person_keys", "forgotten_subjects", "schema_migrations"})
_SCRATCH = "_privacy_scrub"
_CHUNK_BYTES = 32 << 20  # one zero blob at a time: far below SQLite's 1 GB value limit


class ScrubReport(msgspec.Struct, frozen=True, kw_only=True):
    """What was overwritten; holds counts and table names, never data."""

    tables_rebuilt: dict[str, int]  # table -> rows written back
    freelist_pages_overwritten: int
    vacuumed: bool
    wal_truncated: bool  # False: a reader held an old snapshot; run again when it is done
    wal_bytes: int  # size of the -wal file after the checkpoint (0 when truncated)

    @property
    def complete(self) -> bool:
        return self.wal_truncated


def secure_delete_on(conn: apsw.Connection) -> None:
    """`PRAGMA secure_delete = ON` for this connection: what it deletes or overwrites is zeroed.

    Left on: the projector's row rewrite runs after `forget_in_transaction` returns, in the same
    transaction, and must free its bytes the same way. (It is the better default for every
    connection of a database holding personal data; it costs a memset per freed cell.)"""
    conn.execute("PRAGMA secure_delete = ON")


def scrub(conn: apsw.Connection, *, rebuild: Sequence[str] = (), vacuum: bool = False) -> ScrubReport:
    """Overwrite freed space and the WAL's old frames (module doc). Outside any transaction."""
    if not conn.getautocommit():
        raise TransactionNeeded("scrub runs between transactions: it opens its own, and VACUUM and a "
                                "WAL checkpoint can't run inside one")
    tables = list(dict.fromkeys(rebuild))
    with translated(conn.filename):
        secure_delete_on(conn)
        for table in tables:
            _check_rebuildable(conn, table)
        rebuilt: dict[str, int] = {}
        freed = 0
        if vacuum:
            conn.execute("VACUUM")
        else:
            with transaction(conn):
                conn.execute("PRAGMA defer_foreign_keys = ON")  # rows leave and come back in one transaction
                for table in tables:
                    rebuilt[table] = _rebuild(conn, table)
            with transaction(conn):
                freed = _overwrite_freelist(conn)
        truncated, wal_bytes = checkpoint_truncate(conn)
    return ScrubReport(tables_rebuilt=rebuilt, freelist_pages_overwritten=freed, vacuumed=vacuum,
                       wal_truncated=truncated, wal_bytes=wal_bytes)


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
    """Delete every key from a *copy* handed to someone else (a SQLite export), zeroed and vacuumed:
    its sealed ledger entries then open as erased, and a later `forget` here needs nothing from
    the recipient for them. Returns the keys removed. Never run it on the live database."""
    with translated(conn.filename):
        secure_delete_on(conn)
        with transaction(conn):
            conn.execute("DELETE FROM person_keys")
            removed = conn.changes()
        conn.execute("VACUUM")
        checkpoint_truncate(conn)
    return removed


# --- the steps ---------------------------------------------------------------------


def _check_rebuildable(conn: apsw.Connection, table: str) -> None:
    if table in NEVER_REBUILT or table.startswith("sqlite_"):
        raise ScrubRefused(f"{table} can't be rebuilt by a scrub: it is append-only or holds the erasure state")
    found = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                         (table,)).fetchone()[0]
    if not found:
        raise ScrubRefused(f"no table {table} to rebuild")
    triggers = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
                            (table,)).fetchone()[0]
    if triggers:
        raise ScrubRefused(f"{table} has triggers: emptying and refilling it would fire them; scrub it with vacuum=True")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _rebuild(conn: apsw.Connection, table: str) -> int:
    """Copy `table` aside, empty it (zeroing its pages) and refill it, keeping every rowid."""
    cols = [row[1] for row in conn.execute(f"PRAGMA main.table_info({_quote(table)})")]
    without_rowid = conn.execute("SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?",
                                 (table,)).fetchone()[0]
    names = ", ".join(_quote(c) for c in cols)
    rowid = "" if without_rowid else "rowid AS _scrub_rowid, "
    target = names if without_rowid else f"rowid, {names}"
    source = names if without_rowid else f"_scrub_rowid, {names}"
    conn.execute(f"DROP TABLE IF EXISTS main.{_SCRATCH}")
    conn.execute(f"CREATE TABLE main.{_SCRATCH} AS SELECT {rowid}{names} FROM main.{_quote(table)}")
    conn.execute(f"DELETE FROM main.{_quote(table)}")
    conn.execute(f"INSERT INTO main.{_quote(table)}({target}) SELECT {source} FROM main.{_SCRATCH}")
    rows = conn.changes()
    conn.execute(f"DROP TABLE main.{_SCRATCH}")
    return rows


def _overwrite_freelist(conn: apsw.Connection) -> int:
    """Fill every free page with zeros through a scratch table, then free them again (zeroed)."""
    free = int(conn.execute("PRAGMA main.freelist_count").fetchone()[0])
    if free == 0:
        return 0
    usable = int(conn.execute("PRAGMA main.page_size").fetchone()[0]) - 4  # an overflow page's payload
    conn.execute(f"DROP TABLE IF EXISTS main.{_SCRATCH}")
    conn.execute(f"CREATE TABLE main.{_SCRATCH}(b BLOB)")
    left = free
    for _ in range(free + 16):  # each round takes at least one page; the bound only guards a surprise
        if left <= 0:
            break
        conn.execute(f"INSERT INTO main.{_SCRATCH}(b) VALUES (zeroblob(?))", (min(left * usable, _CHUNK_BYTES),))
        left = int(conn.execute("PRAGMA main.freelist_count").fetchone()[0])
    conn.execute(f"DROP TABLE main.{_SCRATCH}")
    return free
