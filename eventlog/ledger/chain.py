"""The hash chain, checked fast: SQLite assembles each entry's hashed message, Python hashes it.

`ledger.chain_hash` hashes `prev || "pos␟event_id␟event_type␟company␟received_at␟event_data"`.
Building that string in Python costs more than the SHA-256 itself on a 3M-row ledger, so the
audit asks SQLite for the same bytes (`MESSAGE_SQL`) and hashes `prev + message`. The two
formulas must never drift apart: `formula_agrees` compares them on a real row at the start of
every scan (and the tests compare them on awkward rows: NULL company, non-ASCII text), and a
scan whose row disagrees falls back to `chain_hash` itself.
"""

from __future__ import annotations

import hashlib

import apsw

from eventlog.ledger.store import chain_hash

__all__ = ["MESSAGE_SQL", "ROW_FIELDS_SQL", "message_digest", "formula_agrees", "mismatch_reason",
           "row_hash", "NOT_UTF8", "careful_rows"]

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


NOT_UTF8 = object()  # in `careful_rows`: a stored hash or body that was text but not UTF-8
_COLUMNS = ("event_id", "event_type", "company_number", "received_at", "event_data", "hash")
_CAREFUL_SQL = ("SELECT id, " + ", ".join(
    f"typeof({c}), CASE WHEN typeof({c}) = 'text' THEN CAST({c} AS BLOB) ELSE {c} END"
    for c in _COLUMNS) + " FROM event_log WHERE id BETWEEN ? AND ? ORDER BY id")


def careful_rows(conn: apsw.Connection, first: int, last: int):
    """The audit scan's rows (id, event_type, received_at, body or None for a stream event,
    (event_id, company, event_data), hash) with text read as bytes and decoded here, for a range
    where some text is not UTF-8 (only tampering stores it; apsw can't even return it). Such a
    row comes with NOT_UTF8 for its hash (a mismatch), and for its body when its received_at or
    body is the bad one; bad text elsewhere is shown with backslash escapes."""
    for row in conn.cursor().execute(_CAREFUL_SQL, (first, last)):
        values, bad = [], []
        for kind, value in zip(row[1::2], row[2::2]):
            if kind == "text":
                try:
                    value = value.decode()
                except UnicodeDecodeError:
                    value = value.decode("utf-8", "backslashreplace")
                    bad.append(len(values))
            values.append(value)
        event_id, event_type, company, at, data, stored = values
        body = None if event_type == "stream.event" else (NOT_UTF8 if 3 in bad or 4 in bad else data)
        yield row[0], event_type, at, body, (event_id, company, data), NOT_UTF8 if bad else stored
