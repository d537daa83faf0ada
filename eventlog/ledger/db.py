"""Opening the SQLite file, and the transaction every write runs in.

Every connection in chledger comes from `connect()`, so the pragmas that the
invariants lean on are set once:
- WAL, so readers (status, export, audit) never block the worker's appends;
- `synchronous=FULL`, because a `request.sent` counted against the limit must
  survive a power cut (WAL + NORMAL may lose the last commits);
- a busy timeout, so two processes sharing one key wait for each other's
  `BEGIN IMMEDIATE` instead of failing;
- foreign keys on, so `batch_jobs` can't outlive their batch.
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from pathlib import Path
from typing import Iterator

import apsw

from eventlog.errors import DatabaseError, DatabaseReadOnly
from eventlog.ledger.apsw_errors import translate, translated
from eventlog.ledger.schema import refuse_foreign, refuse_newer

__all__ = ["connect", "transaction", "translate", "translated", "DEFAULT_BUSY_TIMEOUT_MS", "set_busy_timeout"]

DEFAULT_BUSY_TIMEOUT_MS = 10_000
_busy_timeout_ms = DEFAULT_BUSY_TIMEOUT_MS  # DATABASE_BUSY_TIMEOUT, set once by the CLI from the settings


def set_busy_timeout(seconds: float) -> None:
    """How long every later `connect()` waits for another process's lock (DATABASE_BUSY_TIMEOUT)."""
    global _busy_timeout_ms
    _busy_timeout_ms = int(seconds * 1000)


def connect(
    path: str | os.PathLike[str],
    *,
    readonly: bool = False,
    busy_timeout_ms: int | None = None,
) -> apsw.Connection:
    """Open (creating if asked) the database with chledger's pragmas.

    Checks that the file is a database before writing anything to it, so a
    stray file handed to `--db` is refused untouched. Without `busy_timeout_ms`, it waits as long
    as DATABASE_BUSY_TIMEOUT says (10 s unless set).
    """
    if busy_timeout_ms is None:
        busy_timeout_ms = _busy_timeout_ms
    p = Path(path)
    try:
        p.exists()
    except PermissionError:  # a folder on the way this user may not enter: say so, not a traceback
        raise DatabaseReadOnly(f"cannot reach the database {p}: permission denied on a folder of its path") from None
    if readonly:
        if not p.exists():
            raise DatabaseError(f"no database at {p}")
        flags = apsw.SQLITE_OPEN_READONLY
    else:
        if p.parent and not p.parent.exists():
            raise DatabaseReadOnly(f"cannot create the database: folder {p.parent} does not exist")
        if p.exists() and not os.access(p, os.W_OK):
            raise DatabaseReadOnly(f"cannot open the database for writing ({p}): {_why_not_writable(p)}")
        if not p.exists() and not os.access(p.parent or Path("."), os.W_OK):
            raise DatabaseReadOnly(f"cannot create the database in {p.parent or '.'}: "
                                   f"{_why_not_writable(p.parent or Path('.'))}")
        flags = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    with translated(p):
        conn = apsw.Connection(str(p), flags=flags)
        conn.setbusytimeout(busy_timeout_ms)
        # Reading the schema first makes a non-database fail before any write, and a
        # database from a newer chledger, or somebody else's, is refused before WAL mode
        # rewrites its header.
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
        except (apsw.ReadOnlyError, apsw.CantOpenError):
            # SQLite keeps -wal and -shm beside the real file, wherever a symlink points from
            if not readonly or os.access(p.resolve().parent, os.W_OK):
                raise
            conn.close()
            conn = _read_only_folder(p.resolve(), busy_timeout_ms)
        refuse_newer(conn)
        if not readonly:
            refuse_foreign(conn)
            conn.execute("PRAGMA journal_mode=WAL").fetchall()
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _why_not_writable(path: Path) -> str:
    """"the file system is mounted read-only" or "permission denied": the fixes differ."""
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "the file system holding it is mounted read-only"
    except OSError:
        pass
    return "permission denied"


def _read_only_folder(p: Path, busy_timeout_ms: int) -> apsw.Connection:
    """A WAL database in a folder we can't write: SQLite can't make its `-shm` there.

    It is opened `immutable` (no locks, no `-shm`) only when nothing can change
    it while we read: no `-wal` beside it (so every committed page is in the
    file itself), and a folder nobody may write (a read-only filesystem, or no
    write bit at all), so no writer can start one. A folder its owner can write
    is refused: the owner's worker could start mid-read, and an immutable reader
    would not see it. With a `-wal` there, the newest commits may be only in it,
    and that can't be read without a `-shm`.
    """
    folder = p.parent  # `p` is resolved: the real file's folder
    nobody_writes = bool(os.statvfs(folder).f_flag & os.ST_RDONLY) or not os.stat(folder).st_mode & 0o222
    if not nobody_writes:
        raise DatabaseReadOnly(f"cannot read {p}: it is in WAL mode, in a folder this user can't write but its "
                               "owner can (SQLite needs its -shm there); run as the owner, or read a `backup` copy")
    if Path(f"{p}-wal").exists():
        raise DatabaseReadOnly(f"cannot read {p}: it is in WAL mode with a -wal file, in a folder this user can't "
                               "write (SQLite needs its -shm there); read a `backup` copy, or run as its owner")
    uri = "file:" + urllib.parse.quote(str(p.resolve())) + "?immutable=1"
    conn = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    conn.setbusytimeout(busy_timeout_ms)
    conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
    return conn


@contextlib.contextmanager
def transaction(conn: apsw.Connection, *, immediate: bool = True) -> Iterator[apsw.Connection]:
    """`BEGIN IMMEDIATE … COMMIT`, rolled back on any exception.

    IMMEDIATE takes the write lock up front: the rate limiter's check and its
    record must not interleave with another process's.
    """
    with translated(conn.filename):
        conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield conn
    except BaseException as exc:
        if not conn.getautocommit():
            conn.execute("ROLLBACK")
        if isinstance(exc, apsw.Error):
            raise translate(exc, conn.filename) from exc
        raise
    else:
        with translated(conn.filename):
            conn.execute("COMMIT")
