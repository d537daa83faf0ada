"""Replay on several cores: each group of projections is rebuilt by its own process into a scratch file.

A replay is bound by CPU: Python stepping every entry and SQLite writing the
rows, two wide rows per stream event (`companies`, `company_processing_state`).
The projectors are independent of one another (each reads only its own tables
and its own `projection_vars`), so they can be built side by side:

1. `plan` splits the projections into groups of about equal cost (the two big
   ones apart, the five small ones with the lighter of them).
2. One process per group (a fresh interpreter running `_main` below,
   so no SQLite handle crosses a fork and no caller needs a `__main__` guard) reads
   the ledger up to a fixed head `H` in its own read snapshot and applies it,
   with the same `apply_records` as live and serial replay, to empty tables in
   a scratch file of its own (no journal: the file is thrown away if anything fails).
3. The parent then attaches the scratch files and, in one `BEGIN IMMEDIATE`,
   drops and recreates the tables, copies the rows in (`INSERT … SELECT`, in C,
   hidden rowids and AUTOINCREMENT counters included, so the tables are the
   ones a serial replay builds, byte for byte), applies whatever was appended
   after `H` serially, builds the remaining indexes and stores the positions.

Crash safety is the serial replay's: nothing in the database changes before
that one transaction, and a process killed at any point leaves the old tables
and positions as they were. The scratch files live in a hidden directory
beside the database (same disk, where space was planned); a replay killed
before it could remove them leaves the directory behind, and the next replay,
which holds the worker lock, removes it. A worker whose parent died stops at
its next batch instead of finishing for nobody.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
from types import ModuleType
from typing import Callable, Iterator, Sequence

import apsw

from eventlog.errors import ProjectionError

from .registry import select
from .runner import apply_records, read_batches
from .tables import table_ddl

__all__ = ["plan", "default_jobs", "build", "build_in_parallel", "copy_in", "scratch_space", "WEIGHTS", "PARALLEL_MIN"]

# CPU per entry, relative (benchmarks/replay.md): what `plan` balances.
WEIGHTS = {"companies": 17.0, "company_processing_state": 15.0}
_LIGHT = 0.5
PARALLEL_MIN = 50_000  # below this many entries the processes' start-up (~0.3 s each) isn't worth it
_VARS = "projection_vars"


def plan(selected: Sequence[ModuleType], jobs: int) -> list[list[ModuleType]]:
    """At most `jobs` groups of projectors of about equal cost (longest first, each to the lightest group)."""
    groups: list[list[ModuleType]] = [[] for _ in range(max(1, min(jobs, len(selected))))]
    cost = [0.0] * len(groups)
    for p in sorted(selected, key=lambda p: -WEIGHTS.get(p.NAME, _LIGHT)):
        i = cost.index(min(cost))
        groups[i].append(p)
        cost[i] += WEIGHTS.get(p.NAME, _LIGHT)
    order = {p.NAME: i for i, p in enumerate(selected)}
    return [sorted(g, key=lambda p: order[p.NAME]) for g in groups if g]


def default_jobs(entries: int) -> int:
    """Processes to use when the caller didn't say: one per core, none extra for a small ledger.

    Three at most: `companies`, `company_processing_state` and the five light
    projections together are the groups worth a process each.
    """
    return 1 if entries < PARALLEL_MIN else max(1, min(os.cpu_count() or 1, 3))


# --- the scratch directory --------------------------------------------------------------

def _scratch_prefix(db_path: str) -> str:
    real = os.path.realpath(db_path)
    return os.path.join(os.path.dirname(real), f".{os.path.basename(real)}.replay-")


@contextlib.contextmanager
def scratch_space(db_path: str) -> Iterator[str]:
    """A fresh directory for the scratch files, removed afterwards; leftovers of killed replays go first.

    The caller holds the worker lock, so no other replay of this database can be using one.
    """
    prefix = _scratch_prefix(db_path)
    for stale in glob.glob(glob.escape(prefix) + "*"):
        shutil.rmtree(stale, ignore_errors=True)
    try:
        path = tempfile.mkdtemp(prefix=os.path.basename(prefix), dir=os.path.dirname(prefix))
    except OSError as exc:
        raise ProjectionError(f"cannot create the replay's scratch directory beside {db_path}: "
                              f"{exc.strerror}") from None
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- one worker process -------------------------------------------------------------------

def _create_tables(src: apsw.Connection, dst: apsw.Connection, projectors: Sequence[ModuleType]) -> None:
    """The projectors' tables in the scratch file, from the database's own DDL, with their lookup indexes."""
    for table in [t for p in projectors for t in p.TABLES] + [_VARS]:
        create, indexes = table_ddl(src, table)
        dst.execute(create)
        for name, sql in indexes:
            if any(name in p.LOOKUP_INDEXES for p in projectors):
                dst.execute(sql)


def build(db_path: str, scratch: str, names: list[str], head: int, batch_size: int,
          say: Callable[[str], None]) -> None:
    """Apply the ledger up to `head` to the `names` projections, in the fresh file `scratch`."""
    parent = os.getppid()
    projectors = select(names)
    src = apsw.Connection(db_path, flags=apsw.SQLITE_OPEN_READONLY)
    src.set_busy_timeout(30_000)
    dst = apsw.Connection(scratch)
    for pragma in ("journal_mode = OFF", "synchronous = OFF", "foreign_keys = OFF",
                   "cache_size = -65536", "temp_store = MEMORY"):
        dst.execute(f"PRAGMA {pragma}")
    src.execute("BEGIN")  # one snapshot for the whole read
    _create_tables(src, dst, projectors)
    dst.execute("BEGIN")
    for records in read_batches(src, 0, head, batch_size):
        if os.getppid() != parent:
            raise SystemExit(1)  # the replay that wanted these rows is gone
        apply_records(dst, records, projectors)
        say(f"progress {records[-1].position}")
    dst.execute("COMMIT")
    src.execute("ROLLBACK")
    dst.close()
    src.close()
    say(f"done {head}")


def _main(argv: list[str]) -> int:
    """One worker's arguments (DB SCRATCH HEAD BATCH NAME…); it reports line by line on stdout."""
    db_path, scratch, head, batch_size, *names = argv

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    try:
        build(db_path, scratch, names, int(head), int(batch_size), say)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the parent speaks for all
        return 130
    except BrokenPipeError:  # the parent is gone
        return 1
    except Exception as exc:  # the parent reports it in one line, naming the group
        say(f"error {type(exc).__name__}: {' '.join(str(exc).split())}")
        return 1
    return 0


# --- the parent ------------------------------------------------------------------------------

Progress = Callable[[int, int], None]


# The worker imports this module from the parent's own sys.path (set after start-up, as the
# parent's was: a script's folder put first in PYTHONPATH could shadow the standard library).
_BOOT = ("import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
         "from projections.parallel import _main; raise SystemExit(_main(sys.argv[2:]))")


class _Worker:
    """One `python -m projections.parallel` process and what it last said."""

    def __init__(self, index: int, group: list[ModuleType], args: list[str]):
        self.group = group
        self.position = 0
        self.done = False
        self.proc = subprocess.Popen([sys.executable, "-c", _BOOT, json.dumps(sys.path), *args],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)

    def heard(self, line: str) -> None:
        kind, _, value = line.strip().partition(" ")
        if kind == "error":
            raise ProjectionError(f"replay of {_label(self.group)} failed: {value}; nothing was changed")
        if kind in ("progress", "done"):
            self.position = int(value)
            self.done = kind == "done"

    def ended(self) -> None:
        """Its output is closed: fine if it said done, otherwise it died."""
        code = self.proc.wait()
        if not self.done:
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            raise ProjectionError(f"the replay process for {_label(self.group)} died ({how}); nothing was changed")


def build_in_parallel(db_path: str, scratch_dir: str, groups: list[list[ModuleType]], head: int,
                      batch_size: int, progress: Progress | None = None) -> list[str]:
    """Build each group into its own scratch file, in its own process; returns the files, group by group.

    Raises `ProjectionError` naming the group if a worker fails or dies; the
    other workers are stopped and nothing outside `scratch_dir` has changed.
    """
    files = [os.path.join(scratch_dir, f"group-{i}.db") for i in range(len(groups))]
    workers: list[_Worker] = []
    with selectors.DefaultSelector() as sel:
        try:
            for i, g in enumerate(groups):
                w = _Worker(i, g, [db_path, files[i], str(head), str(batch_size), *(p.NAME for p in g)])
                workers.append(w)
                sel.register(w.proc.stdout, selectors.EVENT_READ, w)
            if progress:
                progress(0, head)
            open_pipes = len(workers)
            while open_pipes:
                for key, _ in sel.select():
                    w = key.data
                    line = w.proc.stdout.readline()
                    if not line:
                        sel.unregister(w.proc.stdout)
                        open_pipes -= 1
                        w.ended()
                        continue
                    w.heard(line)
                if progress:
                    progress(min(w.position for w in workers), head)
            return files
        finally:
            for w in workers:
                if w.proc.poll() is None:
                    w.proc.kill()
                w.proc.wait()
                w.proc.stdout.close()


def _label(group: Sequence[ModuleType]) -> str:
    return ", ".join(p.NAME for p in group)


def _columns(conn: apsw.Connection, schema: str, table: str) -> list[str]:
    """The columns to copy, with the hidden rowid when the table has one that is not a column."""
    info = conn.execute(f"PRAGMA {schema}.table_info({table})").fetchall()
    columns = [c[1] for c in info]
    pk = [c for c in info if c[5]]
    sql = conn.execute(f"SELECT sql FROM {schema}.sqlite_master WHERE type = 'table' AND name = ?",
                       (table,)).fetchone()[0]
    aliased = len(pk) == 1 and pk[0][2].upper() == "INTEGER"
    if aliased or "WITHOUT ROWID" in sql.upper():
        return columns
    return ["rowid"] + columns


def copy_in(conn: apsw.Connection, alias: str, projectors: Sequence[ModuleType]) -> None:
    """Copy a scratch file's rows (attached as `alias`) into the fresh, empty main tables."""
    has_sequence = conn.execute(f"SELECT 1 FROM {alias}.sqlite_master WHERE name = 'sqlite_sequence'").fetchone()
    for p in projectors:
        for table in p.TABLES:
            cols = ", ".join(_columns(conn, alias, table))
            conn.execute(f"INSERT INTO main.{table}({cols}) SELECT {cols} FROM {alias}.{table} ORDER BY rowid")
            if has_sequence:  # ids handed out and since deleted count too: the next id must match
                conn.execute("DELETE FROM main.sqlite_sequence WHERE name = ?", (table,))
                conn.execute(f"INSERT INTO main.sqlite_sequence(name, seq) SELECT name, seq "
                             f"FROM {alias}.sqlite_sequence WHERE name = ?", (table,))
        conn.execute(f"INSERT INTO main.{_VARS} SELECT * FROM {alias}.{_VARS} WHERE projection = ?", (p.NAME,))
