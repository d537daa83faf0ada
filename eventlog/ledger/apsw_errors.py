"""The one place apsw's errors become ours (`eventlog.errors`), each a line naming the file.

Every module that touches SQLite runs its calls inside `translated(path)` (or lets
`db.transaction` do it), so the rest of the code speaks one vocabulary of failures.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import apsw

from eventlog.errors import (
    AppendOnlyViolation,
    DatabaseBusy,
    DatabaseError,
    DatabaseFull,
    DatabaseReadOnly,
    LedgerDamaged,
    NotADatabase,
)

__all__ = ["translate", "translated"]


def translate(exc: BaseException, path: str | os.PathLike[str] | None = None) -> Exception:
    """Map an apsw error onto our tree with a one-line message naming the file."""
    where = f" ({path})" if path else ""
    text = str(exc).split("\n")[0]
    if isinstance(exc, apsw.CorruptError):
        # a page SQLite could not make sense of: the file is a database, a damaged one
        return LedgerDamaged(f"the database{where} is damaged (SQLite: {text}): restore it from a backup")
    if isinstance(exc, apsw.NotADBError):
        return NotADatabase(f"not a SQLite database, or it is corrupt{where}: {text}")
    if isinstance(exc, (apsw.ReadOnlyError, apsw.CantOpenError)) or "readonly" in text:
        if path and _on_read_only_file_system(path):
            return DatabaseReadOnly(f"cannot write the database{where}: the file system holding it is "
                                    f"mounted read-only ({text})")
        return DatabaseReadOnly(f"cannot open the database for writing{where}: {text}")
    if isinstance(exc, (apsw.BusyError, apsw.LockedError)):
        return DatabaseBusy(f"the database is locked by another process{where}: {text}")
    if isinstance(exc, apsw.FullError):
        return DatabaseFull(f"the disk is full{where}: {text}")
    if isinstance(exc, apsw.ConstraintError) and "append-only" in text:
        return AppendOnlyViolation(text.replace("ConstraintError: ", ""))
    if isinstance(exc, apsw.Error):
        return DatabaseError(f"database error{where}: {text}")
    return exc  # type: ignore[return-value]


@contextlib.contextmanager
def translated(path: str | os.PathLike[str] | None = None) -> Iterator[None]:
    try:
        yield
    except apsw.Error as exc:
        raise translate(exc, path) from exc


def _on_read_only_file_system(path: str | os.PathLike[str]) -> bool:
    try:
        return bool(os.statvfs(os.path.dirname(os.path.abspath(path)) or ".").f_flag & os.ST_RDONLY)
    except OSError:
        return False
