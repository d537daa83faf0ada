"""The hash chain: the one definition of what each ledger row's hash covers, and its walk.

    hash(n) = sha256(hash(n-1) || "n␟event_id␟event_type␟company_number␟received_at␟event_data")

with `GENESIS` (32 zero bytes) before position 1 and U+001F between the fields (an empty string
for a NULL company number). An edited, reordered or deleted row breaks the chain from there on.

Every other piece computes the same bytes and is checked against this module:
- `Ledger` (`store.py`) hashes each appended row with `chain_hash`;
- `MESSAGE_SQL` asks SQLite for the same message, because building the string in Python costs
  more than the SHA-256 on a large ledger (the audit hashes `prev + message`); `formula_agrees`
  compares the two on a real row at the start of every scan, and the tests on awkward rows
  (NULL company, non-ASCII text); a row whose value is not text is hashed with `chain_hash`;
- the C extension (`native.py`, `chainext/`) walks the chain inside SQLite; the tests compare it
  with `walk` row for row, tampered rows included.

`walk` is the chain checked in Python (what `Ledger.verify` runs when the C extension is not
built), and `careful_rows` the reader for rows with text that is not UTF-8 (only tampering
stores it; apsw can't even return such a value), which both walks fall back to.
"""

from __future__ import annotations

import hashlib
from typing import Iterator, NamedTuple

import apsw

from eventlog.ledger.db import translated

__all__ = ["GENESIS", "ChainReport", "chain_hash", "walk", "MESSAGE_SQL", "ROW_FIELDS_SQL",
           "message_digest", "formula_agrees", "mismatch_reason", "row_hash", "CarefulRow",
           "careful_rows"]

GENESIS = b"\x00" * 32
_SEP_CHAR = "\x1f"
_sha256 = hashlib.sha256


class ChainReport(NamedTuple):
    """A whole-chain check: `ok`, rows `checked`, the `head`, and where and why it broke."""

    ok: bool
    checked: int
    head: int
    bad_position: int | None = None
    reason: str = ""


def chain_hash(prev: bytes, position: int, event_id: str, event_type: str,
               company_number: str | None, received_at: str, event_data: str) -> bytes:
    """sha256(previous hash || position, envelope and data joined by U+001F)."""
    return _sha256(prev + f"{position}{_SEP_CHAR}{event_id}{_SEP_CHAR}{event_type}{_SEP_CHAR}"
                   f"{company_number or ''}{_SEP_CHAR}{received_at}{_SEP_CHAR}{event_data}".encode()).digest()


_SEP = "char(31)"
# NULL for a row holding a value that is not text (a blob event_id, a NULL body: possible only by
# tampering), which SQL's || renders otherwise than chain_hash's f-string: the scan hashes that
# row with chain_hash itself.
MESSAGE_SQL = (
    "CASE WHEN typeof(event_id) = 'text' AND typeof(event_type) = 'text' AND "
    "typeof(company_number) IN ('text', 'null') AND typeof(received_at) = 'text' AND "
    "typeof(event_data) = 'text' THEN "
    f"CAST(id || {_SEP} || event_id || {_SEP} || event_type || {_SEP} || coalesce(company_number, '')"
    f" || {_SEP} || received_at || {_SEP} || event_data AS BLOB) END"
)
ROW_FIELDS_SQL = ("SELECT id, event_id, event_type, company_number, received_at, event_data, hash "
                  "FROM event_log WHERE id = ?")


def message_digest(prev: bytes, message: bytes) -> bytes:
    return hashlib.sha256(prev + message).digest()


def formula_agrees(conn: apsw.Connection, position: int, prev: bytes) -> bool:
    """Does hashing SQLite's message for the row at `position` give what `chain_hash` gives?"""
    row = conn.execute(ROW_FIELDS_SQL, (position,)).fetchone()
    if row is None:
        return True  # nothing to compare: the scan reports the missing row itself
    pos, event_id, event_type, company, received_at, data, _ = row
    message = conn.execute(f"SELECT {MESSAGE_SQL} FROM event_log WHERE id = ?", (position,)).fetchone()[0]
    if message is None:
        return True  # a row the scan hashes with chain_hash itself: nothing to compare
    return message_digest(prev, message) == chain_hash(prev, pos, event_id, event_type, company,
                                                       received_at, data)


_EVENT_ID_SQL = ("SELECT typeof(event_id), CASE WHEN typeof(event_id) = 'text' THEN "
                 "CAST(event_id AS BLOB) ELSE event_id END FROM event_log WHERE id = ?")


def mismatch_reason(conn: apsw.Connection, position: int) -> str:
    """`Ledger.verify`'s wording for an entry that does not match its hash (an event_id that is
    not UTF-8, which only tampering stores, is shown with backslash escapes, never a crash)."""
    row = conn.execute(_EVENT_ID_SQL, (position,)).fetchone()
    if row is None:
        name = "?"
    else:
        name = row[1].decode("utf-8", "backslashreplace") if row[0] == "text" else row[1]
    return f"entry {position} ({name}) does not match its hash"


def row_hash(conn: apsw.Connection, prev: bytes, position: int) -> bytes:
    """`chain_hash` of the row at `position` (one the SQL message leaves to Python)."""
    pos, event_id, event_type, company, received_at, data, _ = conn.execute(
        ROW_FIELDS_SQL, (position,)).fetchone()
    return chain_hash(prev, pos, event_id, event_type, company, received_at, data)


_COLUMNS = ("event_id", "event_type", "company_number", "received_at", "event_data", "hash")
_CAREFUL_SQL = ("SELECT id, " + ", ".join(
    f"typeof({c}), CASE WHEN typeof({c}) = 'text' THEN CAST({c} AS BLOB) ELSE {c} END"
    for c in _COLUMNS) + " FROM event_log WHERE id BETWEEN ? AND ? ORDER BY id")


class CarefulRow(NamedTuple):
    """A stored row with its text decoded here; `bad` names the columns that were not UTF-8
    (shown with backslash escapes): a row with any is a mismatch, since its stored bytes
    can't be what `chain_hash` hashed."""

    position: int
    event_id: str
    event_type: str
    company_number: str | None
    received_at: str
    event_data: str
    hash: bytes
    bad: tuple[str, ...]


def careful_rows(conn: apsw.Connection, first: int, last: int = 1 << 62) -> Iterator[CarefulRow]:
    """Rows at positions first..last with text read as bytes and decoded here, never raising on
    text that is not UTF-8. Slower than a plain SELECT: the walks use it only after one failed."""
    for row in conn.cursor().execute(_CAREFUL_SQL, (first, last)):
        values, bad = [], []
        for column, kind, value in zip(_COLUMNS, row[1::2], row[2::2]):
            if kind == "text":
                try:
                    value = value.decode()
                except UnicodeDecodeError:
                    value = value.decode("utf-8", "backslashreplace")
                    bad.append(column)
            values.append(value)
        yield CarefulRow(row[0], *values, tuple(bad))


_WALK_SQL = ("SELECT id, event_id, event_type, company_number, received_at, event_data, hash "
             "FROM event_log WHERE id > ? ORDER BY id LIMIT ?")


def _rows(conn: apsw.Connection, after: int, batch_size: int) -> Iterator[tuple]:
    while True:
        rows = conn.execute(_WALK_SQL, (after, batch_size)).fetchall()
        if not rows:
            return
        yield from rows
        after = rows[-1][0]


def walk(conn: apsw.Connection, *, batch_size: int = 5000) -> ChainReport:
    """Recompute the chain from genesis in Python and report the first break: a missing
    position, or a row that does not match its hash."""
    prev, expected, checked = GENESIS, 1, 0
    rows: Iterator[tuple] = _rows(conn, 0, batch_size)
    with translated(conn.filename):
        while True:
            try:
                for pos, event_id, event_type, company, received_at, data, stored, *bad in rows:
                    if pos != expected:
                        return ChainReport(False, checked, pos, expected,
                                           f"position {expected} is missing (next is {pos})")
                    digest = None if bad and bad[0] else chain_hash(
                        prev, pos, event_id, event_type, company, received_at, data)
                    if digest != stored:
                        return ChainReport(False, checked, pos, pos,
                                           f"entry {pos} ({event_id}) does not match its hash")
                    prev = digest
                    expected += 1
                    checked += 1
                return ChainReport(True, checked, expected - 1)
            except UnicodeDecodeError:  # text that is not UTF-8: row by row from here on
                rows = careful_rows(conn, expected)
