"""Row-by-row comparison of a live table (`main.<t>`) with its rebuilt shadow (`temp.<t>`).

Rows are compared whole (`EXCEPT` both ways, so NULLs compare equal and every
column counts) and paired by primary key to say which rows differ and how.
"""

from __future__ import annotations

import hashlib

import apsw
import msgspec

__all__ = ["Difference", "compare_table", "table_checksum"]


class Difference(msgspec.Struct, frozen=True):
    """One row that differs: `live` is what the table holds, `rebuilt` what the ledger gives."""

    table: str
    key: str
    live: tuple | None = None
    rebuilt: tuple | None = None
    note: str = ""

    def __str__(self) -> str:
        if self.note:
            return f"{self.table} {self.key}: {self.note}"
        if self.live is None:
            return f"{self.table} {self.key}: missing from the live table, the ledger gives {self.rebuilt}"
        if self.rebuilt is None:
            return f"{self.table} {self.key}: in the live table {self.live}, but not from the ledger"
        return f"{self.table} {self.key}: live {self.live} != rebuilt {self.rebuilt}"


def _key_columns(conn: apsw.Connection, table: str) -> tuple[list[str], list[int]]:
    info = conn.execute(f"PRAGMA main.table_info({table})").fetchall()
    columns = [c[1] for c in info]
    pk = sorted((c[5], c[1]) for c in info if c[5])
    keys = [name for _, name in pk] or columns
    return columns, [columns.index(k) for k in keys]


def compare_table(conn: apsw.Connection, table: str, *, where: str = "", params: tuple = (),
                  limit: int = 20) -> list[Difference]:
    """Differences between `main.table` and `temp.table`, at most `limit` rows, then a count."""
    columns, key_idx = _key_columns(conn, table)
    cols = ", ".join(columns)
    order = ", ".join(str(i + 1) for i in key_idx)
    cond = f" WHERE {where}" if where else ""
    live_only = f"SELECT {cols} FROM main.{table}{cond} EXCEPT SELECT {cols} FROM temp.{table}{cond}"
    rebuilt_only = f"SELECT {cols} FROM temp.{table}{cond} EXCEPT SELECT {cols} FROM main.{table}{cond}"
    n_live = conn.execute(f"SELECT count(*) FROM ({live_only})", params * 2).fetchone()[0]
    n_rebuilt = conn.execute(f"SELECT count(*) FROM ({rebuilt_only})", params * 2).fetchone()[0]
    if not n_live and not n_rebuilt:
        return []
    live = {_key(r, key_idx): r for r in conn.execute(f"{live_only} ORDER BY {order} LIMIT {limit}", params * 2)}
    rebuilt = {_key(r, key_idx): r for r in conn.execute(f"{rebuilt_only} ORDER BY {order} LIMIT {limit}",
                                                          params * 2)}
    keys = sorted(set(live) | set(rebuilt), key=lambda k: tuple((v is None, str(v)) for v in k))[:limit]
    names = [columns[i] for i in key_idx]
    out = [Difference(table, _label(names, k), live.get(k), rebuilt.get(k)) for k in keys]
    shown = len(out)
    total = max(n_live, n_rebuilt)
    if total > shown:
        out.append(Difference(table, "…", note=f"{n_live} live row(s) and {n_rebuilt} rebuilt row(s) "
                                                f"differ in all; {shown} shown"))
    return out


def _key(row: tuple, idx: list[int]) -> tuple:
    return tuple(row[i] for i in idx)


def _label(names: list[str], key: tuple) -> str:
    return ", ".join(f"{n}={v!r}" for n, v in zip(names, key))


def table_checksum(conn: apsw.Connection, table: str, schema: str = "main") -> tuple[int, str]:
    """(row count, sha256 of every row in key order): for tests and benchmarks."""
    columns, key_idx = _key_columns(conn, table)
    order = ", ".join(str(i + 1) for i in key_idx)
    h = hashlib.sha256()
    n = 0
    for row in conn.execute(f"SELECT {', '.join(columns)} FROM {schema}.{table} ORDER BY {order}"):
        h.update(repr(row).encode())
        n += 1
    return n, h.hexdigest()
