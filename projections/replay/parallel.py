"""Replay on several cores: each group of projections is rebuilt by its own process into a scratch file.

A replay is bound by CPU: Python stepping every entry and SQLite writing the
rows, two wide rows per stream event (`companies`, `company_processing_state`).
The projectors are independent of one another (each reads only its own tables
and its own `projection_vars`), so they can be built side by side:

1. `plan` splits the projections into groups of about equal cost (the two big
   ones apart, the light ones with the lighter group).
2. One worker process per group (`projections.replay.worker`) reads the ledger up to a fixed
   head `H` in its own read snapshot and applies it, with the same
   `apply_positions` as serial replay, to empty tables in a scratch file.
3. The parent then attaches the scratch files and, in one `BEGIN IMMEDIATE`,
   drops and recreates the tables, copies the rows in (`INSERT … SELECT`, in C,
   hidden rowids and AUTOINCREMENT counters included, so the tables are the
   ones a serial replay builds, byte for byte), applies whatever was appended
   after `H` serially, builds the remaining indexes and stores the positions.

Crash safety is the serial replay's: nothing in the database changes before
that one transaction, and a process killed at any point leaves the old tables
and positions as they were. Unlike a serial replay, other writers are not held
up while the workers run; they wait only for the copy at the end.

The scratch files live in one directory beside the database (same disk, where
space was planned), `.<name>.replay`; the worker lock means one replay per
database at a time, so the name needs no randomness, and a directory left by a
killed replay is removed by the next one, whichever way it runs. Workers get a
process group of their own, so Ctrl-C reaches only the parent, which stops
them; a worker whose parent died stops at its next batch (or its next line to
a closed pipe) instead of finishing for nobody.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import subprocess
import sys
from types import ModuleType
from typing import Callable, Iterator, Sequence

import apsw

from eventlog.ledger.db import translated
from eventlog.errors import ProjectionError

from projections.tables import VARS

__all__ = ["plan", "default_jobs", "available_cpus", "build_in_parallel", "attached", "copy_in",
           "scratch_space", "remove_stale_scratch", "scratch_dir", "ScratchUnavailable",
           "Progress", "WEIGHTS", "PARALLEL_MIN"]

Progress = Callable[[int, int], None]

# CPU per entry, relative (benchmarks/replay.md): what `plan` balances.
WEIGHTS = {"companies": 17.0, "company_processing_state": 15.0}
# Projectors that read another's table while they apply, built in the same process after it (in
# its scratch file, not the live table a bug fix may be replacing).
WITH = {"officers": "companies"}
_LIGHT = 0.5
PARALLEL_MIN = 50_000  # below this many entries the workers' start-up (~0.3 s each) isn't worth it
MAX_USEFUL = 3  # companies, company_processing_state, the light ones: more processes add nothing


class ScratchUnavailable(ProjectionError):
    """The scratch directory can't be made (e.g. a read-only directory): a replay can still run serially."""


def plan(selected: Sequence[ModuleType], jobs: int) -> list[list[ModuleType]]:
    """At most `jobs` groups of projectors of about equal cost (longest first, each to the lightest group).

    Projectors without tables (views) have nothing to build; they ride with the
    first group, so they never cost a process of their own.
    """
    building = [p for p in selected if p.TABLES]
    groups: list[list[ModuleType]] = [[] for _ in range(max(1, min(jobs, len(building))))]
    cost = [0.0] * len(groups)
    home: dict[str, int] = {}
    for p in sorted(building, key=lambda p: -WEIGHTS.get(p.NAME, _LIGHT)):
        i = home.get(WITH.get(p.NAME, ""), cost.index(min(cost)))  # the heavy ones are placed first
        groups[i].append(p)
        home[p.NAME] = i
        cost[i] += WEIGHTS.get(p.NAME, _LIGHT)
    groups[0].extend(p for p in selected if not p.TABLES)
    order = {p.NAME: i for i, p in enumerate(selected)}
    return [sorted(g, key=lambda p: order[p.NAME]) for g in groups if g]


def available_cpus() -> int:
    """CPUs this process may really use: its affinity, capped by a cgroup CPU quota (containers)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def default_jobs(entries: int) -> int:
    """Processes to use when the caller didn't say: one per usable CPU, only for a large ledger."""
    return 1 if entries < PARALLEL_MIN else min(available_cpus(), MAX_USEFUL)


# --- the scratch directory --------------------------------------------------------------

def scratch_dir(db_path: str) -> str:
    """`.<name>.replay` beside the real database file (symlinks resolved)."""
    real = os.path.realpath(db_path)
    return os.path.join(os.path.dirname(real), f".{os.path.basename(real)}.replay")


def remove_stale_scratch(db_path: str) -> None:
    """Remove what a killed parallel replay left; the caller holds the worker lock."""
    path = scratch_dir(db_path)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def scratch_space(db_path: str) -> Iterator[str]:
    """The scratch directory, created empty and removed afterwards."""
    remove_stale_scratch(db_path)
    path = scratch_dir(db_path)
    try:
        os.mkdir(path, 0o700)
    except OSError as exc:
        raise ScratchUnavailable(f"cannot create the replay's scratch directory {path}: {exc.strerror}") from None
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- the workers -----------------------------------------------------------------------------

# `-I`: the worker's sys.path is the parent's, set before anything else is imported;
# without it, `python -c` would put the current directory first, and a stray json.py
# there would be imported instead of the standard library's.
_BOOT = ("import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
         "from projections.replay.worker import main; raise SystemExit(main(sys.argv[2:]))")


class _Worker:
    """One worker process and what it last said."""

    def __init__(self, group: list[ModuleType], args: list[str]):
        self.group = group
        self.position = 0
        self.done = False
        # A process group of its own: the terminal's Ctrl-C goes to the parent, which stops the workers.
        self.proc = subprocess.Popen([sys.executable, "-I", "-c", _BOOT, json.dumps(sys.path), *args],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                     process_group=0)

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


def build_in_parallel(db_path: str, directory: str, groups: list[list[ModuleType]], head: int,
                      batch_size: int, progress: Progress | None = None) -> list[str]:
    """Build each group into its own scratch file, in its own process; returns the files, group by group.

    Raises `ProjectionError` naming the group if a worker fails or dies; the
    other workers are stopped and nothing outside `directory` has changed.
    """
    files = [os.path.join(directory, f"group-{i}.db") for i in range(len(groups))]
    workers: list[_Worker] = []
    with selectors.DefaultSelector() as sel:
        try:
            for path, group in zip(files, groups):
                w = _Worker(group, [db_path, path, str(head), str(batch_size), *(p.NAME for p in group)])
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


# --- the copy --------------------------------------------------------------------------------

@contextlib.contextmanager
def attached(conn: apsw.Connection, files: Sequence[str]) -> Iterator[list[str]]:
    """The scratch files attached (outside any transaction, as SQLite requires), detached afterwards.

    Without a journal: the parent only reads them, but `BEGIN IMMEDIATE` opens a
    write transaction on every attached file, and with journals SQLite would
    commit through a super-journal (`<db>-mj…`) beside the database.
    """
    aliases: list[str] = []
    try:
        with translated(conn.filename):
            for i, path in enumerate(files):
                conn.execute(f"ATTACH DATABASE ? AS replay_{i}", (path,))
                aliases.append(f"replay_{i}")
                conn.execute(f"PRAGMA replay_{i}.journal_mode = OFF")
                conn.execute(f"PRAGMA replay_{i}.synchronous = OFF")
        yield aliases
    finally:
        for alias in aliases:
            with contextlib.suppress(apsw.Error):  # never hide the error that got us here
                conn.execute(f"DETACH DATABASE {alias}")


def _copy_plan(conn: apsw.Connection, schema: str, table: str) -> tuple[list[str], str]:
    """The columns to copy (with the hidden rowid when it is not a column) and the order to copy in."""
    columns = [c[1] for c in conn.execute(f"PRAGMA {schema}.table_info({table})")]
    info = conn.execute(f"PRAGMA {schema}.table_list({table})").fetchone()
    if info[4]:  # `wr`: WITHOUT ROWID, keyed by its primary key alone
        return columns, ""
    pk = [c for c in conn.execute(f"PRAGMA {schema}.table_info({table})") if c[5]]
    aliased = len(pk) == 1 and pk[0][2].upper() == "INTEGER"
    return (columns if aliased else ["rowid"] + columns), " ORDER BY rowid"


def copy_in(conn: apsw.Connection, alias: str, projectors: Sequence[ModuleType]) -> None:
    """Copy a scratch file's rows (attached as `alias`) into the fresh, empty main tables."""
    has_sequence = conn.execute(f"SELECT 1 FROM {alias}.sqlite_master WHERE name = 'sqlite_sequence'").fetchone()
    for p in projectors:
        for table in p.TABLES:
            columns, order = _copy_plan(conn, alias, table)
            cols = ", ".join(columns)
            conn.execute(f"INSERT INTO main.{table}({cols}) SELECT {cols} FROM {alias}.{table}{order}")
            if has_sequence:  # ids handed out and since deleted count too: the next id must match
                conn.execute("DELETE FROM main.sqlite_sequence WHERE name = ?", (table,))
                conn.execute(f"INSERT INTO main.sqlite_sequence(name, seq) SELECT name, seq "
                             f"FROM {alias}.sqlite_sequence WHERE name = ?", (table,))
        columns, order = _copy_plan(conn, alias, VARS)
        cols = ", ".join(columns)
        conn.execute(f"INSERT INTO main.{VARS}({cols}) SELECT {cols} FROM {alias}.{VARS} "
                     f"WHERE projection = ?{order}", (p.NAME,))
