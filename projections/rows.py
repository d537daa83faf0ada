"""Batch-level reads and writes, the two shapes every projector's SQL takes.

`Rows`: a projector that keeps one row per key (a company, a stream) loads the
rows its batch touches in one query, changes them in memory in ledger order,
and writes them back with two `executemany` (new rows in the order they were
created, so AUTOINCREMENT ids follow ledger order however the ledger is cut
into batches; changed rows by key). No per-record SELECT.

`Statements`: a projector whose writes don't depend on reading its own state
(the queue, the rate-limit log) records statements in ledger order and runs
each run of identical statements as one `executemany`.

Upserts are avoided on purpose: `INSERT … ON CONFLICT DO UPDATE` spends an
AUTOINCREMENT number even when it updates, which would make ids depend on how
the ledger was batched.
"""

from __future__ import annotations

import operator
from typing import Any, Iterable, Sequence

import apsw
import msgspec

__all__ = ["Table", "Rows", "Statements"]

Row = dict[str, Any]


class Table:
    """A table's columns, key and the SQL to load and write its rows."""

    def __init__(self, name: str, columns: Sequence[str], key: str, *, autoid: str | None = None,
                 defaults: dict[str, Any] | None = None):
        self.name = name
        self.columns = tuple(columns)
        self.key = key
        self.defaults = {c: None for c in self.columns} | (defaults or {})
        inserted = [c for c in self.columns if c != autoid]
        updated = [c for c in self.columns if c not in (key, autoid)]
        self.select = (f"SELECT {', '.join(self.columns)} FROM {name} "
                       f"WHERE {key} IN (SELECT value FROM json_each(?))")
        self.insert = f"INSERT INTO {name}({', '.join(inserted)}) VALUES ({', '.join('?' * len(inserted))})"
        self.update = f"UPDATE {name} SET {', '.join(c + ' = ?' for c in updated)} WHERE {key} = ?"
        self.insert_values = operator.itemgetter(*inserted)
        self.update_values = operator.itemgetter(*updated, key)


class Rows:
    """One batch's working copy of the rows of `table` whose keys are in `keys`."""

    __slots__ = ("table", "rows", "new", "dirty")

    def __init__(self, table: Table, conn: apsw.Connection, keys: Iterable[str | None],
                 select: str | None = None):
        self.table = table
        self.rows: dict[str, Row] = {}
        self.new: dict[str, Row] = {}
        self.dirty: dict[str, Row] = {}
        wanted = list(dict.fromkeys(k for k in keys if k is not None))
        if wanted:
            columns = table.columns
            sql = select or table.select  # takes one JSON array of keys
            for values in conn.execute(sql, (msgspec.json.encode(wanted).decode(),)):
                row = dict(zip(columns, values))
                self.rows[row[table.key]] = row

    def get(self, key: str) -> Row | None:
        return self.rows.get(key)

    def create(self, key: str, **values: Any) -> Row:
        row = dict(self.table.defaults)
        row.update(values)
        row[self.table.key] = key
        self.rows[key] = row
        self.new[key] = row
        return row

    def changed(self, key: str, row: Row) -> None:
        if key not in self.new:
            self.dirty[key] = row

    def flush(self, conn: apsw.Connection) -> None:
        t = self.table
        if self.new:
            conn.executemany(t.insert, [t.insert_values(r) for r in self.new.values()])
        if self.dirty:
            conn.executemany(t.update, [t.update_values(r) for r in self.dirty.values()])
        self.new = {}
        self.dirty = {}


class Statements:
    """Writes collected in ledger order, run as `executemany` per run of the same SQL."""

    __slots__ = ("runs",)

    def __init__(self) -> None:
        self.runs: list[tuple[str, list[tuple]]] = []

    def add(self, sql: str, params: tuple) -> None:
        runs = self.runs
        if runs and runs[-1][0] is sql:
            runs[-1][1].append(params)
        else:
            runs.append((sql, [params]))

    def run(self, conn: apsw.Connection) -> None:
        for sql, params in self.runs:
            conn.executemany(sql, params)
        self.runs = []
