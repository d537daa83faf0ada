"""`replay` rebuilds projections from the ledger alone; `verify` checks them without changing them.

Replay is one `BEGIN IMMEDIATE` transaction: drop the projection's tables,
create them empty (`tables.fresh_tables`), apply the whole ledger, build the
remaining indexes, store the new positions, COMMIT. Why one transaction rather
than building side tables and renaming them: SQLite's DDL is transactional, so
this already is "build fresh tables and swap them atomically": readers keep
seeing the old tables (WAL snapshot) until the COMMIT, and a replay killed at
any point, SIGKILL included, leaves old tables and positions exactly as they
were (the uncommitted WAL frames are discarded on the next open). Renaming
tables instead would rewrite the foreign keys and views that refer to them.
Memory stays flat: records are read in batches and SQLite spills dirty pages to
the WAL rather than holding the transaction in memory (the WAL grows to about
the size of the rebuilt tables until the COMMIT checkpoints it). Readers are
never blocked; other writers wait for the COMMIT (there is no worker to wait).
Foreign keys are checked once, over the finished tables, before the COMMIT.

On a large ledger the projections are built side by side in worker processes,
each into a scratch file, and only copied in by that one transaction
(`parallel`); the tables are the same, byte for byte, and so is the crash safety.
Other writers are then held up only by the copy at the end, not by the build.

Replay takes the worker lock, so it refuses while a worker runs and no worker
can start until it is done.

Verify rebuilds into TEMP shadow tables inside a read transaction and compares
them with the live tables at the same snapshot, then rolls back: it writes
nothing to the database file and can run next to a live worker.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from types import ModuleType
from typing import Sequence

import apsw
import msgspec

from eventlog.ledger.db import transaction, translated
from eventlog.errors import ProjectionError

from projections.replay.compare import Difference, compare_table
from eventlog.ledger.lock import worker_lock
from projections.replay.parallel import (Progress, ScratchUnavailable, attached, build_in_parallel, copy_in, default_jobs, plan,
                       remove_stale_scratch, scratch_space)
from projections.tables import create_shadow_tables, fresh_tables
from projections.registry import select
from projections.runner import apply_positions, apply_records, ledger_head, read_batches, read_states, set_positions

__all__ = ["ReplayReport", "replay", "verify", "Progress"]

BATCH_SIZE = 5000
CACHE_KIB = 65536  # SQLite page cache during a rebuild; bounded, so memory stays flat


class ReplayReport(msgspec.Struct, frozen=True):
    projections: tuple[str, ...]
    entries: int
    head: int
    seconds: float
    processes: int = 1

    @property
    def rate(self) -> float:
        """Entries per second."""
        return self.entries / self.seconds if self.seconds > 0 else 0.0


@contextlib.contextmanager
def _cache(conn: apsw.Connection, kib: int):
    before = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute(f"PRAGMA cache_size = -{kib}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA cache_size = {before}")


@contextlib.contextmanager
def _foreign_keys_checked_at_end(conn: apsw.Connection):
    """Foreign keys off while rebuilding (a probe per row, and `companies` may be
    rebuilt under the rows that refer to it), checked once before COMMIT instead."""
    before = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        if before:
            conn.execute("PRAGMA foreign_keys = ON")


def _check_foreign_keys(conn: apsw.Connection) -> None:
    bad = list(itertools.islice(conn.execute("PRAGMA foreign_key_check"), 5))
    if bad:
        raise ProjectionError(f"replay would leave rows without their parent row {bad}: nothing was changed")


def replay(conn: apsw.Connection, only: str | Sequence[str] | None = None,
           progress: Progress | None = None, *, lock: bool = True,
           batch_size: int = BATCH_SIZE, jobs: int | None = None) -> ReplayReport:
    """Rebuild the projections (all, or `only` one) from position 0 and swap them in at COMMIT.

    `progress(done, total)` is called after each batch. `lock=False` is for a
    caller that already holds the worker lock (e.g. a worker replaying before it starts).
    `jobs` is how many processes build the projections side by side (`parallel`);
    by default one per core for a large ledger, and always 1 for an in-memory database.
    """
    selected = select(only)
    guard = worker_lock(conn.filename, "replay") if lock and conn.filename else contextlib.nullcontext()
    with guard, _cache(conn, CACHE_KIB), _foreign_keys_checked_at_end(conn):
        started = time.perf_counter()
        if conn.filename:
            remove_stale_scratch(conn.filename)  # whatever this replay's mode, a killed one's leftovers go
        head = ledger_head(conn)
        groups = plan(selected, default_jobs(head) if jobs is None else jobs) if conn.filename else [selected]
        if len(groups) > 1:
            try:
                head = _replay_parallel(conn, selected, groups, head, progress, batch_size)
            except ScratchUnavailable:
                if jobs is not None:  # asked for: say why it can't be done
                    raise
                groups = [selected]  # chosen for the user: one process still works
        if len(groups) == 1:
            head = _replay_serial(conn, selected, progress, batch_size)
        return ReplayReport(tuple(p.NAME for p in selected), head, head, time.perf_counter() - started,
                            len(groups))


def _replay_serial(conn: apsw.Connection, selected: Sequence[ModuleType], progress: Progress | None,
                   batch_size: int) -> int:
    with transaction(conn):
        head = ledger_head(conn)
        later = _fresh(conn, selected)
        if progress:
            progress(0, head)
        apply_positions(conn, 0, head, selected, batch_size=batch_size,
                        progress=(lambda done: progress(done, head)) if progress else None)
        _finish(conn, selected, later, head)
    return head


def _replay_parallel(conn: apsw.Connection, selected: Sequence[ModuleType], groups: list[list[ModuleType]],
                     head: int, progress: Progress | None, batch_size: int) -> int:
    """Build the groups side by side up to `head`, then swap them in with whatever came after it."""
    with scratch_space(conn.filename) as directory:
        files = build_in_parallel(conn.filename, directory, groups, head, batch_size, progress)
        with attached(conn, files) as aliases, transaction(conn):
            later = _fresh(conn, selected)
            for alias, group in zip(aliases, groups):
                copy_in(conn, alias, group)
            now = ledger_head(conn)  # entries appended while the workers ran
            for records in read_batches(conn, head, now, batch_size):
                apply_records(conn, records, selected)
            _finish(conn, selected, later, now)
    return now


def _fresh(conn: apsw.Connection, selected: Sequence[ModuleType]) -> list[str]:
    try:
        return fresh_tables(conn, selected)
    except LookupError as exc:
        raise ProjectionError(str(exc)) from None


def _finish(conn: apsw.Connection, selected: Sequence[ModuleType], later: list[str], head: int) -> None:
    """Indexes built in one sorted pass each, foreign keys checked, positions stored: then COMMIT."""
    for sql in later:
        conn.execute(sql)
    _check_foreign_keys(conn)
    set_positions(conn, selected, head)


def _rebuild_until(conn: apsw.Connection, selected: Sequence[ModuleType], limits: dict[str, int],
                   batch_size: int) -> None:
    """Apply the ledger to each projector up to its own limit (its live position)."""
    for p in [p for p in selected if hasattr(p, "apply_range")]:
        apply_positions(conn, 0, limits[p.NAME], [p], batch_size=batch_size)
    selected = [p for p in selected if not hasattr(p, "apply_range")]
    until = max((limits[p.NAME] for p in selected), default=0)
    for records in read_batches(conn, 0, until, batch_size):
        last = records[-1].position
        for p in selected:
            limit = limits[p.NAME]
            if limit >= last:
                apply_records(conn, records, [p])
            elif limit >= records[0].position:
                apply_records(conn, [r for r in records if r.position <= limit], [p])


def verify(conn: apsw.Connection, only: str | Sequence[str] | None = None, *, limit: int = 20,
           batch_size: int = BATCH_SIZE) -> list[Difference]:
    """Rebuild into scratch tables and list how the live tables differ; changes nothing.

    Each projection is rebuilt up to its own stored position, so a projection
    that is behind is compared with what it should hold at that position (and
    being behind is reported as a difference of `projection_state`).
    """
    selected = select(only)
    foreign_keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")  # shadows of one projection may lack their parent table
    try:
        with translated(conn.filename), _cache(conn, CACHE_KIB):
            conn.execute("BEGIN")
            try:
                states = read_states(conn)
                head = ledger_head(conn)
                try:
                    create_shadow_tables(conn, selected)
                except LookupError as exc:
                    raise ProjectionError(str(exc)) from None
                limits = {p.NAME: states[p.NAME].position if p.NAME in states else 0 for p in selected}
                _rebuild_until(conn, selected, limits, batch_size)
                return _differences(conn, selected, states, head, limit)
            finally:
                conn.execute("ROLLBACK")
    finally:
        if foreign_keys:
            conn.execute("PRAGMA foreign_keys = ON")


def _differences(conn: apsw.Connection, selected: Sequence[ModuleType], states: dict, head: int,
                 limit: int) -> list[Difference]:
    out: list[Difference] = []
    for p in selected:
        s = states.get(p.NAME)
        if s is None:
            out.append(Difference("projection_state", f"name={p.NAME!r}", None, (p.VERSION, head),
                                  note="never built: run `python cli.py replay`"))
        elif s.version != p.VERSION:
            out.append(Difference("projection_state", f"name={p.NAME!r}", tuple(s), (p.VERSION, head),
                                  note=f"built by version {s.version}, the code is version {p.VERSION}: "
                                       f"run `python cli.py replay`"))
        elif s.position != head:
            out.append(Difference("projection_state", f"name={p.NAME!r}", tuple(s), (p.VERSION, head),
                                  note=f"at position {s.position}, the ledger is at {head}"))
        for table in p.TABLES:
            out.extend(compare_table(conn, table, limit=limit))
        out.extend(compare_table(conn, "projection_vars", where="projection = ?", params=(p.NAME,),
                                 limit=limit))
    return out
