"""One replay worker: a group of projections rebuilt from the ledger into a scratch file.

Started by `parallel.build_in_parallel` as a fresh interpreter (`python -I -c …`
with the parent's `sys.path`), so no SQLite handle crosses a fork and no caller
needs a `__main__` guard. It talks to its parent in lines on stdout:
`progress N` after each batch, `done N` at the end, or one `error …` line.
The scratch file has no journal and no fsync: if anything fails it is thrown
away, and only the parent's one transaction ever touches the database.
"""

from __future__ import annotations

import os
import sys
import urllib.parse
from types import ModuleType
from typing import Callable, Sequence

import apsw

from eventlog.ledger.db import translate
from eventlog.errors import ChledgerError

from projections.registry import select
from projections.runner import apply_positions
from projections.tables import VARS, table_ddl

__all__ = ["build", "main"]

# TEMP tables (a range fold's keys and plan, millions of rows on a large ledger) go to a file with a
# bounded cache, so the worker's memory does not grow with the ledger.
_SCRATCH_PRAGMAS = ("journal_mode = OFF", "synchronous = OFF", "foreign_keys = OFF",
                    "cache_size = -65536", "temp_store = FILE", "temp.cache_size = -16384")


def _create_tables(src: apsw.Connection, dst: apsw.Connection, projectors: Sequence[ModuleType]) -> None:
    """The projectors' tables in the scratch file, from the database's own DDL, with their lookup indexes."""
    lookups = {name for p in projectors for name in p.LOOKUP_INDEXES}
    for table in [t for p in projectors for t in p.TABLES] + [VARS]:
        create, indexes = table_ddl(src, table)
        dst.execute(create)
        for name, sql in indexes:
            if name in lookups:
                dst.execute(sql)


def build(db_path: str, scratch: str, names: list[str], head: int, batch_size: int,
          say: Callable[[str], None]) -> None:
    """Apply the ledger up to `head` to the `names` projections, in the fresh file `scratch`."""
    parent = os.getppid()
    projectors = select(names)
    src = apsw.Connection(db_path, flags=apsw.SQLITE_OPEN_READONLY)
    src.set_busy_timeout(30_000)
    dst = apsw.Connection(scratch, flags=apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE | apsw.SQLITE_OPEN_URI)
    for pragma in _SCRATCH_PRAGMAS:
        dst.execute(f"PRAGMA {pragma}")
    # Projectors that open sealed fields read the key vault (person_keys, forgotten_subjects),
    # which lives only in the database: attached read-only, unqualified names find it there,
    # while every projection table resolves to the scratch file's own (main comes first).
    dst.execute("ATTACH DATABASE ? AS vault", (f"file:{urllib.parse.quote(os.path.realpath(db_path))}?mode=ro",))
    src.execute("BEGIN")  # one snapshot for the whole read
    _create_tables(src, dst, projectors)
    dst.execute("BEGIN")

    def progress(done: int) -> None:
        if os.getppid() != parent:
            raise SystemExit(1)  # the replay that wanted these rows is gone: stop, don't finish for nobody
        say(f"progress {done}")

    # Range folds read the ledger in SQL through `dst`, from the database attached read-only above
    # (unqualified `event_log` resolves there), in dst's transaction: one snapshot, like `src`'s.
    apply_positions(dst, 0, head, projectors, batch_size=batch_size, source=src, progress=progress)
    dst.execute("COMMIT")
    src.execute("ROLLBACK")
    dst.close()
    src.close()
    say(f"done {head}")


def _one_line(exc: Exception, scratch: str) -> str:
    """What the parent prints: our own errors as they are, SQLite's translated, a bug with its type."""
    if isinstance(exc, apsw.Error):
        exc = translate(exc, scratch)
    text = str(exc) if isinstance(exc, ChledgerError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def main(argv: list[str]) -> int:
    """The worker's arguments: DB SCRATCH HEAD BATCH NAME…"""
    db_path, scratch, head, batch_size, *names = argv

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    try:
        build(db_path, scratch, names, int(head), int(batch_size), say)
    except Exception as exc:
        try:
            if not isinstance(exc, BrokenPipeError):  # a closed pipe: the parent is gone, nobody to tell
                say(f"error {_one_line(exc, scratch)}")
        except BrokenPipeError:
            pass
        _quiet_stdout()
        return 1
    return 0


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the flush at exit can't complain about a closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
