"""The hash chain walked in C: finding, loading and calling the chledger SQLite extension.

`eventlog/ledger/chainext/` holds a small SQLite loadable extension (C, SHA-256 from OpenSSL's
libcrypto) that setup.py compiles at `pip install` time, when a compiler and the headers are
there. It gives SQLite two aggregates: `chledger_chain`, which recomputes `chain.chain_hash`
over rows in id order (what `Ledger.verify` needs), and `chledger_audit` (see
`eventlog/audit/native_scan.py`). A chain walked in C runs ~8x faster than hashing row by row in Python, and
runs inside one `sqlite3_step`, with the GIL released, so threads check ranges in parallel.

Without the compiled file (no compiler at install time, another platform) everything still
works, in Python, and says so: `engine()` is "python" and `unavailable_reason()` says why.
`CHLEDGER_NATIVE_CHAIN=0` in the environment turns the C path off (tests and benchmarks compare
the two that way).

The C code hashes the columns' stored bytes; for that to be the UTF-8 that `chain_hash` hashes,
the database must be UTF-8 (chledger's always are; `usable()` checks). A text value that is not
valid UTF-8 (only tampering stores one; Python can't even read it) makes its row a mismatch. A value that is not text
(a blob where text belongs), which Python's f-string would render differently, is handed back
and hashed here with `chain_hash` itself, so the two can't disagree.
"""

from __future__ import annotations

import ctypes
import os
from array import array
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import NamedTuple

import apsw

from eventlog.ledger.chain import GENESIS, ChainReport, chain_hash, mismatch_reason

__all__ = ["ENTRY_POINT", "ChainOutcome", "extension_path", "unavailable_reason", "engine", "load",
           "usable", "check_chain", "outcome_from", "verify_report", "window_counts"]

EXTENSION_DIR = Path(__file__).resolve().parent / "chainext"
EXTENSION_NAME = "_chledger"
ENTRY_POINT = "sqlite3_chledger_init"
_ENV = "CHLEDGER_NATIVE_CHAIN"

_CHAIN_SQL = ("SELECT chledger_chain(?, ?, id, event_id, event_type, company_number, received_at, "
              "event_data, hash) FROM event_log WHERE id BETWEEN ? AND ?")
_ROW_SQL = ("SELECT id, event_id, event_type, company_number, received_at, event_data, hash "
            "FROM event_log WHERE id = ?")

_load_error: str | None = None  # why loading failed, the last time it did


class ChainOutcome(NamedTuple):
    """A walk over positions: `ok`, or where it stopped, in `Ledger.verify`'s terms.

    ok: `checked` rows matched, `expected` is the next position. A gap: `expected` is missing and
    `found` was there instead. A mismatch: the row at `expected` (= `found`) does not match its
    hash. `reason` is worded as `Ledger.verify` words it.
    """

    ok: bool
    checked: int
    expected: int
    found: int | None = None
    reason: str = ""


def extension_path() -> Path | None:
    """The compiled extension next to its sources, if setup.py built it."""
    for suffix in EXTENSION_SUFFIXES:
        path = EXTENSION_DIR / f"{EXTENSION_NAME}{suffix}"
        if path.exists():
            return path
    return None


def unavailable_reason() -> str | None:
    """Why the C chain can't be used here (None when it can)."""
    if os.environ.get(_ENV, "1") == "0":
        return f"turned off ({_ENV}=0)"
    if extension_path() is None:
        return ("the compiled chain extension is not built (it needs a C compiler and the OpenSSL "
                "and SQLite headers at `pip install -e .` time)")
    if not hasattr(apsw.Connection, "enable_load_extension"):
        return "this apsw can't load SQLite extensions"
    return _load_error


def engine() -> str:
    """"c" when the chain can be checked in C here, else "python"."""
    return "python" if unavailable_reason() is not None else "c"


def _probe(conn: apsw.Connection) -> bool:
    try:
        conn.execute("SELECT chledger_chain(zeroblob(32), 1, 1, '', '', NULL, '', '', NULL) "
                     "WHERE 0").fetchall()
        return True
    except apsw.SQLError:
        return False


def load(conn: apsw.Connection) -> bool:
    """Load the extension into `conn` (once); True when its functions are there to call.

    Extension loading is switched on only for the call (SQLite's `load_extension()` SQL
    function stays off) and left off again.
    """
    global _load_error
    if os.environ.get(_ENV, "1") == "0":
        return False
    if _probe(conn):
        return True
    path = extension_path()
    if path is None or not hasattr(conn, "enable_load_extension"):
        return False
    try:
        conn.enable_load_extension(True)
        try:
            conn.load_extension(str(path), ENTRY_POINT)
        finally:
            conn.enable_load_extension(False)
    except apsw.Error as exc:
        _load_error = f"the chain extension at {path} would not load: {exc}"
        return False
    return True


def usable(conn: apsw.Connection) -> bool:
    """Loaded into `conn`, and the database's text is UTF-8 (what the C side hashes)."""
    if not load(conn):
        return False
    return str(conn.execute("PRAGMA encoding").fetchone()[0]).upper() == "UTF-8"


def outcome_from(kind: int, checked: int, position: int, next_id: int, first: int,
                 conn: apsw.Connection, last: int) -> tuple[ChainOutcome | None, int]:
    """A `chledger_chain`/`chledger_audit` result, as an outcome; or (None, position) when it
    stopped at a row it hands back (kind 3), which the caller checks in Python."""
    if kind == 0:
        return ChainOutcome(True, checked, first + checked), 0
    if kind == 1:
        return ChainOutcome(False, checked, position, next_id,
                            f"position {position} is missing (next is {next_id})"), 0
    if kind == 2:
        return ChainOutcome(False, checked, position, position, _mismatch(conn, position)), 0
    if kind == 3:
        return None, position
    raise ValueError(f"unknown chain result kind {kind}")


def _mismatch(conn: apsw.Connection, position: int) -> str:
    return mismatch_reason(conn, position)


def check_chain(conn: apsw.Connection, first: int, last: int, prev: bytes) -> ChainOutcome:
    """Walk positions first..last (the rows there, in id order) from `prev`, the stored hash of
    the row before `first`; `usable(conn)` must be true. A gap after the last row present is not
    seen here: the caller compares `expected` with what it expects."""
    checked = 0
    while True:
        row = conn.execute(_CHAIN_SQL, (prev, first, first, last)).fetchone()[0]
        if row is None:  # no rows left
            return ChainOutcome(True, checked, first)
        kind, n, position, next_id, _ = (int(x) for x in row.split())
        outcome, handed_back = outcome_from(kind, n, position, next_id, first, conn, last)
        if outcome is not None:
            return outcome._replace(checked=checked + outcome.checked)
        checked += n
        pos, event_id, event_type, company, at, data, stored = conn.execute(
            _ROW_SQL, (handed_back,)).fetchone()
        if chain_hash(prev if n == 0 else _stored(conn, pos - 1), pos, event_id, event_type,
                      company, at, data) != stored:
            return ChainOutcome(False, checked, pos, pos, _mismatch(conn, pos))
        checked += 1
        prev, first = stored, pos + 1


def _stored(conn: apsw.Connection, position: int) -> bytes:
    return conn.execute("SELECT hash FROM event_log WHERE id = ?", (position,)).fetchone()[0]


def verify_report(conn: apsw.Connection):
    """`Ledger.verify()`'s report, computed in C; None when the C chain can't be used here."""
    try:
        if not usable(conn):
            return None
    except apsw.Error:
        return None
    out = check_chain(conn, 1, 1 << 62, GENESIS)
    if out.ok:
        return ChainReport(True, out.checked, out.expected - 1)
    return ChainReport(False, out.checked, out.found, out.expected, out.reason)


_window_counts_fn = None


def window_counts(times: array, span: int) -> array | None:
    """`audit.windows.window_counts` in C (chledger_windows.c, called through ctypes), or None
    when the extension isn't there, `times` (an array of "q") do not ascend, or `t + span`
    could overflow: then Python does it."""
    global _window_counts_fn
    if engine() != "c" or times.typecode != "q" or span > (1 << 62):
        return None
    if _window_counts_fn is None:
        try:
            fn = ctypes.CDLL(str(extension_path())).chledger_window_counts
        except (OSError, AttributeError):  # an older build, say
            return None
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
        fn.restype = ctypes.c_int
        _window_counts_fn = fn
    counts = array("q", [0]) * len(times)  # no bytes(8n) on the way: memory stays 8 B a send
    if not times:
        return counts
    ok = _window_counts_fn(times.buffer_info()[0], len(times), span, counts.buffer_info()[0])
    return counts if ok else None
