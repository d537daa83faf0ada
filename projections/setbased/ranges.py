"""What every set-based fold needs: a range of positions read from SQL, records read by position,
company numbers normalised in SQL, and writes grouped by company in first-appearance order.

A range is `(lo, hi]` of ledger positions. The folds read `event_log` by its unqualified name, so
the same statements run in the database itself, in `verify`'s TEMP shadows and in a replay worker's
scratch file (where the database is attached read-only).
"""

from __future__ import annotations

import itertools
from typing import Iterable, Iterator

import apsw
import msgspec

from eventlog.errors import LedgerDamaged
from eventlog.ledger.entries import decode, normalise_company_number
from eventlog.ledger.store import Record

__all__ = ["NUMBER_SQL", "prepare", "check_range", "records_chunks", "decode_rows"]

# A stream event's company: the entry's column, else the event's resource_id, normalised as
# `Batch.company` does. Numbers already in normal form (8 characters, two letters or digits and six
# digits) skip the Python function, which is nearly all of them.
NUMBER_SQL = ("CASE WHEN {x} GLOB '[0-9A-Z][0-9A-Z][0-9][0-9][0-9][0-9][0-9][0-9]' THEN {x} "
              "ELSE chl_number({x}) END")
_COLUMNS = "id, event_id, event_type, company_number, event_data, received_at"


def _number(raw: str | None) -> str | None:
    return normalise_company_number(raw) or None


def prepare(conn: apsw.Connection) -> None:
    """Register the SQL function the folds use (cheap; idempotent)."""
    conn.create_scalar_function("chl_number", _number, 1, deterministic=True)


def check_range(conn: apsw.Connection, lo: int, hi: int) -> None:
    """Every position in (lo, hi] is there (a damaged b-tree can hide rows from a scan silently)."""
    if hi <= lo:
        return
    n, first, last = conn.execute("SELECT count(*), min(id), max(id) FROM event_log WHERE id > ? AND id <= ?",
                                  (lo, hi)).fetchone()
    if n != hi - lo or first != lo + 1 or last != hi:
        raise LedgerDamaged(f"the ledger is damaged: {hi - lo - n} position(s) in {lo + 1}..{hi} can't be read; "
                            "nothing was changed: restore the database from a backup")


def decode_rows(rows: Iterable[tuple]) -> Iterator[Record]:
    """(id, event_id, event_type, company_number, event_data, received_at) rows as records."""
    for p, eid, et, cn, data, at in rows:
        try:
            yield Record(p, eid, et, cn, at, decode(data))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise LedgerDamaged(f"the ledger is damaged: entry {p} does not decode ({exc}); "
                                "nothing was changed") from None


def records_chunks(conn: apsw.Connection, where: str, params: tuple, size: int) -> Iterator[list[Record]]:
    """Decoded records of `event_log` matching `where`, in ledger order, `size` at a time."""
    cursor = conn.execute(f"SELECT {_COLUMNS} FROM event_log WHERE {where} ORDER BY id", params)
    while True:
        rows = list(itertools.islice(cursor, size))
        if not rows:
            return
        yield list(decode_rows(rows))
