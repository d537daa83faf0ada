"""Empty tables to rebuild into: fresh ones in place (replay), or shadows (verify).

Both are made from the tables' own DDL as stored in `sqlite_master`, so the
migrations stay the one definition of every table.

- `fresh_tables` drops a projection's tables and creates them again, empty,
  inside the caller's transaction. Only the indexes a projector reads through
  while it runs (`LOOKUP_INDEXES`) are created up front; the rest are returned,
  to be created once the rows are in, which builds each index in one sorted pass
  instead of maintaining it row by row. SQLite's DDL is transactional: until the
  caller commits, every other connection still sees the old tables, and a crash
  (even SIGKILL) rolls the whole rebuild back.
- `shadow_tables` creates TEMP tables of the same names. SQLite resolves an
  unqualified name to `temp` before `main`, so the unchanged projector code
  writes into the shadows while `main.<table>` stays readable for comparison,
  and nothing in the database file is written.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Sequence

import apsw

__all__ = ["fresh_tables", "create_shadow_tables", "table_ddl", "VARS"]

VARS = "projection_vars"  # what projectors carry from batch to batch, rows keyed by projection


def table_ddl(conn: apsw.Connection, table: str) -> tuple[str, list[tuple[str, str]]]:
    """The CREATE TABLE statement of `table` and its explicit indexes (name, CREATE INDEX)."""
    found = conn.execute("SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = ?",
                         (table,)).fetchone()
    if found is None:
        raise LookupError(f"table {table} does not exist: run `python cli.py migrate`")
    indexes = conn.execute(
        "SELECT name, sql FROM main.sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL "
        "ORDER BY name", (table,)).fetchall()
    return found[0], [(name, sql) for name, sql in indexes]


def fresh_tables(conn: apsw.Connection, projectors: Sequence[ModuleType]) -> list[str]:
    """Drop and recreate the projectors' tables, empty; return the index DDL to run after loading.

    The caller holds a transaction and has foreign keys off, so a parent table
    (companies) may be empty for a while; it checks them all before COMMIT.
    """
    later: list[str] = []
    for p in projectors:
        ddl = [(t, *table_ddl(conn, t)) for t in p.TABLES]
        for table, _, _ in reversed(ddl):  # children first: batch_jobs before processing_batches
            conn.execute(f"DROP TABLE main.{table}")
        for table, create, indexes in ddl:
            conn.execute(create)
            for name, sql in indexes:
                if name in p.LOOKUP_INDEXES:
                    conn.execute(sql)
                else:
                    later.append(sql)
        conn.execute(f"DELETE FROM main.{VARS} WHERE projection = ?", (p.NAME,))
    return later


_CREATE_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+", re.IGNORECASE)
_CREATE_INDEX = re.compile(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+", re.IGNORECASE)


def create_shadow_tables(conn: apsw.Connection, projectors: Sequence[ModuleType]) -> None:
    """TEMP tables shadowing the projectors' tables (and `projection_vars`), empty.

    Created inside the caller's transaction, so its ROLLBACK removes them again.
    """
    tables = [t for p in projectors for t in p.TABLES] + [VARS]
    lookups = {name for p in projectors for name in p.LOOKUP_INDEXES}
    for table in tables:
        create, indexes = table_ddl(conn, table)
        conn.execute(_CREATE_TABLE.sub("CREATE TEMP TABLE ", create, count=1))
        for name, sql in indexes:
            if name in lookups:
                conn.execute(_CREATE_INDEX.sub(lambda m: f"CREATE {m.group(1) or ''}INDEX temp.", sql, count=1))
